"""The lab notebooks: committed clean, checks on every exercise, and they run top to bottom
with the solutions (quick mode) while every check cell fails on the untouched starter."""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from grader.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
CHECK = re.compile(r"# NBVAL_CHECK_OUTPUT\ncheck\('(\w+)'\)$")


def cells(path):
    return json.loads(path.read_text())["cells"]


def check_cells(path):
    """{nbval's test name: exercise} for the check cells of one notebook."""
    found, number = {}, 0
    for cell in cells(path):
        if cell["cell_type"] != "code":
            continue
        match = CHECK.match("".join(cell["source"]))
        if match:
            found[f"Cell {number}"] = match.group(1)
        number += 1
    return found


def test_there_are_labs():
    assert [p.stem[:2] for p in LABS][:3] == ["01", "02", "03"]


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    notebook = json.loads(path.read_text())
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}
    for cell in notebook["cells"]:
        assert cell.get("metadata", {}) == {}, "stray cell metadata"
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        match = CHECK.match(source)
        if match:
            # nbval compares only cells that ran, so check cells keep a count and their PASS line
            assert cell["execution_count"] == 1
            [output] = cell["outputs"]
            text = "".join(output["text"])
            assert re.fullmatch(rf"{match.group(1)}: PASS \(\d+/\d+ points\)\n  details: .*\n", text)
        else:
            assert cell["execution_count"] is None and cell["outputs"] == [], source[:60]
        assert "sys.path" not in source or source.startswith("# Setup: find the kit")


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_bootstrap(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]).startswith("# Setup: find the kit")


def test_every_exercise_has_a_check_cell():
    checked = [e for path in LABS for e in check_cells(path).values()]
    assert sorted(checked) == sorted(EXERCISES)


def run_labs(impl, tmp_path):
    """`pytest --nbval-lax labs/`, the command an instructor types, with a report to read back."""
    report = tmp_path / f"{impl}.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "labs/", "-p", "no:cacheprovider",
         "--nbval-cell-timeout", "600", f"--junitxml={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "STYLELAB_IMPL": impl, "STYLELAB_QUICK": "1", "MPLBACKEND": "agg"})
    failed = {(Path(case.get("classname", "")).name, case.get("name"))
              for case in ElementTree.parse(report).iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None}
    return run, failed


def test_labs_run_top_to_bottom_with_the_solutions(tmp_path):
    run, failed = run_labs("solutions", tmp_path)
    assert run.returncode == 0 and not failed, run.stdout[-4000:]


def test_every_check_cell_fails_on_the_untouched_starter(tmp_path):
    run, failed = run_labs("starter", tmp_path)
    assert run.returncode == 1
    for path in LABS:
        for name in check_cells(path):
            assert any(path.stem in where and name == cell for where, cell in failed), \
                f"{path.name} {name} passed on the starter"


def test_transfer_panel_runs_the_students_code():
    from stylelab.lab import exercises, transfer_panel

    panel = transfer_panel(exercises("solutions"))
    panel.controls["size"].value, panel.controls["num_iters"].value = 32, 2
    panel.button.click()
    assert panel.result.image.size == (48, 32)  # chelsea is 451 x 300
    assert len(panel.result.history["total"]) == 2


def test_mix_panel_follows_its_sliders():
    from stylelab.examples import example_image
    from stylelab.fast import load_model
    from stylelab.lab import mix_panel

    model = load_model()
    panel = mix_panel(model, example_image("chelsea"), size=64)
    panel.render()
    first = panel.result
    assert first.size == (64, 43)
    panel.sliders[model.styles[1]].value = 1.0  # observed: the picture redraws itself
    assert panel.result is not first and panel.result.tobytes() != first.tobytes()
