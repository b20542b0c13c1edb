"""Grading a class: 100 submissions with --workers 2, timed end to end.

The goal: under 2 minutes on a 2-core machine. The submissions mix
correct, partial and untouched starter code in both exercise files, as a real
class would. The peer
measured in the same run is the floor every child pays once: a sandboxed
`python -c "import torch"`; the design pays it once per submission, never per
check (one child answers all of a submission's checks).

    python -m bench.bench_grading [--students 100] [--workers 2]
"""

import argparse
import inspect
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from grader.instructor import grade, sandbox
from grader.instructor.sandbox import bubblewrap
from solutions import style_transfer as solutions

ROOT = Path(__file__).resolve().parent.parent


def make_class(folder, students):
    solution = (ROOT / "solutions" / "style_transfer.py").read_text()
    starter = (ROOT / "starter" / "style_transfer.py").read_text()
    partial = starter + "\n\n" + inspect.getsource(solutions.gram_matrix) + "\n\n" + inspect.getsource(
        solutions.content_loss)
    fast = [(ROOT / tree / "fast_transfer.py").read_text() for tree in ("solutions", "starter")]
    for k in range(students):
        (folder / f"student{k:03d}").mkdir()
        text = (solution, partial, starter)[k % 3]
        (folder / f"student{k:03d}" / "style_transfer.py").write_text(text)
        (folder / f"student{k:03d}" / "fast_transfer.py").write_text(fast[k % 2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        make_class(folder, args.students)
        start = time.perf_counter()
        context = grade.Context.create()
        grades = grade.grade_class(folder, context, args.workers)
        context.close()
        seconds = time.perf_counter() - start
    statuses = {g.status for g in grades}
    floor_start = time.perf_counter()
    command = [sys.executable, "-c", "import torch"]
    with tempfile.TemporaryDirectory() as empty:
        if bubblewrap():  # the children's own sandbox, around nothing but the import
            command = sandbox._bwrap(bubblewrap(), empty, empty, None) + command
        for _ in range(3):
            subprocess.run(command, check=True)
    floor = (time.perf_counter() - floor_start) / 3
    print(describe())
    print(f"{len(grades)} submissions, --workers {args.workers}, sandbox: {grades[0].isolation}; "
          f"statuses: {', '.join(sorted(statuses))}")
    print(f"grade-class: {seconds:.1f} s in all, {seconds / len(grades):.2f} s per submission "
          f"({seconds * args.workers / len(grades):.2f} s of a worker each)")
    print(f"floor, a sandboxed `import torch`: {floor:.2f} s; goal: under 120 s for 100: "
          f"{'met' if seconds * 100 / len(grades) < 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
