"""`python -m grader check [NAME ...] [--impl starter|solutions|PATH] [--hidden]`.

Prints one row per exercise (verdict, relative error, points, hint) and exits
0 only when every check asked for passes. --hidden adds the instructor's hidden
checks (fresh inputs, computed from solutions/); they need solutions/.
"""

import argparse
import math
import sys

from grader.checks import EXERCISES, Fail, Result, check_module, load_impl
from grader.points import POINTS


def table(results):
    """The rows a person reads: exercise, verdict, relative error, points, hint."""
    rows = [("exercise", "verdict", "rel. error", "points", "hint")]
    for r in results:
        error = "-" if math.isnan(r.error) else f"{r.error:.1e}"
        rows.append((r.exercise, r.verdict, error, f"{r.points}/{r.max_points}", r.reason))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    earned, total = sum(r.points for r in results), sum(r.max_points for r in results)
    return "\n".join([line.rstrip() for line in lines] + [f"total: {earned}/{total} points"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("check", help="check exercises against the reference")
    c.add_argument("names", nargs="*", metavar="NAME", help=f"exercises (default: all): {', '.join(EXERCISES)}")
    c.add_argument("--impl", default="starter",
                   help="starter, solutions, or a folder holding your style_transfer.py (default: starter)")
    c.add_argument("--hidden", action="store_true", help="also run the hidden checks (instructors)")
    args = parser.parse_args(argv)

    unknown = [n for n in args.names if n not in EXERCISES]
    if unknown:
        print(f"grader: no exercise {unknown[0]!r}; the exercises are: {', '.join(EXERCISES)}", file=sys.stderr)
        return 2
    names = tuple(args.names) or EXERCISES
    try:
        module = load_impl(args.impl)
    except Fail as error:
        results = [Result(n, False, str(error), max_points=POINTS[n]) for n in names]
    else:
        results = check_module(module, names)
        if args.hidden:
            from grader.hidden import hidden_module

            hidden = hidden_module(module, names)
            # an exercise earns its points only if its public and hidden checks pass
            results = [h if p.passed and not h.passed else p for p, h in zip(results, hidden)]
    print(table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
