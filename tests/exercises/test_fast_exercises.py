"""The fast style-transfer exercises against independent formulas: torch's own layers, and lab 3's losses."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from grader.instructor.cases import block_params, net_params
from solutions import fast_transfer as fast
from solutions import style_transfer as gatys


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def torch_conv(weight, bias, stride=1):
    """nn.Conv2d with reflection padding, holding the given weights."""
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1], stride=stride,
                     padding=weight.shape[-1] // 2, padding_mode="reflect")
    conv.weight.data, conv.bias.data = weight.clone(), bias.clone()
    return conv


def torch_norm(gamma, beta, style):
    """nn.InstanceNorm2d whose affine parameters are one style's row."""
    norm = nn.InstanceNorm2d(gamma.shape[1], affine=True)
    norm.weight.data, norm.bias.data = gamma[style].clone(), beta[style].clone()
    return norm


class TorchBlock(nn.Module):
    def __init__(self, p, style):
        super().__init__()
        self.body = nn.Sequential(torch_conv(p["conv1.weight"], p["conv1.bias"]),
                                  torch_norm(p["norm1.gamma"], p["norm1.beta"], style), nn.ReLU(),
                                  torch_conv(p["conv2.weight"], p["conv2.bias"]),
                                  torch_norm(p["norm2.gamma"], p["norm2.beta"], style))

    def forward(self, x):
        return x + self.body(x)


class TorchNet(nn.Module):
    """Johnson et al.'s network from torch's layers (Upsample, Conv2d, InstanceNorm2d, Tanh, Hardtanh), changing
    the photo: up3's output through nn.Tanh added to it, kept in [0, 1] by nn.Hardtanh. The layers see the
    photo plus noise; the change is added to the photo alone."""

    def __init__(self, params, style, num_res):
        super().__init__()

        def down(conv, norm):
            return [torch_conv(params[f"{conv}.weight"], params[f"{conv}.bias"], stride=2),
                    torch_norm(params[f"{norm}.gamma"], params[f"{norm}.beta"], style), nn.ReLU()]

        def up(conv, norm=None):
            layers = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                      torch_conv(params[f"{conv}.weight"], params[f"{conv}.bias"])]
            return layers + ([torch_norm(params[f"{norm}.gamma"], params[f"{norm}.beta"], style), nn.ReLU()]
                             if norm else [])

        blocks = [TorchBlock(fast.sub_params(params, f"res.{i}."), style) for i in range(num_res)]
        self.body = nn.Sequential(*down("conv1", "norm1"), *down("conv2", "norm2"), *down("conv3", "norm3"),
                                  *blocks, *up("up1", "norm4"), *up("up2", "norm5"), *up("up3"))

    def forward(self, x, noise=0.0):
        return nn.Hardtanh(0.0, 1.0)(x + nn.Tanh()(self.body(x + noise)))


def one_hot(n, s, style):
    return F.one_hot(torch.full((n,), style), s).float()


@pytest.mark.parametrize("stride, upsample, k", [(1, 1, 3), (2, 1, 9), (1, 2, 3), (2, 2, 5)])
def test_conv_layer_is_reflect_padded_conv_after_bilinear_upsampling(stride, upsample, k):
    g = _g()
    x, w, b = torch.randn(2, 3, 10, 12, generator=g), torch.randn(4, 3, k, k, generator=g), torch.randn(4, generator=g)
    expected = torch_conv(w, b, stride)(nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=False)(x))
    out = fast.conv_layer(x, w, b, stride, upsample)
    assert out.shape == (2, 4, 10 * upsample // stride, 12 * upsample // stride)
    torch.testing.assert_close(out, expected)


def test_conditional_instance_norm_is_instance_norm_with_the_styles_affine_parameters():
    g = _g(1)
    x = 3 * torch.randn(2, 5, 6, 7, generator=g) + 2
    gamma, beta = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    for style in range(3):
        expected = torch_norm(gamma, beta, style)(x)
        torch.testing.assert_close(fast.conditional_instance_norm(x, gamma, beta, one_hot(2, 3, style)), expected)
    # a blend is the normalisation with blended gamma and beta, image by image
    mix = torch.tensor([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    out = fast.conditional_instance_norm(x, gamma, beta, mix)
    blended = nn.InstanceNorm2d(5, affine=True)
    blended.weight.data, blended.bias.data = mix[0] @ gamma, mix[0] @ beta
    torch.testing.assert_close(out[:1], blended(x[:1]))
    torch.testing.assert_close(out[1:], torch_norm(gamma, beta, 0)(x[1:]))
    # each image is normalised on its own: its batch mates do not change it
    torch.testing.assert_close(fast.conditional_instance_norm(x[:1], gamma, beta, mix[:1]), out[:1])


def test_residual_block_matches_torch_layers():
    g = _g(2)
    params, x = block_params(g, 2, 6), torch.randn(3, 6, 8, 8, generator=g)
    for style in range(2):
        torch.testing.assert_close(fast.residual_block(x, params, one_hot(3, 2, style)), TorchBlock(params, style)(x))


@pytest.mark.parametrize("widths, num_res, size", [((4, 6, 8), 2, (16, 24)), ((8, 8, 16), 5, (32, 40))])
def test_transformer_net_matches_a_network_of_torch_layers(widths, num_res, size):
    g = _g(3)
    params, x = net_params(g, 3, widths, num_res), torch.rand(2, 3, *size, generator=g)
    for style in range(3):
        out = fast.transformer_net(x, params, one_hot(2, 3, style))
        assert out.shape == x.shape and out.min() == 0 and out.max() == 1  # these weights reach the clamp
        torch.testing.assert_close(out, TorchNet(params, style, num_res)(x))
    # noise reaches the layers, one picture of it for the whole batch or one per image, not the photo added back
    for noise in (0.3 * torch.randn(1, 3, *size, generator=g), 0.3 * torch.randn(2, 3, *size, generator=g)):
        out = fast.transformer_net(x, params, one_hot(2, 3, 1), noise)
        torch.testing.assert_close(out, TorchNet(params, 1, num_res)(x, noise))
        assert not torch.allclose(out, TorchNet(params, 1, num_res)(x))


def test_transformer_net_is_differentiable_in_every_parameter():
    params = {k: v.requires_grad_() for k, v in net_params(_g(4), 2, (4, 6, 8), 2).items()}
    fast.transformer_net(torch.rand(1, 3, 16, 16), params, torch.tensor([[0.5, 0.5]])).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values())


def _per_image_losses(feats, content_feats, style_grams, out, content_layer, content_weight, style_layers,
                      style_weights, tv_weight):
    """Lab 3's losses on each image alone, averaged."""
    totals = {"content": 0.0, "style": 0.0, "tv": 0.0}
    N = out.shape[0]
    for n in range(N):
        f = [x[n:n + 1] for x in feats]
        targets = [t[n:n + 1] if t.shape[0] == N else t for t in style_grams]
        totals["content"] += gatys.content_loss(content_weight, f[content_layer], content_feats[n:n + 1]) / N
        totals["style"] += gatys.style_loss(f, style_layers, targets, style_weights) / N
        totals["tv"] += gatys.tv_loss(out[n:n + 1], tv_weight) / N
    return totals


@pytest.mark.parametrize("per_image_styles", [False, True])
def test_perceptual_loss_is_the_batch_mean_of_lab_3s_losses(per_image_styles):
    g = _g(5)
    N = 3
    feats = [torch.randn(N, 4, s, s, generator=g) for s in (8, 6, 4)]
    grams = [torch.rand(N if per_image_styles else 1, 4, 4, generator=g) for _ in range(2)]
    args = (feats, torch.randn(N, 4, 4, 4, generator=g), grams, torch.rand(N, 3, 8, 8, generator=g),
            2, 0.5, [0, 1], [2.0, 3.0], 0.7)
    losses = fast.perceptual_loss(*args)
    expected = _per_image_losses(*args)
    for key in ("content", "style", "tv"):
        torch.testing.assert_close(losses[key], expected[key])
    torch.testing.assert_close(losses["total"], sum(expected.values()))


def test_train_step_takes_one_optimizer_step_on_the_perceptual_loss():
    g = _g(6)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    cnn.requires_grad_(False)
    params = {k: v.requires_grad_() for k, v in net_params(g, 2, (4, 6, 8), 1).items()}
    batch, mix = torch.rand(2, 3, 16, 16, generator=g), torch.tensor([[1.0, 0.0], [0.3, 0.7]])
    grams = [torch.rand(1, 4, 4, generator=g), torch.rand(2, 5, 5, generator=g)]
    settings = dict(content_layer=3, content_weight=2.0, style_layers=[1, 3], style_weights=[10.0, 5.0],
                    tv_weight=0.1)
    # the same loss by hand, through lab 1's extract_features, and its gradient by autograd
    before = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    noise = 0.2 * torch.randn(2, 3, 16, 16, generator=g)
    out = fast.transformer_net(batch, before, mix, noise)  # the noise reaches the network...
    expected = fast.perceptual_loss(gatys.extract_features(out, cnn), gatys.extract_features(batch, cnn)[3],  # ...not the targets
                                    grams, out, **settings)
    expected["total"].backward()

    optimizer = torch.optim.SGD(params.values(), lr=0.01)
    losses = fast.train_step(params, optimizer, cnn, batch, grams, mix, **settings, noise=noise)
    assert all(isinstance(v, float) for v in losses.values())
    assert losses == pytest.approx({k: v.item() for k, v in expected.items()}, rel=1e-5)
    for name, p in params.items():
        torch.testing.assert_close(p.detach(), (before[name] - 0.01 * before[name].grad).detach())
