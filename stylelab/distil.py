"""The engine's pictures as the fast network's targets: distilling Gatys et al. into Johnson et al.

A Gram loss tells the fast network only what a whole crop's texture
statistics should be, and a network can meet them by painting one region
and leaving the rest as the photo. The engine (stylelab/engine.py) paints
every region, so its picture of a training crop is a dense target: one
right answer per pixel. `build_corpus` paints training crops with the engine
and keeps each (photo, painted) pair as two PNGs under a folder; it is
resumable (a pair on disk is not painted again) and reproducible (pair i is
drawn from seed and i alone). `Pairs` draws training batches from a corpus:
the same random crop and flip of the photo and of its painting, and
`distil_step` is one training step towards them (stylelab.train.train_fast's
`distil`), and can add a term on the picture's colours: the sliced
Wasserstein distance between its palette and the style image's (`palette`):
on the Gram loss alone, the network was seen to learn a style's strokes long
before its colours (stylelab/models/README.md), and a term on the photo's
light and shade (`shade`): the change the network makes to the luma, blurred
so that only its coarse part counts; with the photo recoloured it kept the
subject readable and spread the paint over every region (the same README).
It is a training step of lab 5's kind written out, so a student release
leaves this module out (grader/instructor/release.py).
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from stylelab.fast import luma
from stylelab.images import ImageError, load_image, to_pil
from stylelab.impl import default as default_exercises

PAIR_SIZE = 256  # the corpus's crops: the size the engine and the yardstick judge at
PAIR_ITERS = 80  # the engine's evaluations per crop: its picture at 80 is close to its 100


def pair_paths(folder, index):
    folder = Path(folder)
    return folder / f"{index:04d}_photo.png", folder / f"{index:04d}_painted.png"


def build_corpus(style, folder, count, *, dataset=None, size=PAIR_SIZE, num_iters=PAIR_ITERS, seed=0, log=print):
    """Paint `count` training crops in `style` with the engine, into folder; returns the number painted now.

    Crop i is stylelab.photos.Photos' crop i (rescaled, flipped, recoloured) of
    the photos in dataset (None: the training photos), drawn from a generator
    seeded with seed and i, so a resumed or repeated run paints the same pairs."""
    import time

    from stylelab.photos import Photos
    from stylelab.transfer import run_transfer

    if count < 1 or size < 32:
        raise ValueError(f"paint at least 1 crop (--count {count}) of at least 32 px (--size {size})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos, painted = Photos(dataset, size), 0
    for index in range(count):
        photo_path, painted_path = pair_paths(folder, index)
        if painted_path.is_file():
            continue
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        photo = to_pil(photos.crop(generator)[None])
        start = time.perf_counter()
        result = run_transfer(photo, style, size=size, num_iters=num_iters)
        photo.save(photo_path)
        tmp = painted_path.with_suffix(".tmp.png")
        result.image.save(tmp)
        tmp.replace(painted_path)  # the painting last, and whole: it marks the pair as done
        painted += 1
        log(f"{style} {index + 1}/{count}: {time.perf_counter() - start:.1f} s")
    return painted


class Pairs:
    """Training batches from a corpus: (N, 3, size, size) photos and their paintings, cropped alike."""

    def __init__(self, folder, size):
        folder = Path(folder)
        self.size, self.pairs = size, []
        for painted_path in sorted(folder.glob("*_painted.png")):
            photo_path = painted_path.with_name(painted_path.name.replace("_painted", "_photo"))
            pair = torch.cat([load_image(photo_path), load_image(painted_path)])  # (2, 3, H, W)
            if pair.shape[-1] < size or pair.shape[-2] < size:
                raise ImageError(f"{painted_path} is {pair.shape[-1]}x{pair.shape[-2]}, smaller than the "
                                 f"{size}-px crops; paint the corpus at --size {size} or more")
            self.pairs.append(pair)
        if not self.pairs:
            raise ImageError(f"{folder} holds no painted pairs; build it first (python -m stylelab distil)")

    def batch(self, n, generator):
        """Photos and paintings, (n, 3, size, size) each."""
        photos, paintings = [], []
        for _ in range(n):
            pair = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=generator))]
            H, W = pair.shape[-2:]
            top = int(torch.randint(H - self.size + 1, (1,), generator=generator))
            left = int(torch.randint(W - self.size + 1, (1,), generator=generator))
            crop = pair[..., top:top + self.size, left:left + self.size]
            if float(torch.rand(1, generator=generator)) < 0.5:
                crop = crop.flip(-1)
            photos.append(crop[0])
            paintings.append(crop[1])
        return torch.stack(photos), torch.stack(paintings)


# Directions in RGB along which a palette is compared: the channels, the grey axis and two opponent axes
DIRECTIONS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0],
                           [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]])
DIRECTIONS = DIRECTIONS / DIRECTIONS.norm(dim=1, keepdim=True)
LEVELS = 64  # quantiles per direction


def palette(rgb):
    """(N, D, LEVELS): each picture's colours projected on DIRECTIONS, at LEVELS evenly spaced quantiles.

    Comparing these is a sliced Wasserstein distance between two pictures'
    colour distributions (Rabin et al. 2011; Heitz et al. 2021 on features)."""
    N, _, H, W = rgb.shape
    projected = torch.einsum("dc,nchw->ndhw", DIRECTIONS.to(rgb), rgb).reshape(N, len(DIRECTIONS), H * W)
    index = torch.linspace(0, H * W - 1, LEVELS, device=rgb.device).round().long()
    return projected.sort(dim=2).values[..., index]  # (N, D, LEVELS)


SHADE_SIGMA = 4.0  # px: only changes wider than a stroke count, so the network stays free to lay strokes


def shade(rgb, sigma=SHADE_SIGMA):
    """(N, 1, H, W): the luma (Y of YIQ) of a (N, 3, H, W) batch, blurred by a Gaussian of sigma pixels.

    The light and shade a viewer finds a subject by; the edge pixels are
    repeated so that a picture's border is not darkened."""
    radius = int(3 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=rgb.dtype, device=rgb.device)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    y = F.conv2d(F.pad(luma(rgb), (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))  # along rows
    return F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))  # columns


def distil_step(impl, params, optimizer, loss_net, photos, paintings, style_grams, style_mix, objective,
                pixel_weight, palette_target=None, palette_weight=0.0, shade_weight=0.0, noise=None):
    """One step of the network towards the engine's paintings of its (N, 3, H, W) photos.

    The exercise's perceptual loss with the painting's features at the content
    layer as the target in place of the photo's, plus pixel_weight times the
    squared distance to the painting in 0..255 pixels, summed per picture and
    averaged over the batch; objective: the style's (stylelab.objective).
    paintings None: the photos' own features are the target, with no pixel term.
    palette_weight: a term on the colours, the mean squared distance (0..255)
    between the picture's palette and palette_target, (1, D, LEVELS).
    shade_weight: a term on the light and shade, the squared distance (0..255)
    between the picture's shade and the photo's, summed per picture.
    noise: for transformer_net's way down, as in train_step.
    Returns the losses as floats, as train_step does."""
    features, cnn = default_exercises().extract_features, loss_net.cnn  # lab 1's forward pass, every module's output
    with torch.no_grad():
        target = features(photos if paintings is None else paintings,
                          cnn[:loss_net.content_layer + 1])[loss_net.content_layer]
    out = impl.transformer_net(photos, params, style_mix, noise)
    losses = impl.perceptual_loss(features(out, cnn), target, style_grams, out, loss_net.content_layer,
                                  objective.content_weight, loss_net.style_layers,
                                  list(objective.style_weights), objective.tv_weight)
    if paintings is not None:
        losses["pixel"] = pixel_weight * torch.sum((255 * (out - paintings)) ** 2) / len(out)
        losses["total"] = losses["total"] + losses["pixel"]
    if palette_weight:
        losses["palette"] = palette_weight * torch.mean((255 * (palette(out) - palette_target)) ** 2)
        losses["total"] = losses["total"] + losses["palette"]
    if shade_weight:
        losses["shade"] = shade_weight * torch.sum((255 * (shade(out) - shade(photos))) ** 2) / len(out)
        losses["total"] = losses["total"] + losses["shade"]
    optimizer.zero_grad()
    losses["total"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}
