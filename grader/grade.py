"""Grade submissions: one student, or a whole class in parallel (instructors only).

A submission is a folder or a .zip holding the student's copies of the starter
files (style_transfer.py, fast_transfer.py; a missing one scores 0 for its
exercises). Each runs in a sandboxed child (sandbox.py); the
checks' inputs go in, the results come back, and they are judged here against
the public reference and the hidden cases, which the child never sees. Every
student gets a grade, whatever their code does: a status says whether it was
graded normally or hit a syntax error, an import error, a timeout or a crash.

An exercise's points are split between its public check and its hidden
checks (points.HIDDEN_SHARE), so the public part a student saw pass is theirs.
"""

import csv
import json
import math
import shutil
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader.checks import EXERCISES, LOOP_REASON, describe_raised, judge, load_reference, loops_in_source, snapshot
from grader.points import FILE_OF, FILES, POINTS, split
from grader.sandbox import Child, Crashed, Limits, Timeout, public_grader

MAX_UNZIPPED = 20 * 2 ** 20


@dataclass
class Check:
    exercise: str
    kind: str  # "public" or "hidden"
    passed: bool
    reason: str
    score: float
    max_score: float

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"


@dataclass
class Grade:
    student: str
    status: str = "graded"  # or: missing file, syntax error, import error, timeout, crashed
    checks: list = field(default_factory=list)
    output: str = ""
    isolation: str = ""
    seconds: float = 0.0

    @property
    def score(self):
        return sum(c.score for c in self.checks)

    @property
    def max_score(self):
        return sum(POINTS.values())

    def points(self, exercise):
        return sum(c.score for c in self.checks if c.exercise == exercise)


def hidden_cases():
    """{exercise: [(inputs, expected, mistakes), ...]}, computed from solutions/ once per run."""
    from grader.hidden import HIDDEN_CASES
    from grader.make_reference import case

    return {e: [case(e, seed, variant) for seed, variant in HIDDEN_CASES] for e in EXERCISES}


@dataclass
class Context:
    """What every grading in a run shares: cases, limits, the public grader copy."""
    public: dict
    hidden: dict
    limits: Limits
    public_dir: str

    @classmethod
    def create(cls, limits=Limits()):
        folder = tempfile.mkdtemp(prefix="stylelab-grader-")
        return cls(load_reference(), hidden_cases(), limits, str(public_grader(folder)))

    def close(self):
        shutil.rmtree(self.public_dir, ignore_errors=True)


def unpack(submission, into):
    """Copy a folder's or a zip's files into `into`; returns the folder holding the exercise files, or None."""
    submission, into = Path(submission), Path(into)
    if submission.is_dir():
        shutil.copytree(submission, into, dirs_exist_ok=True, symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__", ".*"))
    elif zipfile.is_zipfile(submission):
        with zipfile.ZipFile(submission) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED:
                return None
            for member in members:
                target = (into / member.filename).resolve()
                # no absolute paths, no ../ escapes, no symlinks (zip-slip)
                if not str(target).startswith(str(into.resolve()) + "/") or (member.external_attr >> 28) == 0xA:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    found = sorted((p for file in FILES for p in into.rglob(file) if p.is_file()), key=lambda p: len(p.parts))
    return found[0].parent if found else None


def _status_of(reason):
    return "timeout" if "timed out" in reason else "crashed"


def grade_submission(submission, context, student=None):
    """Grade one submission: every exercise, public and hidden, in one sandboxed child."""
    start = time.monotonic()
    grade = Grade(student or Path(submission).name.removesuffix(".zip"))
    with tempfile.TemporaryDirectory(prefix="stylelab-submission-") as tmp:
        folder = unpack(submission, Path(tmp) / "files") if Path(submission).exists() else None
        if folder is None:
            grade.status = "missing file"
            _fail_all(grade, f"no {' or '.join(FILES)} in the submission: it counts as not implemented")
        else:
            _grade_folder(grade, folder, context)
    grade.seconds = time.monotonic() - start
    return grade


def _fail_all(grade, reason, exercises=EXERCISES):
    for exercise in exercises:
        for kind in ("public", "hidden"):
            grade.checks.append(Check(exercise, kind, False, reason, 0.0, split(POINTS[exercise])[kind]))


def _grade_folder(grade, folder, context):
    source = folder / FILE_OF["tv_loss"]
    loops = loops_in_source(source.read_text(errors="replace"), "tv_loss") if source.is_file() else []
    children, deadline = _Children(folder, context, grade), time.monotonic() + context.limits.submission_seconds
    for exercise in EXERCISES:
        if time.monotonic() > deadline:
            grade.status = "timeout"
            _fail_all(grade, f"not run: the submission used up its {context.limits.submission_seconds:g} s",
                      EXERCISES[EXERCISES.index(exercise):])
            break
        child, problem = children.get(FILE_OF[exercise])
        cases = [("public", context.public[exercise])] + [("hidden", c) for c in context.hidden[exercise]]
        results = []
        for kind, (inputs, expected, mistakes) in cases:
            if exercise == "tv_loss" and loops:
                results.append((kind, False, LOOP_REASON.format(loops[0])))
                continue
            problem = problem or _file_problem(child.hello["files"][FILE_OF[exercise]], exercise, grade)
            if problem:
                results.append((kind, False, problem))
                continue
            try:
                results.append((kind, *_run(child, exercise, inputs, expected, mistakes, context.limits)))
            except (Timeout, Crashed) as error:
                reason = (f"timed out after {_seconds(exercise, context.limits):g} s" if isinstance(error, Timeout)
                          else f"the process {error}")
                results.append((kind, False, reason))
                grade.status = _status_of(reason) if grade.status == "graded" else grade.status
                children.drop(child)  # the next exercise starts a fresh one; this one's other cases are skipped
                break
        _record(grade, exercise, results)
    children.close()


class _Children:
    """A submission's sandboxed children: one for all its files, or one per file.

    Files are imported together, in one child, to pay for torch once. If that
    child dies or hangs while importing, each file gets a child of its own, so
    a style_transfer.py that kills its process at import costs only its own
    exercises, not those of a correct fast_transfer.py.
    """

    def __init__(self, folder, context, grade):
        self.folder, self.context, self.grade = folder, context, grade
        self.live, self.failed, self.one_each = {}, {}, False

    def get(self, file):
        """(child, None) for a child that has imported file, or (None, the reason there is none)."""
        if file in self.failed:
            return None, self.failed[file]
        if file in self.live:
            return self.live[file], None
        files = (file,) if self.one_each else tuple(FILES)
        try:
            child = Child(self.folder, self.context.public_dir, self.context.limits, files)
        except (Timeout, Crashed) as error:
            if not self.one_each and len(files) > 1:
                self.one_each = True
                return self.get(file)
            self.grade.status = "timeout" if isinstance(error, Timeout) else "crashed"
            self.failed[file] = (f"could not import {file}: "
                                 f"{'it timed out' if isinstance(error, Timeout) else f'the process {error}'}")
            return None, self.failed[file]
        self.grade.isolation = child.isolation
        self.live.update({f: child for f in files})
        return child, None

    def drop(self, child):
        self.grade.output += child.printed()
        child.close()
        self.live = {f: c for f, c in self.live.items() if c is not child}

    def close(self):
        for child in set(self.live.values()):
            self.drop(child)


def _file_problem(report, exercise, grade):
    """Why an exercise cannot be run, from the child's report on its file; None if it can."""
    file = FILE_OF[exercise]
    if report.get("missing"):
        return f"no {file} in the submission: it counts as not implemented"
    if not report["loaded"]:
        name = report["raised"]
        if grade.status == "graded":
            grade.status = ("syntax error" if name in ("SyntaxError", "IndentationError", "TabError")
                            else "import error")
        return f"could not import {file}: {describe_raised(name, report['message'])}"
    if exercise not in report["functions"]:
        return f"{file} defines no function {exercise}"
    return None


def _seconds(exercise, limits):
    return limits.loop_seconds if exercise == "style_transfer" else limits.check_seconds


def _run(child, exercise, inputs, expected, mistakes, limits):
    from grader.checks import _prepare

    reply = child.run(exercise, inputs, _seconds(exercise, limits))
    if "raised" in reply:
        return False, describe_raised(reply["raised"], reply["message"])
    before = snapshot(_prepare(exercise, inputs))
    passed, reason, _ = judge(exercise, reply["result"], before, reply["inputs_after"], expected, mistakes)
    return passed, reason


def _record(grade, exercise, results):
    shares = split(POINTS[exercise])
    for kind in ("public", "hidden"):
        mine = [r for r in results if r[0] == kind]
        failed = next((r for r in mine if not r[1]), None)
        passed = bool(mine) and failed is None
        reason = "" if passed else (failed[2] if failed else "not run: an earlier check of this exercise "
                                                             "timed out or crashed")
        grade.checks.append(Check(exercise, kind, passed, reason, shares[kind] if passed else 0.0, shares[kind]))


def grade_class(folder, context, workers=2):
    """Grade every folder or .zip in folder, named by student id; returns the grades, sorted."""
    entries = sorted(p for p in Path(folder).iterdir() if p.is_dir() or p.suffix == ".zip")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: grade_submission(p, context), entries))


# --- outputs -----------------------------------------------------------------------

def gradescope(grade):
    """The grade as Gradescope's results.json: hidden checks show after grades are published."""
    tests = []
    for check in grade.checks:
        tests.append({
            "name": f"{check.exercise} ({check.kind} check)",
            "score": check.score, "max_score": check.max_score,
            "status": "passed" if check.passed else "failed",
            "output": check.reason or "passed",
            "visibility": "visible" if check.kind == "public" else "after_published",
        })
    output = f"status: {grade.status}; sandbox: {grade.isolation or 'none'}"
    if grade.isolation == "weaker":
        output += " (bubblewrap missing: resource limits and a temporary directory only)"
    if grade.output:
        output += "\n\nYour code printed:\n" + grade.output
    return {"score": round(grade.score, 4), "execution_time": round(grade.seconds, 2),
            "output": output, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def feedback(grade):
    """Markdown feedback for one student, with the checks' teaching hints."""
    lines = [f"# Style transfer: feedback for {grade.student}", "",
             f"Score: **{_fmt(grade.score)} / {grade.max_score}** (status: {grade.status})", "",
             "| exercise | public | hidden | points |", "|---|---|---|---|"]
    for exercise in EXERCISES:
        mine = {c.kind: c for c in grade.checks if c.exercise == exercise}
        cells = ["pass" if mine[k].passed else "fail" for k in ("public", "hidden")]
        lines.append(f"| {exercise} | {cells[0]} | {cells[1]} | {_fmt(grade.points(exercise))} / {POINTS[exercise]} |")
    hints = [(c.exercise, c.kind, c.reason) for c in grade.checks if not c.passed]
    if hints:
        lines += ["", "## What to look at", ""]
        seen = set()
        for exercise, kind, reason in hints:
            if (exercise, reason) not in seen:
                seen.add((exercise, reason))
                lines.append(f"- **{exercise}** ({kind} check): {reason}")
    if grade.output:
        lines += ["", "## What your code printed (cut)", "", "```", grade.output.strip(), "```"]
    return "\n".join(lines) + "\n"


def _fmt(value):
    return f"{value:g}" if not math.isnan(value) else "-"


def gradebook(grades, path):
    """One CSV row per student: status, points per exercise, total."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "status", *EXERCISES, "total", "max"])
        for grade in grades:
            writer.writerow([grade.student, grade.status, *(_fmt(grade.points(e)) for e in EXERCISES),
                             _fmt(grade.score), grade.max_score])


def write_outputs(grade, json_path=None, feedback_path=None):
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(gradescope(grade), indent=2))
    if feedback_path:
        Path(feedback_path).parent.mkdir(parents=True, exist_ok=True)
        Path(feedback_path).write_text(feedback(grade))
