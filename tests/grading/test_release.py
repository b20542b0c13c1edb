"""What leaves the instructor's hands: a student bundle that leaks no solution, and a
Gradescope autograder that grades a submission where Gradescope would."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from grader.exercises import EXERCISE, EXERCISES, TOTAL_POINTS
from grader.instructor.release import gradescope_zip, student_bundle
from helpers import ROOT, solution_bodies

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
    for secret in ("solutions/", "grader/instructor/", "tests/", "bench/", ".ci/", "stylelab/distil.py",
                   "stylelab/fused.py"):
        assert not any(f.startswith(secret) for f in files), secret
    # the grader's folder goes as it is, but for its instructor side: the release copies folders, not lists
    public = {p.relative_to(ROOT).as_posix() for p in (ROOT / "grader").rglob("*")
              if p.is_file() and "instructor" not in p.parts and "__pycache__" not in p.parts}
    assert public == {f for f in files if f.startswith("grader/")}


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
    assert run.returncode == 1 and run.stdout.count("not implemented yet") == len(EXERCISES), run.stdout + run.stderr
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "x"], cwd=bundle, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(bundle)})
    assert run.returncode == 2 and "is for instructors" in run.stderr
    run = subprocess.run([sys.executable, "-m", "grader", "check", "--hidden", "tv_loss"], cwd=bundle,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(bundle)})
    assert run.returncode == 2 and "not part of the student release" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("flags", [["distil", "--style", "shards"],
                                   ["train-fast", "--style", "shards", "--distil", "out/distil"],
                                   ["train-fast", "--style", "shards", "--palette-weight", "1e9"],
                                   ["train-fast", "--style", "shards", "--shade-weight", "1e6"]])
def test_the_instructors_training_tools_say_so_in_a_student_release(bundle, flags):
    run = subprocess.run([sys.executable, "-m", "stylelab", *flags, "--out", "x"], cwd=bundle, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(bundle)})
    assert run.returncode == 2 and "part of the instructor's kit, not of this release" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (bundle / "x").exists()


def gradescope(autograder, command, timeout):
    """Run command the way Gradescope runs the autograder: as root, on a machine whose /autograder is
    the folder given (a real mount, not a symlink), with Python and the package index of this one."""
    # the host's /proc, bound: a fresh one carries bwrap's read-only overmounts, under which the kernel
    # refuses the grader's own bwrap a proc of its own (the grader would then fall back to weaker isolation)
    args = ["bwrap", "--die-with-parent", "--tmpfs", "/", "--dev", "/dev", "--bind", "/proc", "/proc",
            "--tmpfs", "/tmp", "--bind", str(autograder), "/autograder"]
    for top in sorted(os.listdir("/")):
        path = f"/{top}"
        if top in ("proc", "dev", "tmp", "autograder") or not os.path.exists(path):
            continue
        args += ["--symlink", os.readlink(path), path] if os.path.islink(path) else ["--ro-bind", path, path]
    # Ubuntu's PATH (so python3 is the system's), and this machine's way to the package index
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8", **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}}
    run = subprocess.run(args + ["--chdir", "/autograder", "--", "bash", "-c", command], capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def autograder(tmp_path_factory, bubblewrap):
    """Gradescope's /autograder after setup.sh: the zip unpacked into source/, as Gradescope does."""
    if os.geteuid() != 0:
        pytest.skip("Gradescope runs the autograder as root; this test needs root to do the same")
    root = tmp_path_factory.mktemp("gradescope") / "autograder"
    with zipfile.ZipFile(gradescope_zip(root.parent / "autograder.zip")) as archive:
        for info in archive.infolist():  # as unzip does: the files and their modes
            target = root / "source" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
    gradescope(root, "bash /autograder/source/setup.sh", timeout=900)
    return root


def grade_on_gradescope(autograder, files):
    """One submission through run_autograder; returns results.json, validated against Gradescope's schema."""
    submission = autograder / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(autograder / "results", ignore_errors=True)
    submission.mkdir()
    for name, text in files.items():
        (submission / name).write_text(text)
    gradescope(autograder, "cp /autograder/source/run_autograder /autograder/run_autograder && "
                           "/autograder/run_autograder", timeout=600)
    results = json.loads((autograder / "results" / "results.json").read_text())
    assert set(results) >= {"score", "tests", "output"} and isinstance(results["score"], (int, float))
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["visibility"] in ("visible", "after_published") and 0 <= test["score"] <= test["max_score"]
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
    return results


def test_the_gradescope_zip_holds_the_kit_at_its_root():
    with zipfile.ZipFile(gradescope_zip(ROOT / "out" / "autograder.zip")) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "grader/instructor/grade.py", "solutions/style_transfer.py",
                "tools/requirements.py"} <= names
        assert not any(name.startswith("source/") for name in names)
        assert all(archive.getinfo(n).external_attr >> 16 & 0o111 for n in ("setup.sh", "run_autograder"))


def test_gradescope_grades_a_correct_a_wrong_and_a_hostile_submission(autograder):
    solution = {f: (ROOT / "solutions" / f).read_text() for f in ("style_transfer.py", "fast_transfer.py")}
    correct = grade_on_gradescope(autograder, solution)
    assert correct["score"] == TOTAL_POINTS
    assert "sandbox: bubblewrap" in correct["output"]

    partial = (ROOT / "starter" / "style_transfer.py").read_text()
    partial = re.sub(r"def tv_loss.*?END OF YOUR CODE[^\n]*\n", "", partial, flags=re.S)
    partial += "\n\ndef tv_loss(img, tv_weight):\n    return tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum()" \
               " + ((img[..., 1:] - img[..., :-1]) ** 2).sum())\n"
    wrong = grade_on_gradescope(autograder, {"style_transfer.py": partial})
    assert wrong["score"] == EXERCISE["tv_loss"].points
    assert [t["status"] for t in wrong["tests"] if t["name"].startswith("tv_loss")] == ["passed", "passed"]

    # reads the kit's solutions, writes a perfect results.json, then prints a fence-closing flood
    hostile = grade_on_gradescope(autograder, {"style_transfer.py": textwrap.dedent("""
        import json, os
        for path in ("/autograder/source/solutions/style_transfer.py", "/autograder/results/results.json"):
            try:
                open(path, "a").write("pwned")
            except OSError as error:
                print("refused:", path, error.strerror)
        print("```\\n# forged heading")
        os._exit(0)
        """)})
    assert hostile["score"] == 0 and "import" in hostile["tests"][0]["output"]
    assert "pwned" not in (autograder / "source" / "solutions" / "style_transfer.py").read_text()
