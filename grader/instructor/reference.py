"""A check's case built from solutions/: the inputs, the reference output and each catalogued mistake's.

What grading needs at run time (the hidden checks' cases, grade.py; the
tolerances' margins, numerics.py) and what make_reference.py writes to
grader/reference/style_transfer_checks.pt for the public checks.
"""

import torch

from grader import protocol
from grader.checks import evaluate
from grader.returned import as_tensors, compare
from grader.exercises import EXERCISE, EXERCISES
from grader.instructor.cases import build
from grader.instructor.mistakes import MISTAKES
from solutions import fast_transfer, style_transfer

solutions = {"style_transfer.py": style_transfer, "fast_transfer.py": fast_transfer}


def solution(exercise):
    """The reference implementation of one exercise."""
    return getattr(solutions[EXERCISE[exercise].file], exercise)


def case(exercise, seed=0, variant=0):
    """(inputs, expected, mistakes) for one exercise, computed from solutions/.

    expected and each mistake are lists of tensors in the form a check
    compares (returned.as_tensors), a loss's gradients included.
    """
    inputs = build(exercise, seed, variant)
    raw, grads, args = evaluate(solution(exercise), exercise, inputs)
    expected = as_tensors(exercise, raw, args, grads)
    mistakes = {}
    for key, wrong in MISTAKES[exercise].items():
        try:  # on fresh inputs: train_step updates its params in place
            mistakes[key] = mistake_output(exercise, wrong, inputs)
        except RuntimeError:  # this mistake cannot even run on these inputs
            pass
    return inputs, _detached(expected), mistakes


def mistake_output(exercise, wrong, inputs):
    """What a catalogued mistake returns on inputs, in the compared form, a loss's gradients included."""
    record = EXERCISE[exercise]
    args = protocol.prepare(record, inputs)
    with torch.random.fork_rng():
        out = wrong(args)
    out = [out] if isinstance(out, torch.Tensor) else list(out)
    if record.kind in ("loss", "losses"):
        total = out[-1] if record.kind == "loss" else {"total": out[-1]}
        out += protocol.gradients(record, total, args)
    return _detached(out)


def _detached(tensors):
    """A list of tensors -> a list of detached tensors."""
    return [t.detach() for t in tensors]


def generate():
    """The reference file's contents: {exercise: {inputs, expected, mistakes}}."""
    stored = {}
    for exercise in EXERCISES:
        inputs, expected, mistakes = case(exercise)
        if "cnn" in inputs:
            inputs = {**inputs, "cnn": inputs["cnn"].state_dict()}
        stored[exercise] = {"inputs": inputs, "expected": expected, "mistakes": mistakes}
    return stored


def differences(stored, committed):
    """Where two reference contents differ, as readable lines (empty if they agree).

    Tensors are compared by the grader's own judge: the check's relative error,
    floor and tolerance. Float noise from another CPU is not a drift; anything a
    check could tell apart is.
    """
    problems = []

    def walk(a, b, where, exercise, position=0):
        if isinstance(a, dict) and isinstance(b, dict):
            if set(a) != set(b):
                problems.append(f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}")
            for key in set(a) & set(b):
                walk(a[key], b[key], f"{where}/{key}", exercise or key)
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            if len(a) != len(b):
                problems.append(f"{where}: length {len(a)} != {len(b)}")
            for k, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}/{k}", exercise, k)
        elif isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append(f"{where}: {a.dtype} {tuple(a.shape)} != {b.dtype} {tuple(b.shape)}")
            elif not a.is_floating_point():
                if not torch.equal(a, b):
                    problems.append(f"{where}: integers differ")
            elif (error := compare(exercise, [a], [b], position)) > EXERCISE[exercise].tolerance:
                problems.append(f"{where}: relative error {error:.1e}, above the check's "
                                f"{EXERCISE[exercise].tolerance:g}")
        elif a != b:
            problems.append(f"{where}: {a!r} != {b!r}")

    walk(stored, committed, "reference", None)
    return problems
