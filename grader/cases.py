"""The inputs each check feeds to an exercise, built from a seed (instructors only).

Public checks use seed 0 and the base shapes (stored, with the expected outputs,
in grader/reference/); hidden checks use other seeds and other shapes, so an
answer copied from the reference file passes the first and fails the second.
Inputs are small: every public check runs in well under a second, and the
feature-extraction and loop checks use a tiny seeded network instead of
pretrained weights.
"""

import torch

from grader.checks import EXERCISES, tiny_cnn, tiny_cnn_state


def _rand(g, *shape):
    return torch.randn(*shape, generator=g)


def build(exercise, seed=0, variant=0):
    """Inputs for one check, as a dict name -> value, in the exercise's argument order.

    variant 0 gives the public shapes; other variants change batch sizes,
    channels, sizes and layers, for the hidden checks.
    """
    g = torch.Generator().manual_seed(seed * 100 + EXERCISES.index(exercise))
    v = variant
    if exercise == "extract_features":
        return {"x": _rand(g, 2 + v, 3, 8 + 2 * v, 10 + 2 * v), "cnn": tiny_cnn(tiny_cnn_state(seed))}
    if exercise == "content_loss":
        shape = (1, 8 + v, 5 + v, 6)
        return {"content_weight": 0.6 + v, "content_current": _rand(g, *shape),
                "content_original": _rand(g, *shape)}
    if exercise == "gram_matrix":
        return {"features": _rand(g, 2 + v, 5 + 2 * v, 4 + v, 6)}
    if exercise == "style_loss":
        # one channel count for all layers, so that indexing feats by position
        # (a common mistake) gives a wrong number rather than a shape error
        C = 5 + v
        sizes = [(9, 9), (7, 8), (5, 5), (4, 6), (3, 3)]
        feats = [_rand(g, 1, C, h, w) for h, w in sizes[v % 2:]]  # variants shift the layers
        style_layers = [0, 2, 3] if v == 0 else [1, 2]
        # any symmetric matrices will do as targets
        style_targets = []
        for layer in style_layers:
            C = feats[layer].shape[1]
            half = _rand(g, 1, C, C)
            style_targets.append(half @ half.transpose(1, 2) / C)  # (1, C, C)
        return {"feats": feats, "style_layers": style_layers, "style_targets": style_targets,
                "style_weights": [3.0, 0.5, 2.0][:len(style_layers)] if v == 0 else [0.7, 4.0]}
    if exercise == "tv_loss":
        return {"img": _rand(g, 1, 3, 6 + v, 7 + 2 * v), "tv_weight": 0.25 + v}
    if exercise == "style_transfer":
        return {"cnn": tiny_cnn(tiny_cnn_state(seed)),
                # inside pixel_range, and init="content": the trajectory then does not
                # depend on how a student draws random numbers
                "content_img": 0.2 + 0.6 * torch.rand(1, 3, 16, 16 + 2 * v, generator=g),
                "style_img": torch.rand(1, 3, 18, 16, generator=g),
                "content_layer": 4 if v == 0 else 3, "content_weight": 1.0,
                "style_layers": [1, 4], "style_weights": [50.0, 20.0 + 10 * v],
                "tv_weight": 0.01, "num_iters": 8, "optimizer": "adam", "lr": 0.02,
                "decayed_lr": 0.002, "decay_lr_at": 5, "init": "content",
                "pixel_range": (0.2, 0.8), "seed": seed}
    if exercise == "match_color":
        # a narrow style palette and a wide, bright content one: the mapping stretches
        # colours past 1, so leaving out the clamp shows
        return {"style_img": torch.rand(1, 3, 9 + v, 11, generator=g) * 0.2 + 0.4,
                "content_img": torch.rand(1, 3, 8, 8 + v, generator=g) * 0.5 + 0.5}
    if exercise == "luminance_only":
        shape = (1, 3, 7 + v, 9)
        return {"stylized": torch.rand(*shape, generator=g), "content_img": torch.rand(*shape, generator=g)}
    if exercise == "loss_landscape":
        content_img = torch.rand(1, 3, 12, 12 + 2 * v, generator=g)
        return {"cnn": tiny_cnn(tiny_cnn_state(seed)), "img": torch.rand(content_img.shape, generator=g),
                "content_img": content_img, "style_img": torch.rand(1, 3, 14, 12, generator=g),
                "content_layer": 4 if v == 0 else 3, "content_weight": 1.0, "style_layers": [1, 4],
                "style_weights": [50.0, 20.0 + 10 * v], "tv_weight": 0.5,
                "d1": _rand(g, *content_img.shape), "d2": _rand(g, *content_img.shape),
                "alphas": torch.linspace(-0.5, 0.5, 3 + v), "betas": torch.linspace(-0.3, 0.6, 4)}
    raise KeyError(f"no check for {exercise!r}; checks exist for: {', '.join(EXERCISES)}")
