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


def judge(model, photo, style, size=256, num_iters=100, settings=None):
    """A Verdict for model's picture of photo (a built-in name, a file or a PIL image) in style, at size
    (its shorter side); style is one of model.styles and a built-in name or a file the engine can read.

    The optimiser is the kit's engine (stylelab.transfer.run_transfer) on the
    training objective itself: the same layers and weights, the TV weight per
    0..255 pixel as the engine reads it.
    """
    from stylelab.train import FAST_PRESET
    from stylelab.transfer import run_transfer

    settings = settings or FAST_PRESET
    photo = to_pil(load_image(resolve_image(photo), size))  # both pictures start from these pixels
    ours = stylize(model, photo, {style: 1.0})
    theirs = run_transfer(photo, style, size=size, num_iters=num_iters, content_layer=settings["content_layer"],
                          style_layers=tuple(settings["style_layers"]), content_weight=settings["content_weight"],
                          style_weights=tuple(settings["style_weights"]),
                          tv_weight=settings["tv_weight"] / 255.0 ** 2).image
    score = scorer(photo, style, settings, size)
    return Verdict(score(ours), score(theirs), (photo, ours, theirs))
