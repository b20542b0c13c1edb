"""The photos the fast network trains on: random crops, rescaled, flipped and recoloured.

Johnson et al. (2016) trained on COCO's 80,000 photos, on a GPU. The kit trains
offline on a laptop, so by default `Photos` draws from the few colour photos
bundled with scikit-image and matplotlib that the kit may use (TRAINING_PHOTOS,
IMAGES.md), each crop at a random scale, side and colour (`recolour`), and any
folder of photos can replace them. HELD_OUT are never trained on: the judges
(stylelab.yardstick, bench/bench_fast_quality.py) stylise them.
"""

import math
from pathlib import Path

import torch
from torch.nn import functional as F

from stylelab.examples import skimage_photo
from stylelab.images import ImageError, open_image, pil_to_rgb
from stylelab.impl import default as default_exercises

# The photos never trained on, so that the yardstick (stylelab.yardstick) judges
# the shipped network on pictures it has not seen: a face and an object.
HELD_OUT = ("astronaut", "coffee")
# The other colour pictures scikit-image bundles under a licence the kit may use
# (IMAGES.md). Colour only: a grey photo's content target is grey, and the content
# loss at relu2_2 pulls the picture towards grey. (A run with six grey pictures among
# ten still painted every style in greys after 2,300 steps; stylelab/models/README.md.)
# grace_hopper is the one bundled face the kit may train on: matplotlib's sample photo of
# Commodore Grace Hopper (US Navy, public domain), so the network sees eyes and a mouth.
TRAINING_PHOTOS = ("chelsea", "rocket", "retina", "hubble_deep_field", "immunohistochemistry", "grace_hopper")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MAX_MISSES = 100  # unreadable photos drawn in a row before a dataset is declared unusable


class Photos:
    """Random square crops of a set of photos: rescaled, cropped, flipped and recoloured at random.

    folder: any folder of photos (searched recursively), read one by one, so
    COCO's 118k images need no memory; None: TRAINING_PHOTOS (in memory).
    """

    def __init__(self, folder=None, size=256):
        self.size, self.skipped = size, set()
        if folder is None:
            self.paths, self.cached = list(TRAINING_PHOTOS), {}
        else:
            folder = Path(folder)
            if not folder.is_dir():
                raise ImageError(f"{folder}: no such folder; --dataset takes a folder of photos")
            self.paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
            if not self.paths:
                raise ImageError(f"{folder} holds no photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
            self.cached = None

    def _photo(self, index):
        source = self.paths[index]
        if self.cached is None:
            try:
                return pil_to_rgb(open_image(source))
            except ImageError:
                return None  # one unreadable file in a big folder should not stop a long run
        if source not in self.cached:
            self.cached[source] = pil_to_rgb(training_photo(source))
        return self.cached[source]

    def crop(self, generator):
        """One (3, size, size) crop: shorter side rescaled to 1 to 2.5 crop sizes, then recoloured."""
        for _ in range(MAX_MISSES):
            index = int(torch.randint(len(self.paths), (1,), generator=generator))
            rgb = self._photo(index)
            if rgb is not None:
                break
            self.skipped.add(self.paths[index])
        else:
            raise ImageError(f"{MAX_MISSES} photos in a row could not be read ({len(self.skipped)} of "
                             f"{len(self.paths)} files so far, e.g. {sorted(self.skipped)[0]}); "
                             f"--dataset needs a folder of readable photos")
        def uniform(low, high):
            return float(torch.empty(1).uniform_(low, high, generator=generator))

        H, W = rgb.shape[-2:]
        short = max(self.size, round(self.size * uniform(1.0, 2.5)))
        h, w = max(self.size, round(H * short / min(H, W))), max(self.size, round(W * short / min(H, W)))
        rgb = F.interpolate(rgb, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        top = int(torch.randint(h - self.size + 1, (1,), generator=generator))
        left = int(torch.randint(w - self.size + 1, (1,), generator=generator))
        rgb = rgb[0, :, top:top + self.size, left:left + self.size]
        if float(torch.rand(1, generator=generator)) < 0.5:
            rgb = rgb.flip(-1)
        return recolour(rgb, uniform(0.75, 1.25), uniform(0.7, 1.3), uniform(0.5, 1.5), uniform(-0.1, 0.1))

    def batch(self, n, generator):
        return torch.stack([self.crop(generator) for _ in range(n)])  # (n, 3, size, size)


def training_photo(name):
    """One of TRAINING_PHOTOS (or HELD_OUT) as a PIL RGB image: scikit-image's, or matplotlib's sample photo."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return open_image(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))).convert("RGB")
    return skimage_photo(name)


def recolour(rgb, brightness, contrast, saturation, hue):
    """A (3, H, W) picture in [0, 1] with its brightness and contrast scaled, its chroma scaled by
    saturation and rotated by hue turns, so the network meets photos in every light.

    In YIQ (the labs' YIQ_FROM_RGB): luma and two chroma axes, in which a hue change is a rotation."""
    M = torch.tensor(default_exercises().YIQ_FROM_RGB, dtype=rgb.dtype)  # (3, 3)
    yiq = torch.einsum("ij,jhw->ihw", M, rgb)  # (3, H, W)
    luma = yiq[0]
    luma = (luma - luma.mean()) * contrast + luma.mean() * brightness
    angle = 2 * math.pi * hue
    cos, sin = math.cos(angle) * saturation, math.sin(angle) * saturation
    i, q = yiq[1] * cos - yiq[2] * sin, yiq[1] * sin + yiq[2] * cos
    out = torch.einsum("ij,jhw->ihw", torch.linalg.inv(M), torch.stack([luma, i, q]))
    return out.clamp(0, 1)
