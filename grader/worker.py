"""The child process that runs a student's code for grading: call, encode, reply.

`python -m grader.worker FOLDER FILE...` imports the student's files there
(style_transfer.py, fast_transfer.py), reports which loaded, then answers
requests on its stdin: each names an exercise and carries its inputs;
the reply carries what the function returned and the inputs as they were
afterwards. Comparison with the expected outputs happens in the parent, which
this process never sees. Messages are torch.save'd and read back with
weights_only=True, so neither side can make the other run code by unpickling.

The student's prints go to stderr, which the parent drains and caps; the
protocol keeps private copies of the original stdin and stdout.
"""

import io
import os
import struct
import sys
import warnings

import torch
from torch import nn


def encode(value):
    """A returned value -> tensors and plain containers only, tagged for decode()."""
    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.detach().to("cpu", copy=True) if value.device.type != "meta"
                else torch.zeros(0), "requires_grad": bool(value.requires_grad), "device": str(value.device)}
    if isinstance(value, nn.Module):
        return {"__object__": type(value).__name__}
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        return {"__numpy__": torch.as_tensor(value.copy()) if value.dtype.kind in "biuf" else torch.zeros(0)}
    if isinstance(value, (list, tuple)):
        return {"__list__" if isinstance(value, list) else "__tuple__": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__object__": type(value).__name__}


class Returned:
    """Something the student returned that the checks must name, not use."""

    def __init__(self, kind, detail):
        self.kind, self.detail = kind, detail


def decode(value):
    """Inverse of encode(); numpy arrays, other devices and objects come back as Returned."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            if value["device"] != "cpu":
                return Returned("device", value["device"])
            tensor = value["__tensor__"]
            return tensor.requires_grad_() if value["requires_grad"] and tensor.is_floating_point() else tensor
        if "__numpy__" in value:
            return Returned("numpy", "")
        if "__object__" in value:
            return Returned("object", value["__object__"])
        if "__list__" in value:
            return [decode(v) for v in value["__list__"]]
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode(v) for k, v in value["__dict__"].items()}
    return value


def send(stream, message):
    buffer = io.BytesIO()
    torch.save(message, buffer)
    data = buffer.getvalue()
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def receive(stream):
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", header)
    with warnings.catch_warnings():  # torch 2.1-2.3 warn about their own TypedStorage here
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        return torch.load(io.BytesIO(stream.read(size)), weights_only=True)


def _inputs(exercise, message):
    from grader.checks import _prepare, tiny_cnn

    inputs = dict(message)
    if "cnn" in inputs:
        inputs["cnn"] = tiny_cnn(inputs["cnn"])
    return _prepare(exercise, inputs)


def _load(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raised(error):
    text = str(error).strip()
    return {"raised": type(error).__name__, "message": text.splitlines()[0][:200] if text else ""}


def _load_files(folder, files):
    """{file: module} for the files that import, and hello's {file: report} for each of files."""
    from pathlib import Path

    modules, report = {}, {}
    for file in files:
        path = Path(folder) / file
        if not path.is_file():
            report[file] = {"loaded": False, "missing": True}
            continue
        try:
            modules[file] = _load(path)
        except BaseException as error:  # SyntaxError, ImportError, SystemExit at import...
            report[file] = {"loaded": False, **_raised(error)}
            continue
        report[file] = {"loaded": True, "functions": sorted(n for n in dir(modules[file])
                                                            if callable(getattr(modules[file], n)))}
    return modules, report


def serve(folder, files):
    # private copies of the protocol's pipes; student prints go to stderr
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    torch.set_num_threads(1)  # one core per submission: --workers sets the parallelism
    from grader.checks import call
    from grader.points import FILE_OF

    modules, report = _load_files(folder, files)
    send(replies, {"files": report})
    while True:
        try:
            request = receive(requests)
        except EOFError:
            return
        exercise = request["exercise"]
        args = _inputs(exercise, request["inputs"])
        try:
            with torch.random.fork_rng():
                result = call(getattr(modules[FILE_OF[exercise]], exercise), exercise, args)
            reply = {"result": encode(result)}
        except BaseException as error:  # the student's failure, whatever it is, is a reply
            reply = _raised(error)
        reply["inputs_after"] = encode({k: v for k, v in args.items() if not isinstance(v, nn.Module)})
        send(replies, reply)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
