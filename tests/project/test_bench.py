"""Every benchmark says which machine its figures are from: speed ratios turn around from one CPU to the next."""

import re
from pathlib import Path

import torch

from bench import machine
from helpers import ROOT

BENCH = ROOT / "bench"


def test_every_bench_prints_the_machine_line():
    benches = sorted(p for p in BENCH.glob("bench_*.py"))
    assert len(benches) >= 7
    for path in benches:
        assert "print(describe())" in path.read_text(), f"{path.name} prints no CPU line (bench.machine.describe)"


def test_the_machine_line_names_this_cpu_its_flags_and_torch():
    line = machine.describe()
    model, flags = machine.cpu()
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""  # read here independently of machine.cpu
    named, listed = re.search(r"^model name\s*:\s*(.+)$", text, re.M), re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    if named:  # x86 Linux; ARM's cpuinfo has neither line
        assert model == named.group(1).strip()
    if listed:
        assert flags == [f for f in machine.FLAGS if f in listed.group(1).split()]
    assert line.startswith(f"CPU: {model} (")
    assert f"torch {torch.__version__}" in line and f"{torch.get_num_threads()} threads" in line


def test_the_engine_bench_runs_each_of_its_rows(tmp_path, monkeypatch):
    """Each stylelab row of bench_transfer, on a tiny picture: the settings it hands the driver are ones the
    driver takes."""
    from bench.bench_transfer import time_stylelab
    from stylelab.examples import example_image

    monkeypatch.chdir(tmp_path)  # it saves its pictures under out/bench, which main() makes
    (tmp_path / "out" / "bench").mkdir(parents=True)
    photo, painting = example_image("chelsea").resize((48, 32)), example_image("swirls").resize((48, 48))
    for row in ({}, {"precision": "float32", "channels_last": True}, {"padding": "zeros"}, {"student": True},
                {"student": True, "precision": "float32"}):
        assert time_stylelab(photo, painting, 2, **row) > 0


def test_the_quality_bench_sets_bfloat16_against_float32s_own_spread(tmp_path, monkeypatch, capsys):
    """--spread runs each precision under four orders of summation and compares medians: here with 2
    evaluations at 32 px on a built-in pair, so that the figures are real and the run is short."""
    from bench import bench_quality
    from stylelab.examples import example_image

    painting = tmp_path / "swirls.png"
    example_image("swirls").save(painting)
    monkeypatch.setattr(bench_quality, "SPREAD_PAIRS", [("chelsea", painting)])
    bench_quality.spread(2, 32, None)
    out = capsys.readouterr().out
    line = re.search(r"chelsea, swirls.png: float32 content 1.000x \(([\d.]+)-([\d.]+)\); float32 style 1.000x .*"
                     r"bfloat16 content ([\d.]+)x .*; bfloat16 style ([\d.]+)x", out)
    assert line and float(line.group(1)) <= 1.0 <= float(line.group(2)), out  # the median within its own range
    assert all(float(line.group(k)) > 0 for k in (3, 4))
    verdict = re.search(r"^bfloat16's median above float32's median on (\d) of 2 terms, above float32's worst run "
                        r"on (\d)$", out, re.M)
    assert verdict and int(verdict.group(2)) <= int(verdict.group(1)), out  # beyond the worst run is above the median
    assert out.startswith("CPU: ")
