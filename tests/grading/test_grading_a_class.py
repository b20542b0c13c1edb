"""Grading a class: broken and hostile submissions are caught in their sandbox, the
rest of their checks are still graded, and nobody else's grade changes."""

import csv
import inspect
import io
import json
import os
import sys
import textwrap
import zipfile

import pytest

from grader.instructor import grade, report, sandbox
from grader.instructor.submission import _quoted, unpack
from grader.exercises import EXERCISE, FILES, TOTAL_POINTS, of_file
from grader.__main__ import main as grader_main
from solutions import style_transfer as solutions
from helpers import ROOT

SOLUTION = (ROOT / "solutions" / "style_transfer.py").read_text()
STARTER = (ROOT / "starter" / "style_transfer.py").read_text()
FAST_SOLUTION = (ROOT / "solutions" / "fast_transfer.py").read_text()
P = {name: record.points for name, record in EXERCISE.items()}
ST, FT = (sum(P[e] for e in of_file(file)) for file in FILES)  # each file's points
# a broken function costs its own points only: the exercises that call it are judged on the
# reference version of it (tests/grading/test_one_exercise.py)


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

                  def transformer_net(x, params, style_mix):  # an older starter's signature: no noise
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
        # train_step is judged on the reference residual_block and transformer_net
        "pops_params": (SOLUTION, TOTAL_POINTS - P["residual_block"] - P["transformer_net"], "graded"),
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


def zipped(members):
    """The bytes of a zip of {name: text or bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# careless students, as an instructor's class holds them: {submission: (its files, expected points, expected
# status, exactly what the student reads about their files)}; a submission named *.zip is handed in zipped.
# A near miss of a file's name is graded, with a note; of two copies that tie, neither is.
CARELESS = {
    "notebook": ({"style_transfer.ipynb": "{}"}, 0, "missing file",
                 ["graded: nothing", "found style_transfer.ipynb: submit style_transfer.py"]),
    "browser_copy": ({"style_transfer (1).py": SOLUTION}, ST, "graded",
                     ["graded: 'style_transfer (1).py'",
                      "found 'style_transfer (1).py': rename it to style_transfer.py"]),
    "notepad.zip": ({"final/Style_Transfer.py.txt": SOLUTION, "final/notes.md": "todo"}, ST, "graded",
                    ["graded: final/Style_Transfer.py.txt",
                     "found final/Style_Transfer.py.txt: rename it to style_transfer.py"]),
    "zip_in_zip.zip": ({"hw3.zip": zipped({"style_transfer.py": SOLUTION})}, 0, "missing file",
                       ["graded: nothing", "found hw3.zip inside the zip: zip the files, not a zip"]),
    "old_and_final.zip": ({"old/style_transfer.py": STARTER, "final/style_transfer.py": SOLUTION}, 0,
                          "ambiguous file",
                          ["graded: nothing", "2 copies of style_transfer.py (final/style_transfer.py and "
                                              "old/style_transfer.py): graded neither; keep one and submit again"]),
    "lab_notebook": ({"03_tv_and_transfer.ipynb": "{}"}, 0, "missing file",
                     ["graded: nothing",
                      "found 03_tv_and_transfer.ipynb: submit style_transfer.py and fast_transfer.py"]),
    "own_names": ({"hw3.py": SOLUTION, "README.md": "my homework"}, 0, "missing file",
                  ["graded: nothing", "found hw3.py and README.md: submit your work as style_transfer.py and "
                                      "fast_transfer.py, the starter's names"]),
}


def write_careless(folder):
    for submission, (files, _, _, _) in CARELESS.items():
        if submission.endswith(".zip"):
            (folder / submission).write_bytes(zipped(files))
            continue
        for name, text in files.items():
            (folder / submission / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / submission / name).write_text(text)


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
    write_careless(folder)
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
    assert set(rows) == set(cases) | {"zipped"} | {name.removesuffix(".zip") for name in CARELESS}
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
    assert reason("pops_params", "transformer_net").startswith(
        "raised TypeError: transformer_net() takes 3 positional arguments but 4 were given (the grader calls "
        "transformer_net(x, params, style_mix, noise), as its docstring says; a starter older than the grader "
        "may lack one)")


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


# what protects the grader without bubblewrap, by who the child runs as (sandbox.weaker_user)
WEAKER_MEASURES = {
    "": "resource limits, a seccomp filter and a temporary directory only",  # the grader's own user
    sandbox.NOBODY: "resource limits, a seccomp filter, a temporary directory and an unprivileged uid (65534) only",
    sandbox.CAPLESS_ROOT: "resource limits, a seccomp filter, a temporary directory and root without capabilities "
                          "only",  # root, where uid 65534 cannot start this Python (a venv under /root)
}


def test_without_bubblewrap_isolation_is_weaker_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "weaker_reason", lambda: "bubblewrap missing")
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "style_transfer.py").write_text(SOLUTION)
    assert grader_main(["grade", str(tmp_path / "alice"), "--json", str(tmp_path / "r.json")]) == 0
    if os.geteuid() == 0 and sys.platform.startswith("linux"):  # a root grader never lends the child its own
        assert sandbox.weaker_user() in (sandbox.NOBODY, sandbox.CAPLESS_ROOT)
    printed = capsys.readouterr().out
    assert (f"total: {ST:g}/{TOTAL_POINTS} points; status: graded; sandbox: weaker (bubblewrap missing: "
            f"{WEAKER_MEASURES[sandbox.weaker_user()]})\ngraded: style_transfer.py\n") in printed
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


# --- careless students: told what was found, and what to do ----------------------------------------

def test_careless_students_are_told_what_was_graded_and_what_was_found(graded_class):
    _, rows, out, _ = graded_class
    for submission, (_, points, status, lines) in CARELESS.items():
        student = submission.removesuffix(".zip")
        assert (float(rows[student]["total"]), rows[student]["status"]) == (points, status), student
        output = json.loads((out / "json" / f"{student}.json").read_text())["output"].split("\n")
        assert output[1:1 + len(lines)] == lines, student  # right under the status line
        feedback = (out / "feedback" / f"{student}.md").read_text()
        assert "\n".join(f"- {report._markdown_text(line)}" for line in lines) in feedback, student
    assert "- found 'style\\_transfer \\(1\\).py': rename it to style\\_transfer.py\n" in \
        (out / "feedback" / "browser_copy.md").read_text()
    zipped_output = json.loads((out / "json" / "zipped.json").read_text())["output"]
    assert zipped_output.split("\n")[1] == "graded: my_work/style_transfer.py"


def test_a_missing_files_checks_say_what_was_found_instead(graded_class):
    _, _, out, _ = graded_class

    def reason(student, exercise):
        results = json.loads((out / "json" / f"{student}.json").read_text())
        return next(t["output"] for t in results["tests"] if t["name"] == f"{exercise} (public check)")

    assert reason("notebook", "gram_matrix") == ("no style_transfer.py in the submission (found style_transfer.ipynb: "
                                                 "submit style_transfer.py): it counts as not implemented")
    assert reason("old_and_final", "tv_loss") == CARELESS["old_and_final.zip"][3][1]
    assert reason("zip_in_zip", "train_step") == ("no fast_transfer.py in the submission (found hw3.zip inside the "
                                                  "zip: zip the files, not a zip): it counts as not implemented")


def unpacked(tmp_path, files):
    """unpack() of a zip of files, and the exercise files it copied, by name."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "s.zip").write_bytes(zipped(files))
    result = unpack(tmp_path / "s.zip", tmp_path / "into")
    return result, {path.name: path.read_text() for path in (tmp_path / "into").iterdir()}


def test_of_two_copies_the_exact_name_then_the_shallowest_is_graded_and_both_are_named(tmp_path):
    result, taken = unpacked(tmp_path / "a", {"hw/style_transfer.py": "new", "hw/old/style_transfer.py": "old",
                                              "style_transfer (1).py": "download"})
    assert taken == {"style_transfer.py": "new"} and result.graded == {"style_transfer.py": "hw/style_transfer.py"}
    assert result.notes == ["3 copies of style_transfer.py (hw/style_transfer.py, hw/old/style_transfer.py and "
                            "'style_transfer (1).py'): graded hw/style_transfer.py; keep one"]
    result, taken = unpacked(tmp_path / "b", {"style_transfer (1).py": "one", "style_transfer (2).py": "two",
                                              "fast_transfer.py": "fast"})
    assert taken == {"fast_transfer.py": "fast"} and result.ambiguous == ["style_transfer.py"]
    assert result.notes == ["2 copies of style_transfer.py ('style_transfer (1).py' and 'style_transfer (2).py'): "
                            "graded neither; keep one and submit again"]


@pytest.mark.parametrize("name", ["style_transfer (1).py", "style_transfer(2).py", "Style_Transfer.py",
                                  "STYLE_TRANSFER.PY", "style_transfer.py.txt", "style_transfer.txt"])
def test_a_near_miss_of_a_name_is_graded_with_a_note(tmp_path, name):
    result, taken = unpacked(tmp_path, {f"hw/{name}": "mine"})
    shown = _quoted(f"hw/{name}")
    assert taken == {"style_transfer.py": "mine"} and result.graded == {"style_transfer.py": shown}
    assert result.notes == [f"found {shown}: rename it to style_transfer.py"]


@pytest.mark.parametrize("name", ["style_transfer.pyc", "style_transfer_v2.py", "my_style_transfer.py",
                                  ".ipynb_checkpoints/style_transfer-checkpoint.ipynb", "__MACOSX/._style_transfer.py"])
def test_other_names_are_no_near_miss(tmp_path, name):
    result, taken = unpacked(tmp_path, {name: "x", "fast_transfer.py": "fast"})
    assert taken == {"fast_transfer.py": "fast"} and result.notes == [] and result.graded == {
        "fast_transfer.py": "fast_transfer.py"}


def test_a_flood_of_copies_or_notebooks_gets_a_few_lines(tmp_path):
    result, taken = unpacked(tmp_path / "a", {f"d{k}/style_transfer.py": "x" for k in range(500)})
    assert taken == {} and result.notes == [
        "500 copies of style_transfer.py (d0/style_transfer.py, d1/style_transfer.py, d10/style_transfer.py and "
        "497 more): graded none; keep one and submit again"]
    result, taken = unpacked(tmp_path / "b", {f"lab{k}.ipynb": "{}" for k in range(500)})
    assert taken == {} and result.notes == [f"found lab{k}.ipynb: submit style_transfer.py and fast_transfer.py"
                                            for k in (0, 1, 10)]
