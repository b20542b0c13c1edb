"""Linear colour transfer (stylelab.colour) and the fast network that sees photos in a style's colours
(train-fast --recolour)."""

import numpy as np
import pytest
import torch

from stylelab.colour import colour_stats, match_colours
from stylelab.examples import example_image
from stylelab.fast import TransformerNet, load_model, save_model, stylize
from stylelab.images import load_image, pil_to_rgb
from stylelab.train import train_fast


def _numpy_stats(rgb):
    pixels = rgb.reshape(3, -1).double().numpy()
    return pixels.mean(1), np.cov(pixels, bias=True)


def test_colour_stats_are_the_mean_and_covariance_of_the_pixels():
    rgb = torch.rand(2, 3, 6, 10, generator=torch.Generator().manual_seed(0))
    mean, cov = colour_stats(rgb)
    for k in range(2):
        want_mean, want_cov = _numpy_stats(rgb[k])
        np.testing.assert_allclose(mean[k].numpy(), want_mean, atol=1e-6)
        np.testing.assert_allclose(cov[k].numpy(), want_cov, atol=1e-6)


def test_a_photo_takes_the_paintings_mean_and_covariance_and_keeps_its_shapes():
    photo = load_image(example_image("coffee"), 64)
    painting = load_image(example_image("swirls"), 64)
    target_mean, target_cov = _numpy_stats(painting[0])
    out = match_colours(photo, *colour_stats(painting))
    mean, cov = _numpy_stats(out[0])
    np.testing.assert_allclose(mean, target_mean, atol=0.01)  # the clamp to [0, 1] moves a few pixels
    np.testing.assert_allclose(cov, target_cov, atol=0.003)
    before, after = (_numpy_stats(x[0])[0] for x in (photo, out))
    assert before[0] > before[2] and after[2] > after[0]  # the orange photo has turned blue
    # an affine map of the colours: a pixel's order along each channel changes, its place does not
    edges = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean(1).flatten()  # noqa: E731
    assert np.corrcoef(edges(photo).numpy(), edges(out).numpy())[0, 1] > 0.5


def test_a_flat_photo_is_recoloured_without_dividing_by_zero():
    flat = torch.full((1, 3, 8, 8), 0.5)
    out = match_colours(flat, torch.tensor([[0.2, 0.3, 0.8]]), torch.eye(3)[None] * 0.01)
    torch.testing.assert_close(out, torch.tensor([0.2, 0.3, 0.8]).view(1, 3, 1, 1).expand(1, 3, 8, 8))


def test_a_model_with_colours_recolours_the_photo_for_the_blend_of_its_styles(tmp_path):
    """An untrained network returns what it is given: so stylize returns the recoloured photo."""
    net = TransformerNet(2, widths=(4, 6, 8), num_res=1)
    blue, red = torch.tensor([0.1, 0.2, 0.8]), torch.tensor([0.8, 0.2, 0.1])
    colours = {"mean": torch.stack([blue, red]), "cov": torch.stack([torch.eye(3) * 0.01, torch.eye(3) * 0.02])}
    model = load_model(save_model(tmp_path / "m.pt", net, ["blue", "red"], colours=colours))
    photo = example_image("chelsea").resize((64, 48))
    for mix, mean in (({"blue": 1.0}, blue), ({"blue": 1.0, "red": 1.0}, (blue + red) / 2)):
        got = pil_to_rgb(stylize(model, photo, mix))
        np.testing.assert_allclose(got.mean((0, 2, 3)).numpy(), mean.numpy(), atol=0.02)
    kept = pil_to_rgb(stylize(model, photo, {"red": 1.0}, preserve_color=True)) - pil_to_rgb(photo)
    # preserve_color keeps the photo's I and Q (YIQ) and changes its Y alone: the same amount on each channel
    assert (kept[:, 0] - kept[:, 1]).abs().mean() < 0.01 and (kept[:, 1] - kept[:, 2]).abs().mean() < 0.01
    assert kept.abs().mean() > 0.05  # ...and the Y is the recoloured photo's
    plain = load_model(save_model(tmp_path / "p.pt", net, ["blue", "red"]))
    assert plain.colours is None
    torch.testing.assert_close(pil_to_rgb(stylize(plain, photo)), pil_to_rgb(photo))


def test_train_fast_recolour_stores_each_style_images_colours(tmp_path):
    path = train_fast(["swirls", "mosaic"], steps=2, size=32, batch_size=2, style_size=64, widths=(4, 6, 8),
                      num_res=1, recolour=True, out=tmp_path / "m.pt", log=lambda line: None)
    model = load_model(path)
    assert model.training["recolour"] is True
    for k, name in enumerate(["swirls", "mosaic"]):
        mean, cov = _numpy_stats(load_image(example_image(name), 64)[0])
        np.testing.assert_allclose(model.colours["mean"][k].numpy(), mean, atol=1e-5)
        np.testing.assert_allclose(model.colours["cov"][k].numpy(), cov, atol=1e-5)
    assert load_model(train_fast(["swirls"], steps=1, size=32, batch_size=1, widths=(4, 6, 8), num_res=1,
                                 out=tmp_path / "n.pt", log=lambda line: None)).colours is None


def test_train_fast_recolour_from_the_command_line_and_its_onnx_export_says_what_the_graph_expects(
        tmp_path, capsys):
    from stylelab.cli import main as cli

    assert cli(["train-fast", "--style", "swirls", "--steps", "1", "--size", "32", "--widths", "4", "6", "8",
                "--out", str(tmp_path / "m.pt"), "--recolour"]) == 0
    assert load_model(tmp_path / "m.pt").colours["mean"].shape == (1, 3)
    pytest.importorskip("onnx")
    capsys.readouterr()
    assert cli(["export-onnx", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "the exported graph expects the photo already recoloured" in capsys.readouterr().out
