"""The child process that runs a student's code for grading: call, encode, reply.

`python -m grader.worker FOLDER FILE...` imports the student's files there
(style_transfer.py, fast_transfer.py), reports which loaded, then answers
requests on its stdin: each names an exercise and carries its inputs and,
for an exercise that builds on earlier ones, the reference versions of those,
which the call uses instead of the student's (so that each check judges one
exercise); the reply carries what the function returned, the gradient of a loss with
respect to its inputs, and the inputs as they were afterwards. Comparison
with the expected outputs happens in the parent, which this process never
sees, and the parent trusts nothing of what it sends (grader/protocol.py).

The student's prints go to stderr, which the parent drains and caps; the
protocol keeps private copies of the original stdin and stdout.
"""

import importlib.util
import math
import os
import sys
import types
from pathlib import Path


def _load(path):
    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference(source):
    """The parent's reference versions of a check's needs, as a module of their own (None: none sent).

    It is built afresh for every request and never registered in sys.modules,
    and the parent sends it only once the exercises it holds have been judged.
    """
    if not source:
        return None
    module = types.ModuleType("grader_needs")
    exec(compile(source, "<reference needs>", "exec"), module.__dict__)
    return module


def _raised(error):
    text = str(error).strip()
    return {"raised": type(error).__name__, "message": text.splitlines()[0][:200] if text else ""}


def _load_files(folder, files):
    """{file: module} for the files that import, and hello's {file: report} for each of files."""
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


def _private():
    """Make this process non-dumpable (Linux), before any student code runs: its /proc/<pid> files then
    belong to root, so a sibling child of the same uid (grade-class without bubblewrap, where the host's
    /proc shows every child) can read neither its memory, its inputs and replies, nor its environment."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_DUMPABLE = 4
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def serve(folder, files):
    _private()
    # private copies of the protocol's pipes; student prints go to stderr
    requests, replies = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import torch

    from grader import protocol
    from grader.exercises import EXERCISE

    torch.set_num_threads(1)  # one core per submission: --workers sets the parallelism

    def send(message):
        protocol.write_all(replies, protocol.pack(message), math.inf)

    modules, report = _load_files(folder, files)
    send({"files": report})
    while True:
        try:  # from the parent, which is trusted
            request = protocol.read_message(requests, math.inf)
        except protocol.Closed:
            return
        record = EXERCISE[request["exercise"]]
        inputs = dict(request["inputs"])
        if "cnn" in inputs:
            inputs["cnn"] = protocol.tiny_cnn(inputs["cnn"])
        args = protocol.prepare(record, inputs)
        function = getattr(modules[record.file], record.name)
        try:
            reference = _reference(request.get("needs"))
            with torch.random.fork_rng(), protocol.needs_bound(function, record.needs, reference):
                result = protocol.call(record, function, args)
                grads = protocol.gradients(record, result, args)
            reply = {"result": protocol.encode(result), "grads": protocol.encode(grads)}
        except BaseException as error:  # the student's failure, whatever it is, is a reply
            reply = _raised(error)
        try:
            reply["inputs_after"] = protocol.encode({k: v for k, v in args.items()
                                                     if not isinstance(v, torch.nn.Module)})
        except BaseException:  # inputs the student replaced with something unencodable
            reply["inputs_after"] = protocol.encode({})
        send(reply)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
