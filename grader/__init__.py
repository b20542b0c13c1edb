"""The stylelab autograder: reference checks with feedback that teaches.

In a notebook:

    from grader import check
    check("gram_matrix")            # checks starter/style_transfer.py's gram_matrix
    check("train_step")             # ... and starter/fast_transfer.py's train_step
    check(gram_matrix)              # or a function defined in the notebook

Each call prints one deterministic verdict line, which nbval compares exactly,
then a `details:` line with the relative error, which
grader/nbval_sanitize.cfg masks. From a shell: `python -m grader check`.
"""


def check(exercise, impl=None):
    """Check one exercise and print its verdict; returns None so nothing else is displayed.

    exercise: an exercise's name, or a function whose __name__ is one.
    impl: where to find the functions when exercise is a name: 'starter',
    'solutions' or a folder holding style_transfer.py and fast_transfer.py; by default the
    STYLELAB_IMPL environment variable, else 'starter'.
    """
    import os

    from grader.checks import Result, check_function, load_functions
    from grader.exercises import EXERCISE, EXERCISES

    impl = impl or os.environ.get("STYLELAB_IMPL", "starter")

    name = exercise if isinstance(exercise, str) else getattr(exercise, "__name__", "")
    if name not in EXERCISES:
        print(f"check: no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
        return None
    function = exercise if callable(exercise) else load_functions(impl, [name])[name]
    result = (check_function(function, name) if callable(function)
              else Result(name, False, function, max_points=EXERCISE[name].points))
    print(result.line())
    print(f"  details: relative error {result.error:.2e}")
    return None
