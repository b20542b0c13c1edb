"""Fast style transfer around the exercises: model files, any-size stylising, ONNX, training and the CLI."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from solutions import style_transfer as gatys
from stylelab.cli import main as cli
from stylelab.examples import example_image
from stylelab.fast import SHIPPED, TransformerNet, export_onnx, load_model, save_model, stylize
from stylelab.images import ImageError, pil_to_rgb, to_pil
from stylelab.train import train_fast

SMALL = dict(widths=(4, 6, 8), num_res=1)
BORDER_LIMIT = 1.25  # yardstick.border_contrast, over the photo's own side (or 1 where it is calmer)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    net = TransformerNet(2, **SMALL)
    with torch.no_grad():  # distinct per-style parameters, so the styles differ
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.add_(0.5 * torch.randn_like(p))
        net.up3.weight.normal_(0, 0.1)  # up3 starts at zero: an untrained network returns the photo
    return save_model(tmp_path_factory.mktemp("model") / "small.pt", net, ["a", "b"], {"command": "test"})


def test_in_bfloat16_the_shipped_network_paints_the_picture_float32_paints():
    photo = example_image("coffee").resize((200, 152))
    pictures = {}
    for precision in ("float32", "bfloat16"):
        model = load_model(SHIPPED, precision=precision)
        assert model.dtype == getattr(torch, precision)
        pictures[precision] = np.asarray(stylize(model, photo, {"mosaic": 1.0}), dtype=np.int16)
    assert pictures["float32"].shape == pictures["bfloat16"].shape == (152, 200, 3)
    off = np.abs(pictures["float32"] - pictures["bfloat16"])
    assert off.mean() < 1.5 and (off > 4).mean() < 0.05  # levels of 255: a difference no eye finds
    assert np.abs(pictures["float32"] - np.asarray(photo, dtype=np.int16)).mean() > 10 * off.mean()
    with pytest.raises(ValueError, match="choose one of: float32, bfloat16"):
        load_model(SHIPPED, precision="half")


def test_a_saved_model_loads_back_with_its_styles_and_half_precision_weights(model_file):
    model = load_model(model_file)
    assert model.styles == ["a", "b"] and model.training == {"command": "test"}
    stored = torch.load(model_file, weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored["state_dict"].values())
    assert not any(p.requires_grad for p in model.net.parameters())


def test_mix_normalises_weights_and_rejects_what_it_cannot_use(model_file):
    model = load_model(model_file)
    assert model.mix().tolist() == [[1.0, 0.0]]
    assert model.mix({"a": 1, "b": 3}).tolist() == [[0.25, 0.75]]
    with pytest.raises(KeyError, match="no style 'c'; its styles are: a, b"):
        model.mix({"c": 1})
    with pytest.raises(ValueError, match="not all 0"):
        model.mix({"a": 0, "b": 0})


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (17, 120)])
def test_any_size_comes_back_the_same_size(model_file, size):
    model = load_model(model_file)
    photo = example_image("chelsea").resize(size)
    out = stylize(model, photo, {"a": 0.5, "b": 0.5})
    assert out.size == size and out.mode == "RGB"


def test_a_requested_size_enlarges_a_small_photo_and_shrinks_a_large_one_up_to_a_bound(model_file):
    model = load_model(model_file)
    photo = example_image("chelsea").resize((60, 40))
    assert stylize(model, photo, size=200).size == (300, 200)  # the shorter side, enlarged
    assert stylize(model, photo, size=(30, 45)).size == (45, 30)  # (H, W), shrunk
    with pytest.raises(ImageError, match="asked for 2100x1400 pixels; .* at most 2048 on the longer side"):
        stylize(model, photo, size=1400)


def test_a_blend_sits_between_its_styles_and_differs_from_both(model_file):
    model = load_model(model_file)
    photo = pil_to_rgb(example_image("coffee").resize((64, 48)))
    a, b, half = (pil_to_rgb(stylize(model, photo, mix)) for mix in ({"a": 1}, {"b": 1}, {"a": 1, "b": 1}))
    assert (a - b).abs().mean() > 0.02
    assert (half - a).abs().mean() > 0.005 and (half - b).abs().mean() > 0.005


def test_too_small_an_image_is_refused_with_its_size(model_file):
    with pytest.raises(ImageError, match="the image is 10x12 pixels; fast style transfer needs at least 16"):
        stylize(load_model(model_file), Image.new("RGB", (10, 12)))


def test_preserve_color_keeps_the_photos_chrominance(model_file):
    model = load_model(model_file)
    photo = example_image("astronaut").resize((48, 48))
    out = pil_to_rgb(stylize(model, photo, preserve_color=True))
    M = torch.tensor(gatys.YIQ_FROM_RGB)
    yiq_out, yiq_photo = (torch.einsum("kc,nchw->nkhw", M, x) for x in (out, pil_to_rgb(photo)))
    plain = torch.einsum("kc,nchw->nkhw", M, pil_to_rgb(stylize(model, photo)))
    inside = (out > 0.02).all(1) & (out < 0.98).all(1)  # where the clamp did not act
    assert (yiq_out[:, 1:] - yiq_photo[:, 1:]).abs().amax(1)[inside].max() < 0.02
    assert (yiq_out[:, 0] - plain[:, 0]).abs()[inside].max() < 0.02


def test_onnx_export_gives_the_same_picture_at_other_sizes(model_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = load_model(model_file)
    path = export_onnx(model, tmp_path / "small.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, 40, 72)
    mix = model.mix({"a": 0.3, "b": 0.7})
    ours = session.run(None, {"image": image.numpy(), "style_mix": mix.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(ours, model.net(image, mix).numpy(), atol=1e-4)


def _train(out, **settings):
    settings = {"steps": 4, "log": lambda line: None, **settings}
    return train_fast(["swirls", "mosaic"], size=32, batch_size=2, out=out, checkpoint_every=2, **SMALL, **settings)


def test_a_network_stylises_with_one_fixed_noise_that_its_file_keeps(model_file, tmp_path):
    from stylelab.fast import NOISE, NOISE_TILE, fixed_noise

    model = load_model(model_file)
    assert model.net.noise == NOISE == 0.1
    photo = torch.rand(1, 3, 40, NOISE_TILE + 24, generator=torch.Generator().manual_seed(3))
    first, again = (pil_to_rgb(stylize(model, photo, {"b": 1.0})) for _ in range(2))
    assert torch.equal(first, again)  # the same noise every time: a photo always comes out the same
    # what the network sees: the fixed draw, times NOISE, repeated every NOISE_TILE pixels
    seen = {}

    class Spy:
        @staticmethod
        def transformer_net(x, params, style_mix, noise=None):
            seen["noise"] = noise
            return x

    model.net.impl = Spy
    model.net(torch.zeros(1, 3, 24, NOISE_TILE + 16))
    tile = NOISE * fixed_noise()
    torch.testing.assert_close(seen["noise"][..., :NOISE_TILE], tile[..., :24, :])
    torch.testing.assert_close(seen["noise"][..., NOISE_TILE:], tile[..., :24, :16])
    assert 0.9 < float(fixed_noise().std()) < 1.1 and torch.equal(fixed_noise(), fixed_noise())
    # a network saved without noise stylises without it
    quiet = TransformerNet(2, **SMALL, noise=0.0)
    quiet.load_state_dict(load_model(model_file).net.state_dict())
    path = save_model(tmp_path / "quiet.pt", quiet, ["a", "b"])
    calm = pil_to_rgb(stylize(load_model(path), photo, {"b": 1.0}))
    assert load_model(path).net.noise == 0.0 and (calm - first).abs().mean() > 1e-3


def test_an_untrained_network_returns_the_photo():
    photo = torch.rand(2, 3, 24, 40)
    net = TransformerNet(3, **SMALL)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    with torch.no_grad():
        torch.testing.assert_close(net(photo, mix), photo, atol=0, rtol=0)
        net.up3.bias.copy_(torch.tensor([9.0, -9.0, float(torch.atanh(torch.tensor(0.25)))]))
        # tanh(9) = 1 - 3e-8: red saturates, green goes to 0, blue gains a quarter, kept within [0, 1]
        expected = torch.stack([torch.ones_like(photo[:, 0]), torch.zeros_like(photo[:, 0]),
                                (photo[:, 2] + 0.25).clamp(max=1.0)], dim=1)
        torch.testing.assert_close(net(photo, mix), expected, atol=1e-6, rtol=0)


def test_each_styles_own_parameters_learn_at_a_larger_rate(tmp_path):
    from stylelab.train import NORM_LR_SCALE

    _train(tmp_path / "m.pt", steps=1, lr=2e-3)
    groups = torch.load(tmp_path / "m.pt.ckpt", weights_only=True)["optimizer"]["param_groups"]
    names = [name for name, _ in TransformerNet(2, **SMALL).named_parameters()]
    per_style = [n for n in names if n.endswith((".gamma", ".beta"))]
    assert [g["lr"] for g in groups] == [2e-3, 2e-3 * NORM_LR_SCALE] and NORM_LR_SCALE > 1
    assert [len(g["params"]) for g in groups] == [len(names) - len(per_style), len(per_style)]


def test_the_loss_network_sees_each_tile_of_a_crop_inside_its_neighbours_pixels():
    from stylelab.backbones import IMAGENET
    from stylelab.train import Preprocess

    rgb = torch.rand(2, 3, 8, 12)
    padded = torch.nn.functional.pad(IMAGENET.preprocess(rgb), (2, 2, 2, 2), mode="replicate")  # (2, 3, 12, 16)
    tiles = Preprocess(IMAGENET, margin=2, tiles=2)(rgb)
    assert tiles.shape == (8, 3, 8, 10)  # 4 tiles of each picture, each (4, 6) inside a margin of 2
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # tile by tile, each holding both pictures
        torch.testing.assert_close(tiles[2 * k:2 * k + 2], padded[..., 4 * i:4 * i + 8, 6 * j:6 * j + 10])
    torch.testing.assert_close(Preprocess(IMAGENET, margin=2)(rgb), padded)  # one tile: the whole picture


def test_a_second_stage_starts_from_a_model_and_judges_tiles(tmp_path):
    first = load_model(_train(tmp_path / "first.pt", steps=2, seed=1))  # other initial weights than seed 0's
    second = load_model(_train(tmp_path / "second.pt", steps=1, tiles=2, init=tmp_path / "first.pt"))
    assert second.training["init"] == str(tmp_path / "first.pt") and second.training["tiles"] == 2
    assert second.training["init_training"]["steps"] == 2
    # the style term is the tiles' mean: each weight a quarter of the one-tile run's
    assert [4 * w for w in second.training["per_style"]["swirls"]["style_weights"]] == pytest.approx(
        first.training["per_style"]["swirls"]["style_weights"])
    moved = [not torch.equal(p, q) for p, q in zip(first.net.parameters(), second.net.parameters())]
    assert any(moved)  # one step on from the first stage's weights...
    fresh = load_model(_train(tmp_path / "fresh.pt", steps=1, tiles=2))
    near = max((p - q).abs().max() for p, q in zip(first.net.parameters(), second.net.parameters()))
    far = max((p - q).abs().max() for p, q in zip(first.net.parameters(), fresh.net.parameters()))
    assert near < far  # ...not from fresh weights
    with pytest.raises(ValueError, match="holds styles"):
        train_fast(["swirls"], steps=1, size=32, out=tmp_path / "x.pt", init=tmp_path / "first.pt", **SMALL)


def test_only_one_style_trains_its_own_norm_rows_and_leaves_the_rest_as_init_left_them(tmp_path, capsys):
    first = load_model(_train(tmp_path / "first.pt", steps=2))
    lines = []
    tuned = load_model(_train(tmp_path / "tuned.pt", steps=2, init=tmp_path / "first.pt", only=["mosaic"],
                              log=lines.append))
    progress = [line for line in lines if "/2 " in line]  # one line per step: "[###...] 1/2  mosaic: loss ..."
    assert tuned.training["only"] == ["mosaic"] and len(progress) == 2 and all("mosaic:" in p for p in progress)
    before, after = first.net.state_dict(), tuned.net.state_dict()
    rows = [name for name in before if name.endswith((".gamma", ".beta"))]  # (S, C): one row per style
    assert all(torch.equal(before[name], after[name]) for name in before if name not in rows)  # shared convs
    assert all(torch.equal(before[name][0], after[name][0]) for name in rows)  # swirls' own row
    assert sum(not torch.equal(before[name][1], after[name][1]) for name in rows) == len(rows)  # mosaic's, all
    for wrong in (dict(only=["mosaic"]), dict(only=["shards"], init=tmp_path / "first.pt")):
        with pytest.raises(ValueError, match="--only"):
            _train(tmp_path / "x.pt", steps=1, **wrong)
    from stylelab.cli import main as cli

    assert cli(["train-fast", "--style", "swirls", "--style", "mosaic", "--only", "shards", "--init",
                str(tmp_path / "first.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "--only shards: name styles of this run (swirls, mosaic)" in capsys.readouterr().err


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    straight = load_model(_train(tmp_path / "straight.pt"))
    _train(tmp_path / "halves.pt", steps=2)
    assert (tmp_path / "halves.pt.ckpt").is_file()
    resumed = load_model(_train(tmp_path / "halves.pt", resume=True))
    for (name, p), q in zip(straight.net.named_parameters(), resumed.net.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert resumed.styles == ["swirls", "mosaic"] and resumed.training["steps"] == 4
    with pytest.raises(ValueError, match="was written with other settings"):
        _train(tmp_path / "halves.pt", resume=True, tv_weight=1.0)


def test_a_resumed_run_can_go_on_at_a_lower_learning_rate(tmp_path):
    from stylelab.train import NORM_LR_SCALE

    _train(tmp_path / "m.pt", steps=2, lr=1e-3)
    lines = []
    path = train_fast(["swirls", "mosaic"], steps=4, size=32, batch_size=2, out=tmp_path / "m.pt", lr=1e-4,
                      checkpoint_every=2, log=lines.append, resume=True, **SMALL)
    assert "learning rate 0.0001 from step 2 on (was 0.001)" in lines
    saved = torch.load(tmp_path / "m.pt.ckpt", weights_only=True)
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == [1e-4, 1e-4 * NORM_LR_SCALE]
    assert saved["lr_schedule"] == [[0, 1e-3], [2, 1e-4]] and saved["config"]["lr"] == 1e-3
    assert load_model(path).training["lr_schedule"] == [[0, 1e-3], [2, 1e-4]]
    again = _train(tmp_path / "m.pt", steps=6, lr=1e-4, resume=True)  # the same lower rate: no new entry
    assert load_model(again).training["lr_schedule"] == [[0, 1e-3], [2, 1e-4]]


def test_training_lowers_the_loss_and_records_how_it_ran(tmp_path):
    lines = []
    path = train_fast(["swirls"], steps=12, size=32, batch_size=2, out=tmp_path / "m.pt", lr=1e-2,
                      log=lines.append, command="python -m stylelab train-fast ...", **SMALL)
    checkpoint = torch.load(tmp_path / "m.pt.ckpt", weights_only=True)
    history = checkpoint["history"]
    assert len(history) == 12 and np.mean(history[-4:]) < np.mean(history[:4])
    assert re.match(r"\[#+\] 12/12  swirls: loss ", lines[-1]) and "s/step" in lines[-1]
    info = load_model(path).training
    assert info["command"] == "python -m stylelab train-fast ..." and info["seconds"] > 0
    assert info["dataset"] == "built-in photos" and info["styles"] == ["swirls"]


def test_a_time_budget_ends_training_after_the_step_that_spends_it(tmp_path):
    """Lab 5 trains for a minute of whatever machine it runs on: a step count would take a minute on one
    laptop and four on another."""
    lines = []
    path = train_fast(["swirls"], steps=5, max_seconds=1e-9, size=32, batch_size=2, out=tmp_path / "m.pt",
                      log=lines.append, **SMALL)
    assert load_model(path).training["steps"] == 1
    assert lines[-1] == "stopped after 1 of 5 steps: the 1e-09 s of max_seconds are spent"
    resumed = train_fast(["swirls"], steps=5, max_seconds=3600, size=32, batch_size=2, out=tmp_path / "m.pt",
                         resume=True, log=lines.append, **SMALL)
    assert load_model(resumed).training["steps"] == 5  # a budget left: the steps end it


def test_train_fast_takes_a_budget_in_minutes(tmp_path):
    assert cli(["train-fast", "--style", "swirls", "--steps", "3", "--size", "32", "--minutes", "1e-9",
                "--out", str(tmp_path / "m.pt")]) == 0
    assert load_model(tmp_path / "m.pt").training["steps"] == 1


def test_any_folder_of_photos_is_a_dataset(tmp_path):
    photos = tmp_path / "photos" / "nested"
    photos.mkdir(parents=True)
    example_image("coffee").save(photos / "a.jpg")
    example_image("rocket").save(photos / "b.png")
    (photos / "broken.png").write_bytes(b"not a png")
    path = train_fast(["swirls"], tmp_path / "photos", steps=2, size=32, batch_size=2, out=tmp_path / "m.pt",
                      log=lambda line: None, **SMALL)
    assert load_model(path).training["dataset"] == str(tmp_path / "photos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no photos"):
        train_fast(["swirls"], tmp_path / "empty", steps=1, size=32, out=tmp_path / "n.pt")


def test_the_shipped_model_is_small_holds_three_styles_and_says_how_it_was_made():
    assert SHIPPED.stat().st_size < 4 * 2 ** 20
    model = load_model()
    assert len(model.styles) >= 3
    readme = (SHIPPED.parent / "README.md").read_text()
    stages = [model.training]  # this run, then the run its --init came from, and so on
    while stages[-1].get("init_training"):
        stages.append(stages[-1]["init_training"])
    for stage in stages:
        assert stage["command"].startswith("python -m stylelab train-fast") and stage["command"] in readme
        assert stage["seconds"] > 0 and stage["steps"] >= 1
    assert sum(stage["steps"] for stage in stages) >= 1000


def test_each_shipped_style_halves_the_photos_own_style_loss_in_its_own_way():
    from stylelab.yardstick import Judge

    model = load_model()
    # at 256 px, the size it trained and is judged at: at 128 px mosaic's cells, a 16th of the
    # picture, raise chelsea's style loss (1.15x the photo's own; stylelab/models/README.md)
    photo = example_image("chelsea").resize((384, 256))  # trained on, so this says nothing of held-out quality
    pictures = [stylize(model, photo, {name: 1.0}) for name in model.styles]
    for name, picture in zip(model.styles, pictures):
        judge = Judge(photo, name, 256)
        assert judge.style(picture) < 0.5 * judge.style(photo), name  # nearer the painting than the photo
    for k, picture in enumerate(pictures):
        for other in pictures[k + 1:]:
            assert (pil_to_rgb(picture) - pil_to_rgb(other)).abs().mean() > 0.03  # ...each style its own way


def test_cli_stylize_blends_and_writes_a_png(model_file, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert cli(["stylize", "--model", str(model_file), "--content", "chelsea", "--size", "40",
                "--mix", "a=1", "--mix", "b=2", "--preserve-color", "--out", str(out)]) == 0
    assert Image.open(out).size == (60, 40) and "wrote" in capsys.readouterr().out
    assert cli(["stylize", "--model", str(model_file), "--content", "chelsea", "--size", "640",
                "--out", str(out)]) == 0
    assert Image.open(out).size == (962, 640)  # enlarged: chelsea is 451x300
    assert cli(["stylize", "--model", str(model_file), "--content", "chelsea", "--mix", "a=lots"]) == 2
    assert "--mix 'a=lots': write STYLE=WEIGHT" in capsys.readouterr().err
    assert cli(["stylize", "--model", str(tmp_path / "none.pt"), "--content", "chelsea"]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_cli_export_onnx(model_file, tmp_path, capsys):
    pytest.importorskip("onnx")
    assert cli(["export-onnx", "--model", str(model_file), "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 10_000
    assert "recoloured" not in capsys.readouterr().out  # a model without colours needs no note


def test_a_checkpoint_is_not_mistaken_for_a_model(tmp_path):
    _train(tmp_path / "m.pt", steps=2)
    with pytest.raises(ValueError, match="not a stylelab fast model"):
        load_model(tmp_path / "m.pt.ckpt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="is not a model file stylelab can read"):
        load_model(tmp_path / "junk.pt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_one_says_so(tmp_path, capsys):
    assert cli(["train-fast", "--style", "swirls", "--steps", "1", "--size", "32", "--device", "cuda",
                "--out", str(tmp_path / "m.pt")]) == 2
    assert "--device cuda: this machine has no CUDA device" in capsys.readouterr().err


def test_on_the_untouched_starter_stylize_says_what_to_implement(model_file, monkeypatch, capsys):
    monkeypatch.setattr("stylelab.impl.reference", lambda file: None)  # a student release: the starter runs
    assert cli(["stylize", "--model", str(model_file), "--content", "chelsea", "--size", "32"]) == 2
    assert "transformer_net: write your code in starter/fast_transfer.py: it is not implemented yet" \
        in capsys.readouterr().err


def test_a_folder_of_unreadable_files_is_refused_not_looped_on(tmp_path):
    (tmp_path / "photos").mkdir()
    for k in range(3):
        (tmp_path / "photos" / f"lfs{k}.jpg").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ImageError, match="100 photos in a row could not be read .3 of 3 files"):
        train_fast(["swirls"], tmp_path / "photos", steps=1, size=32, out=tmp_path / "m.pt", **SMALL)


@pytest.mark.parametrize("args, message", [
    (["--style-weights", "1000"], "5 style layers but 1 style weights"),
    (["--checkpoint-every", "0"], "must be at least 1"),
    (["--size", "30"], "--size 30 must be a multiple of 8"),
    (["--minutes", "0"], "a time budget must be above 0 (--minutes 0)"),
    (["--size", "64", "--tiles", "3"], "--tiles swirls=3: give a whole number of tiles"),
    (["--size", "64", "--tiles", "swirls=2", "4"], "--tiles swirls=2 4: give one number for every style, or STYLE"),
    (["--tiles", "mosaic=2"], "--tiles names mosaic, not among this run's styles (swirls)"),
    (["--content-weight", "swirls=heavy"], "--content-weight swirls=heavy: give one number"),
    (["--noise", "-0.1"], "--noise -0.1: give a standard deviation from 0 (no noise) to 1"),
])
def test_train_fast_refuses_settings_it_cannot_use(args, message, tmp_path, capsys):
    assert cli(["train-fast", "--style", "swirls", "--steps", "1", "--out", str(tmp_path / "m.pt"), *args]) == 2
    assert message in capsys.readouterr().err


def test_the_judge_scores_a_picture_as_the_engine_scores_its_first_evaluation():
    from stylelab.transfer import run_transfer
    from stylelab.yardstick import Judge

    photo = example_image("chelsea").resize((72, 48))
    # the engine's first evaluation, from the photo itself, at its preset, on VGG-19 as trained (in float32)
    first = run_transfer(photo, "swirls", size=48, num_iters=1, init="content", padding="zeros",
                         precision="float32").history
    judge = Judge(photo, "swirls", 48)
    assert judge.content(photo) == 0
    assert judge.style(photo) == pytest.approx(first["style"][0], rel=1e-4)


def test_each_tile_is_judged_as_the_picture_of_that_tile_alone():
    from stylelab.yardstick import Judge

    photo = example_image("coffee").resize((130, 98))  # sides a 4x4 grid does not divide: the rim is left out
    judge = Judge(photo, "mosaic", 98)
    tiles = judge.tiles(photo, grid=4)
    h, w = 98 // 4, 130 // 4
    alone = [judge.style(photo.crop((c * w, r * h, (c + 1) * w, (r + 1) * h))) for r in range(4) for c in range(4)]
    assert tiles == pytest.approx(alone, rel=1e-4)
    assert len(set(round(t, 3) for t in tiles)) == 16  # sixteen different regions, not one tile sixteen times


def test_strength_is_0_for_the_photo_1_for_the_engine_and_sees_an_untouched_region():
    from stylelab.yardstick import Judge, engine_picture, strength

    photo = example_image("chelsea").resize((96, 64))
    judge = Judge(photo, "swirls", 64)
    engine = engine_picture(photo, "swirls", size=64, num_iters=20)
    assert strength(judge, judge.photo, engine).whole == 0 and strength(judge, judge.photo, engine).content == 0
    same = strength(judge, engine, engine)
    assert same.whole == pytest.approx(1) and same.tiles == pytest.approx([1] * 16) and same.content == 1
    # the engine's picture over the left half and the photo over the right: the whole picture gains
    # style, but half of the tiles are the photo's own
    half = judge.photo.copy()
    half.paste(engine.crop((0, 0, 48, 64)), (0, 0))
    s = strength(judge, half, engine)
    assert 0 < s.whole < 1
    assert sorted(s.tiles)[:8] == pytest.approx([0] * 8, abs=1e-6) and s.low_tile == pytest.approx(0, abs=1e-6)
    assert all(t > 0.5 for t in sorted(s.tiles)[8:])


def test_lattice_finds_a_stamp_repeated_every_8_pixels_and_not_a_change_without_one():
    from stylelab.images import to_pil
    from stylelab.yardstick import lattice

    torch.manual_seed(0)
    photo = 0.2 + 0.6 * torch.nn.functional.interpolate(torch.rand(1, 3, 16, 24), size=(128, 192), mode="bilinear")
    stamp = 0.2 * (torch.rand(1, 1, 8, 8) - 0.5)
    stamped = photo + stamp.repeat(1, 3, 16, 24)  # the same 8x8 block everywhere, never clamped
    noise = photo + 0.2 * (torch.rand(1, 1, 128, 192) - 0.5)
    # periods under 32 px: every frequency but 7 x 11 (|k| < 4 cycles down, < 6 across); of them, the
    # multiples of 1/8 cycle per pixel are 8 x 8 less (0, 0): a stamp puts all its power on those 63
    assert lattice(to_pil(stamped), to_pil(photo)) == pytest.approx((128 * 192 - 7 * 11) / 63, rel=0.02)
    assert 0.5 < lattice(to_pil(noise), to_pil(photo)) < 2


def test_guided_upsampling_carries_the_photos_detail_a_plain_enlargement_loses():
    from stylelab.fast import guided_upsample, luma

    torch.manual_seed(0)
    photo = torch.rand(1, 3, 64, 96)  # full of detail at every pixel
    small_photo = torch.nn.functional.interpolate(photo, size=(32, 48), mode="area")
    # a stylised copy that is, per channel, a linear function of the copy's luminance...
    a, b = torch.tensor([0.5, -0.3, 1.2]).view(1, 3, 1, 1), torch.tensor([0.2, 0.6, -0.1]).view(1, 3, 1, 1)
    small_out = a * luma(small_photo) + b
    # ...comes back as the same function of the full-size photo's luminance, sharp
    expected = (a * luma(photo) + b).clamp(0, 1)
    torch.testing.assert_close(guided_upsample(small_out, small_photo, photo, eps=1e-8), expected,
                               atol=1e-3, rtol=0)
    plain = torch.nn.functional.interpolate(small_out, size=(64, 96), mode="bilinear").clamp(0, 1)
    assert (plain - expected).abs().mean() > 0.05


def test_a_model_with_a_work_side_stylises_a_reduced_copy_and_answers_at_full_size(model_file):
    model = load_model(model_file)
    model.work_side = 48
    seen = []
    model.net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    photo = example_image("chelsea").resize((150, 100))
    assert stylize(model, photo, {"a": 1.0}).size == (150, 100)
    assert seen == [(48, 64)]  # 48 x 32 stylised, framed by 8 on every side
    stylize(model, photo.resize((45, 30)), {"a": 1.0})
    assert seen[-1] == (48, 64)  # smaller than the work side: at its own size, framed, padded to 8s


def test_the_network_sees_the_photo_in_a_mirrored_frame_that_is_cropped_off(model_file):
    """The network's own edge, where its convolutions pad, falls in the frame, outside the picture."""
    from stylelab.fast import FRAME

    model = load_model(model_file)
    photo = torch.rand(1, 3, 21, 30)
    framed = np.pad(photo.numpy(), ((0, 0), (0, 0), (FRAME, FRAME + 3), (FRAME, FRAME + 2)), mode="reflect")
    with torch.no_grad():  # 21 + 16 + 3 and 30 + 16 + 2 divide by 8
        expected = model.net(torch.from_numpy(framed), model.mix({"b": 1.0}))[..., FRAME:FRAME + 21, FRAME:FRAME + 30]
    ours = pil_to_rgb(stylize(model, photo, {"b": 1.0}))
    torch.testing.assert_close(ours, expected, atol=1 / 255, rtol=0)  # to_pil rounds to bytes
    unframed = pil_to_rgb(to_pil(model.net(torch.nn.functional.pad(photo, (0, 2, 0, 3), mode="reflect"),
                                           model.mix({"b": 1.0}))[..., :21, :30]))
    assert (unframed - ours).abs().max() > 2 / 255  # the frame changes what the network does at the edge


def test_border_contrast_finds_a_dotted_edge_and_passes_an_even_picture():
    from stylelab.yardstick import border_contrast

    torch.manual_seed(0)
    noise = torch.rand(1, 3, 140, 180)
    # blurred noise, cut from inside a larger field: as busy at its edges as within
    texture = torch.nn.functional.avg_pool2d(noise, 5, stride=1)[..., 8:128, 8:168] * 0.8 + 0.1
    even = border_contrast(to_pil(texture))
    assert all(0.8 < ratio < 1.2 for ratio in even.values()), even
    dotted = texture.clone()
    dotted[..., :2, ::8] = 0.9  # a bright dot every 8 pixels along the top two rows
    ratios = border_contrast(to_pil(dotted))
    assert ratios["top"] > 3 and all(ratios[side] < 1.2 for side in ("bottom", "left", "right")), ratios


def test_recolour_keeps_luminance_through_a_hue_turn_and_greys_at_zero_saturation():
    from stylelab.photos import recolour

    torch.manual_seed(0)
    rgb = 0.3 + 0.4 * torch.rand(3, 16, 16)  # mid colours: nothing clamps
    torch.testing.assert_close(recolour(rgb, 1.0, 1.0, 1.0, 0.0), rgb, atol=1e-5, rtol=0)
    luma = lambda x: 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]  # noqa: E731
    turned = recolour(rgb, 1.0, 1.0, 1.0, 0.25)
    torch.testing.assert_close(luma(turned), luma(rgb), atol=1e-4, rtol=0)
    assert (turned - rgb).abs().mean() > 0.02
    grey = recolour(rgb, 1.0, 1.0, 0.0, 0.0)
    torch.testing.assert_close(grey, luma(rgb).expand(3, -1, -1), atol=1e-4, rtol=0)
    brighter = recolour(rgb, 1.2, 1.0, 1.0, 0.0)
    assert float(luma(brighter).mean()) == pytest.approx(1.2 * float(luma(rgb).mean()), rel=1e-3)


def test_the_built_in_training_set_never_holds_a_held_out_photo():
    from stylelab.photos import HELD_OUT, TRAINING_PHOTOS, Photos

    assert set(HELD_OUT).isdisjoint(TRAINING_PHOTOS) and "astronaut" in HELD_OUT
    photos = Photos(None, 32)
    assert photos.paths == list(TRAINING_PHOTOS)
    generator = torch.Generator().manual_seed(0)
    assert photos.batch(6, generator).shape == (6, 3, 32, 32)
    assert set(photos.cached) <= set(TRAINING_PHOTOS)


def test_each_step_trains_one_style_with_that_styles_own_weights(tmp_path):
    from types import SimpleNamespace

    from solutions import fast_transfer
    from stylelab.objective import FAST, FAST_STYLES

    calls = []

    def train_step(params, optimizer, cnn, batch, grams, style_mix, content_layer, content_weight, *rest):
        calls.append((style_mix.argmax(1).tolist(), content_weight, grams[0].shape[0]))
        return fast_transfer.train_step(params, optimizer, cnn, batch, grams, style_mix, content_layer,
                                        content_weight, *rest)

    impl = SimpleNamespace(**{name: getattr(fast_transfer, name) for name in dir(fast_transfer)
                              if not name.startswith("_")})
    impl.train_step = train_step
    path = train_fast(["swirls", "mosaic"], steps=4, size=32, batch_size=2, out=tmp_path / "m.pt",
                      log=lambda line: None, impl=impl, **SMALL)
    swirls, mosaic = FAST.content_weight, FAST_STYLES["mosaic"].content_weight
    assert swirls != mosaic
    assert calls == [([0, 0], swirls, 1), ([1, 1], mosaic, 1), ([0, 0], swirls, 1), ([1, 1], mosaic, 1)]
    per_style = load_model(path).training["per_style"]
    assert per_style["mosaic"]["content_weight"] == mosaic and per_style["swirls"]["content_weight"] == swirls


def test_tiles_and_a_content_weight_given_for_one_style_change_that_style_alone(tmp_path):
    """train-fast --tiles mosaic=2 --content-weight mosaic=240: swirls keeps one tile and its own weight."""
    from types import SimpleNamespace

    from solutions import fast_transfer
    from stylelab.objective import FAST

    calls = []

    def train_step(params, optimizer, cnn, batch, grams, style_mix, content_layer, content_weight, style_layers,
                   style_weights, *rest):
        calls.append((style_mix[0].argmax().item(), cnn[0].tiles, content_weight, style_weights[0]))
        return fast_transfer.train_step(params, optimizer, cnn, batch, grams, style_mix, content_layer,
                                        content_weight, style_layers, style_weights, *rest)

    impl = SimpleNamespace(**{name: getattr(fast_transfer, name) for name in dir(fast_transfer)
                              if not name.startswith("_")})
    impl.train_step = train_step
    path = train_fast(["swirls", "mosaic"], steps=2, size=32, batch_size=2, out=tmp_path / "m.pt",
                      log=lambda line: None, impl=impl, tiles={"mosaic": 2}, content_weight={"mosaic": 240.0},
                      **SMALL)
    first = FAST.style_weights[0]  # mosaic's own objective differs from FAST in its content weight alone
    assert calls == [(0, 1, FAST.content_weight, first), (1, 2, 240.0, first / 4)]
    training = load_model(path).training
    assert training["tiles"] == {"mosaic": 2} and training["per_style"]["mosaic"]["content_weight"] == 240



def test_the_face_witness_finds_the_astronauts_face_and_not_in_a_texture_or_a_blur():
    from stylelab.yardstick import faces, keeps_face

    photo = example_image("astronaut")
    top, left, height, width = max(faces(photo), key=lambda box: box[2])
    assert 40 < top < 120 and 150 < left < 220 and height > 80  # her face, not the patches on her suit
    assert keeps_face(photo, photo)
    assert not keeps_face(example_image("gravel").resize(photo.size), photo)
    blurred = photo.resize((32, 32)).resize(photo.size)  # a face too blurred to have eyes
    assert not keeps_face(blurred, photo)


@pytest.mark.parametrize("size", [256, 768])
def test_the_shipped_styles_paint_no_line_along_the_borders(size):
    """Each side of each stylised held-out photo is no busier, against the rows inside, than the photo's own
    side (border_contrast): the network changes the photo, so a photo's busy edge (the
    astronaut's flag: 1.44 on the left at 256 px) stays busy, and only what the network adds counts."""
    from stylelab.images import resize
    from stylelab.photos import HELD_OUT
    from stylelab.yardstick import border_contrast

    model = load_model()
    for photo in HELD_OUT:
        own = border_contrast(to_pil(resize(pil_to_rgb(example_image(photo)), size)))
        for style in model.styles:
            ratios = border_contrast(stylize(model, example_image(photo), {style: 1.0}, size=size))
            # a network trained without LOSS_MARGIN paints a dotted line: 1.3 to 1.75 where the photos have 0.5 to 0.8
            lines = {side: round(r, 2) for side, r in ratios.items() if r > BORDER_LIMIT * max(1.0, own[side])}
            assert not lines, (photo, style, lines, own)


@pytest.mark.parametrize("style", ["swirls", "mosaic", "shards"])
def test_each_shipped_style_keeps_the_held_out_face(style):
    from stylelab.yardstick import keeps_face

    model = load_model()
    photo = example_image("astronaut")  # held out: the shipped network must never have seen it
    assert keeps_face(stylize(model, photo, {style: 1.0}), photo)
