"""What the sandboxed child and the judge share: how an exercise is called, and how values cross the pipe.

The child (grader/worker.py) calls a student's function on a check's inputs
and sends back what it returned; the parent (grader/instructor/grade.py) judges it
(grader/checks.py). Both sides call exercises the same way, through call()
and gradients() here, which is also how the in-process `grader check` does it.

Everything the child sends is hostile data: decode() rebuilds it against a
strict schema before anything computes with it (plain containers, bounded
depth and size; tensors only of the strided layout, real dtypes, no
subclasses, and a logical size the storage really holds), and receive() reads
it under a deadline and a size cap. Messages are torch.save'd and read back
with weights_only=True, so neither side can make the other run code by
unpickling.

This module imports nothing of the judge: it is the child's whole view of the
grader, with grader/exercises.py.
"""

import contextlib
import copy
import io
import math
import os
import selectors
import struct
import time
import warnings

import torch
from torch import nn

MAX_MESSAGE = 256 * 2 ** 20  # bytes in one message
MAX_ELEMENTS = 2 ** 24  # entries in one tensor: the largest check output has about 10^4
MAX_DEPTH = 8  # nesting of lists, tuples and dicts
MAX_NODES = 100_000  # values in one message
MAX_TEXT = 300  # characters kept of a string


# --- the tiny network of the feature-extraction and loop checks ------------------------

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


# --- calling an exercise -----------------------------------------------------------------

def prepare(record, inputs):
    """A private copy of a check's inputs, with grad on those the answer must stay differentiable in."""
    inputs = {k: (v if isinstance(v, nn.Module) else copy.deepcopy(v)) for k, v in inputs.items()}
    for name in record.grad_inputs:
        value = inputs[name]
        if isinstance(value, dict):
            inputs[name] = {k: t.requires_grad_() for k, t in value.items()}
        elif isinstance(value, list):
            inputs[name] = [t.requires_grad_() for t in value]
        else:
            inputs[name] = value.requires_grad_()
    return inputs


@contextlib.contextmanager
def needs_bound(function, names, reference):
    """Run the body of the with-block with names bound, in function's module, to reference's versions.

    A check judges one exercise: style_loss calls whatever gram_matrix its
    module holds, so while style_loss is checked its module holds the
    reference gram_matrix, and a wrong gram_matrix costs only its own check.
    reference: a module holding the exercises, or None to leave the names as
    they are (the student release has no reference to bind). The module's own
    bindings are restored afterwards, also where the student's code raised.
    """
    scope = getattr(function, "__globals__", None)
    if reference is None or not isinstance(scope, dict):
        yield
        return
    missing = object()
    saved = {name: scope.get(name, missing) for name in names}
    try:
        scope.update({name: getattr(reference, name) for name in names})
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                scope.pop(name, None)
            else:
                scope[name] = value


def call(record, function, inputs):
    """Call an exercise on prepared inputs, the way its kind says; returns what it returned.

    gram: called twice, with normalize=True, then False. loop: see _loop. step: with a PlainSGD over the
    parameters, which carry large stale gradients, so a missing zero_grad shows;
    returns the losses and the parameters after the update.
    """
    if record.kind == "gram":
        return [function(inputs["features"]), function(inputs["features"], normalize=False)]
    if record.kind == "loop":
        return _loop(function, inputs)
    if record.kind == "step":
        # plain SGD, whose update is linear in the gradient, so float noise stays float noise
        params = inputs["params"]
        optimizer = PlainSGD(params.values(), lr=inputs["lr"])
        for p in params.values():
            p.grad = torch.full_like(p, 100.0)
        args = {k: v for k, v in inputs.items() if k != "lr"}
        losses = function(optimizer=optimizer, **args)
        return {"losses": losses, "params": {k: v.detach().clone() for k, v in params.items()}}
    return function(*inputs.values())


LOSS_KEYS = ("content", "style", "tv", "total")  # of style_transfer's history and its callback's losses

# The loop's second optimiser, which lab 4 races against Adam: a few evaluations
# with a step length at which the strong-Wolfe line search rejects trial points,
# so that returning the last image evaluated instead of the best one shows.
LBFGS_RUN = {"optimizer": "lbfgs", "lr": 3.0, "num_iters": 6, "decay_lr_at": None}


def _loop(function, inputs, no_style_iters=2):
    """style_transfer's check: the runs compared with the reference, and the contract the labs rely on.

    The network and images go positionally, every setting by name, with a
    callback that records what it is given; then the same with L-BFGS
    (LBFGS_RUN), which must be right too; then a short run with no style
    layers (feature inversion), which must not fail. Returns
    {"returned": (img, history), "callback": [[t, losses as the contract says], ...],
    "lbfgs": ..., "no_style": ...}, each of the last two {"returned": (img, history)}
    or {"raised": name, "message": ...}.
    """
    settings = {key: value for key, value in inputs.items() if key not in ("cnn", "content_img", "style_img")}
    calls = []

    def callback(t, img, losses):
        keys_right = (isinstance(losses, dict) and set(losses) == set(LOSS_KEYS)
                      and all(type(v) is float for v in losses.values()))
        calls.append([t if type(t) is int else -1, keys_right])

    args = (inputs["cnn"], inputs["content_img"], inputs["style_img"])
    returned = function(*args, **{**settings, "callback": callback})
    lbfgs = _attempt(function, args, {**settings, **LBFGS_RUN})
    no_style = _attempt(function, args, {**settings, "style_layers": [], "style_weights": [],
                                         "num_iters": no_style_iters, "decay_lr_at": None})
    return {"returned": returned, "callback": calls[:10_000], "lbfgs": lbfgs, "no_style": no_style}


def _attempt(function, args, settings):
    """{"returned": what function returned} or {"raised": name, "message": ...}: a further run of the loop."""
    try:
        return {"returned": function(*args, **settings)}
    except Exception as error:  # the student's failure here is a verdict, not a crash
        text = str(error).strip()
        return {"raised": type(error).__name__, "message": text.splitlines()[0][:200] if text else ""}


def total(record, result):
    """The one-number loss whose gradient a check compares, or None (another kind, or no such tensor)."""
    if record.kind == "losses" and isinstance(result, dict):
        result = result.get("total")
    if (record.kind in ("loss", "losses") and type(result) is torch.Tensor and result.numel() == 1
            and result.is_floating_point() and result.layout == torch.strided):
        return result
    return None


def grad_leaves(record, inputs):
    """The tensors of inputs that a gradient is taken with respect to, flattened in a fixed order."""
    leaves = []
    for name in record.grad_inputs:
        value = inputs[name]
        leaves += list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return leaves


def gradients(record, result, inputs):
    """d(total)/d(input) for each grad input, zeros where it does not depend on one.

    Returns None when there is nothing to differentiate (another kind, or an
    answer the judge will reject for its type), and "unconnected" when the
    loss depends on none of its inputs (rebuilt from .item(), say).
    """
    loss = total(record, result)
    if loss is None or not loss.requires_grad:
        return None
    leaves = grad_leaves(record, inputs)
    grads = torch.autograd.grad(loss.reshape(()), leaves, allow_unused=True)
    if all(g is None for g in grads):
        return "unconnected"
    return [torch.zeros_like(leaf) if g is None else g.detach() for g, leaf in zip(grads, leaves)]


# --- values across the pipe ---------------------------------------------------------------

def encode(value):
    """A returned value -> tensors and plain containers only, tagged for decode()."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return {"__device__": "meta"}
        if value.device.type != "cpu":
            return {"__device__": str(value.device)}
        if value.layout != torch.strided:
            return {"__layout__": str(value.layout)}
        if type(value) not in (torch.Tensor, nn.Parameter):
            return {"__subclass__": type(value).__name__}
        return {"__tensor__": value.detach().as_subclass(torch.Tensor).contiguous().clone(),
                "requires_grad": bool(value.requires_grad)}
    if isinstance(value, nn.Module):
        return {"__object__": type(value).__name__}
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        return {"__numpy__": True}
    if isinstance(value, (list, tuple)):
        return {"__list__" if isinstance(value, list) else "__tuple__": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__object__": type(value).__name__}


class Returned:
    """Something the student returned that the checks must name, not use."""

    def __init__(self, kind, detail=""):
        self.kind, self.detail = kind, detail


class Invalid(Exception):
    """A message that does not follow the protocol: the one-line reason."""


def decode(value):
    """Inverse of encode(), for a message from an untrusted child: rebuilt, checked, bounded.

    Raises Invalid for anything that is not what encode() makes: other types,
    tensors of another layout, dtype or class, tensors whose logical size the
    storage does not hold or that exceed MAX_ELEMENTS, deeper nesting than
    MAX_DEPTH, more than MAX_NODES values.
    """
    nodes = [0]

    def walk(v, depth):
        nodes[0] += 1
        if nodes[0] > MAX_NODES:
            raise Invalid(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Invalid(f"nested more than {MAX_DEPTH} deep")
        if v is None or type(v) in (bool, int, float):
            return v
        if type(v) is str:
            return v[:MAX_TEXT]
        if type(v) is not dict or len(v) == 0:
            raise Invalid(f"a {type(v).__name__} where the protocol has none")
        tag = next(iter(v))
        if tag == "__tensor__" and set(v) == {"__tensor__", "requires_grad"} and type(v["requires_grad"]) is bool:
            tensor = _checked_tensor(v["__tensor__"])
            return tensor.requires_grad_() if v["requires_grad"] and tensor.is_floating_point() else tensor
        if len(v) != 1:
            raise Invalid("a value with unknown fields")
        inner = v[tag]
        if tag in ("__list__", "__tuple__") and type(inner) is list:
            items = [walk(x, depth + 1) for x in inner]
            return items if tag == "__list__" else tuple(items)
        if tag == "__dict__" and type(inner) is dict:
            return {str(k)[:MAX_TEXT]: walk(x, depth + 1) for k, x in inner.items()}
        if tag == "__numpy__":
            return Returned("numpy")
        if tag == "__device__" and type(inner) is str:
            return Returned("device", inner[:30])
        if tag in ("__object__", "__layout__", "__subclass__") and type(inner) is str:
            return Returned(tag.strip("_"), inner[:60])
        raise Invalid("a value of an unknown kind")

    return walk(value, 0)


# the judge wants real floating point; other plain dtypes come through for it to name
DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
          torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool}


def _checked_tensor(t):
    """A private, contiguous copy of t once it is known to be a plain tensor its storage holds."""
    if type(t) is not torch.Tensor:
        raise Invalid(f"a {type(t).__name__} where a plain tensor was expected")
    if t.layout != torch.strided or t.is_quantized or t.dtype not in DTYPES:
        raise Invalid(f"a tensor of layout {t.layout} and dtype {t.dtype}")
    if t.numel() > MAX_ELEMENTS:
        raise Invalid(f"a tensor of {t.numel()} entries (at most {MAX_ELEMENTS})")
    if t.numel():
        if any(s < 0 for s in t.stride()) or t.storage_offset() < 0:
            raise Invalid("a tensor with negative strides")
        last = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
        if (last + 1) * t.element_size() > t.untyped_storage().nbytes():
            raise Invalid("a tensor larger than its storage")
    return t.contiguous().clone()


# --- framing ----------------------------------------------------------------------------

def pack(message):
    """One message as bytes: an 8-byte length, then the torch.save'd message."""
    buffer = io.BytesIO()
    torch.save(message, buffer)
    data = buffer.getvalue()
    return struct.pack("<Q", len(data)) + data


def load(source):
    """torch.load with weights_only, quietly: torch's own notes on stderr (2.1-2.3's TypedStorage
    warning, its sparse-tensor scan) would fail nbval cells and fill the grader's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(source, weights_only=True)


def unpack(data):
    """torch.load a message body with weights_only; Invalid for anything it refuses."""
    try:
        return load(io.BytesIO(data))
    except Exception as error:  # a forged or garbled message of any kind
        raise Invalid(f"an unreadable message ({type(error).__name__})") from None


class Timeout(Exception):
    """The other side did not read or write in time."""


class Closed(Exception):
    """The other side closed the pipe."""


def _wait(selector, deadline):
    """Whether the selector's fd became ready before deadline (math.inf: wait as long as it takes)."""
    if deadline == math.inf:
        return bool(selector.select())
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(selector.select(remaining))


def write_all(fd, data, deadline):
    """Write data to a non-blocking pipe fd, waiting for room until deadline (time.monotonic())."""
    view = memoryview(data)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_WRITE)
        while view:
            if not _wait(selector, deadline):
                raise Timeout
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise Closed from None
            view = view[written:]


def read_exact(fd, size, deadline):
    """Read exactly size bytes from a pipe fd before deadline."""
    data = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while len(data) < size:
            if not _wait(selector, deadline):
                raise Timeout
            try:
                chunk = os.read(fd, min(size - len(data), 2 ** 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise Closed
            data += chunk
    return bytes(data)


def read_message(fd, deadline, max_bytes=MAX_MESSAGE):
    """One message from fd, read before deadline, refused past max_bytes; not yet decoded."""
    (size,) = struct.unpack("<Q", read_exact(fd, 8, deadline))
    if size > max_bytes:
        raise Invalid(f"a message of {size} bytes (at most {max_bytes})")
    return unpack(read_exact(fd, size, deadline))


# --- the two messages a child sends ---------------------------------------------------------

def _text(value, limit=MAX_TEXT):
    if type(value) is not str:
        raise Invalid(f"a {type(value).__name__} where text was expected")
    return value[:limit]


def decode_hello(message, files):
    """The child's first message, {'files': {file: report}}, checked field by field."""
    if type(message) is not dict or type(message.get("files")) is not dict:
        raise Invalid("a first message without the files' reports")
    report = {}
    for file in files:
        entry = message["files"].get(file)
        if type(entry) is not dict or type(entry.get("loaded")) is not bool:
            raise Invalid(f"no report on {file}")
        if entry["loaded"]:
            functions = entry.get("functions")
            if type(functions) is not list or len(functions) > MAX_NODES:
                raise Invalid(f"no list of {file}'s functions")
            report[file] = {"loaded": True, "functions": [_text(f) for f in functions]}
        elif entry.get("missing") is True:
            report[file] = {"loaded": False, "missing": True}
        else:
            report[file] = {"loaded": False, "raised": _text(entry.get("raised"), 100),
                            "message": _text(entry.get("message"), 200)}
    return {"files": report}


def decode_reply(message):
    """A reply to one check: {'raised', 'message', 'inputs_after'} or {'result', 'grads', 'inputs_after'}."""
    if type(message) is not dict:
        raise Invalid(f"a reply that is a {type(message).__name__}")
    inputs_after = decode(message.get("inputs_after", {"__dict__": {}}))
    if type(inputs_after) is not dict:
        raise Invalid("inputs_after that is not a dict")
    if "raised" in message:
        return {"raised": _text(message["raised"], 100), "message": _text(message.get("message", ""), 200),
                "inputs_after": inputs_after}
    if "result" not in message:
        raise Invalid("a reply with neither a result nor an exception")
    return {"result": decode(message["result"]), "grads": decode(message.get("grads")),
            "inputs_after": inputs_after}
