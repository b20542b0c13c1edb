"""How long a student waits for `python -m grader check`: every public check, timed.

The goal: all public checks in under 5 s on a 2-core machine. Prints the
in-process time of the checks (reference loaded, solutions imported) and the
wall time of the whole command, Python and torch start-up included, against
the time of `python -c "import torch"` measured in the same run as the floor.

    python -m bench.bench_grader [--repeats 5]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parent.parent


def wall(command, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from grader.checks import check_functions, load_functions, load_reference

    cases = load_reference()
    functions = load_functions("solutions")
    inside = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        results = check_functions(functions, cases=cases)
        inside.append(time.perf_counter() - start)
    assert all(r.passed for r in results)
    command = wall([sys.executable, "-m", "grader", "check", "--impl", "solutions"], args.repeats)
    floor = wall([sys.executable, "-c", "import torch"], args.repeats)
    print(describe())
    print(f"all public checks, in process:        {statistics.median(inside):.2f} s (median of {args.repeats})")
    print(f"python -m grader check, whole command: {command:.2f} s")
    print(f"python -c 'import torch' (the floor):  {floor:.2f} s")
    print(f"checks beyond start-up: {command - floor:.2f} s; goal: whole command under 5 s: "
          f"{'met' if command < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
