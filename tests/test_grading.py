"""Grading a class: broken and hostile submissions are caught in their sandbox, the
rest of their checks are still graded, and nobody else's grade changes."""

import csv
import inspect
import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from grader import grade, sandbox
from grader.exercises import EXERCISE, FILES, TOTAL_POINTS, of_file
from grader.__main__ import main as grader_main
from solutions import style_transfer as solutions

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = (ROOT / "solutions" / "style_transfer.py").read_text()
STARTER = (ROOT / "starter" / "style_transfer.py").read_text()
FAST_SOLUTION = (ROOT / "solutions" / "fast_transfer.py").read_text()
P = {name: record.points for name, record in EXERCISE.items()}
ST, FT = (sum(P[e] for e in of_file(file)) for file in FILES)  # each file's points
# a broken function costs its own points only: the exercises that call it are judged on the
# reference version of it (tests/test_one_exercise.py)


def override(source, body):
    """source with some functions redefined after it (Python keeps the last definition)."""
    return source + "\n\n" + textwrap.dedent(body)


FAST_FILES = {"correct": FAST_SOLUTION, "fast_only": FAST_SOLUTION,
              "fast_broken": "def conv_layer(x, weight, bias:\n    return x\n",
              "exit_at_import": FAST_SOLUTION,
              "pops_params": override(FAST_SOLUTION, """
                  def residual_block(x, params, style_mix):
                      params.pop("conv1.bias")
                      return x
                  """)}


def submissions(kit):
    """{student: (style_transfer.py text or None, expected points, expected status)}."""
    secret = kit / "solutions" / "style_transfer.py"
    return {
        "correct": (SOLUTION, TOTAL_POINTS, "graded"),
        "fast_only": (None, FT, "graded"),
        "fast_broken": (SOLUTION, ST, "syntax error"),
        # its import kills the process: fast_transfer.py, in a child of its own, is still graded
        "exit_at_import": ("import os\nos._exit(3)\n", FT, "crashed"),
        # transformer_net and train_step are judged on the reference residual_block
        "pops_params": (SOLUTION, TOTAL_POINTS - P["residual_block"], "graded"),
        "partial": (override(STARTER, inspect.getsource(solutions.gram_matrix)
                             + "\n\n" + inspect.getsource(solutions.content_loss)), P["gram_matrix"] + P["content_loss"], "graded"),
        "empty": (None, 0, "missing file"),
        "syntax_error": ("def gram_matrix(features:\n    return features\n", 0, "syntax error"),
        "import_error": ("import no_such_module_anywhere\n" + SOLUTION, 0, "import error"),
        "infinite_loop": (override(SOLUTION, """
            def content_loss(content_weight, content_current, content_original):
                while True:
                    pass
            """), ST - P["content_loss"], "timeout"),
        "sys_exit": (override(SOLUTION, """
            def content_loss(content_weight, content_current, content_original):
                import sys
                sys.exit(3)
            """), ST - P["content_loss"], "graded"),
        "os_exit": (override(SOLUTION, """
            def extract_features(x, cnn):
                import os
                os._exit(7)
            """), ST - P["extract_features"], "crashed"),
        "memory_bomb": (override(SOLUTION, """
            def style_loss(feats, style_layers, style_targets, style_weights):
                hoard = bytearray(2 ** 40)  # 1 TiB: the address-space limit refuses it at once
                return hoard
            """), ST - P["style_loss"], "graded"),
        "print_flood": (override(SOLUTION, """
            _extract = extract_features
            def extract_features(x, cnn):
                for _ in range(20000):
                    print("spam " * 200)
                return _extract(x, cnn)
            """), ST, "graded"),
        "in_place": (override(SOLUTION, """
            def content_loss(content_weight, content_current, content_original):
                content_original.mul_(2)
                return content_weight * ((content_current - content_original) ** 2).sum()
            """), ST - P["content_loss"], "graded"),
        "monkeypatch": (override(SOLUTION, """
            torch.allclose = lambda *args, **kwargs: True
            torch.equal = lambda *args, **kwargs: True
            torch.isfinite = lambda x: torch.ones_like(x, dtype=torch.bool)
            torch.Tensor.__sub__ = lambda self, other: self * 0
            def gram_matrix(features, normalize=True):
                N, C, H, W = features.shape
                return features.new_zeros(N, C, C)
            """), P["extract_features"] + P["luminance_only"], "graded"),  # its own patches break its own subtractions: extract_features and luminance_only survive
        "read_secrets": (override(SOLUTION, f"""
            def content_loss(content_weight, content_current, content_original):
                stolen = open({str(secret)!r}).read() + open({str(kit / 'grader' / 'reference' / 'style_transfer_checks.pt')!r}, 'rb').read().hex()
                return content_weight * ((content_current - content_original) ** 2).sum() + 0 * len(stolen)
            """), ST - P["content_loss"], "graded"),
        "write_outside": (override(SOLUTION, f"""
            for _target in ({str(kit / 'grader' / 'pwned.py')!r}, {str(kit / 'solutions' / 'style_transfer.py')!r}):
                try:
                    with open(_target, "a") as _file:
                        _file.write("# pwned")
                except OSError:
                    pass
            """), ST, "graded"),
        "wrong_returns": (override(SOLUTION, """
            def gram_matrix(features, normalize=True):
                N, C, H, W = features.shape
                flat = features.reshape(N, C, H * W)
                return (flat @ flat.transpose(1, 2) / (C * H * W)).tolist()
            def content_loss(content_weight, content_current, content_original):
                return (content_weight * ((content_current - content_original) ** 2).sum()).detach().numpy()
            def tv_loss(img, tv_weight):
                return torch.zeros((), device="meta")
            """), ST - sum(P[e] for e in ("gram_matrix", "content_loss", "tv_loss")),
            "graded"),
    }


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, bubblewrap):
    """Every submission above, graded together with --workers 2 through the CLI."""
    folder = tmp_path_factory.mktemp("class")
    kit_files = {p: p.read_bytes() for p in (ROOT / "solutions").glob("*.py")}
    cases = submissions(ROOT)
    for student, (text, _, _) in cases.items():
        (folder / student).mkdir()
        if text is not None:
            (folder / student / "style_transfer.py").write_text(text)
        if student in FAST_FILES:
            (folder / student / "fast_transfer.py").write_text(FAST_FILES[student])
    # one submission as a zip with a folder inside, as students often hand in
    with zipfile.ZipFile(folder / "zipped.zip", "w") as archive:
        archive.writestr("my_work/style_transfer.py", SOLUTION)
        archive.writestr("../escape.py", "print('zip-slip')")
    out = tmp_path_factory.mktemp("out")
    code = grader_main(["grade-class", str(folder), "--csv", str(out / "gradebook.csv"),
                        "--json-dir", str(out / "json"), "--feedback-dir", str(out / "feedback"),
                        "--workers", "2", "--check-seconds", "15"])
    assert code == 0
    rows = {row["student"]: row for row in csv.DictReader(open(out / "gradebook.csv"))}
    yield cases, rows, out, folder
    assert {p: p.read_bytes() for p in (ROOT / "solutions").glob("*.py")} == kit_files


def test_every_student_gets_the_right_points_and_status(graded_class):
    cases, rows, out, _ = graded_class
    assert set(rows) == set(cases) | {"zipped"}
    for student, (_, points, status) in cases.items():
        got = (float(rows[student]["total"]), rows[student]["status"])
        assert got == (points, status), (student, json.loads((out / "json" / f"{student}.json").read_text())["output"])
    assert (float(rows["zipped"]["total"]), rows["zipped"]["status"]) == (ST, "graded")


def test_reasons_name_what_went_wrong(graded_class):
    _, _, out, _ = graded_class

    def reason(student, exercise, kind="public"):
        results = json.loads((out / "json" / f"{student}.json").read_text())
        return next(t["output"] for t in results["tests"] if t["name"] == f"{exercise} ({kind} check)")

    assert reason("syntax_error", "gram_matrix").startswith("could not import style_transfer.py: raised SyntaxError")
    assert "ModuleNotFoundError" in reason("import_error", "tv_loss")
    assert reason("infinite_loop", "content_loss") == "timed out after 15 s"
    assert reason("infinite_loop", "content_loss", "hidden").startswith("not run")
    assert reason("sys_exit", "content_loss") == "raised SystemExit: 3"
    assert reason("os_exit", "extract_features") == "the process exited with status 7 (sys.exit or os._exit?)"
    assert reason("memory_bomb", "style_loss").startswith("raised MemoryError")
    assert reason("in_place", "content_loss").startswith("modified its input 'content_original' in place")
    assert reason("monkeypatch", "gram_matrix") == "values differ from the reference (relative error above 0.001)"
    assert reason("read_secrets", "content_loss").startswith("raised FileNotFoundError")
    assert reason("wrong_returns", "gram_matrix") == "returned a list; expected a torch.Tensor"
    assert reason("wrong_returns", "content_loss").startswith("returned a numpy array")
    assert reason("wrong_returns", "tv_loss").startswith("returned a tensor on device meta")
    assert reason("empty", "gram_matrix").startswith("no style_transfer.py or fast_transfer.py in the submission")
    assert reason("partial", "train_step") == "no fast_transfer.py in the submission: it counts as not implemented"
    assert reason("fast_only", "gram_matrix").startswith("no style_transfer.py in the submission")
    assert reason("fast_broken", "conv_layer").startswith("could not import fast_transfer.py: raised SyntaxError")
    assert reason("fast_broken", "gram_matrix") == "passed"
    assert reason("exit_at_import", "gram_matrix") == \
        "could not import style_transfer.py: the process exited with status 3 (sys.exit or os._exit?)"
    assert reason("exit_at_import", "train_step") == "passed"
    assert reason("pops_params", "residual_block").startswith("modified its input 'params' in place")


def test_output_is_capped_and_nothing_escaped(graded_class):
    _, _, out, folder = graded_class
    flood = json.loads((out / "json" / "print_flood.json").read_text())["output"]
    assert len(flood) < 25_000 and "more bytes of output cut" in flood
    assert not (ROOT / "grader" / "pwned.py").exists()
    assert not (folder.parent / "escape.py").exists()
    assert (folder / "correct" / "style_transfer.py").read_text() == SOLUTION


def test_gradescope_results_follow_the_documented_format(graded_class):
    _, _, out, _ = graded_class
    results = json.loads((out / "json" / "partial.json").read_text())
    assert set(results) >= {"score", "execution_time", "tests", "output", "visibility"}
    assert results["score"] == P["gram_matrix"] + P["content_loss"]
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] == ("after_published" if "hidden" in test["name"] else "visible")
    assert sum(t["score"] for t in results["tests"]) == results["score"]
    assert sum(t["max_score"] for t in results["tests"]) == TOTAL_POINTS


def test_feedback_teaches(graded_class):
    _, _, out, _ = graded_class
    text = (out / "feedback" / "monkeypatch.md").read_text()
    assert text.startswith("# Style transfer: feedback for monkeypatch")
    assert "| gram_matrix | fail | fail | 0 / 3 |" in text and "**gram_matrix** (public check)" in text


def test_without_bubblewrap_isolation_is_weaker_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "weaker_reason", lambda: "bubblewrap missing")
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "style_transfer.py").write_text(SOLUTION)
    assert grader_main(["grade", str(tmp_path / "alice"), "--json", str(tmp_path / "r.json")]) == 0
    assert (f"total: {ST:g}/{TOTAL_POINTS} points; status: graded; sandbox: weaker (bubblewrap missing: "
            f"resource limits, a seccomp filter and a temporary directory only)") in capsys.readouterr().out
    assert "weaker" in json.loads((tmp_path / "r.json").read_text())["output"]


def test_a_submission_that_outlives_its_time_is_cut_off_mid_check(tmp_path):
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "style_transfer.py").write_text(override(SOLUTION, """
        def extract_features(x, cnn):
            import time
            time.sleep(10 ** 6)
        """))
    # the check's own limit is far away: only the submission's clock can stop this one
    context = grade.Context.create(sandbox.Limits(check_seconds=10 ** 6, submission_seconds=6))
    try:
        result = grade.grade_submission(tmp_path / "slow", context)
    finally:
        context.close()
    assert result.status == "timeout"
    reasons = {c.exercise: c.reason for c in result.checks if c.kind == "public"}
    assert reasons["extract_features"] == "timed out: the submission used up its 6 s"
    assert reasons["tv_loss"] == "not run: the submission used up its 6 s"
