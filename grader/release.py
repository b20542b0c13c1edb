"""Build what leaves the instructor's hands (instructors only).

- `student_bundle(out)`: what students get: labs, starter, the stylelab package,
  the public grader and its reference data, the environment files and a student
  README. No solutions/, no hidden checks, no mistake catalogue, no grading
  tools. tests/test_release.py scans it for any solution body.
- `gradescope_zip(out)`: the autograder Gradescope runs: setup.sh installs the
  environment, run_autograder grades /autograder/submission into
  /autograder/results/results.json. It carries the whole kit, solutions
  included, since the hidden checks are computed from them; Gradescope keeps it
  from students.
"""

import shutil
import stat
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_GRADER = ("__init__.py", "__main__.py", "checks.py", "points.py", "worker.py", "nbval_sanitize.cfg",
                 "reference/style_transfer_checks.pt")
STUDENT_FILES = ("environment.yml", "pyproject.toml", "LICENSE", "IMAGES.md", "tools/requirements.py")
STUDENT_TREES = ("starter", "stylelab", "labs")

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
\t$(PY) -m jupyter lab labs/ $(if $(filter 0,$(shell id -u)),--allow-root)

transfer: venv
\t$(PY) -m stylelab transfer --content astronaut --style swirls --out out/astronaut_swirls.png

# runs your transformer_net on the shipped weights
stylize: venv
\t$(PY) -m stylelab stylize --content astronaut --out out/astronaut_fast.png
"""


def _copy_tree(source, target):
    if source.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc",
                                                                      "*.ckpt"))


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


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
apt-get update && apt-get install -y python3 python3-pip python3-venv bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install $(python3 /autograder/source/tools/requirements.py)
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and PYTHON may be
# set to try it elsewhere (tests/test_release.py does).
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
"$PYTHON" -m grader grade "$ROOT/submission" --student submission --json "$ROOT/results/results.json"
"""

KIT = ("grader", "solutions", "starter", "stylelab", "tools", "pyproject.toml", "environment.yml", "LICENSE")


def gradescope_zip(out):
    """Write Gradescope's autograder zip (setup.sh, run_autograder, source/); returns its Path."""
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
                    archive.write(file, f"source/{file.relative_to(ROOT).as_posix()}")
    return out
