"""Each check judges one exercise: a wrong earlier function costs its own points, not those of the
exercises that call it, in `grader check`, in a notebook's check() and in the sandboxed grading."""

import shutil

import pytest

import grader
from grader import checks
from grader.instructor import grade, report
from grader.checks import check_functions, load_impl, with_needs
from grader.exercises import EXERCISE, EXERCISES, RECORDS
from tests.students import WRONG

NEEDED = sorted({need for record in RECORDS for need in record.needs}, key=EXERCISES.index)


def dependents(exercise):
    return [r.name for r in RECORDS if exercise in r.needs]


def test_an_exercise_builds_only_on_earlier_exercises_of_its_own_file():
    for record in RECORDS:
        for need in record.needs:
            assert EXERCISES.index(need) < EXERCISES.index(record.name), (record.name, need)
            assert EXERCISE[need].file == record.file


def test_the_needs_name_what_the_solutions_call():
    """A solution that calls an earlier exercise lists it, or a wrong one would leak into its check."""
    import inspect

    for record in RECORDS:
        module = load_impl("solutions", record.file)
        source = inspect.getsource(getattr(module, record.name))
        body = source.split('"""', 2)[-1]
        called = {name for name in EXERCISES if name != record.name and f"{name}(" in body}
        assert called <= set(record.needs), (record.name, called - set(record.needs))


@pytest.mark.parametrize("exercise,mistake", [(e, m) for e in NEEDED for m in WRONG[e]])
def test_a_catalogued_mistake_costs_only_its_own_check(exercise, mistake):
    module = load_impl("solutions", EXERCISE[exercise].file)
    setattr(module, exercise, WRONG[exercise][mistake])  # what the solutions' later exercises now call
    names = [exercise] + dependents(exercise)
    results = {r.exercise: r for r in check_functions({n: getattr(module, n) for n in names})}
    assert not results[exercise].passed
    assert results[exercise].reason == EXERCISE[exercise].hints[mistake]
    for name in dependents(exercise):
        assert results[name].passed, (name, results[name].reason)
        assert results[name].note == f"this check uses the reference {exercise}; yours fails its own check"


def test_the_same_calls_unbound_would_have_failed():
    """The previous test means something: without the reference bound, the wrong Gram fails style_loss."""
    module = load_impl("solutions")
    module.gram_matrix = WRONG["gram_matrix"]["unnormalized"]
    case = checks.load_reference()["style_loss"]
    passed, reason, _ = checks.run_case(module.style_loss, "style_loss", *case)
    assert not passed
    passed, _, _ = checks.run_case(module.style_loss, "style_loss", *case, reference=load_impl("solutions"))
    assert passed
    assert module.gram_matrix is WRONG["gram_matrix"]["unnormalized"]  # the student's binding is back


def test_two_failing_needs_are_named_together():
    module = load_impl("solutions")
    module.gram_matrix = WRONG["gram_matrix"]["unnormalized"]
    module.tv_loss = WRONG["tv_loss"]["abs"]
    results = {r.exercise: r for r in check_functions({n: getattr(module, n) for n in with_needs(["style_transfer"])})}
    assert results["style_transfer"].passed
    assert results["style_transfer"].note == ("this check uses the reference gram_matrix and tv_loss; "
                                              "yours fail their own checks")


def test_without_the_solutions_a_check_says_which_earlier_function_to_fix(monkeypatch):
    """The student release has no reference to bind: the check blames the function that is wrong."""
    monkeypatch.setattr("stylelab.impl.reference", lambda file: None)
    module = load_impl("solutions")
    module.gram_matrix = WRONG["gram_matrix"]["unnormalized"]
    results = {r.exercise: r for r in check_functions({n: getattr(module, n) for n in with_needs(["style_loss"])})}
    assert not results["style_loss"].passed
    assert results["style_loss"].reason == ("this check runs your gram_matrix, which fails its own check: "
                                            "fix it first")
    # not style_loss's own hint, which would send the student to the wrong function
    assert "normalize=True" not in results["style_loss"].reason


def test_a_notebook_check_names_the_wrong_earlier_function_below_its_verdict(tmp_path, capsys):
    folder = tmp_path / "alice"
    shutil.copytree(checks.ROOT / "solutions", folder)
    path = folder / "style_transfer.py"
    path.write_text(path.read_text().replace("        gram = gram / (C * H * W)\n", "        gram = gram * 1.0\n"))
    grader.check("style_loss", impl=str(folder))
    grader.check("gram_matrix", impl=str(folder))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "style_loss: PASS (3/3 points)"
    assert lines[1].startswith("  details: relative error ")
    assert lines[2] == "  note: this check uses the reference gram_matrix; yours fails its own check"
    assert lines[3].startswith("gram_matrix: FAIL (0/3 points): your Gram matrix is C*H*W times too large")


def test_a_check_keeps_warnings_and_prints_below_the_details(capsys):
    """nbval compares a check cell's output: a harmless warning must not land on stderr before the verdict."""
    import warnings

    from tests.students import RIGHT

    def tv_loss(img, tv_weight):
        warnings.warn("a harmless note from the student's code", UserWarning)
        print("debug: shape", tuple(img.shape))
        return RIGHT["tv_loss"](img, tv_weight)

    grader.check(tv_loss)
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == "tv_loss: PASS (3/3 points)"
    assert lines[2].startswith("  your code printed: debug: shape")
    assert lines[-1] == "  warning: UserWarning: a harmless note from the student's code"


def test_the_command_line_checks_needs_quietly_and_shows_the_note(tmp_path, capsys):
    from grader.__main__ import main

    folder = tmp_path / "bob"
    shutil.copytree(checks.ROOT / "solutions", folder)
    path = folder / "style_transfer.py"
    path.write_text(path.read_text().replace("        gram = gram / (C * H * W)\n", "        gram = gram * 1.0\n"))
    assert main(["check", "style_loss", "--impl", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "gram_matrix" not in out.split("\n")[1].split()[0]  # only the row asked for
    assert "this check uses the reference gram_matrix; yours fails its own check" in out
    assert "total: 3/3 points" in out


@pytest.fixture(scope="module")
def context():
    context = grade.Context.create()
    yield context
    context.close()


def test_grading_in_the_sandbox_costs_a_wrong_gram_only_its_points(tmp_path, context):
    folder = tmp_path / "carol"
    shutil.copytree(checks.ROOT / "solutions", folder)
    path = folder / "style_transfer.py"
    path.write_text(path.read_text().replace("        gram = gram / (C * H * W)\n", "        gram = gram * 1.0\n"))
    result = grade.grade_submission(folder, context)
    assert result.status == "graded"
    assert result.score == sum(r.points for r in RECORDS) - EXERCISE["gram_matrix"].points
    assert result.points("gram_matrix") == 0
    for name in dependents("gram_matrix"):
        assert result.points(name) == EXERCISE[name].points
        [test] = [t for t in report.gradescope(result)["tests"] if t["name"] == f"{name} (public check)"]
        assert test["output"] == "passed\nthis check uses the reference gram_matrix; yours fails its own check"


HUNTER = '''
import gc, types


def _reference(name):
    """Any function of that name in the process that is not the student's own: a stolen reference."""
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and obj.__name__ == name and obj.__module__ != __name__:
            return obj
    return None


def extract_features(x, cnn):
    found = _reference("extract_features")
    if found is None:
        raise RuntimeError("no reference to steal")
    return found(x, cnn)


def gram_matrix(features, normalize=True):
    found = _reference("gram_matrix")
    if found is None:
        raise RuntimeError("no reference to steal")
    return found(features, normalize)


STASH = {}


def style_loss(feats, style_layers, style_targets, style_weights):
    STASH["gram"] = gram_matrix  # the reference, bound while this check runs
    loss = 0.0
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        loss = loss + weight * ((gram_matrix(feats[layer]) - target) ** 2).sum()
    return loss
'''


def test_a_submission_cannot_steal_the_reference_it_is_judged_against(tmp_path, context):
    """The references reach the child only with the checks that build on them, after their own checks."""
    folder = tmp_path / "mallory"
    folder.mkdir()
    (folder / "style_transfer.py").write_text(HUNTER)
    result = grade.grade_submission(folder, context)
    assert result.points("extract_features") == 0
    assert result.points("gram_matrix") == 0
    assert result.points("style_loss") == EXERCISE["style_loss"].points  # written right, on the reference Gram


def _loop_without(broken):
    """The reference loop with one part of its contract broken."""
    from tests.students import cs231n_loop

    def loop(*args, **kwargs):
        if broken == "callback":
            kwargs["callback"] = None
        if broken == "empty_layers" and not kwargs["style_layers"]:
            raise IndexError("list index out of range")
        if broken == "lbfgs_unknown" and kwargs["optimizer"] == "lbfgs":
            raise ValueError("unknown optimizer lbfgs")
        img, history = cs231n_loop(*args, **kwargs)
        if broken == "history":
            history = {"total": history["total"]}
        if broken == "lbfgs_count" and kwargs["optimizer"] == "lbfgs":  # one line search too many
            history = {key: values + values[-1:] for key, values in history.items()}
        return img, history
    return loop


@pytest.mark.parametrize("broken,reason", [
    ("callback", "call callback(t, img, losses) once after every evaluation"),
    ("history", "history must hold one float per evaluation under each of the keys"),
    ("empty_layers", "with no style layers (style_layers=[], as feature inversion runs it) your loop raised "
                     "IndexError: list index out of range"),
    ("lbfgs_unknown", "with optimizer='lbfgs' (lab 4 races it against Adam), style_transfer raised ValueError: "
                      "unknown optimizer lbfgs"),
    ("lbfgs_count", "with optimizer='lbfgs' (lab 4 races it against Adam), style_transfer: history['total'] has "
                    "7 entries for num_iters=6: L-BFGS's line search may ask for more evaluations"),
])
def test_the_loop_check_covers_what_the_labs_rely_on(broken, reason):
    """A loop right in its numbers but broken in a part of the contract the labs use fails, saying which:
    one without its callback would kill lab 3's snapshot cell."""
    result = checks.check_function(_loop_without(broken), "style_transfer")
    assert not result.passed and result.reason.startswith(reason), result.reason


def test_a_loop_wrong_in_both_runs_hears_of_one_of_its_mistakes():
    """A loop that never decays Adam's rate and runs Adam whichever optimizer is asked for fails with one of
    its mistakes: passing, it would draw lab 4's race with two Adams."""
    import functools

    from tests.students import cs231n_loop

    both = functools.partial(cs231n_loop, decay="none", adam_only=True)
    result = checks.check_function(both, "style_transfer")
    hints = EXERCISE["style_transfer"].hints
    assert not result.passed and result.reason in (hints["no_decay"], hints["lbfgs_ran_adam"]), result.reason


def test_a_loop_that_keeps_the_contract_passes():
    from tests.students import cs231n_loop  # its L-BFGS keeps torch's default max_iter and max_eval

    assert checks.check_function(cs231n_loop, "style_transfer").passed
    assert checks.check_function(_loop_without("nothing"), "style_transfer").passed


def test_importing_the_other_exercise_file_says_how_to_reuse_lab_code(tmp_path, context):
    """Importing gram_matrix from style_transfer.py into fast_transfer.py fails with a hint on how to reuse
    lab code, not with a bare ModuleNotFoundError in six checks."""
    folder = tmp_path / "dave"
    shutil.copytree(checks.ROOT / "solutions", folder)
    path = folder / "fast_transfer.py"
    path.write_text("from style_transfer import gram_matrix\n" + path.read_text())
    hint = "each file is checked on its own, so fast_transfer.py cannot import the other one; copy the function"
    [result] = check_functions(checks.load_functions(str(folder), ["conv_layer"]))
    assert not result.passed and hint in result.reason
    graded = grade.grade_submission(folder, context)
    assert graded.status == "import error" and hint in next(c.reason for c in graded.checks if c.exercise == "conv_layer")
    assert graded.points("gram_matrix") == EXERCISE["gram_matrix"].points  # style_transfer.py is still graded
