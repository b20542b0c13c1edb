"""A submission as the grader meets it: a folder or archive, as hostile as its code.

`unpack` takes the exercise files out of a student's folder or .zip, however
they were named (a browser's " (1)", a .txt added, another case) or nested,
within limits on size, count and depth, refusing links, encrypted and absolute
entries; `Unpacked` says what was taken and tells the student about the rest.
`submissions` lists a class folder by student id.
"""

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.exercises import FILES

MAX_FILE = 2 * 2 ** 20  # bytes of one exercise file: a few thousand lines is already long
MAX_ENTRIES = 10_000  # files and folders looked at in one submission
MAX_DEPTH = 12  # folders deep
class DuplicateStudents(Exception):
    """Two submissions in a class folder name the same student."""


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


