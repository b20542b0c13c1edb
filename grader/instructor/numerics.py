"""How far a correct float32 answer may differ from the reference: the evidence for each tolerance.

A student's code runs on another CPU (AVX-512, Apple silicon, a build without
oneDNN), with another number of threads, and adds things up in another order
than solutions/ does. Each of these moves the last digits of a float32 result,
and none of them may turn a right answer into a FAIL. This module recomputes
every check's reference, public and hidden cases alike, under other numerics:

- float64: the same computation in double precision, close to the exact answer;
- no_onednn: torch.backends.mkldnn disabled, as on CPUs and builds without it;
- one_thread: torch.set_num_threads(1), which changes how sums are split;
- channels_last: every image-shaped input (and the CNN's weights) channels-last;
- deterministic: torch.use_deterministic_algorithms(True);
- other_cpu: no_onednn, one_thread and channels_last together.

and measures, per check, with the check's own relative error (returned.rel_error
with its floor):

- noise: the largest error between any of these and the float32 reference;
- gap: the smallest error between any catalogued mistake and the reference.

A tolerance is sound when MARGIN * noise <= tolerance <= gap / MARGIN: a right
answer passes with room to spare on any machine, and every catalogued mistake
is still far from passing (tests/grading/test_numerics.py asserts both, per check).

    python -m grader.instructor.numerics   # the table: noise, tolerance and gap per check

Instructors only: it imports solutions/.
"""

import contextlib
import copy
import math
import sys
import warnings

import torch
from torch import nn

from grader.checks import evaluate
from grader.exercises import EXERCISE, EXERCISES
from grader.instructor.hidden import HIDDEN_CASES
from grader.instructor.reference import case, solution
from grader.returned import as_tensors, compare

# How far apart noise, tolerance and the nearest mistake must be, each way.
MARGIN = 10
CASES = ((0, 0),) + HIDDEN_CASES  # (seed, variant): the public case, then the hidden ones


def _map_tensors(value, fn):
    """value with fn applied to every tensor (and nn.Module) inside dicts, lists and tuples."""
    if isinstance(value, (torch.Tensor, nn.Module)):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def _double(x):
    if isinstance(x, nn.Module):
        return copy.deepcopy(x).double()
    return x.double() if x.is_floating_point() else x


def _channels_last(x):
    if isinstance(x, nn.Module):
        return copy.deepcopy(x).to(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@contextlib.contextmanager
def _setting(get, put, value):
    """A global torch setting changed for the block, then put back."""
    before = get()
    put(value)
    try:
        yield
    finally:
        put(before)


def _one_thread():
    return _setting(torch.get_num_threads, torch.set_num_threads, 1)


def _deterministic():
    return _setting(torch.are_deterministic_algorithms_enabled, torch.use_deterministic_algorithms, True)


@contextlib.contextmanager
def _no_onednn():
    with warnings.catch_warnings():  # torch 2.9+ says TF32 on oneDNN needs an Intel GPU: not our concern
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


# name -> (context manager factory, input transform)
NUMERICS = {
    "float64": (contextlib.nullcontext, _double),
    "no_onednn": (_no_onednn, None),
    "one_thread": (_one_thread, None),
    "channels_last": (contextlib.nullcontext, _channels_last),
    "deterministic": (_deterministic, None),
    "other_cpu": (lambda: _stack(_no_onednn(), _one_thread()), _channels_last),
}


@contextlib.contextmanager
def _stack(*managers):
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield


@contextlib.contextmanager
def numerics(name):
    """Run the block under one of NUMERICS' settings (its input transform is not applied)."""
    with NUMERICS[name][0]():
        yield


def transform(name, inputs):
    """A case's inputs as NUMERICS[name] feeds them to a function."""
    fn = NUMERICS[name][1]
    return inputs if fn is None else _map_tensors(inputs, fn)


def solution_output(exercise, inputs, name):
    """The solution's output on inputs under numerics name, as a list of float64 tensors."""
    with numerics(name):
        raw, grads, args = evaluate(solution(exercise), exercise, transform(name, inputs))
        out = as_tensors(exercise, raw, args, grads)
    return [t.detach().double() for t in out]


def measure(exercise):
    """{'noise': (error, numerics, case), 'gap': (error, mistake, case)} for one check."""
    noise, gap = (0.0, None, None), (math.inf, None, None)
    for seed, variant in CASES:
        inputs, expected, mistakes = case(exercise, seed, variant)
        for name in NUMERICS:
            error = compare(exercise, solution_output(exercise, inputs, name), expected)
            noise = max(noise, (error, name, (seed, variant)), key=lambda m: m[0])
        for key, wrong in mistakes.items():
            error = compare(exercise, wrong, expected)
            if error == 0.0:  # the mistake changes nothing here (upsample_after without upsampling)
                continue
            gap = min(gap, (error, key, (seed, variant)), key=lambda m: m[0])
    return {"noise": noise, "gap": gap}


def main(argv=None):
    exercises = (argv if argv else sys.argv[1:]) or EXERCISES
    print(f"{'check':27} {'floor':>7} {'noise':>9} {'tolerance':>10} {'gap':>9}  "
          f"noise from / nearest mistake (margins must be >= {MARGIN})")
    for exercise in exercises:
        m = measure(exercise)
        (noise, name, where), (gap, key, gap_where) = m["noise"], m["gap"]
        tolerance = EXERCISE[exercise].tolerance
        below = tolerance / noise if noise else math.inf
        above = gap / tolerance
        print(f"{exercise:27} {EXERCISE[exercise].floor:7.0e} {noise:9.1e} {tolerance:10.0e} {gap:9.1e}  "
              f"{name} {where}, x{below:.0f} / {key} {gap_where}, x{above:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
