"""The driver and the command line, end to end on tiny images with the real VGG-19."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from stylelab import cli
from stylelab.examples import example_image
from stylelab.objective import PRESETS
from stylelab.transfer import run_transfer, snapshots


def test_run_transfer_stylises_builtin_images():
    result = run_transfer("chelsea", "mosaic", size=32, num_iters=6)
    assert result.image.size == (48, 32) and result.image.mode == "RGB"  # chelsea is 451x300
    assert result.history["total"][-1] < result.history["total"][0]
    assert result.settings["content_layer"] == "relu4_2" and result.settings["num_iters"] == 6


def test_run_transfer_accepts_files_and_a_student_module(tmp_path):
    from solutions import style_transfer as module

    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "green.png")
    result = run_transfer(tmp_path / "green.png", "swirls", size=24, num_iters=2, impl=module,
                          optimizer="adam", style_layers=("relu1_1", "relu2_1"),
                          style_weights=(2500.0, 600.0))
    assert result.image.size == (32, 24) and len(result.history["style"]) == 2


def test_run_transfer_rejects_bad_settings():
    with pytest.raises(TypeError, match="style_weight"):
        run_transfer("chelsea", "mosaic", size=16, num_iters=1, style_weight=3)
    with pytest.raises(ValueError, match="one weight per layer"):
        run_transfer("chelsea", "mosaic", size=16, num_iters=1, style_weights=(1.0,))
    with pytest.raises(KeyError, match="relu4_2"):
        run_transfer("chelsea", "mosaic", size=16, num_iters=1, content_layer="relu9_1")
    assert set(PRESETS) == {"vgg19", "squeezenet1_1"}


def test_snapshots_callback_writes_every_nth_step(tmp_path):
    run_transfer("chelsea", "mosaic", size=16, num_iters=4,
                 callback=snapshots(tmp_path / "snaps", every=2))
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["step_0002.png", "step_0004.png"]


def test_cli_transfer_writes_png_and_history(tmp_path, capsys):
    out = tmp_path / "result.png"
    code = cli.main(["transfer", "--content", "coffee", "--style", "shards", "--size", "24",
                     "--num-iters", "3", "--out", str(out), "--snapshot-every", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "step    3/3" in printed
    assert Image.open(out).size == (36, 24)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert len(saved["history"]["total"]) == 3 and saved["settings"]["style_layers"][0] == "relu1_1"
    assert (tmp_path / "result" / "step_0003.png").exists()


def test_cli_texture_synthesis(tmp_path, capsys):
    out = tmp_path / "texture.png"
    assert cli.main(["transfer", "--style", "brick", "--content-weight", "0", "--init", "random",
                     "--size", "24", "--num-iters", "2", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"


def test_cli_reports_a_missing_file_without_a_traceback(tmp_path, capsys):
    code = cli.main(["transfer", "--content", str(tmp_path / "holiday.jpg"), "--size", "16",
                     "--num-iters", "1", "--out", str(tmp_path / "x.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert "holiday.jpg: no such file" in err and "Traceback" not in err


def test_cli_lists_layers_and_examples(capsys):
    assert cli.main(["layers"]) == 0
    assert " 22  relu4_2" in capsys.readouterr().out
    assert cli.main(["examples"]) == 0
    listing = capsys.readouterr().out
    assert "astronaut" in listing and "swirls" in listing and "CC0" in listing


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_engine_and_the_fast_network_run_on_a_gpu():
    """Where torch sees a GPU the engine runs there by default (scipy's L-BFGS-B stays on the CPU), and
    a fast model moved there stylises there; both paint what the CPU paints, within float32's rounding."""
    from stylelab.fast import load_model, stylize

    on_gpu = run_transfer("astronaut", "swirls", size=64, num_iters=10)
    on_cpu = run_transfer("astronaut", "swirls", size=64, num_iters=10, device="cpu", precision="float32",
                          channels_last=False)
    assert on_gpu.settings["device"].startswith("cuda") and on_cpu.settings["device"] == "cpu"
    assert abs(on_gpu.history["total"][-1] / on_cpu.history["total"][-1] - 1) < 0.05
    model = load_model(channels_last=False)
    cpu_picture = np.asarray(stylize(model, example_image("astronaut"), size=128), dtype=float)
    model.net.to("cuda")
    gpu_picture = np.asarray(stylize(model, example_image("astronaut"), size=128), dtype=float)
    assert np.abs(gpu_picture - cpu_picture).mean() < 1.0
