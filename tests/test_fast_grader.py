"""The grader on fast_transfer.py: right answers pass, each catalogued mistake gets its hint.

Every implementation here is written independently of solutions/, from torch's
own layers where it can be, the way a student might.
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from grader.checks import HINTS, check_function
from grader.hidden import hidden_check
from grader.points import FILES

FAST = tuple(FILES["fast_transfer.py"])


# --- right answers, written another way -----------------------------------------------------

def conv_layer(x, weight, bias, stride=1, upsample=1, mode="nearest", padding="reflect", first=True):
    k = weight.shape[-1]
    up = nn.Upsample(scale_factor=upsample, mode=mode) if upsample > 1 else nn.Identity()
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


def net(x, params, style_mix, last=torch.sigmoid, residual=True):
    def stage(h, conv, norm, stride=1, upsample=1):
        h = conv_layer(h, params[conv + ".weight"], params[conv + ".bias"], stride, upsample)
        return torch.relu(cin(h, params[norm + ".gamma"], params[norm + ".beta"], style_mix))

    h = stage(stage(stage(x, "conv1", "norm1", 2), "conv2", "norm2", 2), "conv3", "norm3", 2)
    blocks = sorted({int(name.split(".")[1]) for name in params if name.startswith("res.")})
    for i in blocks if residual else []:
        h = block(h, {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"res.{i}.")}, style_mix)
    h = stage(stage(h, "up1", "norm4", upsample=2), "up2", "norm5", upsample=2)
    return last(conv_layer(h, params["up3.weight"], params["up3.bias"], upsample=2))


def gram(f, normalize=True):
    N, C, H, W = f.shape
    flat = f.reshape(N, C, H * W)
    return flat @ flat.transpose(1, 2) / (C * H * W if normalize else 1)


def perceptual(feats, content_feats, style_grams, out, content_layer, content_weight, style_layers,
               style_weights, tv_weight, mean=True, normalize=True, with_tv=True, by_position=False):
    N = out.shape[0] if mean else 1
    c = content_weight * F.mse_loss(feats[content_layer], content_feats, reduction="sum") / N
    s = sum(w * F.mse_loss(gram(feats[k if by_position else layer], normalize),
                           t.expand(feats[layer].shape[0], -1, -1), reduction="sum")
            for k, (layer, t, w) in enumerate(zip(style_layers, style_grams, style_weights))) / N
    tv = tv_weight * ((out.diff(dim=2) ** 2).sum() + (out.diff(dim=3) ** 2).sum()) / N
    return {"content": c, "style": s, "tv": tv, "total": c + s + tv if with_tv else c + s}


def train_step(params, optimizer, cnn, content_batch, style_grams, style_mix, content_layer, content_weight,
               style_layers, style_weights, tv_weight, zero=True, step=True, after=False):
    def run():
        with torch.no_grad():
            target = cnn[:content_layer + 1](content_batch)
        out = net(content_batch, params, style_mix)
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


RIGHT = {"conv_layer": conv_layer, "conditional_instance_norm": cin, "residual_block": block,
         "transformer_net": net, "perceptual_loss": perceptual, "train_step": train_step}


def _with(function, **fixed):
    def wrong(*args, **kwargs):
        return function(*args, **{**kwargs, **fixed})
    return wrong


WRONG = {
    "conv_layer": {"zero_padding": _with(conv_layer, padding="zeros"),
                   "no_padding": _with(conv_layer, padding="none"),
                   "upsample_after": _with(conv_layer, first=False),
                   "bilinear": _with(conv_layer, mode="bilinear")},
    "conditional_instance_norm": {"batch_stats": _with(cin, batch=True), "unbiased": _with(cin, unbiased=True),
                                  "no_affine": _with(cin, affine=False), "first_style": _with(cin, first=True)},
    "residual_block": {"no_skip": _with(block, skip=False), "relu_after_sum": _with(block, relu_after_sum=True),
                       "relu_after_norm2": _with(block, relu_after_norm2=True)},
    "transformer_net": {"no_sigmoid": _with(net, last=lambda y: y),
                        "clamp": _with(net, last=lambda y: y.clamp(0, 1)),
                        "no_residual": _with(net, residual=False)},
    "perceptual_loss": {"sum_over_batch": _with(perceptual, mean=False),
                        "unnormalized_gram": _with(perceptual, normalize=False),
                        "no_tv": _with(perceptual, with_tv=False),
                        "by_position": _with(perceptual, by_position=True)},
    "train_step": {"no_zero_grad": _with(train_step, zero=False), "no_step": _with(train_step, step=False),
                   "losses_after": _with(train_step, after=True)},
}


@pytest.mark.parametrize("exercise", FAST)
def test_independent_correct_implementations_pass(exercise):
    assert check_function(RIGHT[exercise], exercise).passed
    assert hidden_check(RIGHT[exercise], exercise).passed


def test_every_fast_mistake_has_a_wrong_implementation_here():
    assert {e: set(HINTS[e]) for e in FAST} == {e: set(WRONG[e]) for e in FAST}


@pytest.mark.parametrize("exercise,mistake", [(e, m) for e in FAST for m in HINTS[e]])
def test_each_catalogued_mistake_is_recognised(exercise, mistake):
    wrong = WRONG[exercise][mistake]
    result = check_function(wrong, exercise)
    assert not result.passed and result.reason == HINTS[exercise][mistake]
    hidden = hidden_check(wrong, exercise)
    assert not hidden.passed
    # the hidden cases change shapes and switch the upsampling off in one of them,
    # where an upsampling mistake is simply "values differ"
    if not (exercise == "conv_layer" and mistake in ("upsample_after", "bilinear")):
        assert hidden.reason == f"hidden check: {HINTS[exercise][mistake]}"


@pytest.mark.parametrize("function,exercise,reason", [
    (lambda *a: {"total": torch.zeros(())}, "perceptual_loss", "perceptual_loss must return a dict with the keys"),
    (lambda *a: {k: torch.tensor(1.0) for k in ("content", "style", "tv", "total")}, "perceptual_loss",
     "your total loss is detached from the graph"),
    (lambda params, optimizer, *a, **k: None, "train_step", "train_step must return a dict with the keys"),
    (lambda x, params, style_mix: x, "transformer_net", "values differ from the reference"),
    (lambda x, gamma, beta, style_mix, eps=1e-5: x + style_mix.mul_(2).sum(), "conditional_instance_norm",
     "modified its input 'style_mix' in place"),
])
def test_bad_fast_submissions_fail_with_a_one_line_reason(function, exercise, reason):
    result = check_function(function, exercise)
    assert not result.passed and result.reason.startswith(reason), result.reason
