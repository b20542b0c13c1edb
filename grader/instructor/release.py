"""Build what leaves the instructor's hands (instructors only).

- `student_bundle(out)`: what students get: labs, starter, the stylelab package,
  the grader folder without its instructor/ side (the public checks and their
  reference data), the environment files, and the student edition's README and
  Makefile (templates/). No solutions/, no hidden checks, no mistake catalogue,
  no grading tools. tests/grading/test_release.py scans it for any solution body.
- `instructor_labs(out)`: the instructor's copy of the labs, for grading
  notebooks with nbval: each check cell stores the PASS line a correct answer
  prints, which `pytest --nbval-lax` compares with what the student's code
  prints. The labs themselves are committed and released clean (nbgrader's
  way), so a student never sees a verdict before writing a line.
- `gradescope_zip(out)`: the autograder Gradescope runs, laid out as Gradescope
  documents it: the zip's root holds setup.sh, run_autograder (templates/) and the kit;
  Gradescope unpacks it into /autograder/source, runs setup.sh there once (as
  root, on Ubuntu), then for each submission copies run_autograder to
  /autograder/run_autograder and runs it, which grades /autograder/submission
  into /autograder/results/results.json. It carries the whole kit, solutions
  included, since the hidden checks are computed from them; Gradescope keeps it
  from students. tests/grading/test_release.py runs it in that layout under bubblewrap.
"""

import json
import re
import shutil
import stat
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "templates"  # the files a release writes
STUDENT_FILES = ("environment.yml", "pyproject.toml", "LICENSE", "IMAGES.md", "tools/requirements.py")
# grader/ goes whole but for grader/instructor/, the instructor's side (the student's release boundary)
STUDENT_TREES = ("starter", "stylelab", "labs", "grader")
# what a release leaves out of those trees: the grader's instructor side, and stylelab's
# distil.py, whose training step is lab 5's train_step written out, and fused.py, which
# writes out transformer_net's layers (stylelab.fast runs it for the reference solutions only)
INSTRUCTORS_ONLY = ("instructor", "distil.py", "fused.py")


def _copy_tree(source, target):
    if source.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc",
                                                                      "*.ckpt", *INSTRUCTORS_ONLY))


def student_bundle(out):
    """Write the student release into out (which must not exist yet); returns its Path."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; give a new folder for the release")
    out.mkdir(parents=True)
    for tree in STUDENT_TREES:
        _copy_tree(ROOT / tree, out / tree)
    for name in STUDENT_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, out / name)
    for name in ("README.md", "Makefile"):  # the student edition's own
        shutil.copy(TEMPLATES / name, out / name)
    return out


CHECK_CELL = re.compile(r"# NBVAL_CHECK_OUTPUT\ncheck\('(\w+)'\)$")
KIT_SEARCH = 'HERE, *HERE.parents, *sorted(HERE.glob("*/"))'  # the setup cells' search for the kit

def instructor_labs(out):
    """Write the labs with the PASS lines nbval compares into out (a new folder); returns its Path.

    Each check cell stores `NAME: PASS (p/p points)` and a details line, which
    grader/nbval_sanitize.cfg masks with everything after it. The copy may live
    anywhere: its setup cells look for the kit from this kit's own folder.
    """
    from grader.exercises import EXERCISE

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; give a new folder for the instructor's labs")
    out.mkdir(parents=True)
    for path in sorted((ROOT / "labs").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            match = CHECK_CELL.match(source)
            if match:
                points = EXERCISE[match.group(1)].points
                cell["execution_count"] = 1  # nbval compares only cells that ran
                cell["outputs"] = [{"name": "stdout", "output_type": "stream",
                                    "text": [f"{match.group(1)}: PASS ({points}/{points} points)\n",
                                             "  details: relative error 0.00e+00\n"]}]
            elif source.startswith("# Setup"):
                if KIT_SEARCH not in source:
                    raise ValueError(f"{path.name}: its setup cell no longer searches for the kit as {KIT_SEARCH!r}")
                source = source.replace(KIT_SEARCH, f"pathlib.Path({str(ROOT)!r}),")
                cell["source"] = source.splitlines(keepends=True)
        (out / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    (out / "conftest.py").write_text((TEMPLATES / "labs_conftest.py.in").read_text().format(
        sanitizer=str(ROOT / "grader" / "nbval_sanitize.cfg")))
    return out


KIT = ("grader", "solutions", "starter", "stylelab", "tools", "pyproject.toml", "environment.yml", "LICENSE")


def gradescope_zip(out):
    """Write Gradescope's autograder zip (setup.sh, run_autograder and the kit at its root); returns its Path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    executable = (stat.S_IFREG | 0o755) << 16
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(name)
            info.external_attr = executable
            archive.writestr(info, (TEMPLATES / name).read_text())
        for entry in KIT:
            path = ROOT / entry
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" not in file.parts and file.suffix != ".ckpt":
                    archive.write(file, file.relative_to(ROOT).as_posix())
    return out
