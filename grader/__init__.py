"""The stylelab autograder: reference checks with feedback that teaches.

In a notebook:

    from grader import check
    check("gram_matrix")            # checks starter/style_transfer.py's gram_matrix
    check("train_step")             # ... and starter/fast_transfer.py's train_step
    check(gram_matrix)              # or a function defined in the notebook

Each call prints one deterministic verdict line, which nbval compares exactly,
then a `details:` line with the relative error, and below it a note when the
check used the reference version of an earlier exercise of yours that fails,
and what your code printed or warned; grader/nbval_sanitize.cfg masks all of
those. From a shell: `python -m grader check`.
"""


def check(exercise, impl=None):
    """Check one exercise and print its verdict; returns None so nothing else is displayed.

    exercise: an exercise's name, or a function whose __name__ is one.
    impl: where to find the functions when exercise is a name: 'starter',
    'solutions' or a folder holding style_transfer.py and fast_transfer.py; by default the
    STYLELAB_IMPL environment variable, else 'starter'.
    """
    from grader.checks import check_functions, load_functions, with_needs
    from grader.exercises import EXERCISE, EXERCISES

    name = exercise if isinstance(exercise, str) else getattr(exercise, "__name__", "")
    if name not in EXERCISES:
        print(f"check: no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
        return None
    if callable(exercise):  # a function defined in the notebook: its needs are the notebook's too
        scope = getattr(exercise, "__globals__", {})
        functions = {n: scope[n] for n in EXERCISE[name].needs if callable(scope.get(n))}
        functions[name] = exercise
    else:
        functions = load_functions(impl, with_needs([name]))  # impl None: stylelab.impl.chosen
    results, said = _quietly(check_functions, functions)
    result = results[-1]
    print(result.line())
    print(f"  details: relative error {result.error:.2e}")
    if result.note:
        print(f"  note: {result.note}")
    for line in said:
        print(f"  {line}")
    return None


def _quietly(run, *args, keep=20):
    """run(*args), with what the checked code prints or warns kept for after the verdict: (result, lines).

    nbval compares a check cell's output with the instructor's copy, where the
    verdict line is followed by lines grader/nbval_sanitize.cfg masks. A
    harmless UserWarning on stderr, or a debug print, must not make a correct
    answer's cell differ, so both are caught here and shown below the details.
    """
    import contextlib
    import io
    import warnings

    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        warnings.simplefilter("default")
        result = run(*args)
    lines = [f"your code printed: {line}" for line in printed.getvalue().splitlines()[:keep]]
    seen = dict.fromkeys(f"warning: {w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}"
                         for w in caught)
    return result, lines + list(seen)[:keep]
