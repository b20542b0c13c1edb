"""The grader's command line.

Students:
    python -m grader check [NAME ...] [--impl starter|solutions|PATH]
        one row per exercise (verdict, relative error, points, hint); exits 0
        only when every check asked for passes.
Instructors (these need solutions/, which the student release leaves out):
    python -m grader check --hidden ...            adds the hidden checks
    python -m grader release OUT_DIR               the student bundle
    python -m grader instructor-labs OUT_DIR       the labs with the PASS lines nbval compares
    python -m grader grade SUBMISSION [--json F] [--feedback F]
    python -m grader grade-class DIR --csv F [--json-dir D] [--feedback-dir D] [--workers N]
    python -m grader gradescope OUT.zip            Gradescope's autograder zip
"""

import argparse
import math
import sys

from grader.checks import check_functions, load_functions, with_needs
from grader.exercises import EXERCISE, EXERCISES


def table(results):
    """The rows a person reads: exercise, verdict, relative error, points, hint."""
    rows = [("exercise", "verdict", "rel. error", "points", "hint")]
    for r in results:
        error = "-" if math.isnan(r.error) else f"{r.error:.1e}"
        hint = "; ".join(text for text in (r.reason, r.note) if text)
        rows.append((r.exercise, r.verdict, error, f"{r.points:g}/{r.max_points}", hint))
    earned, total = sum(r.points for r in results), sum(r.max_points for r in results)
    return _format(rows, f"total: {earned:g}/{total} points")


def _format(rows, footer):
    """Rows of five cells in aligned columns (the last, a hint, left ragged), then the footer's lines."""
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    return "\n".join([line.rstrip() for line in lines] + [footer])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("check", help="check exercises against the reference")
    c.add_argument("names", nargs="*", metavar="NAME", help=f"exercises (default: all): {', '.join(EXERCISES)}")
    c.add_argument("--impl", default=None,
                   help="starter, solutions, or a folder holding your style_transfer.py and fast_transfer.py "
                        "(default: $STYLELAB_IMPL, else starter)")
    c.add_argument("--hidden", action="store_true", help="also run the hidden checks (instructors)")
    r = commands.add_parser("release", help="write the student bundle")
    r.add_argument("out", metavar="OUT_DIR")
    n = commands.add_parser("instructor-labs", help="write the labs with the PASS lines nbval compares")
    n.add_argument("out", metavar="OUT_DIR")
    g = commands.add_parser("grade", help="grade one submission (a folder or a .zip) in a sandbox")
    g.add_argument("submission")
    g.add_argument("--student", help="the student's id (default: the submission's name)")
    g.add_argument("--json", help="write Gradescope's results.json here")
    g.add_argument("--feedback", help="write the student's Markdown feedback here")
    k = commands.add_parser("grade-class", help="grade every folder or .zip in DIR")
    k.add_argument("folder", metavar="DIR")
    k.add_argument("--csv", required=True, help="the gradebook to write")
    k.add_argument("--json-dir", help="one Gradescope results.json per student, here")
    k.add_argument("--feedback-dir", help="one Markdown feedback file per student, here")
    k.add_argument("--workers", type=int, default=2)
    for sub in (g, k):
        sub.add_argument("--check-seconds", type=float, default=20.0, help="wall-clock limit of one check")
        sub.add_argument("--loop-seconds", type=float, default=60.0, help="wall-clock limit of the loop check")
        sub.add_argument("--submission-seconds", type=float, default=300.0,
                         help="wall-clock limit of all of a submission's checks")
    z = commands.add_parser("gradescope", help="write Gradescope's autograder zip")
    z.add_argument("out", metavar="OUT.zip")
    args = parser.parse_args(argv)
    if args.command != "check":
        return instructor(args)

    unknown = [n for n in args.names if n not in EXERCISES]
    if unknown:
        print(f"grader: no exercise {unknown[0]!r}; the exercises are: {', '.join(EXERCISES)}", file=sys.stderr)
        return 2
    names = tuple(e for e in EXERCISES if e in args.names) or EXERCISES
    # the exercises asked for build on earlier ones, whose own verdicts their notes name
    functions = load_functions(args.impl, with_needs(names))
    results = [r for r in check_functions(functions) if r.exercise in names]
    functions = {name: functions[name] for name in names}
    if args.hidden:
        try:
            from grader.instructor.hidden import hidden_functions
        except ImportError:  # the student release has neither the hidden cases nor solutions/
            print("grader: --hidden runs the instructor's hidden checks, which are not part of the student "
                  "release; your instructor runs them when grading", file=sys.stderr)
            return 2

        # points divide between the public and the hidden checks, as in grade
        for public, hidden in zip(results, hidden_functions(functions)):
            shares = EXERCISE[public.exercise].split()
            public.points = sum(shares[kind] for kind, result in
                                (("public", public), ("hidden", hidden)) if result.passed)
            if public.passed and not hidden.passed:
                public.passed, public.reason = False, hidden.reason
    print(table(results))
    return 0 if all(r.passed for r in results) else 1


def instructor(args):
    try:
        from grader.instructor import grade, release, report, submission
    except ImportError as error:
        print(f"grader: `{args.command}` is for instructors and needs the full kit ({error})", file=sys.stderr)
        return 2
    if args.command == "release":
        print(f"wrote the student bundle to {release.student_bundle(args.out)}")
        return 0
    if args.command == "instructor-labs":
        out = release.instructor_labs(args.out)
        print(f"wrote the instructor's labs to {out}; grade a student's folder with:\n"
              f"  STYLELAB_IMPL=path/to/student python -m pytest --nbval-lax {out}")
        return 0
    if args.command == "gradescope":
        print(f"wrote {release.gradescope_zip(args.out)}")
        return 0
    from grader.instructor.sandbox import Limits

    context = grade.Context.create(Limits(check_seconds=args.check_seconds, loop_seconds=args.loop_seconds,
                                          submission_seconds=args.submission_seconds))
    try:
        if args.command == "grade":
            result = grade.grade_submission(args.submission, context, args.student)
            report.write_outputs(result, args.json, args.feedback)
            print(grade_table(result))
            return 0
        try:
            results = grade.grade_class(args.folder, context, args.workers)
        except submission.DuplicateStudents as error:
            print(f"grader: {error}", file=sys.stderr)
            return 2
        report.gradebook(results, args.csv)
        for result in results:
            report.write_outputs(result, args.json_dir and f"{args.json_dir}/{result.student}.json",
                                args.feedback_dir and f"{args.feedback_dir}/{result.student}.md")
        statuses = {}
        for result in results:
            statuses[result.status] = statuses.get(result.status, 0) + 1
        print(f"graded {len(results)} submissions into {args.csv}: "
              + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))
        return 0
    finally:
        context.close()


def grade_table(result):
    """A person's view of one grade: public and hidden verdicts per exercise."""
    rows = [("exercise", "public", "hidden", "points", "hint")]
    for exercise in EXERCISES:
        mine = {c.kind: c for c in result.checks if c.exercise == exercise}
        hint = next((mine[k].reason for k in ("public", "hidden") if not mine[k].passed), "")
        rows.append((exercise, mine["public"].verdict, mine["hidden"].verdict,
                     f"{result.points(exercise):g}/{EXERCISE[exercise].points}", hint))
    isolation = result.isolation or "none"
    if isolation == "weaker":
        from grader.instructor.sandbox import weaker_description

        isolation += f" ({weaker_description()})"
    from grader.instructor.report import about_files

    return _format(rows, "\n".join([f"total: {result.score:g}/{result.max_score} points; status: {result.status}; "
                                     f"sandbox: {isolation}", *about_files(result)]))


if __name__ == "__main__":
    sys.exit(main())
