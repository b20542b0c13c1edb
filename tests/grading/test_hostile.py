"""The grader as a trust boundary: a hostile class, graded as root the way Gradescope, CI and
servers run it. No student changes another's grade, crashes or stalls the class, or escapes.

One submission or archive per way in; each is asserted per student, and
the class also holds a correct and a wrong student, whose grades must come out right.
"""

import csv
import io
import json
import os
import struct
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch

from grader import protocol
from grader.instructor import grade, report, sandbox
from grader.__main__ import main as grader_main
from grader.returned import UNCONNECTED
from grader.exercises import EXERCISE, FILES, TOTAL_POINTS, of_file
from helpers import ROOT

SOLUTION = (ROOT / "solutions" / "style_transfer.py").read_text()
FAST_SOLUTION = (ROOT / "solutions" / "fast_transfer.py").read_text()
STARTER = (ROOT / "starter" / "style_transfer.py").read_text()
P = {name: record.points for name, record in EXERCISE.items()}
ST, FT = (sum(P[e] for e in of_file(file)) for file in FILES)


def override(source, body):
    return source + "\n\n" + textwrap.dedent(body)


# --- the sandbox itself, as root --------------------------------------------------------------

PROBE = r'''
import ctypes, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
found = {}

def attempt(name, action):
    try:
        result = action()
        found[name] = "allowed" if result in (None, 0) or not isinstance(result, int) else f"refused {result}"
    except OSError as error:
        found[name] = f"refused {error.errno}"

def call(result):
    return -ctypes.get_errno() if result else 0

attempt("remount_rw", lambda: call(libc.mount(None, b"/grader-public", None, 0x20 | 0x1000 | 0x21, None)))
attempt("mount_tmpfs", lambda: call(libc.mount(b"none", b"/grader-public", b"tmpfs", 0, None)))
attempt("unshare", lambda: call(libc.unshare(0x10000000 | 0x00020000)))
attempt("fork", lambda: os.waitpid(os.fork(), 0) if True else None)
attempt("subprocess", lambda: subprocess.run(["/bin/true"]).returncode and None)
for where in ("/grader-public/grader/checks.py", "/submission/x.py", "/usr/x", "/dev/shm/x", "/dev/x",
              os.__file__, "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"):
    attempt(f"write {where}", lambda: os.close(os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)))
attempt("fill /tmp past its size", lambda: open("/tmp/big", "wb").write(b"0" * (128 * 2 ** 20)) and None)
found["uid"] = os.getuid()
found["capabilities"] = open("/proc/self/status").read().split("CapEff:")[1].split()[0]
print(json.dumps(found))
'''


def test_the_sandbox_holds_as_root(bubblewrap, tmp_path):
    """Inside the child, as the grader runs it (as root here, like CI and Gradescope), every way out fails."""
    (tmp_path / "public" / "grader").mkdir(parents=True)
    (tmp_path / "public" / "grader" / "checks.py").write_text("# the public grader\n")
    (tmp_path / "submission").mkdir()
    filter_path = tmp_path / "filter.bpf"
    filter_path.write_bytes(sandbox.seccomp.filter())
    fd = os.open(filter_path, os.O_RDONLY)
    try:
        command = sandbox._bwrap(bubblewrap, tmp_path / "submission", tmp_path / "public", fd)
        run = subprocess.run(command + [sys.executable, "-c", PROBE], capture_output=True, text=True,
                             timeout=120, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found.pop("uid") == sandbox.SANDBOX_UID and found.pop("capabilities") == "0000000000000000"
    assert all(verdict.startswith("refused") for verdict in found.values()), json.dumps(found)
    assert (tmp_path / "public" / "grader" / "checks.py").read_text() == "# the public grader\n"
    assert os.listdir(tmp_path / "submission") == []


# --- the child's replies are hostile data --------------------------------------------------------

def forging(message):
    """A luminance_only that writes its own reply into the protocol's pipe (fd 4) before the worker's."""
    return override(SOLUTION, f"""
        def luminance_only(stylized, content_img):
            import io, os, struct, torch
            message = {message}
            if isinstance(message, bytes):
                data = message
            else:
                buffer = io.BytesIO()
                torch.save(message, buffer)
                data = struct.pack("<Q", len(buffer.getvalue())) + buffer.getvalue()
            os.write(4, data)
            return stylized
        """)


DEEP = "{'__list__': [" * 40 + "1" + "]}" * 40
HOSTILE = {
    # what a careless student returns, and what a hostile one sends
    "rows_of_floats": (override(SOLUTION, """
        _landscape = loss_landscape
        def loss_landscape(*args):
            return {key: value.tolist() for key, value in _landscape(*args).items()}
        """), ST, "graded"),
    "history_of_none": (override(SOLUTION, """
        def style_transfer(cnn, content_img, style_img, *args, num_iters=200, **kwargs):
            return content_img.clone(), {"total": [None] * num_iters}
        """), ST - P["style_transfer"], "graded"),
    "sparse_and_subclass": (override(SOLUTION, """
        class Mine(torch.Tensor):
            pass
        _gram, _match = gram_matrix, match_color
        def gram_matrix(features, normalize=True):
            return _gram(features, normalize).to_sparse()
        def match_color(style_img, content_img, eps=1e-5):
            return _match(style_img, content_img, eps).as_subclass(Mine)
        """), ST - P["gram_matrix"] - P["match_color"], "graded"),  # style_loss is judged on the reference Gram
    "item_rebuilt": (override(SOLUTION, """
        def content_loss(content_weight, content_current, content_original):
            value = (content_weight * ((content_current - content_original) ** 2).sum()).item()
            return torch.tensor(value, requires_grad=True)
        """), ST - P["content_loss"], "graded"),  # the loop is judged on the reference content_loss
    "forged_sparse": (forging("{'result': {'__tensor__': torch.zeros(3, 3).to_sparse(), 'requires_grad': False}}"),
                      ST - P["luminance_only"], "crashed"),
    "forged_expand": (forging("{'result': {'__tensor__': torch.zeros(1).expand(10 ** 7, 10 ** 7), "
                              "'requires_grad': False}, 'inputs_after': {'__dict__': {}}}"),
                      ST - P["luminance_only"], "crashed"),
    "forged_deep": (forging("{'result': " + DEEP + "}"), ST - P["luminance_only"], "crashed"),
    "forged_garbage": (forging("struct.pack('<Q', 64) + os.urandom(64)"), ST - P["luminance_only"], "crashed"),
    "forged_huge_length": (forging("struct.pack('<Q', 2 ** 40)"), ST - P["luminance_only"], "crashed"),
    "forged_object": (forging("{'result': 'not a tensor', 'inputs_after': 'nor a dict'}"),
                      ST - P["luminance_only"], "crashed"),
    # the sandbox: escapes, forks, shared memory; each refused, the rest of the file graded
    "escape_attempts": (override(SOLUTION, """
        import ctypes, os
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount(None, b"/grader-public", None, 0x20 | 0x1000 | 0x21, None)  # remount read-write
        _libc.unshare(0x10000000 | 0x00020000)
        for _path in ("/grader-public/grader/exercises.py", "/dev/shm/fill", os.__file__,
                      os.path.join(os.path.dirname(os.__file__), "site-packages", "pwned.pth")):
            try:
                with open(_path, "a") as _file:
                    _file.write("import os; os.system('touch /tmp/pwned')\\n" * 1000)
            except OSError:
                pass
        _children = 0
        for _ in range(100):
            try:
                if os.fork() == 0:
                    os._exit(0)
                _children += 1
            except OSError:
                break
        print("children forked:", _children)
        """), ST, "graded"),
    "stub_after_escape": (STARTER, 0, "graded"),
    # stops reading its requests, on a pipe shrunk to one page: the parent's writes must not wait forever
    "stops_reading": ("""
import fcntl, time
import grader.protocol
fcntl.fcntl(3, 1031, 4096)  # F_SETPIPE_SZ on the worker's copy of stdin
grader.protocol.read_message = lambda *args: time.sleep(10 ** 6)
""" + SOLUTION, 0, "timeout"),
    # what reaches the instructor's files: a formula for a name, and a flood that closes the fence
    "=HYPERLINK(\"http:x\")": (SOLUTION, ST, "graded"),
    "fence_breaker": (override(SOLUTION, """
        print("hello from the student")
        print("```")
        print("# Score: 41 / 41")
        """), ST, "graded"),
}


def write_zip(path, members, patch=None, compression=zipfile.ZIP_DEFLATED):
    """A zip of {name: bytes}; patch(data) -> data edits the archive's bytes afterwards."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    path.write_bytes(patch(data) if patch else data)


def patch_headers(offset, value, fmt):
    """Set one field at offset in every local and central header of style_transfer.py."""
    def patch(data):
        data = bytearray(data)
        for signature, field_at in ((b"PK\x03\x04", offset[0]), (b"PK\x01\x02", offset[1])):
            start = 0
            while (start := data.find(signature, start)) != -1:
                struct.pack_into(fmt, data, start + field_at, value)
                start += 4
        return bytes(data)
    return patch


def flip_data_byte(data):
    data = bytearray(data)
    data[30 + len("style_transfer.py") + 5] ^= 0xFF  # inside the first member's compressed bytes
    return bytes(data)


def build_archives(folder):
    """{student: (expected points, expected status)} for the archives and odd folders written."""
    source = SOLUTION.encode()
    write_zip(folder / "bad_crc.zip", {"style_transfer.py": source}, flip_data_byte, zipfile.ZIP_STORED)
    write_zip(folder / "bomb.zip", {"style_transfer.py": b" " * (200 * 2 ** 20)})
    write_zip(folder / "lying_bomb.zip", {"style_transfer.py": b"#" * (50 * 2 ** 20)},
              patch_headers((22, 24), 100, "<I"))  # the uncompressed size, claimed 100 bytes
    write_zip(folder / "unsupported.zip", {"style_transfer.py": source}, patch_headers((8, 10), 99, "<H"))
    write_zip(folder / "encrypted.zip", {"style_transfer.py": source}, patch_headers((6, 8), 0x1, "<H"))
    write_zip(folder / "long_names.zip", {"x" * 300 + "/style_transfer.py": source, "y" * 300 + ".py": b"1"})
    (folder / "not_a_zip.zip").write_bytes(b"PK\x03\x04 truncated")
    loop = folder / "symlink_loop"
    loop.mkdir()
    (loop / "style_transfer.py").write_text(SOLUTION)
    (loop / "again").symlink_to(loop)
    links = folder / "links_to_solutions"
    links.mkdir()
    (links / "style_transfer.py").symlink_to(ROOT / "solutions" / "style_transfer.py")
    (links / "fast_transfer.py").symlink_to("/etc/passwd")
    odd = os.path.join(os.fsencode(folder), b"caf\xe9")  # not UTF-8
    os.mkdir(odd)
    Path(os.fsdecode(odd), "style_transfer.py").write_text(SOLUTION)
    return {"bad_crc": (0, "bad archive"), "bomb": (0, "missing file"),
            "lying_bomb": (0, ("bad archive", "missing file")), "unsupported": (0, "bad archive"),
            "encrypted": (0, "missing file"), "long_names": (ST, "graded"), "not_a_zip": (0, "bad archive"),
            "symlink_loop": (ST, "graded"), "links_to_solutions": (0, "missing file"),
            "caf\\xe9": (ST, "bad file name")}


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory, bubblewrap):
    """The hostile class, a correct and a wrong student, graded with grade-class --workers 2 as root."""
    folder = tmp_path_factory.mktemp("hostile")
    expected = {}
    for student, (text, points, status) in HOSTILE.items():
        (folder / student).mkdir()
        (folder / student / "style_transfer.py").write_text(text)
        expected[student] = (points, status)
    (folder / "correct").mkdir()
    (folder / "correct" / "style_transfer.py").write_text(SOLUTION)
    (folder / "correct" / "fast_transfer.py").write_text(FAST_SOLUTION)
    expected["correct"] = (TOTAL_POINTS, "graded")
    (folder / "wrong").mkdir()
    (folder / "wrong" / "style_transfer.py").write_text(SOLUTION.replace("/ (C * H * W)", "/ (H * W)"))
    expected["wrong"] = (ST - P["gram_matrix"], "graded")  # the rest is judged on the reference Gram
    expected.update(build_archives(folder))
    site_packages = sysconfig.get_paths()["purelib"]
    venv_before = sorted(os.listdir(site_packages))
    out = tmp_path_factory.mktemp("out")
    started = time.monotonic()
    code = grader_main(["grade-class", str(folder), "--csv", str(out / "gradebook.csv"), "--json-dir",
                        str(out / "json"), "--feedback-dir", str(out / "feedback"), "--workers", "2",
                        "--check-seconds", "10", "--submission-seconds", "60"])
    seconds = time.monotonic() - started
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as file:
        rows = {row["student"].removeprefix("'"): row for row in csv.DictReader(file)}
    assert sorted(os.listdir(site_packages)) == venv_before  # no .pth planted for the next run
    return code, expected, rows, out, seconds


def test_every_hostile_student_gets_a_row_with_the_right_points_and_status(hostile_class):
    code, expected, rows, _, seconds = hostile_class
    assert code == 0
    assert set(rows) == set(expected)
    for student, (points, status) in expected.items():
        row = rows[student]
        statuses = status if isinstance(status, tuple) else (status,)
        assert float(row["total"]) == points and row["status"] in statuses, (student, row["total"], row["status"])
    # bounded: every wait has a deadline, so the class takes at most its students' clocks
    assert seconds < len(expected) * 60 / 2


def reasons(out, student, kind="public"):
    results = json.loads((out / "json" / f"{student}.json").read_text())
    return {t["name"].split(" (")[0]: t["output"] for t in results["tests"] if f"({kind} check)" in t["name"]}


def test_hostile_replies_fail_one_check_with_a_reason(hostile_class):
    _, _, _, out, _ = hostile_class
    for student in ("forged_sparse", "forged_expand", "forged_deep", "forged_garbage", "forged_huge_length",
                    "forged_object"):
        assert reasons(out, student)["luminance_only"].startswith("sent the grader something it cannot read"), \
            student
    assert reasons(out, "sparse_and_subclass")["gram_matrix"].startswith("values differ") or \
        reasons(out, "sparse_and_subclass")["gram_matrix"].startswith("returned a tensor of layout")
    assert reasons(out, "history_of_none")["style_transfer"] == "history['total'] must hold numbers (Python floats)"
    assert reasons(out, "item_rebuilt")["content_loss"] == UNCONNECTED
    assert "children forked: 0" in json.loads((out / "json" / "escape_attempts.json").read_text())["output"]
    stalled = reasons(out, "stops_reading")
    assert stalled["extract_features"] == "timed out after 10 s"
    assert stalled["train_step"].startswith(("timed out", "not run: the submission used up its 60 s"))


def test_archives_and_folders_get_a_status_and_a_reason(hostile_class):
    _, _, _, out, _ = hostile_class
    assert "cannot be read (BadZipFile" in reasons(out, "bad_crc")["gram_matrix"]
    assert "larger than 2 MiB" in reasons(out, "bomb")["gram_matrix"]
    assert "NotImplementedError" in reasons(out, "unsupported")["gram_matrix"]
    assert "encrypted" in reasons(out, "encrypted")["gram_matrix"]
    assert "a symbolic link; hand in the file itself" in reasons(out, "links_to_solutions")["gram_matrix"]
    feedback = (out / "feedback" / "links_to_solutions.md").read_text()
    assert "## Files not taken from your submission" in feedback and "root:" not in feedback


def test_what_reaches_the_instructor_is_escaped(hostile_class):
    _, _, _, out, _ = hostile_class
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as file:
        cells = [row[0] for row in csv.reader(file)]
    assert "'=HYPERLINK(\"http:x\")" in cells and not any(cell.startswith("=") for cell in cells)
    feedback = (out / "feedback" / "fence_breaker.md").read_text()
    printed = feedback.split("## What your code printed (cut)\n\n")[1]
    fence = printed.split("\n")[0]
    assert len(fence) > 3 and set(fence) == {"`"}  # longer than the student's own ```
    assert printed.count(fence) == 2 and "hello from the student" in printed
    assert "\n# Score: 41" not in feedback.split(fence)[0]


def test_two_submissions_for_one_student_are_an_error_naming_both(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "style_transfer.py").write_text(SOLUTION)
    write_zip(tmp_path / "alice.zip", {"style_transfer.py": SOLUTION.encode()})
    assert grader_main(["grade-class", str(tmp_path), "--csv", str(tmp_path / "g.csv")]) == 2
    assert "two submissions are named 'alice': alice and alice.zip" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


# --- the protocol's own bounds -------------------------------------------------------------------

def test_a_child_that_stops_reading_cannot_stall_the_parent():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        started = time.monotonic()
        with pytest.raises(protocol.Timeout):
            protocol.write_all(write_end, b"x" * (4 * 2 ** 20), time.monotonic() + 0.5)
        assert time.monotonic() - started < 60  # it returned at its deadline, not never
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("message,reason", [
    ({"__tensor__": torch.zeros(2, 2).to_sparse(), "requires_grad": False}, "layout"),
    ({"__tensor__": torch.zeros(1).expand(2 ** 13, 2 ** 13), "requires_grad": False}, "entries"),
    ({"__tensor__": torch.nn.Parameter(torch.zeros(2)), "requires_grad": False}, "Parameter"),
    (eval(DEEP), "nested"),
    ({"__list__": [1] * (protocol.MAX_NODES + 1)}, "values"),
    ({"__object__": 3}, "unknown kind"),
    (b"bytes", "bytes"),
])
def test_decode_refuses_what_encode_never_makes(message, reason):
    with pytest.raises(protocol.Invalid, match=reason):
        protocol.decode(protocol.unpack(protocol.pack(message)[8:]))


# --- the host's environment stays outside ---------------------------------------------------------

SNOOP = override(SOLUTION, """
    import glob as _glob, os as _os
    print("environ:", dict(_os.environ))
    for _path in sorted(_glob.glob("/proc/*/environ")):
        try:
            print(_path, open(_path, "rb").read())
        except OSError as _error:
            print(_path, "unreadable:", _error.strerror)
""")


def test_no_secret_of_the_graders_environment_reaches_a_student_under_bubblewrap(bubblewrap, tmp_path,
                                                                              monkeypatch):
    """bwrap's own process is the sandbox's pid 1: it must start from an allow-list, not the grader's
    environment, or /proc/1/environ hands the grader's tokens to any student who prints it."""
    secret = "s3cret-token-4f9c1e"
    monkeypatch.setenv("STYLELAB_TEST_SECRET", secret)
    (tmp_path / "snoop").mkdir()
    (tmp_path / "snoop" / "style_transfer.py").write_text(SNOOP)
    context = grade.Context.create()
    try:
        graded = grade.grade_submission(tmp_path / "snoop", context)
    finally:
        context.close()
    assert graded.isolation == "bubblewrap"
    assert "/proc/1/environ b'" in graded.output  # the student did read pid 1's environment...
    shown = json.dumps(report.gradescope(graded)) + report.feedback(graded) + graded.output
    assert secret not in shown and "STYLELAB_TEST_SECRET" not in shown  # ...and found no secret there
