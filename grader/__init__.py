"""The stylelab autograder: reference checks with feedback that teaches.

In a notebook:

    from grader import check
    check("gram_matrix")            # checks starter/style_transfer.py's gram_matrix
    check(gram_matrix)              # or a function defined in the notebook

Each call prints one deterministic verdict line, which nbval compares exactly,
then a `details:` line with the relative error, which
grader/nbval_sanitize.cfg masks. From a shell: `python -m grader check`.
"""


def check(exercise, impl=None):
    """Check one exercise and print its verdict; returns None so nothing else is displayed.

    exercise: an exercise's name, or a function whose __name__ is one.
    impl: where to find the functions when exercise is a name: 'starter',
    'solutions' or a folder holding style_transfer.py; by default the
    STYLELAB_IMPL environment variable, else 'starter'.
    """
    import os

    from grader.checks import EXERCISES, Fail, Result, check_function, load_impl
    from grader.points import POINTS

    impl = impl or os.environ.get("STYLELAB_IMPL", "starter")

    name = exercise if isinstance(exercise, str) else getattr(exercise, "__name__", "")
    if name not in EXERCISES:
        print(f"check: no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
        return None
    try:
        function = exercise if callable(exercise) else getattr(load_impl(impl), name, None)
    except Fail as error:
        function, reason = None, str(error)
    else:
        reason = f"style_transfer.py defines no function {name}"
    result = (check_function(function, name) if callable(function)
              else Result(name, False, reason, max_points=POINTS[name]))
    print(result.line())
    print(f"  details: relative error {result.error:.2e}")
    return None
