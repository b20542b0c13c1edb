"""Each decision has one home (docs/architecture.md): the objective, the choice of exercises, the release
boundary; and every module and function stays small enough to read."""

import ast
import json
import re

import pytest

from helpers import ROOT
from stylelab import impl
from stylelab.objective import FAST, FAST_STYLES, NAMES, PRESETS, STYLE_SCALE, Objective

CODE = ("stylelab", "grader", "solutions", "bench", "tools", "tests")
# about 450: grader/protocol.py (460) stays whole, being all that the sandboxed child knows of the grader
MAX_MODULE_LINES = 460
MAX_FUNCTION_LINES = 80  # without its docstring
# Tables, not logic: the CLI's flags, and the capstone exercise, whose body a student
# writes as one function, as CS231n's does.
LONG_ON_PURPOSE = {"stylelab/cli.py:build_parser", "solutions/style_transfer.py:style_transfer",
                   "starter/style_transfer.py:style_transfer"}
# What loads a student's file, which is not a module of the kit: by file path, on purpose.
STUDENT_LOADERS = {"stylelab/impl.py", "grader/worker.py", "bench/bench_transfer.py"}


def sources(folders=CODE):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path.read_text()


def test_only_stylelab_impl_reads_stylelab_impl(monkeypatch):
    reads = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']STYLELAB_IMPL""")
    readers = [name for name, text in sources() if reads.search(text)]
    assert readers == [], readers  # stylelab/impl.py reads it through its ENV constant
    monkeypatch.setenv(impl.ENV, "solutions")
    assert impl.chosen() == "solutions" and impl.chosen("starter") == "starter"
    monkeypatch.setenv(impl.ENV, "")  # `export STYLELAB_IMPL=` leaves the default, not a folder named ""
    assert impl.chosen() == "starter"
    monkeypatch.delenv(impl.ENV)
    assert impl.chosen() == "starter"
    assert impl.default().__name__ == "solutions.style_transfer"
    assert impl.default("fast_transfer.py").__name__ == "solutions.fast_transfer"


def test_the_vgg19_style_layers_are_written_once():
    layers = r"""["']relu1_1["'],\s*["']relu2_1["'],\s*["']relu3_1["'],\s*["']relu4_1["'],\s*["']relu5_1["']"""
    written = [name for name, text in sources() if re.search(layers, text)]
    for path in sorted((ROOT / "labs").glob("*.ipynb")):
        code = "".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
        written += [path.name] if re.search(layers, code) else []
    assert written == ["stylelab/objective.py"], written


def test_the_fast_objective_is_derived_from_the_vgg19_one():
    vgg = PRESETS["vgg19"]
    assert FAST.style_layers == vgg.style_layers
    assert FAST.style_weights == tuple(STYLE_SCALE * w for w in vgg.style_weights)
    assert (FAST.content_layer, FAST.content_weight, FAST.tv_weight) == ("relu2_2", 60.0, 10 * 255.0 ** 2)
    assert FAST_STYLES["mosaic"] == FAST.but(content_weight=120.0)


def test_an_objective_is_frozen_its_variants_are_new_and_it_round_trips_as_plain_data():
    vgg = PRESETS["vgg19"]
    with pytest.raises(AttributeError):
        vgg.tv_weight = 0.0
    scaled = vgg.scaled(content=2.0, style=0.5)
    assert scaled.content_weight == 2.0 and scaled.style_weights == (1250.0, 300.0, 75.0, 20.0, 20.0)
    assert vgg.but(tv_weight=None, content_weight=3.0) == Objective(**{**vars(vgg), "content_weight": 3.0})
    plain = vgg.as_dict()
    assert set(plain) == set(NAMES) and isinstance(plain["style_layers"], list)
    assert Objective.from_dict(plain) == vgg
    with pytest.raises(TypeError, match="unknown settings \\['style_weight'\\]"):
        vgg.but(style_weight=1.0)
    with pytest.raises(ValueError, match="5 style layers but 2 style weights"):
        vgg.but(style_weights=(1.0, 2.0))


def test_nothing_is_loaded_by_file_path_and_no_test_edits_sys_path():
    edits = re.compile(r"^\s*sys\.path\.(insert|append)\(", re.M)
    for name, text in sources():
        if name == "tests/project/test_architecture.py":  # which names what it looks for
            continue
        if name not in STUDENT_LOADERS:
            assert "spec_from_file_location" not in text, name
        if name.startswith("tests/"):
            assert not edits.search(text), name


def test_the_released_grader_modules_never_need_the_instructors_side_to_import():
    """The release copies grader/ without grader/instructor/ (tests/grading/test_release.py compares the trees)."""
    for path in sorted((ROOT / "grader").glob("*.py")):
        top = [node for node in ast.parse(path.read_text()).body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = [getattr(node, "module", None) or "" for node in top] + [a.name for node in top for a in node.names]
        assert not any("instructor" in name for name in names), path.name


def test_modules_and_functions_stay_readable():
    long_modules, long_functions = [], []
    for name, text in sources(CODE[:-1]):  # the kit's code; tests may hold long tables of cases
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                        and isinstance(first.value.value, str):
                    lines -= first.end_lineno - first.lineno + 1
                if lines > MAX_FUNCTION_LINES and f"{name}:{node.name}" not in LONG_ON_PURPOSE:
                    long_functions.append(f"{name}:{node.name} ({lines} lines)")
    assert not long_modules and not long_functions, (long_modules, long_functions)
