"""The nbval route: a notebook's check cells store their PASS lines, and
`pytest --nbval-lax` with the grader's sanitizer passes on right code and fails on stubs."""

import os
import subprocess
import sys

import nbformat
import pytest
from helpers import ROOT



def notebook(path):
    cells = [nbformat.v4.new_code_cell("from grader import check")]
    for exercise, points in (("gram_matrix", 3), ("tv_loss", 3)):
        # nbval compares only cells that were run: a stored output needs an execution count
        cell = nbformat.v4.new_code_cell(f"# NBVAL_CHECK_OUTPUT\ncheck({exercise!r})", execution_count=1)
        # the stored output is what the solutions print; details differ per machine and are masked
        cell.outputs = [nbformat.v4.new_output(
            "stream", name="stdout",
            text=f"{exercise}: PASS ({points}/{points} points)\n  details: relative error 0.00e+00\n")]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell("print('free-form output, compared laxly: not at all')"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


@pytest.mark.parametrize("impl,expected", [("solutions", 0), ("starter", 1)])
def test_nbval_lax_compares_the_stored_pass_lines(tmp_path, impl, expected):
    notebook(tmp_path / "lab.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "--nbval-sanitize-with", str(ROOT / "grader" / "nbval_sanitize.cfg"), "--rootdir", str(tmp_path),
         "-o", "addopts=", str(tmp_path / "lab.ipynb")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STYLELAB_IMPL": impl})
    assert run.returncode == expected, run.stdout[-3000:]
    if impl == "starter":
        assert "2 failed" in run.stdout and "not implemented yet" in run.stdout
    else:
        assert "4 passed" in run.stdout
