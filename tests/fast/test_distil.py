"""stylelab.distil: the engine paints a resumable corpus of training crops, and the fast network learns
towards those paintings (train-fast --distil)."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylelab.cli import main as cli
from stylelab.distil import Pairs, build_corpus, pair_paths
from stylelab.fast import load_model
from stylelab.images import ImageError, load_image
from stylelab.train import train_fast


def _inverted_corpus(folder, count=3, side=48, seed=0, smooth=False):
    """Pairs whose painting is the photo's negative, pixel by pixel: a crop of one matches the other only
    where both were cut and flipped alike. The photos are noise, or smooth (a 4x4 grid of colours)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        photo = rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)
        if smooth:
            grid = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
            photo = np.asarray(grid.resize((side + 8, side), Image.BICUBIC))
        photo_path, painted_path = pair_paths(folder, index)
        Image.fromarray(photo).save(photo_path)
        Image.fromarray(255 - photo).save(painted_path)
    return folder


def test_pairs_are_cropped_and_flipped_alike(tmp_path):
    pairs = Pairs(_inverted_corpus(tmp_path / "swirls"), 16)
    generator = torch.Generator().manual_seed(0)
    photos, paintings = pairs.batch(64, generator)
    assert photos.shape == paintings.shape == (64, 3, 16, 16)
    torch.testing.assert_close(photos + paintings, torch.ones_like(photos), atol=1e-6, rtol=0)
    assert len({tuple(p.flatten()[:8].tolist()) for p in photos}) > 32  # and the crops do vary


def test_a_corpus_that_is_missing_or_too_small_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no painted pairs; build it first \\(python -m stylelab distil\\)"):
        Pairs(tmp_path / "empty", 16)
    with pytest.raises(ImageError, match="0000_painted.png is 56x48, smaller than the 64-px crops"):
        Pairs(_inverted_corpus(tmp_path / "small"), 64)


def test_the_corpus_resumes_and_repeats_itself(tmp_path):
    log = []
    assert build_corpus("swirls", tmp_path / "a", 2, size=32, num_iters=2, log=log.append) == 2
    assert build_corpus("swirls", tmp_path / "a", 3, size=32, num_iters=2, log=log.append) == 1  # one more
    assert len(log) == 3 and log[-1].startswith("swirls 3/3: ")
    assert build_corpus("swirls", tmp_path / "b", 1, size=32, num_iters=2, log=log.append) == 1
    for which in (0, 1):  # pair 0 is drawn from the seed and its index alone
        a, b = (load_image(pair_paths(folder, 0)[which]) for folder in (tmp_path / "a", tmp_path / "b"))
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    photo, painted = (load_image(path) for path in pair_paths(tmp_path / "a", 0))
    assert photo.shape == painted.shape == (1, 3, 32, 32) and (photo - painted).abs().mean() > 0.02
    with pytest.raises(ValueError, match="at least 32 px"):
        build_corpus("swirls", tmp_path / "c", 1, size=16)


def test_distilling_brings_the_network_to_the_paintings(tmp_path):
    """With only the pixel term on, a small network learns to paint the photos' negatives: its distance
    to the painting falls well below where it starts (the photo itself)."""
    _inverted_corpus(tmp_path / "corpus" / "swirls", count=4, side=64, smooth=True)
    out = tmp_path / "m.pt"
    only_pixels = dict(content_layer="relu1_1", style_layers=("relu1_1",), style_weights=(0.0,), content_weight=0.0,
                       tv_weight=0.0)  # a loss network of one layer: the pixel term alone, quickly
    train_fast(["swirls"], distil=tmp_path / "corpus", pixel_weight=1.0, steps=150, size=32, batch_size=4,
               lr=1e-2, widths=(8, 16, 16), out=out, log=lambda line: None, **only_pixels)
    model = load_model(out)
    assert model.training["distil"] == str(tmp_path / "corpus") and model.training["pixel_weight"] == 1
    photos, paintings = Pairs(tmp_path / "corpus" / "swirls", 32).batch(8, torch.Generator().manual_seed(1))
    with torch.no_grad():
        painted = model.net(photos, model.mix({"swirls": 1.0}).expand(8, -1))
    before, after = (photos - paintings).abs().mean(), (painted - paintings).abs().mean()
    assert after < 0.7 * before, (before, after)


def test_train_fast_distils_from_the_command_line(tmp_path):
    _inverted_corpus(tmp_path / "corpus" / "swirls", side=40)
    assert cli(["train-fast", "--style", "swirls", "--distil", str(tmp_path / "corpus"), "--pixel-weight", "2",
                "--steps", "1", "--size", "32", "--out", str(tmp_path / "m.pt")]) == 0
    assert load_model(tmp_path / "m.pt").training["pixel_weight"] == 2
    assert cli(["train-fast", "--style", "mosaic", "--distil", str(tmp_path / "corpus"), "--steps", "1",
                "--size", "32", "--out", str(tmp_path / "n.pt")]) == 2  # no corpus for mosaic: an error, not a trace


def test_a_style_without_a_corpus_trains_on_the_photos_beside_one_with(tmp_path):
    _inverted_corpus(tmp_path / "corpus" / "swirls", side=40)
    lines = []
    path = train_fast(["swirls", "mosaic"], distil=tmp_path / "corpus", pixel_weight=2.0, steps=2, size=32,
                      batch_size=2, widths=(4, 6, 8), num_res=1, out=tmp_path / "m.pt", log=lines.append)
    assert f"no corpus in {tmp_path / 'corpus'} for mosaic: trained on the photos" in lines
    # the progress lines: swirls' step has the pixel term, mosaic's (on the photos) has none
    swirls, mosaic = (next(line for line in lines if f"{k}/2  {name}:" in line) for k, name in ((1, "swirls"),
                                                                                                  (2, "mosaic")))
    assert "pixel" in swirls and "pixel" not in mosaic
    assert load_model(path).training["distil"] == str(tmp_path / "corpus")


def test_a_palette_is_the_quantiles_of_the_colours_along_each_direction():
    from stylelab.distil import DIRECTIONS, LEVELS, palette

    rgb = torch.rand(2, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    got = palette(rgb)
    assert got.shape == (2, len(DIRECTIONS), LEVELS)
    red = rgb[1, 0].flatten().sort().values  # the first direction is red alone
    torch.testing.assert_close(got[1, 0], red[torch.linspace(0, 127, LEVELS).round().long()])
    grey = (rgb[0].sum(0) / 3 ** 0.5).flatten().sort().values  # (1, 1, 1) / sqrt 3
    assert got[0, 3, 0] == pytest.approx(grey[0].item()) and got[0, 3, -1] == pytest.approx(grey[-1].item())
    shuffled = rgb.flatten(2)[..., torch.randperm(128)].reshape(rgb.shape)  # the same colours, elsewhere
    torch.testing.assert_close(palette(shuffled), got)


def test_the_palette_term_carries_a_network_to_the_style_images_colours(tmp_path):
    """Only the palette term on, towards a blue style image: the network's pictures turn blue."""
    Image.new("RGB", (32, 32), (30, 60, 200)).save(tmp_path / "blue.png")
    only_palette = dict(content_layer="relu1_1", style_layers=("relu1_1",), style_weights=(0.0,),
                        content_weight=0.0, tv_weight=0.0)
    out = train_fast([str(tmp_path / "blue.png")], palette_weight=1.0, noise=0.0, steps=60, size=32, batch_size=2, lr=1e-2,
                     widths=(8, 16, 16), num_res=1, out=tmp_path / "m.pt", log=lambda line: None, **only_palette)
    model = load_model(out)
    assert model.training["palette_weight"] == 1
    photos = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        painted = model.net(photos, model.mix({"blue": 1.0}).expand(4, -1))
    blue = torch.tensor([30, 60, 200]) / 255
    before, after = ((x.mean((0, 2, 3)) - blue).abs().max() for x in (photos, painted))
    assert after < 0.5 * before, (before, after)  # 0.38 to 0.13 when measured


def test_a_student_release_leaves_distillation_out(tmp_path):
    """distil_step is a training step written out: lab 5's train_step exercise would be in the bundle."""
    from grader.instructor.release import student_bundle

    bundle = student_bundle(tmp_path / "release")
    assert list(bundle.rglob("train.py")) and not list(bundle.rglob("distil.py"))


def test_the_shade_is_the_luma_blurred_as_scipy_blurs_it():
    from scipy.ndimage import gaussian_filter

    from stylelab.distil import SHADE_SIGMA, shade

    rgb = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    luma = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).numpy()  # (2, 40, 56)
    expected = [gaussian_filter(y, SHADE_SIGMA, mode="nearest", truncate=3.0) for y in luma]
    got = shade(rgb)
    assert got.shape == (2, 1, 40, 56)
    torch.testing.assert_close(got[:, 0], torch.tensor(np.stack(expected)), atol=1e-5, rtol=0)
    checks = (torch.arange(40).view(-1, 1) + torch.arange(56)) % 2  # a black and white checkerboard: mid-grey
    assert shade(checks.float().expand(1, 3, 40, 56))[0, 0, 12:-12, 12:-12].sub(0.5).abs().max() < 1e-3


def test_the_shade_term_keeps_a_network_from_darkening_the_photo(tmp_path):
    """Towards a black style image's colours (the palette term alone), the network darkens the photos;
    with the shade term beside it, it keeps their light and shade."""
    Image.new("RGB", (32, 32), (0, 0, 0)).save(tmp_path / "black.png")
    only_palette = dict(content_layer="relu1_1", style_layers=("relu1_1",), style_weights=(0.0,),
                        content_weight=0.0, tv_weight=0.0)
    photos = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    darkening = {}
    for weight in (0.0, 10.0):
        out = train_fast([str(tmp_path / "black.png")], palette_weight=1.0, shade_weight=weight, steps=60,
                         size=32, batch_size=2, lr=1e-2, widths=(8, 16, 16), num_res=1,
                         out=tmp_path / f"m{weight}.pt", log=lambda line: None, **only_palette)
        model = load_model(out)
        assert model.training.get("shade_weight", 0.0) == weight
        with torch.no_grad():
            painted = model.net(photos, model.mix({"black": 1.0}).expand(4, -1))
        darkening[weight] = float((photos - painted).mean())
    assert darkening[0.0] > 0.2 and abs(darkening[10.0]) < 0.25 * darkening[0.0], darkening
