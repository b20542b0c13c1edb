"""How far a fast network carries a photo towards a painting, region by region (Johnson et al. 2016, 4.1).

Johnson et al. judge their network against Gatys et al.'s optimisation run on
the same photo and style. So does this, with a judge that neither side trained
on: VGG-19 as it was trained (zero padding, no margin), with the kit's own
preset's layers and weights (stylelab.objective.PRESETS["vgg19"]: Gatys et al.'s
style layers, content at relu4_2). The optimiser's picture is the one a user
gets from the engine at its defaults (`python -m stylelab transfer`, 100
evaluations). Both are read back from 8-bit pictures.

    strength = (style(photo) - style(network)) / (style(photo) - style(engine))

is 0 for the photo and 1 for the engine. A whole-picture loss can fall while
most of the picture is untouched (one patch of strong texture buys the Gram
statistics), so the picture is also cut into a grid of tiles and each tile is
judged on its own against the painting's Gram matrices: the median tile says
whether the style reached every region.
"""

import statistics
from dataclasses import dataclass

import torch

from stylelab.examples import resolve_image
from stylelab.images import load_image, pil_to_rgb, to_pil

GRID = 4  # tiles per side: 64-px tiles at 256 px, each still wide enough for relu5_1 (1/16 size)


def engine_picture(photo, style, size=256, num_iters=100):
    """The engine's picture of photo in style at its default settings (a PIL image): the optimiser's side.

    In float32 on every CPU, so that the yardstick does not move with the machine it runs on."""
    from stylelab.transfer import run_transfer

    return run_transfer(photo, style, size=size, num_iters=num_iters, precision="float32").image


class Judge:
    """The neutral judge of pictures of one photo in one style, at size (the shorter side, in pixels).

    Its VGG-19 and the painting's Gram matrices are made once; style() and
    content() score a whole picture, tiles() each tile of a grid.
    """

    def __init__(self, photo, style, size=256):
        from stylelab.backbones import load_backbone
        from stylelab.objective import PRESETS

        objective = PRESETS["vgg19"]
        self.net = load_backbone("vgg19", layers=(objective.content_layer,) + objective.style_layers)
        self.content_layer = self.net.index(objective.content_layer)
        self.style_layers = [self.net.index(layer) for layer in objective.style_layers]
        self.content_weight, self.style_weights = objective.content_weight, objective.style_weights
        self.photo = to_pil(load_image(resolve_image(photo), size))  # every picture judged has these pixels' size
        with torch.no_grad():
            self.grams = [gram(f) for f in self._feats(load_image(resolve_image(style), size), self.style_layers)]
            self.target = self._feats(pil_to_rgb(self.photo), [self.content_layer])[0]

    def _feats(self, rgb, layers):
        """The features of a (N, 3, H, W) RGB batch in [0, 1] at each of layers."""
        x, out = self.net.preprocess(rgb), {}
        for i, module in enumerate(self.net.cnn[:max(layers) + 1]):
            x = module(x)
            if i in layers:
                out[i] = x
        return [out[i] for i in layers]

    def _styles(self, rgb):
        """(N,): the style loss of each picture of a (N, 3, H, W) batch against the painting."""
        feats = self._feats(rgb, self.style_layers)
        return sum(w * ((gram(f) - g) ** 2).sum(dim=(1, 2)) for w, f, g in zip(self.style_weights, feats, self.grams))

    @torch.no_grad()
    def style(self, picture):
        return float(self._styles(pil_to_rgb(picture))[0])

    @torch.no_grad()
    def content(self, picture):
        feats = self._feats(pil_to_rgb(picture), [self.content_layer])[0]
        return float(self.content_weight * ((feats - self.target) ** 2).sum())

    @torch.no_grad()
    def tiles(self, picture, grid=GRID):
        """[grid * grid] style losses, row by row, of each tile judged on its own (the rim a tile
        cannot divide evenly is left out)."""
        rgb = pil_to_rgb(picture)[0]  # (3, H, W)
        h, w = rgb.shape[1] // grid, rgb.shape[2] // grid
        tiles = rgb[:, :h * grid, :w * grid].reshape(3, grid, h, grid, w).permute(1, 3, 0, 2, 4)  # (g, g, 3, h, w)
        return self._styles(tiles.reshape(grid * grid, 3, h, w)).tolist()


def gram(feats):
    """(N, C, C): the Gram matrices of (N, C, H, W) features, normalised by C * H * W (Gatys et al.)."""
    N, C, H, W = feats.shape
    flat = feats.reshape(N, C, H * W)  # (N, C, HW)
    return flat @ flat.transpose(1, 2) / (C * H * W)


@dataclass
class Strength:
    """How far a picture went from the photo towards the engine's picture: 0 is the photo, 1 the engine."""
    whole: float  # the whole picture's style strength
    tiles: list  # each tile's strength, row by row
    content: float  # the picture's content loss / the engine's

    @property
    def median_tile(self):
        return statistics.median(self.tiles)

    @property
    def low_tile(self):
        """The 25th percentile: a quarter of the picture is weaker than this."""
        return statistics.quantiles(self.tiles, n=4)[0]


def strength(judge, picture, engine, grid=GRID):
    """The Strength of picture against the engine's picture, both of judge.photo in judge's style."""
    photo = judge.photo

    def towards(ours, theirs, start):
        return (start - ours) / (start - theirs)

    tiles = zip(judge.tiles(picture, grid), judge.tiles(engine, grid), judge.tiles(photo, grid))
    return Strength(towards(judge.style(picture), judge.style(engine), judge.style(photo)),
                    [towards(*t) for t in tiles], judge.content(picture) / judge.content(engine))


def border_contrast(picture, band=2, skip=4, depth=64):
    """{side: ratio} for a PIL picture: how busy its outermost rows (or columns) are against the rows
    inside, as the mean absolute difference between neighbouring pixels along each row.

    A network that paints a line of dots along an edge scores well above 1 on
    that side; an even picture about 1. band: how many outermost rows count as
    the edge; the reference is the upper quartile of the rows from skip to
    depth deep, so that neither one busy row of the subject nor a texture whose
    rows alternate busy and calm (shards' facets on coffee at 768 px: 1.0 to
    1.4 times the median row, row after row) decides it.
    """
    rgb = pil_to_rgb(picture)[0]  # (3, H, W)
    sides = {"top": rgb, "bottom": rgb.flip(1), "left": rgb.transpose(1, 2), "right": rgb.transpose(1, 2).flip(1)}
    ratios = {}
    for side, x in sides.items():  # x: (3, rows, cols) with row 0 on that side
        along = (x[:, :depth, 1:] - x[:, :depth, :-1]).abs().mean(dim=(0, 2))  # (depth,) per row
        ratios[side] = float(along[:band].mean() / along[skip:].quantile(0.75).clamp_min(1e-6))
    return ratios


def faces(picture, min_side=40):
    """Boxes (top, left, height, width) where scikit-image's bundled face detector finds a face.

    The detector (an LBP cascade trained on frontal faces, `skimage.feature.Cascade`)
    needs both eyes, a nose and a mouth in their places, so it is a blunt but
    independent witness to whether a stylised face is still a face.
    """
    import numpy as np
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.feature import Cascade

    detector = Cascade(data.lbp_frontal_face_cascade_filename())
    grey = rgb2gray(np.asarray(picture.convert("RGB")))
    found = detector.detect_multi_scale(img=grey, scale_factor=1.2, step_ratio=1, min_size=(min_side, min_side),
                                        max_size=(min(grey.shape),) * 2)
    return [(box["r"], box["c"], box["height"], box["width"]) for box in found]


def keeps_face(picture, photo):
    """Whether the detector finds a face in picture where it finds one in photo (boxes overlapping by half)."""

    def overlap(a, b):
        top, left = max(a[0], b[0]), max(a[1], b[1])
        bottom, right = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
        shared = max(0, bottom - top) * max(0, right - left)
        return shared / (a[2] * a[3] + b[2] * b[3] - shared)

    return any(overlap(a, b) >= 0.5 for a in faces(photo) for b in faces(picture))


def lattice(picture, photo, period=8):
    """How strongly what picture adds to photo repeats every period pixels, along both axes.

    A network that shrinks the photo by 8 and enlarges it again with nearest-neighbour
    upsampling can paint the same stamp into every 8x8 block. The change (picture - photo),
    averaged over the three colours, is taken to frequencies; of its power at periods under 32 px, this is
    the share at multiples of 1/period cycles per pixel, over the share of frequencies those
    are: about 1 for a change with no lattice, hundreds for a stamp. Exact where a side divides
    by period.
    """
    change = (pil_to_rgb(picture)[0] - pil_to_rgb(photo)[0]).mean(dim=0)  # (H, W)
    H, W = change.shape
    power = torch.fft.fft2(change - change.mean()).abs() ** 2
    fy = (torch.fft.fftfreq(H) * H).round().abs().view(-1, 1)  # (H, 1) cycles per picture height
    fx = (torch.fft.fftfreq(W) * W).round().abs().view(1, -1)  # (1, W) cycles per picture width
    fine = (fy * 32 >= H) | (fx * 32 >= W)
    on = fine & (fy * period % H == 0) & (fx * period % W == 0)
    return float(power[on].sum() / power[fine].sum() * fine.sum() / on.sum())
