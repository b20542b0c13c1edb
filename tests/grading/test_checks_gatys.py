"""The autograder: solutions pass, stubs fail, each catalogued mistake gets its own hint,
bad submissions never crash it, and a hard-coded submission fails the hidden checks."""

import copy
import subprocess
import sys
import textwrap

import pytest
import torch

from grader import check
from grader.__main__ import main as grader_main
from grader.checks import REFERENCE, check_function, check_functions, load_functions, load_reference
from grader.returned import UNCONNECTED, rel_error
from grader.exercises import EXERCISE, EXERCISES, TOTAL_POINTS, of_file
from grader.instructor.hidden import hidden_check, hidden_functions
from grader.instructor.reference import differences, generate
from grader.instructor.mistakes import MISTAKES
from students import GATYS_RIGHT as RIGHT
from students import GATYS_WRONG as WRONG
from helpers import ROOT

GATYS = of_file("style_transfer.py")  # fast_transfer.py's exercises: tests/grading/test_checks_fast.py


# --- the reference file ----------------------------------------------------------------

def test_reference_file_regenerates_from_solutions():
    committed = torch.load(REFERENCE, weights_only=True)
    assert differences(generate(), committed) == []
    assert set(load_reference()) == set(EXERCISES)


def test_reference_drift_is_judged_by_the_checks_own_tolerance():
    committed = torch.load(REFERENCE, weights_only=True)
    gram = committed["gram_matrix"]["expected"][0]  # entries of order 0.1 to 1; tolerance 1e-3

    def with_gram(scale):
        changed = copy.deepcopy(committed)
        changed["gram_matrix"]["expected"][0] = gram * scale
        return differences(changed, committed)

    assert with_gram(1 + 1e-5) == []  # float noise of another CPU
    assert with_gram(1 + 1e-2) == ["reference/gram_matrix/expected/0: relative error 5.0e-03, above the "
                                   "check's 0.001"]


def test_catalogue_and_hints_cover_the_same_mistakes():
    assert {e: set(m) for e, m in MISTAKES.items()} == {e: set(EXERCISE[e].hints) for e in EXERCISES}
    assert set(MISTAKES) == set(EXERCISES)
    assert set(WRONG) == set(GATYS) and all(set(WRONG[e]) == set(EXERCISE[e].hints) for e in GATYS)


def test_rel_error_is_cs231ns():
    x, y = torch.tensor([1.0, 0.0, -2.0]), torch.tensor([1.5, 0.0, -2.0])
    assert rel_error(x, y) == pytest.approx(0.5 / 2.5)
    assert rel_error(torch.zeros(2), torch.zeros(2)) == 0.0


# --- solutions, stubs and other correct code --------------------------------------------

def test_solutions_pass_every_public_and_hidden_check():
    functions = load_functions("solutions")
    for result in check_functions(functions) + hidden_functions(functions):
        assert result.passed, result.line()
        assert result.points == result.max_points > 0


def test_starter_fails_every_check_as_not_implemented():
    results = check_functions(load_functions("starter"))
    assert [r.reason for r in results] == ["not implemented yet"] * len(EXERCISES)
    assert sum(r.points for r in results) == 0


@pytest.mark.parametrize("exercise", GATYS)
def test_independent_correct_implementations_pass(exercise):
    assert check_function(RIGHT[exercise], exercise).passed
    assert hidden_check(RIGHT[exercise], exercise).passed


# --- every catalogued mistake gets its own hint ------------------------------------------

@pytest.mark.parametrize("exercise,mistake", [(e, m) for e in GATYS for m in EXERCISE[e].hints])
def test_each_catalogued_mistake_is_recognised(exercise, mistake):
    wrong = WRONG[exercise][mistake]
    result = check_function(wrong, exercise)
    assert not result.passed and result.reason == EXERCISE[exercise].hints[mistake]
    hidden = hidden_check(wrong, exercise)
    assert not hidden.passed and hidden.reason == f"hidden check: {EXERCISE[exercise].hints[mistake]}"


# --- bad submissions fail with one line, never crash --------------------------------------

def raises_value_error(*args, **kwargs):
    raise ValueError("shapes do not line up\nsecond line")


def returns_item(w, cur, orig):
    return (w * ((cur - orig) ** 2).sum()).item()


def modifies_input(w, cur, orig):
    orig.mul_(0)
    return w * ((cur - orig) ** 2).sum()


def returns_nan(img, tv_weight):
    return tv_weight * img.sum() * float("nan")


def tv_with_loop(img, tv_weight):
    total = 0
    for i in range(img.shape[2] - 1):
        total = total + ((img[:, :, i + 1] - img[:, :, i]) ** 2).sum()
    return tv_weight * (total + ((img[..., 1:] - img[..., :-1]) ** 2).sum())


def rebuilt_from_item(w, cur, orig):
    return torch.tensor((w * ((cur - orig) ** 2).sum()).item(), requires_grad=True)


def right_value_wrong_gradient(w, cur, orig):
    value = (w * ((cur - orig) ** 2).sum()).detach()
    return value + (cur ** 2).sum() - (cur ** 2).sum().detach()


def nested(x, cnn):
    deep = []
    for _ in range(5000):
        deep = [deep]
    return deep


def detached(w, cur, orig):
    return torch.tensor((w * ((cur - orig) ** 2).sum()).item())


@pytest.mark.parametrize("function,exercise,reason", [
    (raises_value_error, "gram_matrix", "raised ValueError: shapes do not line up"),
    (returns_item, "content_loss", "returned a float, not a torch.Tensor: keep the loss a tensor"),
    (detached, "content_loss", "your loss is detached from the graph"),
    (modifies_input, "content_loss", "modified its input 'content_original' in place"),
    (returns_nan, "tv_loss", "returned NaN or inf"),
    (tv_with_loop, "tv_loss", "uses a Python loop (line 3 of the function)"),
    (lambda features, normalize=True: features.sum(dim=1), "gram_matrix", "returned shape 2 tensors"),
    (lambda x, cnn: "features", "extract_features", "returned a str; expected a list of tensors"),
    (lambda x, cnn: [x] * 3, "extract_features", "returned 3 feature maps; cnn has 5 modules"),
    (lambda *args, **kwargs: torch.zeros(1), "style_transfer", "style_transfer must return a tuple (img, history)"),
    (lambda w, cur, orig: w * ((cur - orig) ** 3).sum(), "content_loss", "values differ from the reference"),
    (rebuilt_from_item, "content_loss", UNCONNECTED),
    (right_value_wrong_gradient, "content_loss", "your loss has the right value but the wrong gradient"),
    (lambda features, normalize=True: torch.zeros(2, 5, 5).to_sparse(), "gram_matrix", "returned a tensor of layout"),
    (lambda w, cur, orig: (w * ((cur - orig) ** 2).sum()).to(torch.complex64), "content_loss",
     "returned a tensor of dtype torch.complex64"),
    (lambda *args: {"content": [[0.0, 1.0], [2.0]], "style": 0, "total": None}, "loss_landscape",
     "out['total'] must be an (A, B) tensor of numbers"),
    (lambda *args, **kwargs: (torch.zeros(1, 3, 16, 16), {"total": [None] * 8}), "style_transfer",
     "history['total'] must hold numbers"),
    (nested, "extract_features", "returned a list; expected a list of tensors"),
    (lambda img, tv_weight: sys.exit(3), "tv_loss", "raised SystemExit: 3"),
])
def test_bad_submissions_fail_with_a_one_line_reason(function, exercise, reason):
    result = check_function(function, exercise)
    assert not result.passed and result.reason.startswith(reason), result.reason
    assert "\n" not in result.reason


def test_unimportable_module_and_missing_function(tmp_path):
    (tmp_path / "style_transfer.py").write_text("def gram_matrix(features:\n    pass\n")
    assert grader_main(["check", "--impl", str(tmp_path)]) == 1
    (tmp_path / "style_transfer.py").write_text("import torch\n")
    results = check_functions(load_functions(tmp_path))
    assert results[0].reason == "style_transfer.py defines no function extract_features"
    assert results[-1].reason.endswith("fast_transfer.py: no such file; --impl takes starter, solutions or a "
                                       "folder holding fast_transfer.py")


def test_unimportable_module_reports_the_syntax_error(tmp_path, capsys):
    (tmp_path / "style_transfer.py").write_text("def gram_matrix(features:\n    pass\n")
    grader_main(["check", "gram_matrix", "--impl", str(tmp_path)])
    out = capsys.readouterr().out
    assert "could not import" in out and "SyntaxError" in out


# --- hidden checks catch hard-coded answers ------------------------------------------------

def test_hard_coded_submission_fails_hidden_checks_and_copied_losses_fail_their_gradient(tmp_path):
    (tmp_path / "style_transfer.py").write_text(textwrap.dedent(f"""
        import torch
        _REF = torch.load({str(REFERENCE)!r}, weights_only=True)

        def _answer(name):
            return _REF[name]["expected"]

        def extract_features(x, cnn):
            return list(_answer("extract_features"))

        def content_loss(content_weight, content_current, content_original):
            return _answer("content_loss")[0] + 0 * content_current.sum()

        def gram_matrix(features, normalize=True):
            return _answer("gram_matrix")[0 if normalize else 1]

        def style_loss(feats, style_layers, style_targets, style_weights):
            return _answer("style_loss")[0] + 0 * feats[0].sum()

        def tv_loss(img, tv_weight):
            return _answer("tv_loss")[0] + 0 * img.sum()

        def style_transfer(cnn, content_img, style_img, *args, num_iters=8, callback=None, optimizer="adam",
                           **kwargs):
            # the contract kept: a callback, every loss, any length; the stored run of each optimiser
            adam_img, adam_totals, lbfgs_img, lbfgs_totals = _answer("style_transfer")
            img, totals = (lbfgs_img, lbfgs_totals) if optimizer == "lbfgs" else (adam_img, adam_totals)
            values = (totals.tolist() * num_iters)[:num_iters]
            for t, value in enumerate(values):
                if callback is not None:
                    callback(t, img, dict(content=value, style=0.0, tv=0.0, total=value))
            return img, {{key: values for key in ("content", "style", "tv", "total")}}

        def match_color(style_img, content_img, eps=1e-5):
            return _answer("match_color")[0]

        def luminance_only(stylized, content_img):
            return _answer("luminance_only")[0]

        def loss_landscape(*args):
            total, content, style = _answer("loss_landscape")
            return {{"total": total, "content": content, "style": style}}
    """))
    functions = load_functions(tmp_path, GATYS)
    public = {r.exercise: r for r in check_functions(functions)}
    losses = [e for e in GATYS if EXERCISE[e].kind == "loss"]
    # a copied loss value has no gradient to its inputs: the public check already says so
    assert all(public[e].reason == UNCONNECTED for e in losses)
    assert all(r.passed for e, r in public.items() if e not in losses)
    assert not any(r.passed for r in hidden_functions(functions))


# --- interfaces ----------------------------------------------------------------------------

def test_cli_exit_codes_and_table(capsys):
    assert grader_main(["check", "--impl", "solutions"]) == 0
    out = capsys.readouterr().out
    assert "gram_matrix                PASS" in out and "train_step                 PASS" in out
    assert f"total: {TOTAL_POINTS}/{TOTAL_POINTS} points" in out
    assert grader_main(["check", "tv_loss", "--impl", "starter"]) == 1
    assert "tv_loss   FAIL     -           0/3     not implemented yet" in capsys.readouterr().out
    assert grader_main(["check", "no_such_thing"]) == 2


def test_cli_on_starter_has_no_traceback():
    run = subprocess.run([sys.executable, "-m", "grader", "check", "--impl", "starter"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert run.stdout.count("not implemented yet") == len(EXERCISES)


def test_notebook_check_prints_a_deterministic_verdict_then_details(capsys):
    assert check("gram_matrix", impl="solutions") is None
    assert check(RIGHT["tv_loss"].func) is None  # a function named like no exercise
    check(WRONG["gram_matrix"]["hw_only"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gram_matrix: PASS (3/3 points)"
    assert lines[1].startswith("  details: relative error ")
    assert lines[2].startswith("check: no exercise '_tv'")
    assert lines[3] == ("gram_matrix: FAIL (0/3 points): your Gram matrix is C times too large: "
                        "normalize divides by C*H*W, not H*W")


def test_loops_are_found_from_several_grading_threads_at_once():
    """grade-class grades in threads. CPython 3.11's ast.parse, run in several at once while a garbage
    collection runs Python code (a __del__) mid-parse, raises SystemError unless the parses take turns,
    and a correct student is then graded 'grader error'."""
    import gc
    import threading

    from grader.checks import loops_in_source

    source = (ROOT / "solutions" / "style_transfer.py").read_text()
    expected = loops_in_source(source, "tv_loss")

    class Finalised:
        def __del__(self):
            sum(range(50))

    found, errors = [], []

    def grade():
        for _ in range(300):
            junk = [Finalised() for _ in range(20)]
            for item in junk:
                item.cycle = item  # only the collector frees it, running __del__ wherever it strikes
            del junk
            try:
                found.append(loops_in_source(source, "tv_loss"))
            except Exception as error:  # noqa: BLE001 (the point is that nothing escapes)
                errors.append(error)
                return

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    gc.set_threshold(50, 5, 5)
    try:
        threads = [threading.Thread(target=grade) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    assert not errors, errors[0]
    assert len(found) == 1200 and all(loops == expected for loops in found)
