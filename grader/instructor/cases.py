"""The inputs each check feeds to an exercise, built from a seed (instructors only).

Public checks use seed 0 and the base shapes (stored, with the expected outputs,
in grader/reference/); hidden checks use other seeds and other shapes, so an
answer copied from the reference file passes the first and fails the second.
Inputs are small: every public check runs in well under a second, and the
feature-extraction and loop checks use a tiny seeded network instead of
pretrained weights.
"""

import torch

from grader.exercises import EXERCISES
from grader.protocol import tiny_cnn, tiny_cnn_state


def _rand(g, *shape):
    return torch.randn(*shape, generator=g)


def net_params(g, num_styles, widths, num_res):
    """Seeded parameters for transformer_net, named as stylelab.fast.TransformerNet names them."""
    c1, c2, c3 = widths
    convs = {"conv1": (c1, 3, 9), "conv2": (c2, c1, 3), "conv3": (c3, c2, 3), "up1": (c2, c3, 3),
             "up2": (c1, c2, 3), "up3": (3, c1, 3)}
    convs.update({f"res.{i}.conv{k}": (c3, c3, 3) for i in range(num_res) for k in (1, 2)})
    norms = {"norm1": c1, "norm2": c2, "norm3": c3, "norm4": c2, "norm5": c1}
    norms.update({f"res.{i}.norm{k}": c3 for i in range(num_res) for k in (1, 2)})
    params = {}
    for name, (c_out, c_in, k) in convs.items():
        params[f"{name}.weight"] = _rand(g, c_out, c_in, k, k) / (c_in * k * k) ** 0.5
        params[f"{name}.bias"] = 0.1 * _rand(g, c_out)
    for name, channels in norms.items():
        params[f"{name}.gamma"] = 1 + 0.2 * _rand(g, num_styles, channels)
        params[f"{name}.beta"] = 0.2 * _rand(g, num_styles, channels)
    return params


def block_params(g, num_styles, channels):
    """Seeded parameters of one residual block."""
    params = {}
    for k in (1, 2):
        params[f"conv{k}.weight"] = _rand(g, channels, channels, 3, 3) / (9 * channels) ** 0.5
        params[f"conv{k}.bias"] = 0.1 * _rand(g, channels)
        params[f"norm{k}.gamma"] = 1 + 0.2 * _rand(g, num_styles, channels)
        params[f"norm{k}.beta"] = 0.2 * _rand(g, num_styles, channels)
    return params


def style_mix(g, n, num_styles):
    """(n, num_styles) blends: positive rows that sum to 1."""
    return torch.softmax(_rand(g, n, num_styles), dim=1)


def _extract_features(g, v, seed):
    return {"x": _rand(g, 2 + v, 3, 8 + 2 * v, 10 + 2 * v), "cnn": tiny_cnn(tiny_cnn_state(seed))}


def _content_loss(g, v, seed):
    shape = (1, 8 + v, 5 + v, 6)
    return {"content_weight": 0.6 + v, "content_current": _rand(g, *shape),
            "content_original": _rand(g, *shape)}


def _gram_matrix(g, v, seed):
    return {"features": _rand(g, 2 + v, 5 + 2 * v, 4 + v, 6)}


def _style_loss(g, v, seed):
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


def _tv_loss(g, v, seed):
    return {"img": _rand(g, 1, 3, 6 + v, 7 + 2 * v), "tv_weight": 0.25 + v}


def _style_transfer(g, v, seed):
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


def _match_color(g, v, seed):
    # a narrow style palette and a wide, bright content one: the mapping stretches
    # colours past 1, so leaving out the clamp shows
    return {"style_img": torch.rand(1, 3, 9 + v, 11, generator=g) * 0.2 + 0.4,
            "content_img": torch.rand(1, 3, 8, 8 + v, generator=g) * 0.5 + 0.5}


def _luminance_only(g, v, seed):
    shape = (1, 3, 7 + v, 9)
    return {"stylized": torch.rand(*shape, generator=g), "content_img": torch.rand(*shape, generator=g)}


def _loss_landscape(g, v, seed):
    content_img = torch.rand(1, 3, 12, 12 + 2 * v, generator=g)
    return {"cnn": tiny_cnn(tiny_cnn_state(seed)), "img": torch.rand(content_img.shape, generator=g),
            "content_img": content_img, "style_img": torch.rand(1, 3, 14, 12, generator=g),
            "content_layer": 4 if v == 0 else 3, "content_weight": 1.0, "style_layers": [1, 4],
            "style_weights": [50.0, 20.0 + 10 * v], "tv_weight": 0.5,
            "d1": _rand(g, *content_img.shape), "d2": _rand(g, *content_img.shape),
            "alphas": torch.linspace(-0.5, 0.5, 3 + v), "betas": torch.linspace(-0.3, 0.6, 4)}


def _conv_layer(g, v, seed):
    # public: upsample then convolve (the way up); hidden: strided (the way down), then both
    k, stride, upsample = ((3, 1, 2), (5, 2, 1), (3, 2, 2))[v]
    c_in, c_out = 3 + v, 4 + v
    return {"x": _rand(g, 2 - v % 2, c_in, 6 + v, 7 + 2 * v),
            "weight": _rand(g, c_out, c_in, k, k) / (c_in * k * k) ** 0.5, "bias": 0.1 * _rand(g, c_out),
            "stride": stride, "upsample": upsample}


def _conditional_instance_norm(g, v, seed):
    N, C, S = 2 + v, 4 + v, 3 - v % 2
    return {"x": 2 * _rand(g, N, C, 5 + v, 6) + 1, "gamma": 1 + 0.3 * _rand(g, S, C),
            "beta": 0.3 * _rand(g, S, C), "style_mix": style_mix(g, N, S)}


def _residual_block(g, v, seed):
    N, C, S = 2 + v % 2, 5 + v, 2 + v
    return {"x": _rand(g, N, C, 4 + v, 4), "params": block_params(g, S, C), "style_mix": style_mix(g, N, S)}


def _transformer_net(g, v, seed):
    N, S = 2 - v % 2, 2 + v
    widths, num_res = ((4, 6, 8), (3, 5, 6), (4, 4, 6))[v], (2, 1, 3)[v]
    H, W = 16 + 8 * v, 16 + 16 * v
    # variant 1's noise is one (1, 3, H, W) picture for the whole batch, as stylelab.fast hands it
    return {"x": torch.rand(N, 3, H, W, generator=g), "params": net_params(g, S, widths, num_res),
            "style_mix": style_mix(g, N, S), "noise": 0.3 * _rand(g, 1 if v == 1 else N, 3, H, W)}


def _perceptual_loss(g, v, seed):
    # one channel count for all layers, as for style_loss; hidden variant 2 has one style per image
    N, C = 2 + v, 4 + v
    sizes = [(8, 8), (6, 7), (5, 5), (4, 4), (3, 3)]
    feats = [_rand(g, N, C, h, w) for h, w in sizes]
    style_layers = [0, 2, 3] if v == 0 else [1, 4]
    style_grams = []
    for _ in style_layers:
        half = _rand(g, 1 if v < 2 else N, C, C)
        style_grams.append(half @ half.transpose(1, 2) / C)  # (1 or N, C, C)
    return {"feats": feats, "content_feats": _rand(g, N, C, 4, 4), "style_grams": style_grams,
            "out": torch.rand(N, 3, 8 + v, 9, generator=g), "content_layer": 3,
            "content_weight": 0.7 + v, "style_layers": style_layers,
            "style_weights": [3.0, 0.5, 2.0] if v == 0 else [0.7, 4.0], "tv_weight": 0.3 + v}


def _train_step(g, v, seed):
    N, S = 2, 2 + v % 2
    cnn = tiny_cnn(tiny_cnn_state(seed))
    with torch.no_grad():  # targets: the Gram matrices of a random "style" image
        feats, y = [], torch.rand(1, 3, 16, 16, generator=g)
        for module in cnn:
            y = module(y)
            feats.append(y)
    grams = [torch.einsum("nchw,ndhw->ncd", feats[i], feats[i]) / feats[i][0].numel() for i in (1, 4)]
    params = net_params(g, S, ((4, 6, 8), (3, 5, 6), (4, 4, 6))[v], 1)
    # keep x + tanh(y) inside (0, 1): where a pixel sits on the clamp, float noise decides whether
    # its gradient is 0 or 1, and Adam's first step turns that into a 4% change of the update
    params["up3.weight"], params["up3.bias"] = 0.03 * params["up3.weight"], 0.03 * params["up3.bias"]
    return {"params": params, "lr": 1e-4, "cnn": cnn,
            "content_batch": 0.25 + 0.5 * torch.rand(N, 3, 16, 16 + 8 * v, generator=g), "style_grams": grams,
            "style_mix": style_mix(g, N, S), "content_layer": 4 if v == 0 else 3, "content_weight": 1.0,
            "style_layers": [1, 4], "style_weights": [50.0, 20.0 + 10 * v], "tv_weight": 0.05,
            "noise": 0.2 * _rand(g, N, 3, 16, 16 + 8 * v)}


# exercise -> its case builder: (generator, variant, seed) -> inputs in the exercise's argument order
BUILDERS = {
    "extract_features": _extract_features,
    "content_loss": _content_loss,
    "gram_matrix": _gram_matrix,
    "style_loss": _style_loss,
    "tv_loss": _tv_loss,
    "style_transfer": _style_transfer,
    "match_color": _match_color,
    "luminance_only": _luminance_only,
    "loss_landscape": _loss_landscape,
    "conv_layer": _conv_layer,
    "conditional_instance_norm": _conditional_instance_norm,
    "residual_block": _residual_block,
    "transformer_net": _transformer_net,
    "perceptual_loss": _perceptual_loss,
    "train_step": _train_step,
}


def build(exercise, seed=0, variant=0):
    """Inputs for one check, as a dict name -> value, in the exercise's argument order.

    variant 0 gives the public shapes; other variants change batch sizes,
    channels, sizes and layers, for the hidden checks.
    """
    if exercise not in BUILDERS:
        raise KeyError(f"no case builder for {exercise!r}; there are builders for: {', '.join(BUILDERS)}")
    g = torch.Generator().manual_seed(seed * 100 + EXERCISES.index(exercise))
    return BUILDERS[exercise](g, variant, seed)
