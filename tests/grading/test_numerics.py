"""A correct student never sees FAIL because their CPU adds up in another order.

Each check's tolerance sits at least MARGIN times above the worst difference a
correct answer shows under other numerics (float64, oneDNN off, one thread,
channels-last, deterministic algorithms) and MARGIN times below the nearest
catalogued mistake; grader/instructor/numerics.py measures both. Then every public and
hidden check of the solutions runs under those numerics and must pass, and
every catalogued mistake must still get its own hint there.
"""

import functools

import pytest

from grader.checks import check_function
from grader.exercises import EXERCISE, EXERCISES
from grader.instructor.hidden import hidden_check
from grader.instructor.reference import solution
from grader.instructor.numerics import MARGIN, NUMERICS, measure, numerics, transform
from students import WRONG

# float64 is a yardstick, not a machine: a student's float32 code never runs in it
OTHER_NUMERICS = [name for name in NUMERICS if name != "float64"]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_tolerance_sits_between_float_noise_and_the_nearest_mistake(exercise):
    found = measure(exercise)
    (noise, name, where), (gap, mistake, gap_where) = found["noise"], found["gap"]
    tolerance = EXERCISE[exercise].tolerance
    assert MARGIN * noise <= tolerance, (
        f"{exercise}: a correct answer under {name} (case {where}) is {noise:.1e} from the reference, "
        f"too close to the tolerance {tolerance:g} (floor {EXERCISE[exercise].floor:g}): raise one of them")
    assert MARGIN * tolerance <= gap, (
        f"{exercise}: the mistake {mistake!r} (case {gap_where}) is {gap:.1e} from the reference, "
        f"too close to the tolerance {tolerance:g}")


def under(name, function, inputs_too=True):
    """function, called under numerics name (and given its inputs transformed, if inputs_too).

    Only the call runs under them: the reference it is judged against was computed
    as the instructor's machine computes it.
    """
    @functools.wraps(function)
    def called(*args, **kwargs):
        if inputs_too:
            args, kwargs = transform(name, args), transform(name, kwargs)
        with numerics(name):
            return function(*args, **kwargs)
    return called


@pytest.mark.parametrize("name", OTHER_NUMERICS)
def test_solutions_pass_every_check_under_other_numerics(name):
    for exercise in EXERCISES:
        function = under(name, solution(exercise))
        for result in (check_function(function, exercise), hidden_check(function, exercise)):
            assert result.passed, f"{name}: {result.line()} (relative error {result.error:.1e})"


@pytest.mark.parametrize("name", OTHER_NUMERICS)
def test_mistakes_are_recognised_under_other_numerics(name):
    # the grader hands students contiguous tensors: their own code, not the inputs, runs otherwise
    for exercise, mistakes in WRONG.items():
        for mistake, wrong in mistakes.items():
            result = check_function(under(name, wrong, inputs_too=False), exercise)
            assert result.reason == EXERCISE[exercise].hints[mistake], f"{name}: {mistake}: {result.line()}"
