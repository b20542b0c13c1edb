"""What leaves the instructor's hands: a student bundle that leaks no solution, and a
Gradescope autograder that grades a submission where Gradescope would."""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.release import gradescope_zip, student_bundle
from tools_markers import solution_bodies

ROOT = Path(__file__).resolve().parent.parent
# idioms that solution bodies share with any PyTorch code, and give nothing away
GENERIC = {"with torch.no_grad():"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return student_bundle(tmp_path_factory.mktemp("release") / "stylelab")


def test_bundle_holds_what_students_need_and_nothing_of_the_instructors(bundle):
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    for needed in ("starter/style_transfer.py", "starter/fast_transfer.py", "stylelab/transfer.py",
                   "stylelab/fast.py", "stylelab/models/fast3.pt", "labs/05_fast_style_transfer.ipynb",
                   "grader/checks.py",
                   "grader/reference/style_transfer_checks.pt", "environment.yml", "pyproject.toml",
                   "README.md", "Makefile", "tools/requirements.py"):
        assert needed in files
    for secret in ("solutions/", "grader/hidden.py", "grader/mistakes.py", "grader/cases.py",
                   "grader/make_reference.py", "grader/grade.py", "grader/sandbox.py", "grader/release.py",
                   "tests/", "bench/", "tools/make_starter.py", ".ci/"):
        assert not any(f.startswith(secret) for f in files), secret


def test_no_solution_body_appears_anywhere_in_the_bundle(bundle):
    bodies = solution_bodies(ROOT / "solutions")
    assert len(bodies) >= 6
    texts = {p: p.read_bytes().decode("utf-8", errors="replace") for p in bundle.rglob("*") if p.is_file()}
    for (source, function), lines in bodies.items():
        distinctive = [line for line in lines if len(line) >= 16 and not line.startswith("#")
                       and line not in GENERIC]
        assert distinctive, function
        for path, text in texts.items():
            leaked = [line for line in distinctive if line in text]
            assert not leaked, f"{path} holds {function}'s solution line {leaked[0]!r}"


def test_bundle_checks_run_and_fail_as_not_implemented(bundle):
    run = subprocess.run([sys.executable, "-m", "grader", "check"], cwd=bundle, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(bundle)})
    assert run.returncode == 1 and run.stdout.count("not implemented yet") == 15, run.stdout + run.stderr
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "x"], cwd=bundle, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(bundle)})
    assert run.returncode == 2 and "is for instructors" in run.stderr


def test_gradescope_autograder_grades_a_submission(tmp_path):
    archive = gradescope_zip(tmp_path / "autograder.zip")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        assert {"setup.sh", "run_autograder", "source/grader/grade.py", "source/solutions/style_transfer.py"} <= set(names)
        assert all(z.getinfo(n).external_attr >> 16 & 0o111 for n in ("setup.sh", "run_autograder"))
        z.extractall(root / "source-unpacked")
    source = root / "source-unpacked"
    (root / "source").symlink_to(source / "source")
    (root / "submission").mkdir()
    partial = (ROOT / "starter" / "style_transfer.py").read_text()
    partial = re.sub(r"def tv_loss.*?END OF YOUR CODE[^\n]*\n", "", partial, flags=re.S)
    partial += "\n\ndef tv_loss(img, tv_weight):\n    return tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum()" \
               " + ((img[..., 1:] - img[..., :-1]) ** 2).sum())\n"
    (root / "submission" / "style_transfer.py").write_text(partial)
    script = source / "run_autograder"
    run = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable})
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 3
    tv = [t for t in results["tests"] if t["name"].startswith("tv_loss")]
    assert [t["status"] for t in tv] == ["passed", "passed"]
