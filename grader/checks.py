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
from stylelab import impl as impls

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference" / "style_transfer_checks.pt"


def rel_error(x, y, floor=1e-8):
    """CS231n's relative error: max(|x - y| / max(floor, |x| + |y|)), floor 1e-8 as in CS231n."""
    x, y = x.detach().double(), y.detach().double()
    return float(((x - y).abs() / torch.clamp(x.abs() + y.abs(), min=floor)).max()) if x.numel() else 0.0


class Fail(Exception):
    """A check failed; the message is the one-line reason."""


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


# --- what the student returned, as the list of tensors compared -------------------------------

RETURNED_REASONS = {
    "numpy": "returned a numpy array: return a torch.Tensor, so autograd can follow it",
    "device": "returned a tensor on device {}: keep results on the device of the inputs (cpu)",
    "object": "returned a {} object where tensors were expected",
    "layout": "returned a tensor of layout {}: return an ordinary (dense) tensor",
    "subclass": "returned a {}, a subclass of torch.Tensor: return a plain tensor",
}

UNCONNECTED = ("your loss does not depend on its inputs (rebuilt with torch.tensor(...) or from .item()?): "
               "the optimiser would get no gradient")


def _first_returned(value, depth=0):
    """The first Returned marker (see protocol.decode) inside a result, if any."""
    if isinstance(value, protocol.Returned):
        return value
    if depth > protocol.MAX_DEPTH:
        return None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((r for r in (_first_returned(v, depth + 1) for v in items) if r is not None), None)


def _plain(t, what="result"):
    """t as a plain, strided, real floating tensor, or a Fail naming what it is instead."""
    if not isinstance(t, torch.Tensor):
        if type(t).__module__ == "numpy":
            raise Fail(RETURNED_REASONS["numpy"])
        raise Fail(f"returned a {type(t).__name__} where a {what} tensor was expected")
    if type(t) is not torch.Tensor and not isinstance(t, nn.Parameter):
        raise Fail(f"returned a {type(t).__name__}, a subclass of torch.Tensor: return a plain tensor")
    if t.layout != torch.strided:
        raise Fail(f"returned a tensor of layout {t.layout}: return an ordinary (dense) tensor")
    if not t.is_floating_point():
        raise Fail(f"returned a tensor of dtype {t.dtype}: the answer is real numbers (float32)")
    if t.numel() > protocol.MAX_ELEMENTS:
        raise Fail(f"returned a tensor of {t.numel()} entries, far more than the answer has")
    return t


def _numbers(values, what):
    """A list of numbers (floats, or one-number tensors) as a float64 tensor."""
    try:
        return torch.tensor([float(v) for v in values], dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise Fail(f"{what} must hold numbers (Python floats)") from None


def _loss(value, name="your loss"):
    if not isinstance(value, torch.Tensor):
        raise Fail(f"returned a {type(value).__name__}, not a torch.Tensor: keep the loss a tensor "
                   f"(no .item()), the optimiser needs its gradient")
    _plain(value, "loss")
    if value.numel() != 1:
        raise Fail(f"returned a tensor of shape {tuple(value.shape)}: a loss is a single number; did you "
                   f"forget to sum?")
    if not value.requires_grad:
        raise Fail(f"{name} is detached from the graph (.detach(), .data, numpy or torch.tensor(...)?): "
                   f"the optimiser needs its gradient")
    return value.reshape(())


def _with_gradients(out, grads):
    if grads == "unconnected":
        raise Fail(UNCONNECTED)
    if not isinstance(grads, (list, tuple)):
        raise Fail(UNCONNECTED)
    return out + [_plain(g, "gradient") for g in grads]


def as_tensors(exercise, out, inputs, grads=None):
    """The result in the form compared with the reference: a list of tensors (gradients last).

    Raises Fail with the one-line reason when the result has the wrong form.
    """
    record = EXERCISE[exercise]
    returned = _first_returned(out)
    if returned is not None:
        raise Fail(RETURNED_REASONS[returned.kind].format(returned.detail))
    if record.kind == "loop":
        return _loop_tensors(out, inputs)
    if record.kind == "grid":
        if not isinstance(out, dict) or not {"content", "style", "total"} <= set(out):
            raise Fail("loss_landscape must return a dict with the keys 'content', 'style' and 'total'")
        grids = []
        for key in ("total", "content", "style"):
            try:
                grids.append(out[key] if isinstance(out[key], torch.Tensor)
                             else torch.as_tensor(out[key], dtype=torch.float64))
            except (TypeError, ValueError, RuntimeError, OverflowError):
                raise Fail(f"out[{key!r}] must be an (A, B) tensor of numbers") from None
        return [_plain(g, "grid") for g in grids]
    if record.kind == "losses":
        keys = ("content", "style", "tv", "total")
        if not isinstance(out, dict) or not set(keys) <= set(out):
            raise Fail("perceptual_loss must return a dict with the keys 'content', 'style', 'tv' and 'total'")
        for key in keys:
            if not isinstance(out[key], torch.Tensor) or out[key].numel() != 1:
                raise Fail(f"out[{key!r}] must be a one-number tensor (no .item(): training needs its gradient)")
        losses = [_plain(out[key], "loss").reshape(()) for key in keys[:3]]
        losses.append(_loss(out["total"], "your total loss"))
        return _with_gradients(losses, grads)
    if record.kind == "step":
        losses, params = out["losses"], out["params"]
        keys = ("content", "style", "tv", "total")
        if not isinstance(losses, dict) or not set(keys) <= set(losses):
            raise Fail("train_step must return a dict with the keys 'content', 'style', 'tv' and 'total'")
        values = _numbers([losses[key] for key in keys], "train_step's losses")
        return [values] + [_plain(params[key], "parameter") for key in sorted(params)]
    if record.kind == "loss":
        return _with_gradients([_loss(out)], grads)
    if isinstance(out, torch.Tensor):
        out = [out]
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in out):
        raise Fail(f"returned a {type(out).__name__}; expected "
                   f"{'a list of tensors' if record.kind == 'features' else 'a torch.Tensor'}")
    if len(out) > 1000:
        raise Fail(f"returned {len(out)} tensors")
    return [_plain(t) for t in out]


def _run_returned(out, num_iters, what="style_transfer", count_hint="record one loss per evaluation"):
    """(img, history) of one run of the loop, checked against the docstring's contract."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Fail(f"{what} must return a tuple (img, history), not {type(out).__name__}")
    img, history = out
    if not isinstance(history, dict) or not isinstance(history.get("total"), (list, tuple)):
        raise Fail("history must be a dict whose 'total' entry lists the total loss of every evaluation")
    if len(history["total"]) != num_iters:
        raise Fail(f"{what}: history['total'] has {len(history['total'])} entries for num_iters={num_iters}: "
                   f"{count_hint}")
    totals = _numbers(history["total"], "history['total']")
    for key in protocol.LOSS_KEYS:
        if not isinstance(history.get(key), (list, tuple)) or len(history[key]) != num_iters:
            raise Fail(f"history must hold one float per evaluation under each of the keys 'content', 'style', "
                       f"'tv' and 'total' (history[{key!r}] does not): the labs plot them")
    return _plain(img, "image"), totals


LBFGS = "with optimizer='lbfgs' (lab 4 races it against Adam), style_transfer"
LBFGS_COUNT = ("L-BFGS's line search may ask for more evaluations than max_eval, or stop early when it converges: "
               "count evaluations in the closure, stop at num_iters, and call opt.step again until then")


def _raised(run, what, advice=""):
    """What a further run of the loop returned, or the Fail saying what it raised."""
    if isinstance(run, dict) and "raised" in run:
        raise Fail(f"{what} raised {run['raised']}: {run.get('message', '')}{advice}"[:300])
    return run.get("returned") if isinstance(run, dict) else None


def _loop_tensors(out, inputs):
    """style_transfer's compared tensors: image and totals of the Adam run, then of the L-BFGS run.

    Each run must keep the contract the labs use first.
    """
    if not (isinstance(out, dict) and {"returned", "callback", "lbfgs", "no_style"} <= set(out)):
        raise Fail("the grader could not read what your loop returned")
    n = inputs["num_iters"]
    img, totals = _run_returned(out["returned"], n)
    calls = out["callback"] if isinstance(out["callback"], list) else []
    if [c[0] if isinstance(c, list) and c else None for c in calls] != list(range(n)):
        raise Fail(f"call callback(t, img, losses) once after every evaluation, with t = 0, 1, ..., {n - 1} "
                   f"(yours was called {len(calls)} times for num_iters={n}): the labs' snapshots and timers use it")
    if not all(isinstance(c, list) and len(c) == 2 and c[1] is True for c in calls):
        raise Fail("callback's losses must be a dict of floats (.item()) with the keys 'content', 'style', 'tv' "
                   "and 'total'")
    no_style = _raised(out["no_style"], "with no style layers (style_layers=[], as feature inversion runs it) "
                       "your loop", "; a style loss over no layers is 0")
    _run_returned(no_style, 2, "with no style layers, style_transfer")
    lbfgs_img, lbfgs_totals = _run_returned(_raised(out["lbfgs"], LBFGS), protocol.LBFGS_RUN["num_iters"],
                                            LBFGS, LBFGS_COUNT)
    return [img, totals, lbfgs_img, lbfgs_totals]


VALUES = {"loss": 1, "losses": 4}  # kinds whose compared tensors end with gradients, after this many values


def compare(exercise, out, reference, start=0):
    """The largest relative error between two lists of compared tensors (inf if their shapes differ).

    start: the position of out[0] among the compared tensors, to compare a slice.

    Values use the exercise's floor. Gradients use their reference's largest
    entry as the floor, a normwise error: float32 noise in a gradient is
    relative to its scale, not to each entry, many of which cancel to nothing.
    """
    record = EXERCISE[exercise]
    if len(out) != len(reference) or any(o.shape != r.shape for o, r in zip(out, reference)):
        return math.inf
    errors = []
    for k, (o, r) in enumerate(zip(out, reference), start):
        floor = record.floor
        if k >= VALUES.get(record.kind, math.inf) and r.numel():
            floor = max(floor, float(r.detach().abs().max()))
        errors.append(rel_error(o, r, floor))
    return max(errors, default=0.0)


def _matches(exercise, out, reference):
    return compare(exercise, out, reference) <= EXERCISE[exercise].tolerance


RUNS = {"loop": ((0, 2), (2, 4))}  # the compared tensors of each run of the loop: Adam's, then L-BFGS's


def _shows(exercise, out, wrong, expected):
    """Whether out makes the catalogued mistake whose answer is wrong.

    The loop check compares two runs (RUNS), and a loop can be right in one
    and wrong in the other: a mistake is judged in the runs it changes,
    whatever the others hold. Other kinds: in every compared tensor.
    """
    parts = RUNS.get(EXERCISE[exercise].kind)
    if parts is None:
        return _matches(exercise, out, wrong)
    tolerance = EXERCISE[exercise].tolerance
    changed = [(a, b) for a, b in parts if compare(exercise, wrong[a:b], expected[a:b], a) > tolerance]
    return bool(changed) and all(compare(exercise, out[a:b], wrong[a:b], a) <= tolerance for a, b in changed)


def _shapes(tensors):
    shapes = [tuple(t.shape) for t in tensors]
    return str(shapes[0]) if len(shapes) == 1 else f"{len(shapes)} tensors"


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


def describe_raised(name, message):
    """The one-line reason for an exception a student's code raised."""
    if name == "NotImplementedError":
        return NOT_IMPLEMENTED
    return f"raised {name}: {message}"[:300]


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
        return False, describe_raised(type(error).__name__, text.splitlines()[0] if text else ""), math.nan
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
    if not _matches(exercise, out, expected):
        for key, wrong in mistakes.items():
            if _shows(exercise, out, wrong, expected):
                return False, record.hints[key], math.nan
    if not shapes_right:
        if record.kind == "features" and len(out) != len(expected):
            return False, f"returned {len(out)} feature maps; cnn has {len(expected)} modules", math.nan
        if record.kind in VALUES and len(out) == len(expected):
            return False, "your loss's gradient has the wrong shape", math.nan
        return False, f"returned shape {_shapes(out)}, expected {_shapes(expected)}", math.nan
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
