"""Generate grader/reference/style_transfer_checks.pt from solutions/ (instructors only).

One file for the exercises of both style_transfer.py and fast_transfer.py.

For each exercise: the public inputs (seed 0), the reference output, and what
each catalogued mistake returns on those inputs, so that students' checks can
name their mistake without the mistakes' code. Like CS231n's
style-transfer-checks.npz, but regenerated from the single source of truth.

    python -m grader.instructor.make_reference           # write the file
    python -m grader.instructor.make_reference --check   # exit 1 if the committed file differs
"""

import argparse
import sys

import torch

from grader.checks import REFERENCE, load_reference
from grader.instructor.reference import differences, generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    args = parser.parse_args(argv)
    stored = generate()
    if args.check:
        committed = torch.load(REFERENCE, weights_only=True)
        problems = differences(stored, committed)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run `make reference` (python -m grader.instructor.make_reference) and commit the file", file=sys.stderr)
        return 1 if problems else 0
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stored, REFERENCE)
    load_reference()  # fail now, not in a student's notebook, if it does not load back
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
