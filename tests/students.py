"""Students' implementations, written independently of solutions/, for the grader's tests.

GATYS_* are style_transfer.py's exercises, FAST_* fast_transfer.py's. *_RIGHT
holds a correct implementation of each exercise written another way than the
reference (torch's own layers where it can be, the way a student might);
*_WRONG holds, for each catalogued mistake, an implementation that makes it.
RIGHT and WRONG join both files' exercises.
"""

import functools

import torch
from torch import nn
from torch.nn import functional as F

# --- style_transfer.py ------------------------------------------------------------------

def gram_bmm(features, normalize=True):
    N, C, H, W = features.shape
    flat = features.view(N, C, H * W)
    gram = torch.bmm(flat, flat.permute(0, 2, 1))
    return gram / (C * H * W) if normalize else gram


def cs231n_loop(cnn, content_img, style_img, content_layer, content_weight, style_layers, style_weights,
                tv_weight, num_iters=200, optimizer="adam", lr=3.0, decayed_lr=0.1, decay_lr_at=None,
                init="content", noise_ratio=0.6, pixel_range=None, seed=0, callback=None,
                clamp=True, decay="param_groups", adam_only=False, line_search="strong_wolfe", keep="best",
                clamp_result=True):
    """A CS231n-shaped loop; the arguments after callback select the catalogued loop mistakes."""
    def feats_of(x):
        out, h = [], x
        for module in cnn:
            h = module(h)
            out.append(h)
        return out

    low, high = pixel_range
    if decay_lr_at is None:
        decay_lr_at = num_iters * 9 // 10
    content_target = feats_of(content_img)[content_layer].detach()
    style_feats = feats_of(style_img)
    targets = [gram_bmm(style_feats[i]).detach() for i in style_layers]
    img = content_img.clone().requires_grad_(True)
    history = {"content": [], "style": [], "tv": [], "total": []}

    def evaluate():
        f = feats_of(img)
        c = content_weight * ((f[content_layer] - content_target) ** 2).sum()
        s = sum(style_weights[i] * ((gram_bmm(f[layer]) - targets[i]) ** 2).sum()
                for i, layer in enumerate(style_layers))
        tv = tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum() + ((img[..., 1:] - img[..., :-1]) ** 2).sum())
        loss = c + s + tv
        loss.backward()
        losses = {key: float(torch.as_tensor(value).detach())
                  for key, value in (("content", c), ("style", s), ("tv", tv), ("total", loss))}
        for key, value in losses.items():
            history[key].append(value)
        if callback is not None:
            callback(len(history["total"]) - 1, img.detach(), losses)
        return loss

    if optimizer == "lbfgs" and not adam_only:
        # torch's default max_iter and max_eval, and a count of our own: the line search may overrun
        # either. Where the last step ends decides the last image, so that mistake keeps the hint's max_eval.
        opt = torch.optim.LBFGS([img], lr=lr, line_search_fn=line_search,
                                max_eval=num_iters if keep == "last" else None)
        lowest = [float("inf"), img.detach().clone()]

        class Enough(Exception):
            pass

        def closure():
            if len(history["total"]) >= num_iters:
                raise Enough
            opt.zero_grad()
            loss = evaluate()
            if loss.item() < lowest[0]:
                lowest[:] = [loss.item(), img.detach().clone()]
            return loss

        try:
            while True:
                opt.step(closure)
        except Enough:
            pass
        result = lowest[1] if keep == "best" else img.detach()
        return (result.clamp(low, high) if clamp_result else result), history

    opt = torch.optim.Adam([img], lr=lr)
    for t in range(num_iters):
        if t == decay_lr_at and decay == "param_groups":
            opt.param_groups[0]["lr"] = decayed_lr
        elif t == decay_lr_at and decay == "new_adam":
            opt = torch.optim.Adam([img], lr=decayed_lr)
        opt.zero_grad()
        evaluate()
        opt.step()
        if clamp:
            img.data.clamp_(low, high)
    return img.detach(), history


def _extract(x, cnn, keep):
    feats, h = [], x
    for module in cnn:
        h = module(h)
        feats.append(h)
    return keep(x, feats)


def _tv(img, w, combine):
    dh = img[:, :, 1:, :] - img[:, :, :-1, :]
    dw = img[:, :, :, 1:] - img[:, :, :, :-1]
    return w * combine(dh, dw)


def _style(feats, style_layers, style_targets, style_weights, index=None, reduce=torch.sum, gram=gram_bmm,
           accumulate=True):
    loss = 0
    for i, (layer, target, weight) in enumerate(zip(style_layers, style_targets, style_weights)):
        term = weight * reduce((gram(feats[layer if index is None else i]) - target) ** 2)
        loss = loss + term if accumulate else term
    return loss


def _gram(scale, transpose=False, first_only=False, ignore_flag=False):
    def gram_matrix(features, normalize=True):
        N, C, H, W = features.shape
        flat = features.reshape(N, C, H * W)
        g = flat.transpose(1, 2) @ flat if transpose else flat @ flat.transpose(1, 2)
        if first_only:
            g = g[0]
        return g / scale(N, C, H, W) if (normalize or ignore_flag) else g
    return gram_matrix


def _recolour(style_img, content_img, inverse=False, means_only=False, clamp=True):
    """Mean-and-covariance colour matching via Cholesky-free SVD, written independently."""
    s, c = style_img[0].flatten(1), content_img[0].flatten(1)
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    if means_only:
        out = s - mu_s + mu_c
    else:
        def root(m, p):
            u, sigma, _ = torch.linalg.svd(m)
            return u @ torch.diag(sigma ** p) @ u.T
        cov = lambda x, mu: torch.cov(x, correction=0) + 1e-5 * torch.eye(3)
        cs, cc = cov(s, mu_s), cov(c, mu_c)
        A = root(cs, 0.5) @ root(cc, -0.5) if inverse else root(cc, 0.5) @ root(cs, -0.5)
        out = A @ (s - mu_s) + mu_c
    out = out.reshape(style_img.shape)
    return out.clamp(0, 1) if clamp else out


YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _luminance(stylized, content_img, swap=False, clamp=True):
    to_yiq = lambda x: (YIQ @ x.flatten(2)).reshape(x.shape)
    a, b = to_yiq(stylized), to_yiq(content_img)
    if swap:
        a, b = b, a
    mixed = torch.cat([a[:, :1], b[:, 1:]], dim=1)
    rgb = (torch.linalg.solve(YIQ, mixed.flatten(2))).reshape(mixed.shape)
    return rgb.clamp(0, 1) if clamp else rgb


def _landscape(cnn, img, content_img, style_img, content_layer, content_weight, style_layers, style_weights,
               tv_weight, d1, d2, alphas, betas, transpose=False, tv=True):
    def losses(x):
        f = _extract(x, cnn, keep=lambda _, feats: feats)
        target = _extract(content_img, cnn, keep=lambda _, feats: feats)
        style_f = _extract(style_img, cnn, keep=lambda _, feats: feats)
        c = content_weight * ((f[content_layer] - target[content_layer]) ** 2).sum()
        s = _style(f, style_layers, [gram_bmm(style_f[i]) for i in style_layers], style_weights)
        t = _tv(x, tv_weight, lambda dh, dw: dh.pow(2).sum() + dw.pow(2).sum()) if tv else 0
        return c, s, c + s + t
    grid = torch.tensor([[[float(v) for v in losses(img + a * d1 + b * d2)] for b in betas] for a in alphas])
    grid = grid.transpose(0, 1) if transpose else grid  # (A, B, 3)
    return {"content": grid[..., 0], "style": grid[..., 1], "total": grid[..., 2]}


GATYS_WRONG = {
    "extract_features": {
        "last_only": functools.partial(_extract, keep=lambda x, f: [f[-1]]),
        "includes_input": functools.partial(_extract, keep=lambda x, f: [x] + f),
        "missing_last": functools.partial(_extract, keep=lambda x, f: f[:-1]),
    },
    "content_loss": {
        "mean": lambda w, cur, orig: w * ((cur - orig) ** 2).mean(),
        "no_weight": lambda w, cur, orig: ((cur - orig) ** 2).sum(),
        "norm": lambda w, cur, orig: w * torch.norm(cur - orig),
        "half": lambda w, cur, orig: 0.5 * w * ((cur - orig) ** 2).sum(),
    },
    "gram_matrix": {
        "unnormalized": _gram(lambda N, C, H, W: 1),
        "hw_only": _gram(lambda N, C, H, W: H * W),
        "c_only": _gram(lambda N, C, H, W: C),
        "with_batch": _gram(lambda N, C, H, W: N * C * H * W),
        "always_normalized": _gram(lambda N, C, H, W: C * H * W, ignore_flag=True),
        "wrong_transpose": _gram(lambda N, C, H, W: C * H * W, transpose=True),
        "first_image_only": _gram(lambda N, C, H, W: C * H * W, first_only=True),
    },
    "style_loss": {
        "by_position": functools.partial(_style, index=True),
        "no_weight": lambda feats, layers, targets, weights: _style(feats, layers, targets, [1.0] * len(layers)),
        "mean": functools.partial(_style, reduce=torch.mean),
        "last_layer_only": functools.partial(_style, accumulate=False),
        "unnormalized_gram": functools.partial(_style, gram=lambda f: gram_bmm(f, normalize=False)),
    },
    "tv_loss": {
        "abs": functools.partial(_tv, combine=lambda dh, dw: dh.abs().sum() + dw.abs().sum()),
        "vertical_only": functools.partial(_tv, combine=lambda dh, dw: (dh ** 2).sum()),
        "horizontal_only": functools.partial(_tv, combine=lambda dh, dw: (dw ** 2).sum()),
        "mean": functools.partial(_tv, combine=lambda dh, dw: (dh ** 2).mean() + (dw ** 2).mean()),
        "no_weight": lambda img, w: _tv(img, 1.0, lambda dh, dw: (dh ** 2).sum() + (dw ** 2).sum()),
        "wraparound": lambda img, w: w * sum(((img - img.roll(1, d)) ** 2).sum() for d in (2, 3)),
    },
    "match_color": {
        "means_only": functools.partial(_recolour, means_only=True),
        "inverted": functools.partial(_recolour, inverse=True),
        "unclamped": functools.partial(_recolour, clamp=False),
    },
    "luminance_only": {
        "swapped": functools.partial(_luminance, swap=True),
        "unclamped": functools.partial(_luminance, clamp=False),
    },
    "loss_landscape": {
        "transposed": functools.partial(_landscape, transpose=True),
        "total_without_tv": functools.partial(_landscape, tv=False),
    },
    "style_transfer": {
        "no_clamp": functools.partial(cs231n_loop, clamp=False),
        "no_decay": functools.partial(cs231n_loop, decay="none"),
        "reset_moments": functools.partial(cs231n_loop, decay="new_adam"),
        "lbfgs_ran_adam": functools.partial(cs231n_loop, adam_only=True),
        "no_line_search": functools.partial(cs231n_loop, line_search=None),
        "last_not_best": functools.partial(cs231n_loop, keep="last"),
        "lbfgs_unclamped": functools.partial(cs231n_loop, clamp_result=False),
    },
}

GATYS_RIGHT = {
    "extract_features": functools.partial(_extract, keep=lambda x, f: f),
    "content_loss": lambda w, cur, orig: w * torch.nn.functional.mse_loss(cur, orig, reduction="sum"),
    "gram_matrix": gram_bmm,
    "style_loss": _style,
    "tv_loss": functools.partial(_tv, combine=lambda dh, dw: dh.pow(2).sum() + dw.pow(2).sum()),
    "style_transfer": cs231n_loop,
    "match_color": _recolour,
    "luminance_only": _luminance,
    "loss_landscape": _landscape,
}


# --- fast_transfer.py: right answers, then the catalogued mistakes -------------------------

def conv_layer(x, weight, bias, stride=1, upsample=1, mode="bilinear", padding="reflect", first=True,
               corners=False):
    k = weight.shape[-1]
    corners = corners if mode == "bilinear" else None
    up = nn.Upsample(scale_factor=upsample, mode=mode, align_corners=corners) if upsample > 1 else nn.Identity()
    if padding == "none":
        conv = lambda y: F.conv2d(y, weight, bias, stride=stride)  # noqa: E731
    else:
        conv = lambda y: F.conv2d(y, weight, bias, stride=stride, padding=k // 2)  # noqa: E731
        if padding == "reflect":
            conv = lambda y: F.conv2d(nn.ReflectionPad2d(k // 2)(y), weight, bias, stride=stride)  # noqa: E731
    return conv(up(x)) if first else up(conv(x))


def cin(x, gamma, beta, style_mix, eps=1e-5, batch=False, unbiased=False, affine=True, first=False):
    dims = [0, 2, 3] if batch else [2, 3]
    mu = x.mean(dims, keepdim=True)
    sigma2 = ((x - mu) ** 2).sum(dims, keepdim=True) / (x[0, 0].numel() * (x.shape[0] if batch else 1)
                                                         - (1 if unbiased else 0))
    y = (x - mu) / (sigma2 + eps).sqrt()
    if not affine:
        return y
    g, b = (gamma[:1].expand(x.shape[0], -1), beta[:1].expand(x.shape[0], -1)) if first else \
        (torch.einsum("ns,sc->nc", style_mix, gamma), torch.einsum("ns,sc->nc", style_mix, beta))
    return y * g.view(*g.shape, 1, 1) + b.view(*b.shape, 1, 1)


def block(x, params, style_mix, skip=True, relu_after_sum=False, relu_after_norm2=False):
    h = torch.relu(cin(conv_layer(x, params["conv1.weight"], params["conv1.bias"]),
                       params["norm1.gamma"], params["norm1.beta"], style_mix))
    h = cin(conv_layer(h, params["conv2.weight"], params["conv2.bias"]),
            params["norm2.gamma"], params["norm2.beta"], style_mix)
    if relu_after_norm2:
        h = torch.relu(h)
    out = x + h if skip else h
    return torch.relu(out) if relu_after_sum else out


def change(x, y):
    return torch.clamp(torch.tanh(y) + x, min=0.0, max=1.0)


def net(x, params, style_mix, noise=None, last=change, residual=True, use_noise=True, noisy_change=False):
    def stage(h, conv, norm, stride=1, upsample=1):
        h = conv_layer(h, params[conv + ".weight"], params[conv + ".bias"], stride, upsample)
        return torch.relu(cin(h, params[norm + ".gamma"], params[norm + ".beta"], style_mix))

    seen = x + noise if noise is not None and use_noise else x
    if noisy_change:
        x = seen
    h = stage(stage(stage(seen, "conv1", "norm1", 2), "conv2", "norm2", 2), "conv3", "norm3", 2)
    blocks = sorted({int(name.split(".")[1]) for name in params if name.startswith("res.")})
    for i in blocks if residual else []:
        h = block(h, {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"res.{i}.")}, style_mix)
    h = stage(stage(h, "up1", "norm4", upsample=2), "up2", "norm5", upsample=2)
    return last(x, conv_layer(h, params["up3.weight"], params["up3.bias"], upsample=2))


def gram(f, normalize=True):
    N, C, H, W = f.shape
    flat = f.reshape(N, C, H * W)
    return flat @ flat.transpose(1, 2) / (C * H * W if normalize else 1)


def perceptual(feats, content_feats, style_grams, out, content_layer, content_weight, style_layers,
               style_weights, tv_weight, mean=True, normalize=True, with_tv=True, by_position=False,
               reduction="sum"):
    N = out.shape[0] if mean and reduction == "sum" else 1
    c = content_weight * F.mse_loss(feats[content_layer], content_feats, reduction=reduction) / N
    s = sum(w * F.mse_loss(gram(feats[k if by_position else layer], normalize),
                           t.expand(feats[layer].shape[0], -1, -1), reduction=reduction)
            for k, (layer, t, w) in enumerate(zip(style_layers, style_grams, style_weights))) / N
    reduce = torch.sum if reduction == "sum" else torch.mean
    tv = tv_weight * (reduce(out.diff(dim=2) ** 2) + reduce(out.diff(dim=3) ** 2)) / N
    return {"content": c, "style": s, "tv": tv, "total": c + s + tv if with_tv else c + s}


def train_step(params, optimizer, cnn, content_batch, style_grams, style_mix, content_layer, content_weight,
               style_layers, style_weights, tv_weight, noise=None, zero=True, step=True, after=False,
               pass_noise=True):
    def run():
        with torch.no_grad():
            target = cnn[:content_layer + 1](content_batch)
        out = net(content_batch, params, style_mix, noise if pass_noise else None)
        feats, h = [], out
        for layer in cnn:
            h = layer(h)
            feats.append(h)
        return perceptual(feats, target, style_grams, out, content_layer, content_weight, style_layers,
                          style_weights, tv_weight)

    losses = run()
    if zero:
        for p in params.values():
            p.grad = None
    losses["total"].backward()
    if step:
        optimizer.step()
    if after:
        with torch.no_grad():
            losses = run()
    return {k: float(v.detach()) for k, v in losses.items()}


FAST_RIGHT = {"conv_layer": conv_layer, "conditional_instance_norm": cin, "residual_block": block,
         "transformer_net": net, "perceptual_loss": perceptual, "train_step": train_step}


def _with(function, **fixed):
    def wrong(*args, **kwargs):
        return function(*args, **{**kwargs, **fixed})
    return wrong


FAST_WRONG = {
    "conv_layer": {"zero_padding": _with(conv_layer, padding="zeros"),
                   "no_padding": _with(conv_layer, padding="none"),
                   "upsample_after": _with(conv_layer, first=False),
                   "nearest": _with(conv_layer, mode="nearest"),
                   "align_corners": _with(conv_layer, corners=True)},
    "conditional_instance_norm": {"batch_stats": _with(cin, batch=True), "unbiased": _with(cin, unbiased=True),
                                  "no_affine": _with(cin, affine=False), "first_style": _with(cin, first=True)},
    "residual_block": {"no_skip": _with(block, skip=False), "relu_after_sum": _with(block, relu_after_sum=True),
                       "relu_after_norm2": _with(block, relu_after_norm2=True)},
    "transformer_net": {"no_tanh": _with(net, last=lambda x, y: torch.clamp(y + x, min=0.0, max=1.0)),
                        "no_clamp": _with(net, last=lambda x, y: torch.tanh(y) + x),
                        "no_photo": _with(net, last=lambda x, y: torch.clamp(torch.tanh(y), min=0.0, max=1.0)),
                        "sigmoid": _with(net, last=lambda x, y: torch.clamp(torch.sigmoid(y) + x, min=0.0, max=1.0)),
                        "no_residual": _with(net, residual=False),
                        "no_noise": _with(net, use_noise=False),
                        "noisy_change": _with(net, noisy_change=True)},
    "perceptual_loss": {"sum_over_batch": _with(perceptual, mean=False),
                        "unnormalized_gram": _with(perceptual, normalize=False),
                        "no_tv": _with(perceptual, with_tv=False),
                        "by_position": _with(perceptual, by_position=True),
                        "element_mean": _with(perceptual, reduction="mean")},
    "train_step": {"no_zero_grad": _with(train_step, zero=False), "no_step": _with(train_step, step=False),
                   "losses_after": _with(train_step, after=True), "no_noise": _with(train_step, pass_noise=False)},
}


RIGHT = {**GATYS_RIGHT, **FAST_RIGHT}
WRONG = {**GATYS_WRONG, **FAST_WRONG}
