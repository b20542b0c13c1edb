"""stylelab.fused: the reference network's pass with its enlargements folded gives transformer_net's picture."""

import pytest
import torch

from solutions import fast_transfer as reference
from stylelab import fused, impl
from stylelab.fast import SHIPPED, TransformerNet, load_model


@pytest.mark.parametrize("shape", [(2, 5, 2, 3), (1, 4, 7, 9), (1, 3, 1, 1), (1, 6, 8, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_folded_enlargement_is_conv_layers_own_to_float_rounding(shape, channels_last):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g)
    weight, bias = torch.randn(7, shape[1], 3, 3, generator=g), torch.randn(7, generator=g)
    if channels_last:
        x, weight = (t.contiguous(memory_format=torch.channels_last) for t in (x, weight))
    expected = reference.conv_layer(x, weight, bias, upsample=2)  # (N, 7, 2H, 2W)
    torch.testing.assert_close(fused.enlarge_and_convolve(reference, x, weight, bias), expected, atol=1e-5, rtol=0)


def test_the_folded_kernels_blend_as_bilinear_does():
    # a kernel that reads one pixel of the enlarged picture gives bilinear's weights on the small one
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0  # the centre
    kernels = fused.folded_kernels(weight)  # (4, 1, 3, 3): top-left, top-right, bottom-left, bottom-right
    assert kernels[0, 0].tolist() == [[0.0625, 0.1875, 0.0], [0.1875, 0.5625, 0.0], [0.0, 0.0, 0.0]]
    assert kernels[3, 0].tolist() == [[0.0, 0.0, 0.0], [0.0, 0.5625, 0.1875], [0.0, 0.1875, 0.0625]]
    assert kernels.sum().item() == pytest.approx(4.0)


@pytest.mark.parametrize("size", [(16, 24), (40, 72), (64, 64)])
def test_the_folded_network_paints_transformer_nets_picture(size):
    g = torch.Generator().manual_seed(size[1])
    net = TransformerNet(2, widths=(4, 6, 8), num_res=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))  # up3 away from zero, norms away from 1 and 0
    params = dict(net.named_parameters())
    x, noise = torch.rand(2, 3, *size, generator=g), 0.1 * torch.randn(1, 3, *size, generator=g)
    mix = torch.tensor([[1.0, 0.0], [0.3, 0.7]])
    with torch.no_grad():
        expected = reference.transformer_net(x, params, mix, noise)
        assert (expected - x).abs().mean() > 0.05  # a network that changes the picture
        torch.testing.assert_close(fused.transformer_net(reference, x, params, mix, noise), expected,
                                   atol=2e-5, rtol=0)


def test_the_shipped_network_runs_folded_for_the_reference_only(monkeypatch):
    calls = []
    folded = fused.transformer_net
    monkeypatch.setattr(fused, "transformer_net", lambda *args: calls.append(1) or folded(*args))
    photo = torch.rand(1, 3, 48, 64)
    model = load_model(SHIPPED)
    with torch.no_grad():
        ours = model.net(photo, model.mix({"mosaic": 1.0}))
        assert calls == [1]
        student = load_model(SHIPPED, impl=impl.load("solutions", "fast_transfer.py"))  # a module of its own
        theirs = student.net(photo, student.mix({"mosaic": 1.0}))
    assert calls == [1]  # a student's network runs as they wrote it
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
