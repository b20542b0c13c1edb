"""The lab notebooks: committed clean, checks on every exercise, and they run top to bottom
with the solutions (quick mode) while every check cell fails on the untouched starter."""

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from grader.exercises import EXERCISE, EXERCISES, FILES, RECORDS
from helpers import ROOT

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
    """What students open: no outputs, no counts, so no check cell says PASS before they write a line."""
    notebook = json.loads(path.read_text())
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}
    for cell in notebook["cells"]:
        assert cell.get("metadata", {}) == {}, "stray cell metadata"
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        assert cell["execution_count"] is None and cell["outputs"] == [], source[:60]
        assert "sys.path" not in source or source.startswith("# Setup: find the kit")


def test_the_instructors_copy_stores_the_pass_lines_nbval_compares(tmp_path):
    from grader.instructor.release import instructor_labs

    copy = instructor_labs(tmp_path / "instructor")
    for path in LABS:
        stored = json.loads((copy / path.name).read_text())
        for cell in stored["cells"]:
            source = "".join(cell["source"])
            match = CHECK.match(source)
            if match:
                assert cell["execution_count"] == 1
                [output] = cell["outputs"]
                text = "".join(output["text"])
                assert re.fullmatch(rf"{match.group(1)}: PASS \((\d+)/\1 points\)\n  details: .*\n", text)
            elif cell["cell_type"] == "code":
                assert cell["outputs"] == []
            if source.startswith("# Setup"):  # it finds this kit from wherever the copy is
                assert f"pathlib.Path({str(ROOT)!r})," in source
        assert "conftest.py" in {p.name for p in copy.iterdir()}


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_bootstrap(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]).startswith("# Setup: find the kit")


def test_every_exercise_has_a_check_cell():
    checked = [e for path in LABS for e in check_cells(path).values()]
    assert sorted(checked) == sorted(EXERCISES)


def run_labs(impl, tmp_path, labs=LABS):
    """`pytest --nbval-lax` on the instructor's copy of labs, the command an instructor types; returns the
    run and the (notebook, cell) pairs that failed, read back from its report."""
    from grader.instructor.release import instructor_labs

    copy = tmp_path / "instructor"
    if not copy.exists():
        instructor_labs(copy)
    report = tmp_path / f"{Path(str(impl)).name}.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", *(str(copy / path.name) for path in labs),
         "-p", "no:cacheprovider", "--nbval-cell-timeout", "600", f"--junitxml={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "STYLELAB_IMPL": str(impl), "STYLELAB_QUICK": "1", "MPLBACKEND": "agg"})
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


def test_an_unnormalised_gram_matrix_fails_only_its_own_cell(tmp_path):
    """The labs whose checks build on gram_matrix (2 to 4), graded by nbval on a student with that one mistake."""
    folder = tmp_path / "alice"
    shutil.copytree(ROOT / "solutions", folder)
    path = folder / "style_transfer.py"
    path.write_text(path.read_text().replace("        gram = gram / (C * H * W)\n", "        gram = gram * 1.0\n"))
    labs = [p for p in LABS if p.stem[:2] in ("02", "03", "04")]
    run, failed = run_labs(folder, tmp_path, labs)
    gram_cell = next(name for name, exercise in check_cells(LABS[1]).items() if exercise == "gram_matrix")
    assert len(failed) == 1, (failed, run.stdout[-3000:])
    [(where, cell)] = failed
    assert LABS[1].stem in where and cell == gram_cell


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
    shown = bytes(panel.picture.value)
    assert shown.startswith(b"\x89PNG")
    panel.sliders[model.styles[1]].value = 1.0  # observed: the picture redraws itself
    assert panel.result is not first and panel.result.tobytes() != first.tobytes()
    assert bytes(panel.picture.value) != shown
    for slider in panel.sliders.values():
        slider.value = 0.0
    assert panel.status.value == "move at least one slider above 0"


def test_lab_5_never_stalls_headless(tmp_path):
    """An Output widget in the mix panel stalls nbclient in 2 of 3 runs, the kernel idle (stylelab.lab.mix_panel);
    run it twice."""
    for _ in range(2):
        notebook = execute(LABS[4], "solutions", timeout=300)  # a stalled cell raises CellTimeoutError
        assert "train_step: PASS" in printed(notebook)


def partial_folder(folder, last_lab):
    """A student's folder in which the exercises of labs 1..last_lab are written and the rest are stubs."""
    from grader.instructor.starter import stub_source

    folder.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        done = [r.name for r in RECORDS if r.file == file and r.lab <= last_lab]
        text = stub_source((ROOT / "solutions" / file).read_text(), file, keep=done)
        (folder / file).write_text(text)
    return folder


def execute(path, impl, timeout=600):
    """Run one notebook top to bottom in a fresh kernel, as JupyterLab would; returns it with its outputs."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    environment = {"STYLELAB_IMPL": str(impl), "STYLELAB_QUICK": "1", "MPLBACKEND": "agg"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)  # the kernel inherits them
    try:
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def printed(notebook):
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))


@pytest.mark.parametrize("lab", [1, 2, 3, 4, 5], ids=lambda lab: f"lab{lab}")
def test_a_lab_runs_on_the_exercises_done_so_far(tmp_path, lab):
    """A student who has written labs 1..lab's exercises, and nothing later, runs lab `lab` top to bottom."""
    folder = partial_folder(tmp_path / "student", lab)
    later = [r.name for r in RECORDS if r.lab > lab]
    assert all(f"def {name}(" in (folder / EXERCISE[name].file).read_text() for name in later)
    assert sum((folder / file).read_text().count("raise NotImplementedError") for file in FILES) == len(later)
    notebook = execute(LABS[lab - 1], folder)
    text = printed(notebook)
    for exercise in check_cells(LABS[lab - 1]).values():
        assert re.search(rf"^{exercise}: PASS ", text, re.M), text[-2000:]
    assert "not implemented" not in text


def test_the_reference_pictures_are_the_ones_the_code_draws():
    """Each marked figure has its picture, shown under it, small, and drawn from the code there is now."""
    from tools import make_lab_references as references

    drawn = set()
    for path in LABS:
        cells = json.loads(path.read_text())["cells"]
        for k, cell in enumerate(cells):
            match = references.MARKER.match("".join(cell["source"])) if cell["cell_type"] == "code" else None
            if not match:
                continue
            name = match.group(1)
            drawn.add(name)
            picture = ROOT / "labs" / "reference" / name
            assert picture.is_file() and picture.stat().st_size < 300_000, name
            assert f"![the reference picture](reference/{name})" in "".join(cells[k + 1]["source"])
    assert drawn and {p.name for p in (ROOT / "labs" / "reference").glob("*.png")} == drawn
    assert not references.stale(LABS), "the pictures are stale: run python tools/make_lab_references.py"


def _setup_cell_search(cwd):
    """Run the first part of lab 1's setup cell (up to where it puts the kit on the path) in cwd."""
    source = "".join(cells(LABS[0])[1]["source"])
    search = source[:source.index("sys.path.insert")] + "print(ROOT)\n"
    return subprocess.run([sys.executable, "-c", search], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_setup_cell_finds_the_kit_cloned_into_colabs_content_folder(tmp_path):
    """Colab opens a notebook in /content; the kit was cloned into a folder there."""
    content = tmp_path / "content"
    kit = content / "stylelab-course"
    shutil.copytree(ROOT / "stylelab", kit / "stylelab", ignore=shutil.ignore_patterns("models", "__pycache__"))
    (content / "sample_data").mkdir()  # what Colab puts there on its own
    run = _setup_cell_search(content)
    assert run.returncode == 0 and run.stdout.strip() == str(kit), run.stderr
    run = _setup_cell_search(kit / "stylelab")  # and from inside the kit, as make lab opens it
    assert run.stdout.strip() == str(kit)


def test_a_notebook_copied_out_of_the_kit_says_what_to_do(tmp_path):
    run = _setup_cell_search(tmp_path)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("FileNotFoundError: this notebook cannot find the stylelab kit")
    assert "git clone" in last and "requirements.py" in last and "StopIteration" not in run.stderr
