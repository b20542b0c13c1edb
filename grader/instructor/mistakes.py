"""The common wrong implementations of each exercise (instructors only).

Each entry computes what a typical mistake returns on a check's inputs, in the
form the check compares (see protocol.call). The public reference file stores
these outputs for the public inputs, so a student's check can say which mistake
they made without shipping the code; hidden checks compute them live. The hint
shown for each lives in the exercise's record, grader/exercises.py (hints).
"""

import torch
import torch.nn.functional as F

from grader.protocol import LBFGS_RUN
from solutions import fast_transfer as fast
from solutions import style_transfer as ref


def _raw_gram(f):
    N, C, H, W = f.shape
    flat = f.reshape(N, C, H * W)  # (N, C, HW)
    return flat @ flat.transpose(1, 2)  # (N, C, C)


def _positions_gram(f):
    flat = f.flatten(2)  # (N, C, HW)
    return flat.transpose(1, 2) @ flat  # (N, HW, HW): products of positions, not channels


def _features(x, cnn):
    return ref.extract_features(x, cnn)


def _diffs(img):
    return img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]


def _style_terms(inputs, gram, positions=None, reduce=torch.sum):
    feats, layers = inputs["feats"], inputs["style_layers"]
    positions = layers if positions is None else positions
    return [w * reduce((gram(feats[i]) - target) ** 2)
            for i, target, w in zip(positions, inputs["style_targets"], inputs["style_weights"])]


def _chw(f):
    return f.shape[1] * f.shape[2] * f.shape[3]


def _targets(inputs):
    """The loop's constants: the content features and the style's Gram matrices."""
    cnn = inputs["cnn"]
    with torch.no_grad():
        content_target = ref.extract_features(inputs["content_img"], cnn)[inputs["content_layer"]]
        style_feats = ref.extract_features(inputs["style_img"], cnn)
        return content_target, [ref.gram_matrix(style_feats[i]) for i in inputs["style_layers"]]


def _total(inputs, img, content_target, style_targets):
    feats = ref.extract_features(img, inputs["cnn"])
    return (ref.content_loss(inputs["content_weight"], feats[inputs["content_layer"]], content_target)
            + ref.style_loss(feats, inputs["style_layers"], style_targets, inputs["style_weights"])
            + ref.tv_loss(img, inputs["tv_weight"]))


def _adam_loop_resetting_moments(inputs):
    """CS231n's own loop: a fresh Adam at decay_lr_at, which forgets its moments."""
    low, high = inputs["pixel_range"]
    targets = _targets(inputs)
    img = inputs["content_img"].clone().requires_grad_()
    opt = torch.optim.Adam([img], lr=inputs["lr"])
    totals = []
    for t in range(inputs["num_iters"]):
        if t == inputs["decay_lr_at"]:
            opt = torch.optim.Adam([img], lr=inputs["decayed_lr"])
        opt.zero_grad()
        loss = _total(inputs, img, *targets)
        loss.backward()
        totals.append(loss.item())
        opt.step()
        with torch.no_grad():
            img.clamp_(low, high)
    return [img.detach(), torch.tensor(totals)]


class _Spent(Exception):
    pass


def _lbfgs_loop(inputs, line_search="strong_wolfe", keep="best", clamp=True):
    """The loop's L-BFGS run (LBFGS_RUN) with one thing done wrong: no line search, the last image kept, no clamp."""
    low, high = inputs["pixel_range"]
    n = LBFGS_RUN["num_iters"]
    targets = _targets(inputs)
    img = inputs["content_img"].clone().requires_grad_()
    opt = torch.optim.LBFGS([img], lr=LBFGS_RUN["lr"], max_iter=n, max_eval=n, line_search_fn=line_search)
    totals, best = [], {"total": float("inf")}

    def closure():
        if len(totals) == n:
            raise _Spent
        opt.zero_grad()
        loss = _total(inputs, img, *targets)
        loss.backward()
        totals.append(loss.item())
        if totals[-1] < best["total"]:
            best.update(total=totals[-1], img=img.detach().clone())
        return loss

    try:
        while len(totals) < n:
            opt.step(closure)
    except _Spent:
        pass
    out = best["img"] if keep == "best" else img.detach()
    return [out.clamp(low, high) if clamp else out, torch.tensor(totals)]


def _loop(inputs, **changes):
    settings = {k: v for k, v in inputs.items() if k not in ("cnn", "content_img", "style_img")}
    img, history = ref.style_transfer(inputs["cnn"], inputs["content_img"], inputs["style_img"],
                                      **{**settings, **changes})
    return [img, torch.tensor(history["total"])]


def _runs(inputs, adam=None, lbfgs=None):
    """The loop check's compared tensors: the Adam run, then the L-BFGS run, each the reference's unless given.

    A mistake lives in one of the two; returned.shows() judges only the run it changes.
    """
    return (adam or _loop(inputs)) + (lbfgs or _loop(inputs, **LBFGS_RUN))


def _recolour(style_img, content_img, inverse=False, means_only=False, clamp=True):
    s, c = style_img[0].reshape(3, -1), content_img[0].reshape(3, -1)  # (3, P)
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    if means_only:
        out = s - mu_s + mu_c
    else:
        eye = 1e-5 * torch.eye(3)
        cov_s = (s - mu_s) @ (s - mu_s).T / s.shape[1] + eye
        cov_c = (c - mu_c) @ (c - mu_c).T / c.shape[1] + eye

        def power(m, p):
            values, vectors = torch.linalg.eigh(m)
            return vectors @ torch.diag(values ** p) @ vectors.T

        A = power(cov_s, 0.5) @ power(cov_c, -0.5) if inverse else power(cov_c, 0.5) @ power(cov_s, -0.5)
        out = A @ (s - mu_s) + mu_c
    out = out.reshape(style_img.shape)
    return out.clamp(0, 1) if clamp else out


def _luminance(stylized, content, swap=False, clamp=True):
    M = torch.tensor(ref.YIQ_FROM_RGB)
    a, b = (content, stylized) if swap else (stylized, content)
    ya, yb = (torch.einsum("kc,nchw->nkhw", M, x) for x in (a, b))
    rgb = torch.einsum("kc,nchw->nkhw", torch.linalg.inv(M), torch.cat([ya[:, :1], yb[:, 1:]], 1))
    return rgb.clamp(0, 1) if clamp else rgb


def _landscape(inputs, transpose=False, tv=True):
    out = ref.loss_landscape(*inputs.values())
    if not tv:
        out = {**out, "total": out["content"] + out["style"]}
    keys = ("total", "content", "style")
    return [out[k].T if transpose else out[k] for k in keys]


def _conv(inputs, padding="reflect", upsample_first=True, mode="bilinear", align_corners=False):
    x, w, b, stride, up = (inputs[k] for k in ("x", "weight", "bias", "stride", "upsample"))
    enlarge = dict(mode=mode, align_corners=align_corners) if mode == "bilinear" else dict(mode=mode)
    if up > 1 and upsample_first:
        x = F.interpolate(x, scale_factor=up, **enlarge)
    pad = w.shape[-1] // 2
    if padding == "reflect":
        y = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w, b, stride=stride)
    else:
        y = F.conv2d(x, w, b, stride=stride, padding=pad if padding == "zeros" else 0)
    return F.interpolate(y, scale_factor=up, **enlarge) if up > 1 and not upsample_first else y


def _norm(inputs, dims=(2, 3), unbiased=False, affine=True, first_style=False):
    x, gamma, beta, mix = (inputs[k] for k in ("x", "gamma", "beta", "style_mix"))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=unbiased, keepdim=True)
    y = (x - mean) / torch.sqrt(var + 1e-5)
    if not affine:
        return y
    if first_style:
        return gamma[0][:, None, None] * y + beta[0][:, None, None]
    return (mix @ gamma)[:, :, None, None] * y + (mix @ beta)[:, :, None, None]


def _block(inputs, skip=True, relu_after_sum=False, relu_after_norm2=False):
    x, p, mix = inputs["x"], inputs["params"], inputs["style_mix"]
    y = fast.conv_layer(x, p["conv1.weight"], p["conv1.bias"])
    y = F.relu(fast.conditional_instance_norm(y, p["norm1.gamma"], p["norm1.beta"], mix))
    y = fast.conditional_instance_norm(fast.conv_layer(y, p["conv2.weight"], p["conv2.bias"]),
                                       p["norm2.gamma"], p["norm2.beta"], mix)
    if relu_after_norm2:
        y = F.relu(y)
    out = x + y if skip else y
    return F.relu(out) if relu_after_sum else out


def _change(x, y):
    """The reference's last line: the photo x changed by tanh(y), kept in [0, 1]."""
    return (x + torch.tanh(y)).clamp(0, 1)


def _net(inputs, finish=_change, residual=True, noise="down"):
    x, params, mix, drawn = inputs["x"], inputs["params"], inputs["style_mix"], inputs["noise"]
    down = x + drawn if noise in ("down", "both") else x
    if noise == "both":  # the change added to the noisy photo as well
        x = down

    def stage(y, conv, norm, stride=1, upsample=1):
        y = fast.conv_layer(y, params[f"{conv}.weight"], params[f"{conv}.bias"], stride, upsample)
        return F.relu(fast.conditional_instance_norm(y, params[f"{norm}.gamma"], params[f"{norm}.beta"], mix))

    y = stage(stage(stage(down, "conv1", "norm1", 2), "conv2", "norm2", 2), "conv3", "norm3", 2)
    blocks = sorted({name.split(".")[1] for name in params if name.startswith("res.")}, key=int)
    for i in blocks if residual else []:
        y = fast.residual_block(y, fast.sub_params(params, f"res.{i}."), mix)
    y = stage(stage(y, "up1", "norm4", upsample=2), "up2", "norm5", upsample=2)
    return finish(x, fast.conv_layer(y, params["up3.weight"], params["up3.bias"], upsample=2))


def _perceptual(inputs, batch_mean=True, gram_norm=True, tv=True, by_position=False, element_mean=False):
    feats, out, N = inputs["feats"], inputs["out"], inputs["out"].shape[0]
    scale = 1 / N if batch_mean and not element_mean else 1.0
    reduce = torch.mean if element_mean else torch.sum  # element_mean: F.mse_loss's default reduction
    content = inputs["content_weight"] * reduce((feats[inputs["content_layer"]] - inputs["content_feats"]) ** 2)
    style = 0.0
    for k, (layer, target, weight) in enumerate(zip(inputs["style_layers"], inputs["style_grams"],
                                                    inputs["style_weights"])):
        f = feats[k if by_position else layer]
        gram = _raw_gram(f) / (_chw(f) if gram_norm else 1)
        style = style + weight * reduce((gram - target.expand_as(gram)) ** 2)
    tv_term = inputs["tv_weight"] * sum(reduce(d ** 2) for d in _diffs(out))
    losses = [content * scale, style * scale, tv_term * scale]
    return losses + [losses[0] + losses[1] + (losses[2] if tv else 0.0)]


def _step(inputs, broken=None, losses_after=False, noise=True):
    """The reference train_step through protocol.call, with the optimizer broken as a student might
    (noise False: transformer_net called without the noise)."""
    from grader.returned import as_tensors
    from grader.exercises import EXERCISE
    from grader.protocol import PlainSGD, call

    def student(params, optimizer, **rest):
        if broken:
            setattr(optimizer, broken, lambda *args, **kwargs: None)
        if not noise:
            rest["noise"] = None
        losses = fast.train_step(params, optimizer, **rest)
        if losses_after:
            losses = fast.train_step(params, PlainSGD(params.values(), lr=0.0), **rest)
        return losses

    return as_tensors("train_step", call(EXERCISE["train_step"], student, inputs), inputs)


# exercise -> mistake key -> function(inputs) -> output in protocol.call's form
MISTAKES = {
    "extract_features": {
        "last_only": lambda i: [_features(i["x"], i["cnn"])[-1]],
        "includes_input": lambda i: [i["x"]] + _features(i["x"], i["cnn"]),
        "missing_last": lambda i: _features(i["x"], i["cnn"])[:-1],
    },
    "content_loss": {
        "mean": lambda i: i["content_weight"] * torch.mean((i["content_current"] - i["content_original"]) ** 2),
        "no_weight": lambda i: torch.sum((i["content_current"] - i["content_original"]) ** 2),
        "norm": lambda i: i["content_weight"] * torch.linalg.vector_norm(i["content_current"] - i["content_original"]),
        "half": lambda i: 0.5 * i["content_weight"] * torch.sum((i["content_current"] - i["content_original"]) ** 2),
    },
    "gram_matrix": {
        "unnormalized": lambda i: [_raw_gram(i["features"])] * 2,
        "hw_only": lambda i: [_raw_gram(i["features"]) / (i["features"].shape[2] * i["features"].shape[3]),
                              _raw_gram(i["features"])],
        "c_only": lambda i: [_raw_gram(i["features"]) / i["features"].shape[1], _raw_gram(i["features"])],
        "with_batch": lambda i: [_raw_gram(i["features"]) / i["features"].numel(), _raw_gram(i["features"])],
        "always_normalized": lambda i: [_raw_gram(i["features"]) / _chw(i["features"])] * 2,
        "wrong_transpose": lambda i: [_positions_gram(i["features"]) / _chw(i["features"]),
                                      _positions_gram(i["features"])],
        "first_image_only": lambda i: [_raw_gram(i["features"])[0] / _chw(i["features"]),
                                       _raw_gram(i["features"])[0]],
    },
    "style_loss": {
        "by_position": lambda i: sum(_style_terms(i, ref.gram_matrix, positions=range(len(i["style_layers"])))),
        "no_weight": lambda i: sum(t / w for t, w in zip(_style_terms(i, ref.gram_matrix), i["style_weights"])),
        "mean": lambda i: sum(_style_terms(i, ref.gram_matrix, reduce=torch.mean)),
        "last_layer_only": lambda i: _style_terms(i, ref.gram_matrix)[-1],
        "unnormalized_gram": lambda i: sum(_style_terms(i, _raw_gram)),
    },
    "tv_loss": {
        "abs": lambda i: i["tv_weight"] * sum(d.abs().sum() for d in _diffs(i["img"])),
        "vertical_only": lambda i: i["tv_weight"] * (_diffs(i["img"])[0] ** 2).sum(),
        "horizontal_only": lambda i: i["tv_weight"] * (_diffs(i["img"])[1] ** 2).sum(),
        "mean": lambda i: i["tv_weight"] * sum((d ** 2).mean() for d in _diffs(i["img"])),
        "no_weight": lambda i: sum((d ** 2).sum() for d in _diffs(i["img"])),
        "wraparound": lambda i: i["tv_weight"] * sum(((i["img"] - i["img"].roll(1, dim)) ** 2).sum()
                                                     for dim in (2, 3)),
    },
    "match_color": {
        "means_only": lambda i: _recolour(i["style_img"], i["content_img"], means_only=True),
        "inverted": lambda i: _recolour(i["style_img"], i["content_img"], inverse=True),
        "unclamped": lambda i: _recolour(i["style_img"], i["content_img"], clamp=False),
    },
    "luminance_only": {
        "swapped": lambda i: _luminance(i["stylized"], i["content_img"], swap=True),
        "unclamped": lambda i: _luminance(i["stylized"], i["content_img"], clamp=False),
    },
    "loss_landscape": {
        "transposed": lambda i: _landscape(i, transpose=True),
        "total_without_tv": lambda i: _landscape(i, tv=False),
    },
    "style_transfer": {
        "no_clamp": lambda i: _runs(i, adam=_loop(i, pixel_range=(-1e9, 1e9))),
        "no_decay": lambda i: _runs(i, adam=_loop(i, decay_lr_at=10 ** 9)),
        "reset_moments": lambda i: _runs(i, adam=_adam_loop_resetting_moments(i)),
        "lbfgs_ran_adam": lambda i: _runs(i, lbfgs=_loop(i, **{**LBFGS_RUN, "optimizer": "adam"})),
        "no_line_search": lambda i: _runs(i, lbfgs=_lbfgs_loop(i, line_search=None)),
        "last_not_best": lambda i: _runs(i, lbfgs=_lbfgs_loop(i, keep="last")),
        "lbfgs_unclamped": lambda i: _runs(i, lbfgs=_lbfgs_loop(i, clamp=False)),
    },
    "conv_layer": {
        "zero_padding": lambda i: _conv(i, padding="zeros"),
        "no_padding": lambda i: _conv(i, padding="none"),
        "upsample_after": lambda i: _conv(i, upsample_first=False),
        "nearest": lambda i: _conv(i, mode="nearest"),
        "align_corners": lambda i: _conv(i, align_corners=True),
    },
    "conditional_instance_norm": {
        "batch_stats": lambda i: _norm(i, dims=(0, 2, 3)),
        "unbiased": lambda i: _norm(i, unbiased=True),
        "no_affine": lambda i: _norm(i, affine=False),
        "first_style": lambda i: _norm(i, first_style=True),
    },
    "residual_block": {
        "no_skip": lambda i: _block(i, skip=False),
        "relu_after_sum": lambda i: _block(i, relu_after_sum=True),
        "relu_after_norm2": lambda i: _block(i, relu_after_norm2=True),
    },
    "transformer_net": {
        "no_tanh": lambda i: _net(i, finish=lambda x, y: (x + y).clamp(0, 1)),
        "no_clamp": lambda i: _net(i, finish=lambda x, y: x + torch.tanh(y)),
        "no_photo": lambda i: _net(i, finish=lambda x, y: torch.tanh(y).clamp(0, 1)),
        "sigmoid": lambda i: _net(i, finish=lambda x, y: (x + torch.sigmoid(y)).clamp(0, 1)),
        "no_residual": lambda i: _net(i, residual=False),
        "no_noise": lambda i: _net(i, noise=None),
        "noisy_change": lambda i: _net(i, noise="both"),
    },
    "perceptual_loss": {
        "sum_over_batch": lambda i: _perceptual(i, batch_mean=False),
        "unnormalized_gram": lambda i: _perceptual(i, gram_norm=False),
        "no_tv": lambda i: _perceptual(i, tv=False),
        "by_position": lambda i: _perceptual(i, by_position=True),
        "element_mean": lambda i: _perceptual(i, element_mean=True),
    },
    "train_step": {
        "no_zero_grad": lambda i: _step(i, broken="zero_grad"),
        "no_step": lambda i: _step(i, broken="step"),
        "losses_after": lambda i: _step(i, losses_after=True),
        "no_noise": lambda i: _step(i, noise=False),
    },
}
