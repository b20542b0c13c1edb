"""Check a student's exercises against reference tensors, with feedback that teaches.

Each check calls one function of the student's style_transfer.py or
fast_transfer.py on stored inputs (grader/protocol.py says how) and compares
the result with the reference output using CS231n's relative error,
max(|x - y| / max(floor, |x| + |y|)), with each exercise's measured tolerance
and floor (grader/exercises.py). A loss's gradient with respect to its inputs
is compared too. A check never crashes: an unfinished stub, an exception, a
wrong type or shape, NaN or inf, an input modified in place, or a value the
grader cannot read each give a FAIL with a one-line reason. When a wrong
answer matches a common mistake (a Gram matrix left unnormalised, a style
loss that indexes feats by position...), the reason says which, as a teaching
assistant would.
"""

import ast
import inspect
import math
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from grader import protocol
from grader.exercises import EXERCISE, EXERCISES
from grader.returned import UNCONNECTED, VALUES, Fail, as_tensors, compare, matches, shapes_of, shows
from stylelab import impl as impls

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference" / "style_transfer_checks.pt"


@dataclass
class Result:
    exercise: str
    passed: bool
    reason: str = ""  # deterministic: no numbers that vary between machines
    error: float = math.nan  # relative error against the reference, when one was computed
    points: int = 0
    max_points: int = 0
    details: list = field(default_factory=list)
    note: str = ""  # names the earlier exercises this check builds on that fail their own checks

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"

    def line(self):
        """One deterministic line, for notebooks compared by nbval."""
        text = f"{self.exercise}: {self.verdict} ({self.points}/{self.max_points} points)"
        return text if self.passed else f"{text}: {self.reason}"


# --- tv_loss's pixel loops --------------------------------------------------------------------

def _loops(function):
    """Line numbers of pixel loops in a function's source, or [] if it cannot be read."""
    try:
        return loops_in_source(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):  # built-ins, functions typed into a console...
        return []


# One ast.parse at a time: grade-class grades in threads, and CPython 3.11's AST
# constructor keeps its recursion depth in state the threads share. When a
# garbage collection runs Python code (a __del__) in the middle of a parse and
# another thread parses meanwhile, it raises "SystemError: AST constructor
# recursion depth mismatch", and a correct student is graded "grader error".
_PARSING = threading.Lock()


def loops_in_source(source, name=None):
    """Line numbers of Python loops in source (in function name, if given).

    A loop over a literal, such as `for dim in (2, 3)`, is fine: it does not
    visit pixels. Loops over range(...), a tensor or anything else are not.
    """
    try:
        with _PARSING:
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # a lambda in an expression, a NUL byte...
        return []
    if name is not None:
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
        if not defs:
            return []
        tree = defs[-1]  # the last definition is the one Python keeps
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            iters = [node.iter]
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
            iters = [generator.iter for generator in node.generators]
        else:
            iters = []
        if isinstance(node, ast.While) or any(not isinstance(i, (ast.Tuple, ast.List)) for i in iters):
            lines.append(node.lineno)
    return lines


LOOP_REASON = "uses a Python loop (line {} of the function): vectorize it with tensor slicing"


# --- inputs modified in place ----------------------------------------------------------------

def snapshot(args):
    """Copies of the tensor inputs, to tell later whether the call modified them."""
    return {k: _copy(v) for k, v in args.items() if not isinstance(v, nn.Module)}


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


def _modified(before, after):
    """Names of inputs whose values changed (entries removed, replaced or resized included)."""
    return [name for name, old in before.items() if name in after and not _same(old, after[name])]


def _same(old, new):
    if isinstance(old, dict):
        return isinstance(new, dict) and set(new) == set(old) and all(_same(old[k], new[k]) for k in old)
    if isinstance(old, (list, tuple)):
        return (isinstance(new, (list, tuple)) and len(new) == len(old)
                and all(_same(o, n) for o, n in zip(old, new)))
    if isinstance(old, torch.Tensor):
        return (isinstance(new, torch.Tensor) and new.shape == old.shape and new.dtype == old.dtype
                and torch.equal(old, new.detach()))
    return True  # numbers and settings are passed by value


# --- judging -----------------------------------------------------------------------------------

NOT_IMPLEMENTED = "not implemented yet"


def describe_raised(name, message, call=None):
    """The one-line reason for an exception a student's code raised.

    call: how the grader called the exercise (Exercise.signature); a TypeError
    about the exercise's own arguments then names the arguments it was given.
    """
    if name == "NotImplementedError":
        return NOT_IMPLEMENTED
    reason = f"raised {name}: {message}"[:300]
    if call and name == "TypeError" and message.startswith(call.split("(")[0] + "()"):
        # the call is the grader's own text, not the student's, so it is not cut short
        reason += f" (the grader calls {call}, as its docstring says; a starter older than the grader may lack one)"
    return reason


def evaluate(function, exercise, inputs, reference=None):
    """Call function on a private copy of inputs, in this process: (result, gradients, inputs after).

    reference: the module whose versions of the exercise's needs the call
    uses (protocol.needs_bound), or None for the student's own.
    """
    record = EXERCISE[exercise]
    args = protocol.prepare(record, inputs)
    with torch.random.fork_rng(), protocol.needs_bound(function, record.needs, reference):
        raw = protocol.call(record, function, args)
        grads = protocol.gradients(record, raw, args)
    return raw, grads, args


def run_case(function, exercise, inputs, expected, mistakes, reference=None):
    """Check one function on one case, in this process; returns (passed, reason, relative error)."""
    if exercise == "tv_loss" and _loops(function):
        return False, LOOP_REASON.format(_loops(function)[0]), math.nan
    before = snapshot(inputs)
    try:
        raw, grads, after = evaluate(function, exercise, inputs, reference)
    except (Exception, SystemExit) as error:  # a student's bug of any kind is a FAIL, never a crash
        text = str(error).strip()
        call = EXERCISE[exercise].signature(inputs)
        return False, describe_raised(type(error).__name__, text.splitlines()[0] if text else "", call), math.nan
    return judge(exercise, raw, before, after, expected, mistakes, grads)


def judge(exercise, raw, before, after, expected, mistakes, grads=None):
    """Judge what a call returned (after holds the inputs as the call left them); never raises."""
    try:
        return _judge(exercise, raw, before, after, expected, mistakes, grads)
    except Exception as error:  # whatever the student returned, one check's verdict is all it costs
        return False, f"the grader could not read what your code returned ({type(error).__name__})", math.nan


def _judge(exercise, raw, before, after, expected, mistakes, grads):
    record = EXERCISE[exercise]
    try:
        out = as_tensors(exercise, raw, after, grads)
    except Fail as fail:
        return False, str(fail), math.nan
    changed = [name for name in _modified(before, after) if name not in record.mutates]
    if changed:
        return False, f"modified its input {changed[0]!r} in place: compute on new tensors instead", math.nan
    shapes_right = len(out) == len(expected) and all(o.shape == e.shape for o, e in zip(out, expected))
    if shapes_right and not all(torch.isfinite(t).all() for t in out):
        return False, "returned NaN or inf", math.nan
    if not matches(exercise, out, expected):
        for key, wrong in mistakes.items():
            if shows(exercise, out, wrong, expected):
                return False, record.hints[key], math.nan
    if not shapes_right:
        if record.kind == "features" and len(out) != len(expected):
            return False, f"returned {len(out)} feature maps; cnn has {len(expected)} modules", math.nan
        if record.kind in VALUES and len(out) == len(expected):
            return False, "your loss's gradient has the wrong shape", math.nan
        return False, f"returned shape {shapes_of(out)}, expected {shapes_of(expected)}", math.nan
    error = compare(exercise, out, expected)
    if error > record.tolerance:
        values = VALUES.get(record.kind, len(expected))
        if compare(exercise, out[:values], expected[:values]) <= record.tolerance:  # right value, wrong gradient
            if all(not g.any() for g in out[values:]):
                return False, UNCONNECTED, error
            return False, ("your loss has the right value but the wrong gradient: compute it with torch "
                           "operations on its inputs"), error
        return False, f"values differ from the reference (relative error above {record.tolerance:g})", error
    if record.kind == "loop":
        totals = out[1]
        if not totals[-1] < totals[0]:
            return False, "the total loss did not fall", error
    return True, "", error


# --- the public reference and the student's files -----------------------------------------------

def load_reference(path=REFERENCE):
    """{exercise: (inputs, expected, mistakes)} from the public reference file."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m grader.instructor.make_reference` to create it")
    stored = protocol.load(path)
    cases = {}
    for exercise, case in stored.items():
        inputs = dict(case["inputs"])
        if "cnn" in inputs:
            inputs["cnn"] = protocol.tiny_cnn(inputs["cnn"])
        cases[exercise] = (inputs, case["expected"], case["mistakes"])
    return cases


def load_impl(impl="starter", file="style_transfer.py"):
    """One of the student's files as a fresh module (stylelab.impl.load); a Fail says what is wrong."""
    try:
        return impls.load(impl, file)
    except impls.ImplError as error:
        raise Fail(str(error)) from None


def load_functions(impl, exercises=EXERCISES):
    """{exercise: function, or the one-line reason it cannot be checked}, loading each file needed once."""
    modules = {}
    for file in dict.fromkeys(EXERCISE[e].file for e in exercises):
        try:
            modules[file] = load_impl(impl, file)
        except Fail as error:
            modules[file] = str(error)
    found = {}
    for exercise in exercises:
        file = EXERCISE[exercise].file
        function = modules[file] if isinstance(modules[file], str) else getattr(modules[file], exercise, None)
        found[exercise] = (function if isinstance(function, str) or callable(function)
                           else f"{file} defines no function {exercise}")
    return found


def reference_for(exercise):
    """The module whose versions of an exercise's needs its check binds: None if it has none to bind."""
    record = EXERCISE[exercise]
    return impls.reference(record.file) if record.needs else None


def _names(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def upstream(exercise, results, bound):
    """The one line naming the exercises this check builds on that fail their own checks ('' if none).

    results: {exercise: Result or grade.Check} of the checks run so far, this
    one's own included where it has run. bound: whether this check used the
    reference versions of them.
    """
    mine = results.get(exercise)
    if mine is not None and not mine.passed and mine.reason == NOT_IMPLEMENTED:
        return ""  # nothing of the student's ran: the earlier verdicts have nothing to add
    failing = [n for n in EXERCISE[exercise].needs if n in results and not results[n].passed
               and (mine is None or mine.passed or results[n].reason != mine.reason)]  # not one missing file
    if not failing:
        return ""
    one = len(failing) == 1
    if bound:
        return (f"this check uses the reference {_names(failing)}; yours "
                f"{'fails its own check' if one else 'fail their own checks'}")
    return (f"this check runs your {_names(failing)}, which {'fails its own check' if one else 'fail their own checks'}: "
            f"fix {'it' if one else 'them'} first")


def with_needs(names):
    """names and the exercises they build on, in the labs' order (the order checks run in)."""
    wanted = set(names) | {need for name in names for need in EXERCISE[name].needs}
    return tuple(e for e in EXERCISES if e in wanted)


def check_function(function, exercise, cases=None, reference=None):
    """Result of the public check of one function; reference as for evaluate."""
    cases = cases or load_reference()
    inputs, expected, mistakes = cases[exercise]
    passed, reason, error = run_case(function, exercise, inputs, expected, mistakes, reference)
    points = EXERCISE[exercise].points
    return Result(exercise, passed, reason, error, points if passed else 0, points)


def check_functions(functions, cases=None):
    """Public results for {exercise: function or reason}, as load_functions gives them.

    Each check judges one exercise: where the kit has the reference solutions,
    the exercises a check builds on (its record's needs) are the reference's,
    and a note names any of the student's own that fail their own checks. In
    the student release the student's own run, and a check that fails while one
    of them fails says to fix that one first.
    """
    cases = cases or load_reference()
    results = {}
    for exercise, function in functions.items():
        record = EXERCISE[exercise]
        if not callable(function):
            results[exercise] = Result(exercise, False, function, max_points=record.points)
            continue
        reference = reference_for(exercise)
        result = check_function(function, exercise, cases, reference)
        result.note = upstream(exercise, {**results, exercise: result}, reference is not None)
        if result.note and reference is None and not result.passed:
            result.reason, result.note = result.note, ""  # its own verdict would blame the wrong function
        results[exercise] = result
    return list(results.values())
