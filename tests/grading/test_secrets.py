"""The grader keeps the host's secrets: a student who prints os.environ and every /proc/*/environ it
can read finds no variable of the grader's, with and without bubblewrap, whether the grader runs as
root or not.

/proc/<pid>/environ shows the environment a process started with, so each grader here is a process of
its own, started with the secret in its environment (a variable set later, in pytest, would prove
nothing). Run as root, the tests give the grader a host on which every user can reach Python and the
kit (here the venv lives under /root, mode 0700): bubblewrap, run as root, shows this host as it is
with those paths bound where any uid can reach them, and `not root` runs the grader as uid 65534.
That bwrap's own process, a root process without capabilities, holds the secret too, as the shell or
agent that starts a grader does.
"""

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from grader.instructor import sandbox
from helpers import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="/proc/<pid>/environ, and the measures that hide it, are Linux's")

SECRET_NAME = "STYLELAB_TEST_SECRET"

# the student: prints its own environment, every other environment it can read, and which it cannot
SNOOP = textwrap.dedent("""
    import ctypes as _ctypes, glob as _glob, os as _os
    print("environ:", dict(_os.environ))
    _caps = open("/proc/self/status").read().split("CapEff:")[1].split()[0]
    _dumpable = _ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE: may a sibling read this process?
    print(f"child: uid {_os.getuid()} caps {_caps}; dumpable {_dumpable}")
    _closed = []
    for _path in sorted(_glob.glob("/proc/*/environ")):
        try:
            print(_path, open(_path, "rb").read())
        except OSError:
            _closed.append(_path.split("/")[2])
    print("unreadable:", " ".join(_closed), "")
""")

# the grader, in a process of its own: grades the snoop once per mode, writes results.json and feedback
GRADER = textwrap.dedent("""
    import json, os, sys, tempfile
    from pathlib import Path
    from grader.instructor import grade, sandbox
    from grader.instructor.report import write_outputs
    from grader.checks import load_reference
    from grader.exercises import EXERCISES

    work, modes = Path(sys.argv[1]), sys.argv[2:]
    # no hidden cases: the snoop defines no function, and its prints are what this is about
    context = grade.Context(load_reference(), {e: [] for e in EXERCISES}, sandbox.Limits(),
                            str(sandbox.public_grader(tempfile.mkdtemp())))
    report, reason = {"pid": os.getpid(), "uid": os.geteuid()}, sandbox.weaker_reason
    for mode in modes:
        sandbox.weaker_reason = reason if mode == "bubblewrap" else (lambda: "bubblewrap missing")
        if mode == "capless":  # as where uid 65534 cannot start this Python
            sandbox._nobody_can_start_python = lambda: False
        sandbox.weaker_user.cache_clear()
        graded = grade.grade_submission(work / "snoop", context)
        write_outputs(graded, work / mode / "results.json", work / mode / "feedback.md")
        report[mode] = {"isolation": graded.isolation, "user": sandbox.weaker_user(), "output": graded.output,
                        "bwrap": reason()}
    context.close()
    (work / "report.json").write_text(json.dumps(report))
""")

# run as root, becomes uid 65534 and then starts the grader: exec leaves it dumpable, as a user's grader is
DEMOTE = ("import os, sys; os.setgroups([]); os.setgid(65534); os.setuid(65534); "
          "os.execv(sys.argv[1], sys.argv[1:])")


@functools.lru_cache(maxsize=None)
def readable_host():
    """bwrap's arguments, run as root, for this host as it is but with Python, its packages and the kit
    where any uid can reach them, and a fresh /tmp; None where bwrap cannot do that here."""
    if os.geteuid() != 0 or not shutil.which("bwrap"):
        return None
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--bind", "/proc", "/proc",
            "--perms", "1777", "--tmpfs", "/tmp"]
    covers, dirs, binds = [], [], []
    for path in sorted({sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                        str(ROOT)}):
        ancestors = [*reversed(Path(path).parents)][1:] + [Path(path)]  # below / down to the path itself
        closed = next((k for k, a in enumerate(ancestors) if not os.stat(a).st_mode & 0o001), None)
        if closed is None:
            if Path("/tmp") in ancestors:  # the fresh /tmp would hide it (a clone or a venv there): bind it back
                binds.append(["--ro-bind", path, path])
            continue
        covers.append(["--tmpfs", str(ancestors[closed])])  # an empty folder of mode 0755 in its place...
        dirs += [["--perms", "0755", "--dir", str(a)] for a in ancestors[closed + 1:-1]]
        binds.append(["--ro-bind", path, path])  # ...holding only what the grader needs
    for group in covers + dirs + binds:
        if group not in args:
            args += group
    trial = subprocess.run(args + ["--", "true"], capture_output=True, timeout=60)
    return args if trial.returncode == 0 else None


@pytest.fixture
def reachable_tmp():
    """A fresh folder that any uid may enter. pytest's tmp_path lies in /tmp/pytest-of-root (mode 0700)
    under root, which a grader demoted to uid 65534 cannot pass where bwrap cannot show it the host."""
    folder = Path(tempfile.mkdtemp(prefix="stylelab-secrets-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def grade_snoop(folder, user, modes):
    """Grade the snoop in a grader process of its own, started with a fresh secret in its environment.

    Returns (secret, report, work): the report holds the grader's pid and, per mode, the isolation, the
    weaker path's user and what the student printed; work/<mode> holds results.json and feedback.md.
    """
    work = folder / "work"
    (work / "snoop").mkdir(parents=True)
    (work / "snoop" / "style_transfer.py").write_text(SNOOP)
    secret = secrets.token_hex(12)
    host, where, demote, uid = [], work, [], os.geteuid()
    if os.geteuid() != 0:
        if user == "root":
            pytest.skip("the grader can run as root only where its tests do")
    else:
        if readable_host() is not None:
            where = Path("/tmp/work")
            host = readable_host() + ["--bind", str(work), str(where), "--chdir", str(ROOT), "--"]
        elif user != "root" and not sandbox._nobody_can_start_python():
            pytest.skip("uid 65534 cannot start this Python here, and bwrap cannot show it a host where it can")
        if user != "root":
            sandbox._hand_over(work)  # the grader's own files, as a user's would be
            demote, uid = [sys.executable, "-c", DEMOTE], sandbox.SANDBOX_UID
    command = host + demote + [sys.executable, "-c", GRADER, str(where), *modes]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(where), "PYTHONPATH": str(ROOT), SECRET_NAME: secret}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    report = json.loads((work / "report.json").read_text())
    assert report["uid"] == uid
    return secret, report, work


def assert_kept(secret, report, work, mode):
    """The secret, and its name, in none of what the student or the instructor gets back."""
    shown = ((work / mode / "results.json").read_text() + (work / mode / "feedback.md").read_text()
             + report[mode]["output"])
    assert "child: uid" in shown and "unreadable:" in shown  # the student did run, and did look
    assert secret not in shown and SECRET_NAME not in shown


USERS = ["root", "not root"]


@pytest.mark.parametrize("user", USERS)
def test_under_bubblewrap_no_process_in_the_sandbox_holds_the_graders_environment(bubblewrap, reachable_tmp,
                                                                                   user):
    secret, report, work = grade_snoop(reachable_tmp, user, ["bubblewrap"])
    if user != "root" and report["bubblewrap"]["bwrap"]:  # this kernel keeps user namespaces from users
        pytest.skip(f"as uid {report['uid']}: {report['bubblewrap']['bwrap']}")
    assert report["bubblewrap"]["isolation"] == "bubblewrap"
    printed = report["bubblewrap"]["output"]
    # bwrap's own process, pid 1 in the sandbox, was read: it holds bwrap's allow-list and nothing else
    assert "/proc/1/environ b'PATH=/usr/bin:/bin\\x00'" in printed
    assert f"child: uid {sandbox.SANDBOX_UID} caps 0000000000000000; dumpable 0" in printed
    assert_kept(secret, report, work, "bubblewrap")


@pytest.mark.parametrize("user", USERS)
def test_without_bubblewrap_the_graders_environment_stays_out_of_reach(reachable_tmp, user):
    """The child sees the host's /proc: the grader's pid among every other, and the grader's environment
    holds the secret. Run by a user, the grader is non-dumpable; run by root, the child is uid 65534 (or
    root without capabilities, where that uid cannot start Python)."""
    modes = ["weaker", "capless"] if user == "root" and sys.platform.startswith("linux") else ["weaker"]
    secret, report, work = grade_snoop(reachable_tmp, user, modes)
    expected = {"weaker": report["weaker"]["user"], "capless": sandbox.CAPLESS_ROOT}
    if user != "root":
        assert report["weaker"]["user"] == ""  # the child is the grader's own user...
    else:  # ...or, from root, never root with its capabilities
        assert report["weaker"]["user"] in (sandbox.NOBODY, sandbox.CAPLESS_ROOT)
        if readable_host() is not None:  # where uid 65534 can start Python, as on this readable host: that uid
            assert report["weaker"]["user"] == sandbox.NOBODY
    for mode in modes:
        assert report[mode]["isolation"] == "weaker" and report[mode]["user"] == expected[mode]
        printed = report[mode]["output"]
        uid = {"": report["uid"], sandbox.NOBODY: sandbox.SANDBOX_UID, sandbox.CAPLESS_ROOT: 0}[expected[mode]]
        assert f"child: uid {uid} caps 0000000000000000; dumpable 0" in printed  # nor can a sibling read it
        unreadable = printed.split("unreadable:")[1].split("\n")[0].split()
        assert str(report["pid"]) in unreadable  # the grader's environment is there, and closed to the student
        assert_kept(secret, report, work, mode)
