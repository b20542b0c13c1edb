"""Check a student's exercises against reference tensors, with feedback that teaches.

Each check calls one function of the student's style_transfer.py or
fast_transfer.py (points.FILE_OF says which) on stored
inputs and compares the result with the reference output using CS231n's
relative error, max(|x - y| / max(1e-8, |x| + |y|)). It never crashes: an
unfinished stub, an exception, a wrong type or shape, NaN or inf, or an input
modified in place each give a FAIL with a one-line reason. When a wrong answer
matches a common mistake (a Gram matrix left unnormalised, a style loss that
indexes feats by position...), the reason says which, as a teaching assistant
would.
"""

import ast
import copy
import importlib.util
import inspect
import math
import textwrap
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from grader.points import FILE_OF, FILES, POINTS
from grader.worker import Returned

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference" / "style_transfer_checks.pt"
EXERCISES = tuple(POINTS)

# Largest relative error that passes, and the floor of its denominator
# (rel_error): below the floor, an entry's error is judged as an absolute error
# of tolerance * floor, since float32 rounding is a large *relative* error on an
# entry that cancels to almost nothing. Both come from measurement, not taste:
# grader/numerics.py recomputes every check in float64, without oneDNN, on one
# thread, channels-last and with deterministic algorithms, and each tolerance
# sits at least 10x above the worst difference a correct answer showed there
# and 10x below the nearest catalogued mistake (tests/test_numerics.py).
#   scalar losses, summed once: CS231n's floor 1e-8, tolerance 1e-5;
#   activations of order 1 through convolutions (float noise ~1e-5 near zero):
#   floor 0.1, tolerance 1e-3; images in [0, 1]: floor 1 (an absolute error);
#   the Adam loop and the loss grid add up many such sums: 1e-4.
TOLERANCES = {"extract_features": 1e-3, "content_loss": 1e-5, "gram_matrix": 1e-3,
              "style_loss": 1e-5, "tv_loss": 1e-5, "style_transfer": 1e-4,
              "match_color": 1e-4, "luminance_only": 1e-4, "loss_landscape": 1e-4,
              "conv_layer": 1e-3, "conditional_instance_norm": 1e-3, "residual_block": 1e-3,
              "transformer_net": 1e-3, "perceptual_loss": 1e-5, "train_step": 1e-3}
FLOORS = {"extract_features": 0.1, "gram_matrix": 0.1, "conv_layer": 0.1, "conditional_instance_norm": 0.1,
          "residual_block": 0.1, "train_step": 0.1,
          "match_color": 1.0, "luminance_only": 1.0, "transformer_net": 1.0}

# Inputs an exercise is meant to change in place (the optimizer updates the parameters).
MUTATES = {"train_step": ("params",)}

# Inputs through which a loss must stay differentiable, per exercise.
GRAD_INPUTS = {"content_loss": ("content_current",), "style_loss": ("feats",),
               "tv_loss": ("img",), "gram_matrix": ("features",), "perceptual_loss": ("feats", "out"),
               "conditional_instance_norm": ("x",), "train_step": ("params",)}

HINTS = {
    "extract_features": {
        "last_only": "you returned only the last layer's output: append every module's output to the list",
        "includes_input": "your list starts with the input x: feats[i] must be the output of cnn[i]",
        "missing_last": "your list misses the last module's output: run every module of cnn",
    },
    "content_loss": {
        "mean": "you averaged the squared differences: the content loss sums them",
        "no_weight": "you forgot to multiply by content_weight",
        "norm": "you took the square root (a norm): the content loss is the sum of squares itself",
        "half": "your loss is half the expected value: there is no 1/2 factor here",
    },
    "gram_matrix": {
        "unnormalized": "your Gram matrix is C*H*W times too large: did you skip normalize?",
        "hw_only": "your Gram matrix is C times too large: normalize divides by C*H*W, not H*W",
        "c_only": "your Gram matrix is H*W times too large: normalize divides by C*H*W, not C",
        "with_batch": "your Gram matrix is N times too small: divide by C*H*W, not N*C*H*W; each image has its own",
        "always_normalized": "with normalize=False the Gram matrix must not be divided by C*H*W",
        "wrong_transpose": "your Gram matrix is (N, H*W, H*W): multiply the (C, H*W) features by their transpose, "
                           "so that it compares channels, not positions",
        "first_image_only": "you returned one (C, C) matrix: compute a Gram matrix for each of the N images",
    },
    "style_loss": {
        "by_position": "you indexed feats by position (feats[i]): use the layer index feats[style_layers[i]]",
        "no_weight": "you forgot to multiply each layer's term by style_weights[i]",
        "mean": "you averaged the squared differences: the style loss sums them",
        "last_layer_only": "only the last layer counts in your loss: add the layers' terms up instead of "
                           "overwriting the loss in the loop",
        "unnormalized_gram": "your Gram matrices are not normalized: call gram_matrix with its default "
                             "normalize=True, as the targets were",
    },
    "tv_loss": {
        "abs": "you summed absolute differences: the total-variation loss here squares them",
        "vertical_only": "you only compared vertical neighbours: add the horizontal differences too",
        "horizontal_only": "you only compared horizontal neighbours: add the vertical differences too",
        "mean": "you averaged the squared differences: the total-variation loss sums them",
        "no_weight": "you forgot to multiply by tv_weight",
        "wraparound": "your differences wrap around the border (torch.roll?): compare only neighbours inside the image",
    },
    "match_color": {
        "means_only": "you matched the means only: also map the covariance, with A = Sigma_c^(1/2) Sigma_s^(-1/2)",
        "inverted": "your A maps the wrong way round: A = Sigma_c^(1/2) Sigma_s^(-1/2) turns the style's "
                    "covariance into the content's",
        "unclamped": "some values leave [0, 1]: clamp the recoloured image",
    },
    "luminance_only": {
        "swapped": "you kept the content's luminance and the stylised colours: Y comes from stylized, I and Q "
                   "from content_img",
        "unclamped": "some values leave [0, 1]: clamp the result",
    },
    "loss_landscape": {
        "transposed": "your grid is (B, A): entry [i, j] is for alphas[i] and betas[j]",
        "total_without_tv": "your total leaves out the total-variation loss",
    },
    "conv_layer": {
        "zero_padding": "you padded with zeros: use reflection padding (F.pad(..., mode='reflect')), "
                        "which keeps a dark frame from appearing around the image",
        "no_padding": "your output is smaller than the input: pad by k // 2 on every side before convolving",
        "upsample_after": "you upsampled after the convolution: upsample x first, then pad and convolve",
        "bilinear": "you upsampled with bilinear interpolation: use mode='nearest'",
    },
    "conditional_instance_norm": {
        "batch_stats": "you normalised over the whole batch (batch norm): each image's channels use their "
                       "own mean and variance, over H and W only",
        "unbiased": "you used the unbiased variance (divided by H*W - 1): use unbiased=False",
        "no_affine": "you left out gamma and beta: scale and shift the normalised x with the style's parameters",
        "first_style": "you used gamma[0] and beta[0] only: blend the styles' rows with style_mix @ gamma",
    },
    "residual_block": {
        "no_skip": "you returned y without adding x: a residual block returns x + y",
        "relu_after_sum": "you applied a ReLU after the sum: the block's output is x + norm2(conv2(...)) as it is",
        "relu_after_norm2": "you applied a ReLU after norm2: only the first convolution is followed by a ReLU",
    },
    "transformer_net": {
        "no_sigmoid": "your output is not in [0, 1]: finish with a sigmoid",
        "clamp": "you clamped the output: use a sigmoid, whose gradient does not vanish outside [0, 1]",
        "no_residual": "your output ignores the residual blocks: run every 'res.i.' block in order",
    },
    "perceptual_loss": {
        "sum_over_batch": "your loss is N times too large: average each loss over the N images of the batch",
        "unnormalized_gram": "your Gram matrices are not normalised: divide by C * H * W as gram_matrix does",
        "no_tv": "your total leaves out the total-variation loss",
        "by_position": "you indexed feats by position (feats[i]): use the layer index feats[style_layers[i]]",
    },
    "train_step": {
        "no_zero_grad": "gradients from before the step leaked into the update: clear them with the "
                        "optimizer's zero_grad before backward()",
        "no_step": "the parameters did not change: after backward(), let the optimizer take its step",
        "losses_after": "you returned the losses after the update: return those of this step's forward pass",
    },
    "style_transfer": {
        "no_clamp": "your image leaves pixel_range: clamp img into (low, high) after every Adam step",
        "no_decay": "the learning rate never drops: switch to decayed_lr at step decay_lr_at",
        "reset_moments": "you created a new Adam at decay_lr_at, which forgets its moments: change the "
                         "learning rate of the existing optimizer instead (opt.param_groups)",
    },
}


def tiny_cnn_state(seed=0):
    """Seeded weights for tiny_cnn, independent of how torch initialises layers."""
    g = torch.Generator().manual_seed(1000 + seed)
    shapes = {"0.weight": (6, 3, 3, 3), "0.bias": (6,), "3.weight": (8, 6, 3, 3), "3.bias": (8,)}
    return {key: 0.4 * torch.randn(shape, generator=g) + (0.05 if key.endswith("bias") else 0.0)
            for key, shape in shapes.items()}


def tiny_cnn(state):
    """Conv-ReLU-MaxPool-Conv-ReLU: the network of the extract_features and loop checks."""
    cnn = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
    cnn.load_state_dict(state)
    return cnn.requires_grad_(False)


class PlainSGD:
    """torch.optim.SGD's update, p -= lr * p.grad, for the train_step check.

    torch's optimizers import torch._dynamo on their first step: a second in
    every sandboxed child, more than all the other checks together.
    """

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def step(self):
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-self.lr)


def call(function, exercise, inputs):
    """Call an exercise on a case's inputs; returns the raw result.

    gram_matrix is called twice (normalize=True, then False).
    """
    if exercise == "gram_matrix":
        return [function(inputs["features"]), function(inputs["features"], normalize=False)]
    if exercise == "style_transfer":
        settings = {key: value for key, value in inputs.items()
                    if key not in ("cnn", "content_img", "style_img")}
        return function(inputs["cnn"], inputs["content_img"], inputs["style_img"], **settings)
    if exercise == "train_step":
        # plain SGD, whose update is linear in the gradient, so float noise stays
        # float noise; the large stale gradients catch a missing zero_grad()
        params = inputs["params"]
        optimizer = PlainSGD(params.values(), lr=inputs["lr"])
        for p in params.values():
            p.grad = torch.full_like(p, 100.0)
        args = {k: v for k, v in inputs.items() if k != "lr"}
        args["optimizer"] = optimizer
        losses = function(**args)
        return {"losses": losses, "params": {k: v.detach().clone() for k, v in params.items()}}
    return function(*inputs.values())


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

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"

    def line(self):
        """One deterministic line, for notebooks compared by nbval."""
        text = f"{self.exercise}: {self.verdict} ({self.points}/{self.max_points} points)"
        return text if self.passed else f"{text}: {self.reason}"


def _first_returned(value):
    """The first Returned marker (see worker.decode) inside a result, if any."""
    if isinstance(value, Returned):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((r for r in map(_first_returned, items) if r is not None), None)


RETURNED_REASONS = {
    "numpy": "returned a numpy array: return a torch.Tensor, so autograd can follow it",
    "device": "returned a tensor on device {}: keep results on the device of the inputs (cpu)",
    "object": "returned a {} object where tensors were expected",
}


def _as_tensors(exercise, out, inputs):
    """The result in the form compared with the reference: a list of tensors."""
    returned = _first_returned(out)
    if returned is not None:
        raise Fail(RETURNED_REASONS[returned.kind].format(returned.detail))
    if exercise == "style_transfer":
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Fail(f"style_transfer must return a tuple (img, history), not {type(out).__name__}")
        img, history = out
        if not isinstance(history, dict) or not isinstance(history.get("total"), (list, tuple)):
            raise Fail("history must be a dict whose 'total' entry lists the total loss of every evaluation")
        if len(history["total"]) != inputs["num_iters"]:
            raise Fail(f"history['total'] has {len(history['total'])} entries for num_iters="
                       f"{inputs['num_iters']}: record one loss per evaluation")
        out = [img, torch.tensor([float(v) for v in history["total"]])]
    elif exercise == "loss_landscape":
        if not isinstance(out, dict) or not {"content", "style", "total"} <= set(out):
            raise Fail("loss_landscape must return a dict with the keys 'content', 'style' and 'total'")
        out = [torch.as_tensor(out[key]) for key in ("total", "content", "style")]
    elif exercise == "perceptual_loss":
        keys = ("content", "style", "tv", "total")
        if not isinstance(out, dict) or not set(keys) <= set(out):
            raise Fail("perceptual_loss must return a dict with the keys 'content', 'style', 'tv' and 'total'")
        for key in keys:
            if not isinstance(out[key], torch.Tensor) or out[key].numel() != 1:
                raise Fail(f"out[{key!r}] must be a one-number tensor (no .item(): training needs its gradient)")
        if not out["total"].requires_grad:
            raise Fail("your total loss is detached from the graph: training needs its gradient")
        out = [out[key].reshape(()) for key in keys]
    elif exercise == "train_step":
        losses, params = out["losses"], out["params"]
        keys = ("content", "style", "tv", "total")
        if not isinstance(losses, dict) or not set(keys) <= set(losses):
            raise Fail("train_step must return a dict with the keys 'content', 'style', 'tv' and 'total'")
        try:
            values = torch.tensor([float(losses[key]) for key in keys])
        except (TypeError, ValueError, RuntimeError):
            raise Fail("train_step's losses must be numbers (Python floats)") from None
        out = [values] + [params[key] for key in sorted(params)]
    elif exercise in ("content_loss", "style_loss", "tv_loss"):
        if not isinstance(out, torch.Tensor):
            raise Fail(f"returned a {type(out).__name__}, not a torch.Tensor: keep the loss a tensor "
                       f"(no .item()), the optimiser needs its gradient")
        if out.numel() != 1:
            raise Fail(f"returned a tensor of shape {tuple(out.shape)}: a loss is a single number; did you "
                       f"forget to sum?")
        if not out.requires_grad:
            raise Fail("your loss is detached from the graph (.detach(), .data, numpy or torch.tensor(...)?): "
                       "the optimiser needs its gradient")
        out = [out.reshape(())]
    elif isinstance(out, torch.Tensor):
        out = [out]
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in out):
        raise Fail(f"returned a {type(out).__name__}; expected "
                   f"{'a list of tensors' if exercise == 'extract_features' else 'a torch.Tensor'}")
    return list(out)


def _matches(out, expected, tolerance, floor=1e-8):
    return (len(out) == len(expected) and all(o.shape == e.shape for o, e in zip(out, expected))
            and max((rel_error(o, e, floor) for o, e in zip(out, expected)), default=0.0) <= tolerance)


def _shapes(tensors):
    shapes = [tuple(t.shape) for t in tensors]
    return str(shapes[0]) if len(shapes) == 1 else f"{len(shapes)} tensors"


def _loops(function):
    """Line numbers of pixel loops in a function's source, or [] if it cannot be read."""
    try:
        return loops_in_source(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):  # built-ins, functions typed into a console...
        return []


def loops_in_source(source, name=None):
    """Line numbers of Python loops in source (in function name, if given).

    A loop over a literal, such as `for dim in (2, 3)`, is fine: it does not
    visit pixels. Loops over range(...), a tensor or anything else are not.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a lambda inside an expression, say
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


def _prepare(exercise, inputs):
    """A private copy of the inputs, with grad on those a loss must stay differentiable in."""
    inputs = {k: (v if isinstance(v, nn.Module) else copy.deepcopy(v)) for k, v in inputs.items()}
    for name in GRAD_INPUTS.get(exercise, ()):
        value = inputs[name]
        if isinstance(value, dict):
            inputs[name] = {k: t.requires_grad_() for k, t in value.items()}
        else:
            inputs[name] = ([t.requires_grad_() for t in value] if isinstance(value, list)
                            else value.requires_grad_())
    return inputs


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
        return isinstance(new, torch.Tensor) and torch.equal(old, new.detach())
    return True  # numbers and settings are passed by value


def describe_raised(name, message):
    """The one-line reason for an exception a student's code raised."""
    if name == "NotImplementedError":
        return "not implemented yet"
    return f"raised {name}: {message}"[:300]


def run_case(function, exercise, inputs, expected, mistakes):
    """Check one function on one case, in this process; returns (passed, reason, relative error)."""
    if exercise == "tv_loss" and _loops(function):
        return False, LOOP_REASON.format(_loops(function)[0]), math.nan
    args = _prepare(exercise, inputs)
    before = snapshot(args)
    try:
        with torch.random.fork_rng():
            raw = call(function, exercise, args)
    except Exception as error:  # a student's bug of any kind is a FAIL, never a crash
        text = str(error).strip()
        return False, describe_raised(type(error).__name__, text.splitlines()[0] if text else ""), math.nan
    return judge(exercise, raw, before, args, expected, mistakes)


def snapshot(args):
    """Copies of the tensor inputs, to tell later whether the call modified them."""
    return {k: copy.deepcopy(v) for k, v in args.items() if not isinstance(v, nn.Module)}


def judge(exercise, raw, before, after, expected, mistakes):
    """Judge what a call returned; after holds the inputs as the call left them."""
    try:
        out = _as_tensors(exercise, raw, after)
    except Fail as fail:
        return False, str(fail), math.nan
    changed = [name for name in _modified(before, after) if name not in MUTATES.get(exercise, ())]
    if changed:
        return False, f"modified its input {changed[0]!r} in place: compute on new tensors instead", math.nan
    if not all(torch.isfinite(t).all() for t in out):
        return False, "returned NaN or inf", math.nan
    tolerance, floor = TOLERANCES[exercise], FLOORS.get(exercise, 1e-8)
    if not _matches(out, expected, tolerance, floor):
        for key, wrong in mistakes.items():
            if _matches(out, wrong, tolerance, floor):
                return False, HINTS[exercise][key], math.nan
    if len(out) != len(expected) or any(o.shape != e.shape for o, e in zip(out, expected)):
        if exercise == "extract_features" and len(out) != len(expected):
            return False, f"returned {len(out)} feature maps; cnn has {len(expected)} modules", math.nan
        return False, f"returned shape {_shapes(out)}, expected {_shapes(expected)}", math.nan
    error = max(rel_error(o, e, floor) for o, e in zip(out, expected))
    if error > tolerance:
        return False, f"values differ from the reference (relative error above {tolerance:g})", error
    if exercise == "style_transfer":
        totals = out[1]
        if not totals[-1] < totals[0]:
            return False, "the total loss did not fall", error
    return True, "", error


def load_reference(path=REFERENCE):
    """{exercise: (inputs, expected, mistakes)} from the public reference file."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m grader.make_reference` to create it")
    with warnings.catch_warnings():  # torch 2.1-2.3 warn about their own TypedStorage here
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        stored = torch.load(path, weights_only=True)
    cases = {}
    for exercise, case in stored.items():
        inputs = dict(case["inputs"])
        if "cnn" in inputs:
            inputs["cnn"] = tiny_cnn(inputs["cnn"])
        cases[exercise] = (inputs, case["expected"], case["mistakes"])
    return cases


def load_impl(impl="starter", file="style_transfer.py"):
    """One of the student's files as a module: from 'starter', 'solutions', a folder holding it, or a file."""
    folder = ROOT / impl if impl in ("starter", "solutions") else Path(impl)
    path = folder / file if folder.is_dir() else folder
    if not path.is_file():
        raise Fail(f"{path}: no such file; --impl takes starter, solutions or a folder holding {file}")
    # a fresh, unique module each time: a notebook re-checks the file after every edit
    spec = importlib.util.spec_from_file_location(f"student_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # SyntaxError, ImportError, even SystemExit at import
        raise Fail(f"could not import {path}: {type(error).__name__}: {error}".splitlines()[0]) from None
    return module


def load_functions(impl, exercises=EXERCISES):
    """{exercise: function, or the one-line reason it cannot be checked}, loading each file needed once."""
    modules = {}
    for file in dict.fromkeys(FILE_OF[e] for e in exercises):
        try:
            modules[file] = load_impl(impl, file)
        except Fail as error:
            modules[file] = str(error)
    found = {}
    for exercise in exercises:
        module = modules[FILE_OF[exercise]]
        function = module if isinstance(module, str) else getattr(module, exercise, None)
        found[exercise] = (function if isinstance(function, str) or callable(function)
                           else f"{FILE_OF[exercise]} defines no function {exercise}")
    return found


def check_function(function, exercise, cases=None):
    """Result of the public check of one function."""
    cases = cases or load_reference()
    inputs, expected, mistakes = cases[exercise]
    passed, reason, error = run_case(function, exercise, inputs, expected, mistakes)
    points = POINTS[exercise]
    return Result(exercise, passed, reason, error, points if passed else 0, points)


def check_functions(functions, cases=None):
    """Public results for {exercise: function or reason}, as load_functions gives them."""
    cases = cases or load_reference()
    return [check_function(f, e, cases) if callable(f) else Result(e, False, f, max_points=POINTS[e])
            for e, f in functions.items()]
