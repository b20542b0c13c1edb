"""What a student's exercise returned, as the tensors a check compares, and how far they are from the reference.

`as_tensors` turns a return value into the list of tensors compared (a loss's
gradients with respect to its inputs included), or a `Fail` whose one-line
reason says what to return instead: a numpy array, a tensor on another device,
a plain number, a loss cut off from its inputs. `compare` measures CS231n's
relative error (`rel_error`) against the reference, and `shows` which
catalogued mistake an answer matches.
"""

import math

import torch
from torch import nn

from grader import protocol
from grader.exercises import EXERCISE

def rel_error(x, y, floor=1e-8):
    """CS231n's relative error: max(|x - y| / max(floor, |x| + |y|)), floor 1e-8 as in CS231n."""
    x, y = x.detach().double(), y.detach().double()
    return float(((x - y).abs() / torch.clamp(x.abs() + y.abs(), min=floor)).max()) if x.numel() else 0.0


class Fail(Exception):
    """A check failed; the message is the one-line reason."""



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


def matches(exercise, out, reference):
    return compare(exercise, out, reference) <= EXERCISE[exercise].tolerance


RUNS = {"loop": ((0, 2), (2, 4))}  # the compared tensors of each run of the loop: Adam's, then L-BFGS's


def shows(exercise, out, wrong, expected):
    """Whether out makes the catalogued mistake whose answer is wrong.

    The loop check compares two runs (RUNS), and a loop can be right in one
    and wrong in the other: a mistake is judged in the runs it changes,
    whatever the others hold. Other kinds: in every compared tensor.
    """
    parts = RUNS.get(EXERCISE[exercise].kind)
    if parts is None:
        return matches(exercise, out, wrong)
    tolerance = EXERCISE[exercise].tolerance
    changed = [(a, b) for a, b in parts if compare(exercise, wrong[a:b], expected[a:b], a) > tolerance]
    return bool(changed) and all(compare(exercise, out[a:b], wrong[a:b], a) <= tolerance for a, b in changed)


def shapes_of(tensors):
    shapes = [tuple(t.shape) for t in tensors]
    return str(shapes[0]) if len(shapes) == 1 else f"{len(shapes)} tensors"


