"""How close a fast network comes to the optimisation it replaces (Johnson et al. 2016, section 4.1).

Johnson et al. judge their network by the objective it was trained on, against
Gatys et al.'s optimisation run on the same photo and style. So does this: the
network's picture and the picture the kit's engine reaches are scored by one
function, the content and style terms of the training objective
(stylelab.train.FAST_PRESET) through the reference losses, both read back from
8-bit pictures as a user gets them. A ratio network / optimiser of 1 means the
one pass gives up nothing against the minute of optimisation; the goal for a
shipped model is at most 2 on each term, on photos it was never trained on.
"""

from dataclasses import dataclass

import torch

from stylelab.examples import resolve_image
from stylelab.fast import stylize
from stylelab.images import load_image, pil_to_rgb, to_pil


@dataclass
class Verdict:
    network: dict  # "content", "style": the network's picture, scored
    optimiser: dict  # the same for the engine's picture
    pictures: tuple  # (photo, network's, optimiser's), PIL images of one size

    def ratio(self, term):
        return self.network[term] / self.optimiser[term]


def scorer(photo, style, settings, size):
    """A function picture -> {"content", "style"}: the training objective's terms for photo in style.

    photo: a PIL image, the content target; style: a built-in style's name or
    a file, its Gram matrices taken at `size` on the shorter side, as the
    engine's run takes them. The loss network and the targets are made once.
    """
    from stylelab.train import loss_network
    from stylelab.transfer import default_impl

    impl, net = default_impl(), loss_network(settings)
    with torch.no_grad():
        target = impl.extract_features(pil_to_rgb(photo), net.cnn)[net.content_layer]
        style_feats = impl.extract_features(load_image(resolve_image(style), size), net.cnn)
        grams = [impl.gram_matrix(style_feats[i]) for i in net.style_layers]

    def score(picture):
        with torch.no_grad():
            feats = impl.extract_features(pil_to_rgb(picture), net.cnn)
            return {"content": float(impl.content_loss(settings["content_weight"], feats[net.content_layer],
                                                       target)),
                    "style": float(impl.style_loss(feats, net.style_layers, grams, list(settings["style_weights"])))}

    return score


def scores(picture, photo, style, settings, size):
    """{"content", "style"}: the training objective's terms for picture (a PIL image); see scorer."""
    return scorer(photo, style, settings, size)(picture)


def objective(model, style):
    """The loss weights model was trained with for style (its file records them), else FAST_PRESET."""
    from stylelab.train import FAST_PRESET

    return {**FAST_PRESET, **model.training.get("per_style", {}).get(style, {})}


def judge(model, photo, style, size=256, num_iters=100, settings=None, theirs=None):
    """A Verdict for model's picture of photo (a built-in name, a file or a PIL image) in style, at size
    (its shorter side); style is one of model.styles and a built-in name or a file the engine can read.

    The optimiser is the kit's engine (stylelab.transfer.run_transfer) on the
    training objective itself (objective(): the same layers and weights, the
    TV weight per 0..255 pixel as the engine reads it, the same margin
    around the picture). theirs: the optimiser's picture of an
    earlier verdict on the same photo, style and settings, to judge another
    model against it without optimising again.
    """
    from stylelab.train import LOSS_MARGIN
    from stylelab.transfer import run_transfer

    settings = settings or objective(model, style)
    photo = to_pil(load_image(resolve_image(photo), size))  # both pictures start from these pixels
    ours = stylize(model, photo, {style: 1.0})
    theirs = theirs or run_transfer(photo, style, size=size, num_iters=num_iters, content_layer=settings["content_layer"],
                          style_layers=tuple(settings["style_layers"]), content_weight=settings["content_weight"],
                          style_weights=tuple(settings["style_weights"]),
                          tv_weight=settings["tv_weight"] / 255.0 ** 2, margin=LOSS_MARGIN,
                          padding="zeros").image  # the training's loss network pads with zeros
    score = scorer(photo, style, settings, size)
    return Verdict(score(ours), score(theirs), (photo, ours, theirs))


def border_contrast(picture, band=2, skip=4, depth=64):
    """{side: ratio} for a PIL picture: how busy its outermost rows (or columns) are against the rows
    inside, as the mean absolute difference between neighbouring pixels along each row.

    A network that paints a line of dots along an edge scores well above 1 on
    that side; an even picture about 1. band: how many outermost rows count as
    the edge; the reference is the median row from skip to depth deep, so that
    one busy row of the subject does not decide it.
    """
    rgb = pil_to_rgb(picture)[0]  # (3, H, W)
    sides = {"top": rgb, "bottom": rgb.flip(1), "left": rgb.transpose(1, 2), "right": rgb.transpose(1, 2).flip(1)}
    ratios = {}
    for side, x in sides.items():  # x: (3, rows, cols) with row 0 on that side
        along = (x[:, :depth, 1:] - x[:, :depth, :-1]).abs().mean(dim=(0, 2))  # (depth,) per row
        ratios[side] = float(along[:band].mean() / along[skip:].median().clamp_min(1e-6))
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
