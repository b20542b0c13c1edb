"""Grade submissions: one student, or a whole class in parallel (instructors only).

A submission is a folder or a .zip holding the student's copies of the starter
files (style_transfer.py, fast_transfer.py; a missing one scores 0 for its
exercises). The student is told which files were graded, by their paths in
the submission, and what was found in place of a missing one (unpack). Each
runs in a sandboxed child (sandbox.py); the checks' inputs go in, the results
come back as hostile data, and they are judged here against the public
reference and the hidden cases, which the child never sees.

Every student gets a row, whatever their code or their archive does: a status
says whether it was graded normally or hit a missing or ambiguous file, a
syntax error, an import error, a timeout, a crash, a bad archive or a bad file
name. Judging one check never raises out of it, grading one student never
raises out of their row, and every wait has a deadline: the per-check clocks,
and the per-submission clock, which kills the child in the middle of a check.

An exercise's points are split between its public check and its hidden
checks (exercises.HIDDEN_SHARE), so the public part a student saw pass is theirs.
"""

import csv
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import protocol
from grader.checks import (LOOP_REASON, ROOT, describe_raised, judge, load_reference, loops_in_source,
                           snapshot, upstream)
from grader.exercises import EXERCISE, EXERCISES, FILES, TOTAL_POINTS
from grader.instructor.sandbox import Child, Crashed, Limits, Timeout, public_grader, weaker_description
from grader.instructor.starter import stub_source
from stylelab.impl import import_hint

MAX_FILE = 2 * 2 ** 20  # bytes of one exercise file: a few thousand lines is already long
MAX_ENTRIES = 10_000  # files and folders looked at in one submission
MAX_DEPTH = 12  # folders deep


class DuplicateStudents(Exception):
    """Two submissions in a class folder name the same student."""


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


# --- submissions: folders and archives, as hostile as their code ---------------------------------

class BadArchive(Exception):
    """The archive cannot be read: the one-line reason."""


def student_id(path):
    """(the student's id from a submission's name, or None if the name is not clean text)."""
    raw = os.fsencode(Path(path).name)
    if raw.endswith(b".zip") and not Path(path).is_dir():
        raw = raw[:-4]
    text = raw.decode("utf-8", errors="backslashreplace")
    clean = "".join(c if c.isprintable() and c != "/" else f"\\x{ord(c):02x}" for c in text)
    return clean, (None if clean == text and raw == text.encode() else "bad file name")


@dataclass
class Unpacked:
    """What unpack took from a submission, and what the student is told about the rest, one line each."""
    graded: dict = field(default_factory=dict)  # exercise file -> its path inside the submission, as shown
    notes: list = field(default_factory=list)  # what was found instead or besides, and what to do
    refused: list = field(default_factory=list)  # files not taken, with why
    missing: dict = field(default_factory=dict)  # exercise file -> why it was not taken, for its checks
    ambiguous: list = field(default_factory=list)  # exercise files with two copies that tie, neither graded

    def missing_reason(self, file):
        """The reason an exercise of a file that was not taken fails, in one line."""
        return self.missing.get(file) or f"no {file} in the submission: it counts as not implemented"


@dataclass
class _Found:
    """A file of the submission that is, or could be mistaken for, an exercise file."""
    path: str  # inside the submission, '/'-separated
    kind: str  # "file" (an exercise file, or a near miss of one), "notebook" or "zip"
    file: str = ""  # the exercise file it stands for, if any
    problem: str = ""  # why it cannot be taken: a symbolic link, encrypted...
    source: object = None  # what reading it opens: a Path, or a zip member

    @property
    def depth(self):
        return self.path.count("/")

    @property
    def exact(self):
        return self.path.rsplit("/", 1)[-1] == self.file


BROWSER_COPY = re.compile(r" ?\(\d+\)$")  # "style_transfer (1)": a browser's name for a second download
HIDDEN = ("__pycache__", "__MACOSX")  # and names that start with a dot: .ipynb_checkpoints, .git, ._* (macOS)


def _meant(name):
    """The exercise file a name stands for: itself, or a near miss that differs only by case, a browser's
    " (1)" or a .txt extension; else ""."""
    stem = BROWSER_COPY.sub("", name.lower().removesuffix(".txt").removesuffix(".py"))
    return next((file for file in FILES if file == stem + ".py"), "")


def _classify(name):
    """(kind, exercise file) for a file name worth a look (see _Found), or None for any other name."""
    if name.lower().endswith(".ipynb"):
        return "notebook", _meant(name[:-len(".ipynb")] + ".py")
    if name.lower().endswith(".zip"):
        return "zip", ""
    meant = _meant(name)
    return ("file", meant) if meant else None


def _hidden(name):
    return name in HIDDEN or (name.startswith(".") and name != "..")


def unpack(submission, into):
    """Copy the exercise files of a folder or zip into `into`, under their exercise names; returns Unpacked.

    Only regular files are taken, each at most MAX_FILE bytes (counted while
    reading, not from the archive's own header). Symbolic links, devices,
    encrypted or oversize members are refused. A near miss of a file's name
    (another case, a browser's " (1)", a .txt extension) is graded, with a
    note to rename it. Of two or more copies of one file, the one with the
    exact name wins, then the shallowest; the note names every copy, and
    where two tie, neither is graded. Raises BadArchive for an archive that
    cannot be read.
    """
    submission, into = Path(submission), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if submission.is_symlink():
        return Unpacked(refused=[f"{submission.name}: a symbolic link, not a submission"])
    if submission.is_dir():
        return _unpack_folder(submission, into)
    return _unpack_zip(submission, into)


def _unpack_folder(folder, into):
    found, others, refused, seen = [], [], [], 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        where = Path(top).relative_to(folder)
        seen += len(dirs) + len(files)
        if seen > MAX_ENTRIES or len(where.parts) >= MAX_DEPTH:
            refused.append(f"{_shown(where)}: too many files or folders; the rest was not looked at")
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(n for n in files if not _hidden(n)):
            role = _classify(name)
            if role is None:
                others.append((where / name).as_posix())
                continue
            path = Path(top) / name
            mode = os.lstat(path).st_mode
            problem = "" if stat.S_ISREG(mode) else \
                f"{'a symbolic link' if stat.S_ISLNK(mode) else 'not a regular file'}; hand in the file itself"
            found.append(_Found((where / name).as_posix(), *role, problem, path))

    def read(entry):
        with open(entry.source, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as source:
            return source.read(MAX_FILE + 1)

    unpacked, chosen = _choose(found, others, inside_zip=False)
    unpacked.refused[:0] = refused
    _copy(unpacked, chosen, into, read)
    return unpacked


def _unpack_zip(path, into):
    try:
        archive = zipfile.ZipFile(path)
    except Exception as error:  # not a zip, truncated, a folder of the wrong kind...
        raise BadArchive(f"{path.name} is not a readable zip archive ({type(error).__name__})") from None
    found, others = [], []
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ENTRIES:
            raise BadArchive(f"{path.name} holds {len(members)} entries")
        for member in members:
            parts = [p for p in member.filename.replace("\\", "/").split("/") if p not in ("", ".")]
            if member.is_dir() or not parts or any(_hidden(p) for p in parts):
                continue
            role = _classify(parts[-1])
            if role is None:
                others.append("/".join(parts))
                continue
            kind = stat.S_IFMT(member.external_attr >> 16)
            problem = ""
            if kind not in (0, stat.S_IFREG):
                problem = f"{'a symbolic link' if kind == stat.S_IFLNK else 'not a regular file'}; " \
                          f"hand in the file itself"
            elif member.flag_bits & 0x1:
                problem = "encrypted; hand in an archive without a password"
            found.append(_Found("/".join(parts), *role, problem, member))

        def read(entry):
            try:
                with archive.open(entry.source) as source:
                    return source.read(MAX_FILE + 1)
            except Exception as error:  # a bad CRC, an unsupported compression method, a truncated stream
                raise BadArchive(f"{_shown(entry.path)} in {path.name} cannot be read "
                                 f"({type(error).__name__}: {str(error)[:80]})") from None

        unpacked, chosen = _choose(found, others, inside_zip=True)
        _copy(unpacked, chosen, into, read)
    return unpacked


def _choose(found, others, inside_zip):
    """(Unpacked, {exercise file: the _Found to take}): which copy of each file is graded, and the notes."""
    unpacked, chosen = Unpacked(), {}
    for entry in found:
        if entry.problem and entry.kind == "file":
            line = f"{_shown(entry.path)}: {entry.problem}"
            unpacked.refused.append(line)
            unpacked.missing.setdefault(entry.file, _not_in(entry.file, line))
    for file in FILES:
        copies = sorted((e for e in found if e.kind == "file" and e.file == file and not e.problem),
                        key=lambda e: (not e.exact, e.depth, e.path))
        if not copies:
            continue
        rank = (not copies[0].exact, copies[0].depth)
        tied = [e for e in copies if (not e.exact, e.depth) == rank]
        listed = _listed([_quoted(e.path) for e in copies])
        if len(tied) > 1:  # nothing says which one the student meant
            line = (f"{len(copies)} copies of {file} ({listed}): graded {'neither' if len(copies) == 2 else 'none'}; "
                    f"keep one and submit again")
            unpacked.notes.append(line)
            unpacked.missing[file] = line
            unpacked.ambiguous.append(file)
            continue
        chosen[file] = copies[0]
        unpacked.graded[file] = _quoted(copies[0].path)
        if not copies[0].exact:
            unpacked.notes.append(f"found {_quoted(copies[0].path)}: rename it to {file}")
        if len(copies) > 1:
            unpacked.notes.append(f"{len(copies)} copies of {file} ({listed}): graded {_quoted(copies[0].path)}; "
                                  f"keep one")
    _notes_on_missing(unpacked, found, others, inside_zip)
    return unpacked, chosen


def _notes_on_missing(unpacked, found, others, inside_zip):
    """One line for each notebook or zip that may hold a missing exercise file, saying what to do; where
    nothing was graded and nothing else explains it, the names of a few of the files that were found.

    A notebook named for a file speaks for that file; any other notebook, and
    any zip, only where nothing was graded, since a class may not have reached
    every file yet.
    """
    missing = [file for file in FILES if file not in unpacked.graded and file not in unpacked.ambiguous]
    nothing = not unpacked.graded and not unpacked.ambiguous
    others_found = sorted((e for e in found if e.kind in ("notebook", "zip")), key=lambda e: (e.depth, e.path))
    for entry in others_found[:3]:  # a few lines are advice; thousands would bury it
        targets = [entry.file] if entry.file in missing else (missing if nothing else [])
        if not targets:
            continue
        if entry.kind == "notebook":
            line = f"found {_quoted(entry.path)}: submit {' and '.join(targets)}"
        elif inside_zip:
            line = f"found {_quoted(entry.path)} inside the zip: zip the files, not a zip"
        else:
            line = f"found {_quoted(entry.path)}: submit the files, not a zip"
        unpacked.notes.append(line)
        for file in targets:
            unpacked.missing.setdefault(file, _not_in(file, line))
    if others and nothing and not unpacked.notes and not unpacked.missing:
        names = [_quoted(path) for path in sorted(others, key=lambda path: (not path.endswith(".py"), path))]
        line = f"found {_listed(names)}: submit your work as {' and '.join(FILES)}, the starter's names"
        unpacked.notes.append(line)
        for file in missing:
            unpacked.missing.setdefault(file, _not_in(file, line))


def _listed(names, most=3):
    """"a", "a and b", "a, b and c"; past `most` names, "a, b, c and 4 more"."""
    names = names[:most] + ([f"{len(names) - most} more"] if len(names) > most else [])
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _not_in(file, why):
    return f"no {file} in the submission ({why}): it counts as not implemented"


def _copy(unpacked, chosen, into, read):
    """Write each chosen file into `into` under its exercise name; one that is too large or unreadable is
    refused instead."""
    for file, entry in chosen.items():
        try:
            data = read(entry)
        except OSError as error:
            problem = f"could not be read ({error.strerror})"
        else:
            problem = f"larger than {MAX_FILE // 2 ** 20} MiB" if len(data) > MAX_FILE else ""
        if problem:
            line = f"{_shown(entry.path)}: {problem}"
            unpacked.refused.append(line)
            unpacked.missing[file] = _not_in(file, line)
            del unpacked.graded[file]
            continue
        (into / file).write_bytes(data)


def _shown(name):
    """A file name from a submission, as text that is safe to show: printable, at most 120 characters."""
    text = str(name)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 120 else text[:60] + "..." + text[-57:]


def _quoted(name):
    """A file name as a student reads it in a sentence: shown, and quoted where it holds a space or the like."""
    text = _shown(name)
    return text if re.fullmatch(r"[\w./+@~-]+", text) else repr(text)


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
        return False, describe_raised(reply["raised"], reply["message"])
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


def submissions(folder):
    """{student id: path} for every folder or .zip in a class folder; DuplicateStudents if two share an id."""
    found = {}
    for path in sorted(Path(folder).iterdir()):
        if not (path.is_dir() or path.suffix == ".zip") or path.name.startswith("."):
            continue
        student, _ = student_id(path)
        if student in found:
            raise DuplicateStudents(f"two submissions are named {student!r}: {found[student].name} and "
                                    f"{path.name}; keep one of them")
        found[student] = path
    return found


def grade_class(folder, context, workers=2):
    """Grade every folder or .zip in folder, named by student id; returns the grades, sorted by id."""
    entries = submissions(folder)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda item: grade_submission(item[1], context, item[0]), entries.items()))


# --- outputs -----------------------------------------------------------------------

def gradescope(grade):
    """The grade as Gradescope's results.json: hidden checks show after grades are published."""
    tests = []
    for check in grade.checks:
        tests.append({
            "name": f"{check.exercise} ({check.kind} check)",
            "score": check.score, "max_score": check.max_score,
            "status": "passed" if check.passed else "failed",
            "output": "\n".join(text for text in (check.reason or "passed", check.note) if text),
            "visibility": "visible" if check.kind == "public" else "after_published",
        })
    output = f"status: {grade.status}; sandbox: {grade.isolation or 'none'}"
    if grade.isolation == "weaker":
        output += f" ({weaker_description()})"
    output += "\n" + "\n".join(about_files(grade))
    if grade.files.refused:
        output += "\n\nFiles not taken from your submission:\n" + "\n".join(f"- {r}" for r in grade.files.refused)
    if grade.output:
        output += "\n\nYour code printed:\n" + grade.output
    return {"score": round(grade.score, 4), "execution_time": round(grade.seconds, 2),
            "output": output, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def feedback(grade):
    """Markdown feedback for one student, with the checks' teaching hints; the student's text is quoted safely."""
    lines = [f"# Style transfer: feedback for {_markdown_text(grade.student)}", "",
             f"Score: **{_fmt(grade.score)} / {grade.max_score}** (status: {grade.status})", "",
             *(f"- {_markdown_text(line)}" for line in about_files(grade)), "",
             "| exercise | public | hidden | points |", "|---|---|---|---|"]
    for exercise in EXERCISES:
        mine = {c.kind: c for c in grade.checks if c.exercise == exercise}
        cells = ["pass" if mine[k].passed else "fail" for k in ("public", "hidden")]
        lines.append(f"| {exercise} | {cells[0]} | {cells[1]} | {_fmt(grade.points(exercise))} / "
                     f"{EXERCISE[exercise].points} |")
    hints = [(c.exercise, c.kind, c.reason) for c in grade.checks if not c.passed]
    if hints:
        lines += ["", "## What to look at", ""]
        seen = set()
        for exercise, kind, reason in hints:
            if (exercise, reason) not in seen:
                seen.add((exercise, reason))
                lines.append(f"- **{exercise}** ({kind} check): {_markdown_text(reason)}")
    if grade.files.refused:
        lines += ["", "## Files not taken from your submission", ""]
        lines += [f"- {_markdown_text(r)}" for r in grade.files.refused]
    if grade.output:
        lines += ["", "## What your code printed (cut)", "", *_fenced(grade.output.strip())]
    return "\n".join(lines) + "\n"


def about_files(grade):
    """What a student reads first about their files: the ones graded, by their paths inside the submission,
    then one line for each thing found instead or besides, with what to do."""
    graded = ", ".join(grade.files.graded[file] for file in FILES if file in grade.files.graded)
    return [f"graded: {graded or 'nothing'}", *grade.files.notes]


def _fenced(text):
    """text in a code fence longer than any run of backticks inside it, so it cannot close the fence."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _markdown_text(text):
    """One line of a student's text (an id, a message) with Markdown's active characters escaped."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


def _fmt(value):
    return f"{value:g}" if not math.isnan(value) else "-"


def _cell(value):
    """A CSV cell a spreadsheet shows as text: formulas (=, +, -, @, tab, CR) are defused with a quote."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook(grades, path):
    """One CSV row per student: status, points per exercise, total."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "status", *EXERCISES, "total", "max"])
        for grade in grades:
            writer.writerow([_cell(grade.student), grade.status, *(_fmt(grade.points(e)) for e in EXERCISES),
                             _fmt(grade.score), grade.max_score])


def write_outputs(grade, json_path=None, feedback_path=None):
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(gradescope(grade), indent=2), encoding="utf-8")
    if feedback_path:
        Path(feedback_path).parent.mkdir(parents=True, exist_ok=True)
        Path(feedback_path).write_text(feedback(grade), encoding="utf-8")
