"""Hidden checks (instructors only): the public checks on fresh inputs, computed live.

Other seeds, batch sizes, shapes and layers, with the expected outputs computed
from solutions/ at grading time, so an answer copied from the public reference
file passes the public check and fails here. Nothing of this module goes to
students: it imports the solutions.
"""

from grader.checks import Result, reference_for, run_case
from grader.exercises import EXERCISE
from grader.instructor.reference import case

# (seed, variant) pairs: variant 1 and 2 change shapes, seeds change values
HIDDEN_CASES = ((1, 1), (2, 2))


def hidden_check(function, exercise):
    """Result of the hidden checks of one function: it passes only if every case does."""
    reference = reference_for(exercise)  # one exercise judged, as in the public check
    for seed, variant in HIDDEN_CASES:
        inputs, expected, mistakes = case(exercise, seed, variant)
        passed, reason, error = run_case(function, exercise, inputs, expected, mistakes, reference)
        if not passed:
            return Result(exercise, False, f"hidden check: {reason}", error, 0, EXERCISE[exercise].points)
    return Result(exercise, True, "", error, EXERCISE[exercise].points, EXERCISE[exercise].points)


def hidden_functions(functions):
    """Hidden results for {exercise: function or reason}, as checks.load_functions gives them."""
    return [hidden_check(f, e) if callable(f) else Result(e, False, f, max_points=EXERCISE[e].points)
            for e, f in functions.items()]
