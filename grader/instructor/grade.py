"""Grade submissions: one student, or a whole class in parallel (instructors only).

A submission is a folder or a .zip holding the student's copies of the starter
files (style_transfer.py, fast_transfer.py; a missing one scores 0 for its
exercises). The student is told which files were graded, by their paths in
the submission, and what was found in place of a missing one (submission.py). Each
runs in a sandboxed child (sandbox.py); the checks' inputs go in, the results
come back as hostile data, and they are judged here against the public
reference and the hidden cases, which the child never sees.

Every student gets a row, whatever their code or their archive does: a status
says whether it was graded normally or hit a missing or ambiguous file, a
syntax error, an import error, a timeout, a crash, a bad archive or a bad file
name. report.py turns a grade into feedback, Gradescope's results and a gradebook. Judging one check never raises out of it, grading one student never
raises out of their row, and every wait has a deadline: the per-check clocks,
and the per-submission clock, which kills the child in the middle of a check.

An exercise's points are split between its public check and its hidden
checks (exercises.HIDDEN_SHARE), so the public part a student saw pass is theirs.
"""

import shutil
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import protocol
from grader.checks import (LOOP_REASON, ROOT, describe_raised, judge, load_reference, loops_in_source,
                           snapshot, upstream)
from grader.exercises import EXERCISE, EXERCISES, FILES, TOTAL_POINTS
from grader.instructor.sandbox import Child, Crashed, Limits, Timeout, public_grader
from grader.instructor.starter import stub_source
from grader.instructor.submission import BadArchive, Unpacked, student_id, submissions, unpack
from stylelab.impl import import_hint


@dataclass
class Check:
    exercise: str
    kind: str  # "public" or "hidden"
    passed: bool
    reason: str
    score: float
    max_score: float
    note: str = ""  # names the exercises it builds on that fail their own checks (checks.upstream)

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"


@dataclass
class Grade:
    student: str
    status: str = "graded"  # or: missing file, ambiguous file, syntax error, import error, timeout, crashed, ...
    checks: list = field(default_factory=list)
    output: str = ""
    isolation: str = ""
    seconds: float = 0.0
    files: "Unpacked" = field(default_factory=lambda: Unpacked())  # what was graded, what not, and the notes

    @property
    def score(self):
        return sum(c.score for c in self.checks)

    @property
    def max_score(self):
        return TOTAL_POINTS

    def points(self, exercise):
        return sum(c.score for c in self.checks if c.exercise == exercise)


def hidden_cases():
    """{exercise: [(inputs, expected, mistakes), ...]}, computed from solutions/ once per run."""
    from grader.instructor.hidden import HIDDEN_CASES
    from grader.instructor.reference import case

    return {e: [case(e, seed, variant) for seed, variant in HIDDEN_CASES] for e in EXERCISES}


def needs_sources():
    """{exercise: source of a module holding the reference versions of what it builds on}.

    Each is the exercise's solutions file with every other exercise's body
    stubbed (grader.instructor.starter's stubs), so a child holds no more of the
    solutions than the check it runs needs. The child gets it with that
    exercise's requests only: exercises run in the labs' order, so by then
    every exercise the module holds has been judged in that child, and a
    submission that keeps the functions cannot use them to pass those checks.
    """
    return {record.name: stub_source((ROOT / "solutions" / record.file).read_text(), record.file, keep=record.needs)
            for record in EXERCISE.values() if record.needs}


@dataclass
class Context:
    """What every grading in a run shares: cases, limits, the public grader copy, the needs' sources."""
    public: dict
    hidden: dict
    limits: Limits
    public_dir: str
    needs: dict = field(default_factory=dict)

    @classmethod
    def create(cls, limits=Limits()):
        folder = tempfile.mkdtemp(prefix="stylelab-grader-")
        return cls(load_reference(), hidden_cases(), limits, str(public_grader(folder)), needs_sources())

    def close(self):
        shutil.rmtree(self.public_dir, ignore_errors=True)


# --- grading ---------------------------------------------------------------------------------

def grade_submission(submission, context, student=None):
    """Grade one submission: every exercise, public and hidden, in one sandboxed child; never raises."""
    start = time.monotonic()
    name, problem = student_id(submission)
    grade = Grade(student or name)
    try:
        with tempfile.TemporaryDirectory(prefix="stylelab-submission-") as tmp:
            _grade_unpacked(grade, submission, Path(tmp) / "files", context)
    except Exception:  # a bug of the grader's own: this student's row says so, the class goes on
        grade.status, grade.checks = "grader error", []
        _fail_all(grade, "the grader failed on this submission; your instructor has the details")
        grade.output = traceback.format_exc(limit=5)
    if problem and grade.status == "graded":
        grade.status = problem
    grade.seconds = time.monotonic() - start
    return grade


def _grade_unpacked(grade, submission, folder, context):
    if not Path(submission).exists():
        grade.status = "missing file"
        _fail_all(grade, f"no {' or '.join(FILES)} in the submission: it counts as not implemented")
        return
    try:
        grade.files = unpack(submission, folder)
    except BadArchive as error:
        grade.status = "bad archive"
        _fail_all(grade, f"{error}: it counts as not implemented")
        return
    if not grade.files.graded:
        grade.status = "ambiguous file" if grade.files.ambiguous else "missing file"
        why = f" ({grade.files.refused[0]})" if grade.files.refused else ""
        both = f"no {' or '.join(FILES)} in the submission{why}: it counts as not implemented"
        for exercise in EXERCISES:  # each file's own reason where there is one
            _fail_all(grade, grade.files.missing.get(EXERCISE[exercise].file, both), (exercise,))
        return
    _grade_folder(grade, folder, context)
    if grade.files.ambiguous and grade.status == "graded":
        grade.status = "ambiguous file"


def _fail_all(grade, reason, exercises=EXERCISES):
    for exercise in exercises:
        for kind, share in EXERCISE[exercise].split().items():
            grade.checks.append(Check(exercise, kind, False, reason, 0.0, share))


def _grade_folder(grade, folder, context):
    source = folder / EXERCISE["tv_loss"].file
    loops = loops_in_source(source.read_text(errors="replace"), "tv_loss") if source.is_file() else []
    limits = context.limits
    deadline = time.monotonic() + limits.submission_seconds
    children = _Children(folder, context, grade, deadline)
    try:
        for exercise in EXERCISES:
            if time.monotonic() > deadline:
                grade.status = "timeout"
                _fail_all(grade, f"not run: the submission used up its {limits.submission_seconds:g} s",
                          EXERCISES[EXERCISES.index(exercise):])
                break
            _record(grade, exercise, _run_exercise(grade, exercise, children, context, loops, deadline))
    finally:
        children.close()
    public = {c.exercise: c for c in grade.checks if c.kind == "public"}
    for check in grade.checks:
        check.note = upstream(check.exercise, {**public, check.exercise: check}, bound=True)


def _run_exercise(grade, exercise, children, context, loops, deadline):
    """[(kind, passed, reason)] for the public case and each hidden case of one exercise."""
    limits = context.limits
    child, problem = children.get(EXERCISE[exercise].file)
    cases = [("public", context.public[exercise])] + [("hidden", c) for c in context.hidden[exercise]]
    results = []
    for kind, (inputs, expected, mistakes) in cases:
        if exercise == "tv_loss" and loops:
            results.append((kind, False, LOOP_REASON.format(loops[0])))
            continue
        problem = problem or _file_problem(child.hello["files"][EXERCISE[exercise].file], exercise, grade)
        if problem:
            results.append((kind, False, problem))
            continue
        seconds = limits.loop_seconds if EXERCISE[exercise].kind == "loop" else limits.check_seconds
        check_deadline = min(time.monotonic() + seconds, deadline)
        try:
            results.append((kind, *_run(child, exercise, inputs, expected, mistakes, check_deadline,
                                        context.needs.get(exercise))))
        except (Timeout, Crashed, protocol.Invalid) as error:
            if isinstance(error, Timeout):
                reason = (f"timed out after {seconds:g} s" if check_deadline < deadline
                          else f"timed out: the submission used up its {limits.submission_seconds:g} s")
                status = "timeout"
            elif isinstance(error, Crashed):
                reason, status = f"the process {error}", "crashed"
            else:
                reason, status = f"sent the grader something it cannot read: {error}", "crashed"
            results.append((kind, False, reason))
            grade.status = status if grade.status == "graded" else grade.status
            children.drop(child)  # the next exercise starts a fresh one; this one's other cases are skipped
            break
    return results


class _Children:
    """A submission's sandboxed children: one for all its files, or one per file.

    Files are imported together, in one child, to pay for torch once. If that
    child dies or hangs while importing, each file gets a child of its own, so
    a style_transfer.py that kills its process at import costs only its own
    exercises, not those of a correct fast_transfer.py.
    """

    def __init__(self, folder, context, grade, deadline):
        self.folder, self.context, self.grade, self.deadline = folder, context, grade, deadline
        self.live, self.failed, self.one_each = {}, {}, False

    def get(self, file):
        """(child, None) for a child that has imported file, or (None, the reason there is none)."""
        if file in self.failed:
            return None, self.failed[file]
        if file in self.live:
            return self.live[file], None
        files = (file,) if self.one_each else FILES
        try:
            child = Child(self.folder, self.context.public_dir, self.context.limits, files, self.deadline)
        except (Timeout, Crashed, protocol.Invalid) as error:
            self.grade.output += getattr(error, "printed", "")
            if not self.one_each and len(files) > 1:
                self.one_each = True
                return self.get(file)
            self.grade.status = "timeout" if isinstance(error, Timeout) else "crashed"
            why = {Timeout: "it timed out", Crashed: f"the process {error}"}.get(
                type(error), f"it sent the grader something it cannot read: {error}")
            self.failed[file] = f"could not import {file}: {why}"
            return None, self.failed[file]
        self.grade.isolation = child.isolation
        self.live.update({f: child for f in files})
        return child, None

    def drop(self, child):
        child.close()  # first: what it printed is all read once it is gone
        self.grade.output += child.printed()
        self.live = {f: c for f, c in self.live.items() if c is not child}

    def close(self):
        for child in set(self.live.values()):
            self.drop(child)


def _file_problem(report, exercise, grade):
    """Why an exercise cannot be run, from the child's report on its file; None if it can."""
    file = EXERCISE[exercise].file
    if report.get("missing"):
        return grade.files.missing_reason(file)
    if not report["loaded"]:
        name = report["raised"]
        if grade.status == "graded":
            grade.status = ("syntax error" if name in ("SyntaxError", "IndentationError", "TabError")
                            else "import error")
        return (f"could not import {file}: {describe_raised(name, report['message'])}"
                + import_hint(name, report["message"], file))
    if exercise not in report["functions"]:
        return f"{file} defines no function {exercise}"
    return None


def _run(child, exercise, inputs, expected, mistakes, deadline, needs=None):
    reply = child.run(exercise, inputs, deadline, needs)
    if "raised" in reply:
        call = EXERCISE[exercise].signature(inputs)
        return False, describe_raised(reply["raised"], reply["message"], call)
    passed, reason, _ = judge(exercise, reply["result"], snapshot(inputs), reply["inputs_after"], expected,
                              mistakes, reply["grads"])
    return passed, reason


def _record(grade, exercise, results):
    for kind, share in EXERCISE[exercise].split().items():
        mine = [r for r in results if r[0] == kind]
        failed = next((r for r in mine if not r[1]), None)
        passed = bool(mine) and failed is None
        reason = "" if passed else (failed[2] if failed else "not run: an earlier check of this exercise "
                                                             "timed out or crashed")
        grade.checks.append(Check(exercise, kind, passed, reason, share if passed else 0.0, share))


def grade_class(folder, context, workers=2):
    """Grade every folder or .zip in folder, named by student id; returns the grades, sorted by id."""
    entries = submissions(folder)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda item: grade_submission(item[1], context, item[0]), entries.items()))


