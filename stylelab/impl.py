"""Whose exercises run: the reference solutions, the student's starter, or a student's own file.

The one module that decides, and the only one that reads STYLELAB_IMPL. An
impl is named as the grader's --impl, check(impl=...) and the labs'
exercises() name it:

- "solutions": the reference implementation (the instructor's kit only);
- "starter": the student's stubs, filled in as the labs go;
- a folder holding style_transfer.py and fast_transfer.py, or one such file.

`chosen(impl)` is the name in force (impl, else $STYLELAB_IMPL, else
"starter"); `load(impl, file)` imports that file afresh, so that a notebook's
next check sees the student's latest edit; `reference(file)` is the reference
module where the kit has one and None in a student release; `default(file)`
is what the kit's own tools (the engine, the trainer, the demo) run: the
reference where there is one, else the starter.
"""

import importlib
import importlib.util
import os
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = "STYLELAB_IMPL"
# Modules a student's file may not import: each file is checked on its own.
SIBLINGS = ("style_transfer", "fast_transfer", "starter", "solutions")


class ImplError(Exception):
    """An impl's file is missing or does not import; the message names the file and what to do."""


def chosen(impl=None):
    """The impl in force: impl, else $STYLELAB_IMPL, else 'starter' (also when the variable is set but empty)."""
    return impl or os.environ.get(ENV) or "starter"


def _file(file):
    return Path(file).stem + ".py"


def load(impl=None, file="style_transfer.py"):
    """A student's file as a fresh module: from 'starter', 'solutions', a folder holding it, or a file."""
    impl, file = chosen(impl), _file(file)
    folder = ROOT / impl if impl in ("starter", "solutions") else Path(impl)
    path = folder / file if folder.is_dir() else folder
    if not path.is_file():
        raise ImplError(f"{path}: no such file; --impl takes starter, solutions or a folder holding {file}")
    # a fresh, unique module each time: a notebook re-checks the file after every edit
    spec = importlib.util.spec_from_file_location(f"student_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # SyntaxError, ImportError, even SystemExit at import
        reason = f"could not import {path}: {type(error).__name__}: {error}".splitlines()[0]
        raise ImplError(reason + import_hint(type(error).__name__, str(error), path.name)) from None
    return module


def import_hint(name, message, file):
    """What to do when a student's file imports the other exercise file (or the kit's copies)."""
    if name in ("ModuleNotFoundError", "ImportError") and any(f"'{m}" in message for m in SIBLINGS):
        return (f": each file is checked on its own, so {file} cannot import the other one; copy the "
                f"function you need (your gram_matrix, say) into {file}")
    return ""


def reference(file="style_transfer.py"):
    """The reference solutions of one student file where the kit has them (instructors), else None.

    The student release has no solutions/: there a check runs the student's own
    versions of the exercises it builds on, and says so when one of them fails.
    """
    stem = Path(file).stem
    try:
        return importlib.import_module(f"solutions.{stem}")
    except ModuleNotFoundError as error:
        if error.name not in ("solutions", f"solutions.{stem}"):
            raise
        return None


def default(file="style_transfer.py"):
    """What the kit's own tools run: the reference solutions where the kit has them, else the starter."""
    return reference(file) or importlib.import_module(f"starter.{Path(file).stem}")
