"""Run a student's code in a sandboxed child process (instructors only).

Student code never runs in the grader's process. Each submission gets one
child (grader/worker.py), which imports torch once and then answers one request
per check, so torch's start-up is paid per submission, not per check. The child:

- starts from an allow-list environment (child_environment: what Python,
  torch and the worker need), never from the grader's, whose variables hold
  tokens and passwords on CI runners and instructors' laptops;
- runs under bubblewrap where it is installed (Linux) as an unprivileged uid
  (65534) in a user namespace, with every capability dropped, also when the
  grader runs as root (as on Gradescope, CI and most servers), so it cannot
  remount what it sees; it sees Python, the installed packages, the public
  grader modules and the student's own folder, all read-only, a read-only
  minimal /dev (no shared memory), a private 64 MiB /tmp, its own pid
  namespace, no network and nothing of the kit, so neither solutions/ nor the
  reference data can be read or written, and nothing it writes outlives it;
  bubblewrap itself, whose process the child can see as pid 1, starts from an
  allow-list environment too, so no token of the grader's reaches the child
  (--as-pid-1 would remove that process, but a namespace's pid 1 ignores
  every signal it has no handler for, SIGXCPU at the CPU limit included);
- runs under a seccomp filter (grader/instructor/seccomp.py) that lets it start threads
  but no processes, and refuses unshare, mount, ptrace and their kin;
- elsewhere (macOS, Windows, no bwrap) runs in a temporary directory with the
  same resource limits (and, on Linux, the same seccomp filter), and the
  grade says that isolation is weaker. It sees the host's /proc there, so
  on Linux the grader and each child make themselves non-dumpable, which
  puts their /proc/<pid> files (environment, memory) out of reach of their
  user's other processes, and a grader run as root hands the child uid
  65534, or root without capabilities where that uid cannot start Python
  (weaker_user): neither can read a root process's environment. What this
  path still cannot hide, where the grader does not run as root: the other
  processes of the grader's user, such as the shell or CI agent that started
  it, whose environments hold the same variables (start the grader with
  `env -i`, or install bubblewrap), and on macOS every process of that user;
- has limits on CPU time, address space and file size, a deadline on every
  read and write the parent makes to it, and its output drained and capped.

Everything it sends back is decoded as hostile data (grader/protocol.py).
"""

import ctypes
import functools
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader import protocol
from grader.instructor import seccomp
from grader.exercises import FILES

GRADER = Path(__file__).resolve().parents[1]  # the public grader, which the release ships
PUBLIC_MODULES = ("__init__.py", "exercises.py", "protocol.py", "worker.py")
SANDBOX_UID = 65534  # nobody: the child's uid inside its user namespace, and outside it for a root grader
SCRATCH_BYTES = 64 * 2 ** 20  # the child's private /tmp, in memory
BWRAP_ENVIRONMENT = {"PATH": "/usr/bin:/bin"}  # all bwrap itself is started with (--clearenv sets the child's)
NOBODY = f"an unprivileged uid ({SANDBOX_UID})"  # weaker_user()'s answers, as weaker_description words them
CAPLESS_ROOT = "root without capabilities"
PR_SET_DUMPABLE, PR_CAPBSET_DROP = 4, 24


@dataclass(frozen=True)
class Limits:
    start_seconds: float = 60.0  # importing torch and the student's module
    check_seconds: float = 20.0  # wall clock for one check...
    loop_seconds: float = 60.0  # ...and for the style_transfer loop
    submission_seconds: float = 300.0  # wall clock for all of a submission's checks
    cpu_seconds: int = 600  # CPU time for the whole submission
    memory_bytes: int = 6 * 2 ** 30  # address space; torch alone maps about 3.3 GiB
    output_bytes: int = 20_000  # what is kept of the student's prints
    file_bytes: int = 64 * 2 ** 20  # largest file the child may write


class Timeout(Exception):
    """The child did not answer in time."""


class Crashed(Exception):
    """The child died (os._exit, a signal, a resource limit) or closed its pipe."""


def bubblewrap():
    """The bwrap executable where it can build the sandbox here, else None (see weaker_reason)."""
    return None if weaker_reason() else shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def weaker_reason():
    """Why the child runs without bubblewrap (one line), or "" when it runs with it.

    bwrap may be installed and still unable to sandbox: in a container that
    forbids user namespaces or a fresh /proc, say. A trial run finds out once.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap missing"
    with tempfile.TemporaryDirectory(prefix="stylelab-probe-") as empty:
        try:
            run = subprocess.run(_bwrap(bwrap, empty, empty, None) + [sys.executable, "-S", "-c", "pass"],
                                 capture_output=True, text=True, timeout=60, env=BWRAP_ENVIRONMENT)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap cannot run here ({type(error).__name__})"
    if run.returncode:
        lines = run.stderr.strip().splitlines() or [f"exit status {run.returncode}"]
        return f"bubblewrap cannot sandbox here ({lines[-1][:120]})"
    return ""


def weaker_description():
    """What protects the grader when the child runs without bubblewrap, and why it does."""
    measures = ["resource limits"]
    if platform.system() == "Linux" and seccomp.filter():
        measures.append("a seccomp filter")
    measures.append("a temporary directory")
    if weaker_user():
        measures.append(weaker_user())
    return f"{weaker_reason()}: {', '.join(measures[:-1])} and {measures[-1]} only"


@functools.lru_cache(maxsize=None)
def weaker_user():
    """Who the child runs as without bubblewrap: NOBODY, CAPLESS_ROOT, or "" (the grader's own user).

    A grader run as root hands the child uid and gid 65534, which can read no
    root process's environment and write none of root's files. That uid must
    be able to start this Python and find torch, which a venv under /root
    (mode 0700) is not. Then, on Linux, the child keeps uid 0 but takes gid
    65534 and drops every capability for good (_drop_capabilities): the
    environments of the grader and of every root process stay hidden, but
    root's files and processes do not (it can write the one and signal the
    other: install bubblewrap, or move Python where uid 65534 can read it).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return ""
    if _nobody_can_start_python():
        return NOBODY
    return CAPLESS_ROOT if platform.system() == "Linux" else ""


def _nobody_can_start_python():
    """Whether uid 65534 can start this Python and find torch: one trial run."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    try:
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60, cwd="/",
                             env=child_environment("", "/"), preexec_fn=_become_nobody)
    except (OSError, subprocess.SubprocessError):  # not even the interpreter: exec failed with EACCES
        return False
    return run.returncode == 0


def child_environment(pythonpath, home):
    """The child's whole environment: an allow-list of what Python, torch and the worker need."""
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), "HOME": str(home), "OMP_NUM_THREADS": "1",
            "PYTHONNOUSERSITE": "1"}


def public_grader(folder):
    """Copy the public grader modules (and nothing else of the kit) into folder/grader, readable by all.

    They are public (the release ships them), and a child that runs as uid
    65534 must read them; mkdtemp makes its folders for their owner only.
    """
    target = Path(folder) / "grader"
    target.mkdir(parents=True, exist_ok=True)
    for name in PUBLIC_MODULES:
        shutil.copy(GRADER / name, target / name)
        (target / name).chmod(0o644)
    for path in (Path(folder), target):
        path.chmod(0o755)
    return Path(folder)


def _limit(limits, seccomp_filter=None, user=""):
    """The child's preexec: resource limits, the user it runs as (weaker_user), and the seccomp filter where
    bwrap does not install it."""
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if user == NOBODY:
            _become_nobody()
        elif user == CAPLESS_ROOT:
            _drop_capabilities()
        if seccomp_filter is not None:
            _install_seccomp(seccomp_filter)
    return apply


def _become_nobody():
    """uid and gid 65534, no other group: changing every uid from root also clears every capability."""
    os.setgroups([])
    os.setgid(SANDBOX_UID)
    os.setuid(SANDBOX_UID)


def _drop_capabilities():
    """Keep uid 0, for root's files, but gid 65534 and no capability: none now, and, with the bounding set
    emptied, none that exec gives back.

    The kernel lets a process read another's /proc/<pid>/environ if both
    have the same uids and gids and it holds every capability the other
    holds, or if it has CAP_SYS_PTRACE: gid 65534 fails the first for every
    root process, even one that holds no capability either.
    """
    os.setgroups([])
    os.setgid(SANDBOX_UID)
    libc = ctypes.CDLL(None, use_errno=True)
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    empty = (ctypes.c_uint32 * 6)()  # effective, permitted and inheritable sets, two words each
    # the loop ends with EINVAL past the kernel's last capability; EPERM means the set is still full
    if ctypes.get_errno() != 22 or cap == 0 or libc.capset(header, empty):
        os._exit(121)  # never run student code as root with capabilities


def _hand_over(folder):
    """Give uid 65534 a folder and all in it: the child's scratch folder and copy of the submission, which
    mkdtemp made for root alone."""
    os.lchown(folder, SANDBOX_UID, SANDBOX_UID)
    for top, dirs, names in os.walk(folder):
        for name in dirs + names:
            os.lchown(os.path.join(top, name), SANDBOX_UID, SANDBOX_UID)


def _hide_the_grader():
    """Make the grader non-dumpable (Linux): its /proc/<pid> files then belong to root, so a child of the same
    uid cannot read its environment or memory. Exec resets it: each child makes itself non-dumpable in turn
    (worker._private)."""
    if platform.system() == "Linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def _install_seccomp(program):
    """prctl(PR_SET_SECCOMP) with the filter's bytes, after PR_SET_NO_NEW_PRIVS (Linux only)."""
    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0):
        os._exit(121)  # never run student code without the filter that was asked for


def _command(student_dir, public_dir, scratch, files, filter_fd):
    """The child's command line: bwrap'd where possible, else plain Python in scratch.

    Returns (command, environment, isolation).
    """
    python = [sys.executable, "-m", "grader.worker"]
    bwrap = bubblewrap()
    if bwrap is None:
        submission = Path(scratch) / "submission"
        shutil.copytree(student_dir, submission)
        if weaker_user() == NOBODY:
            _hand_over(scratch)
        return python + [str(submission), *files], child_environment(public_dir, scratch), "weaker"
    # bwrap's own process stays in the sandbox as its pid 1, and the child can read /proc/1/environ:
    # it starts from this allow-list, never from the grader's environment and its tokens
    return (_bwrap(bwrap, student_dir, public_dir, filter_fd) + python + ["/submission", *files],
            BWRAP_ENVIRONMENT, "bubblewrap")


def _bwrap(bwrap, student_dir, public_dir, filter_fd):
    """bwrap's arguments, up to and including the "--" before the command."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc",
            # run by root, the child's uid maps to root's outside: root-owned files it can see are its
            # own, and /proc/sys would let it set kernel.core_pattern, a root shell on the host
            "--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
            "--dev", "/dev", "--remount-ro", "/dev",
            "--perms", "1777", "--size", str(SCRATCH_BYTES), "--tmpfs", "/tmp"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    for prefix in sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    args += ["--ro-bind", str(public_dir), "/grader-public", "--ro-bind", str(student_dir), "/submission",
             "--chdir", "/tmp"]
    for name, value in child_environment("/grader-public", "/tmp").items():
        args += ["--setenv", name, value]
    if filter_fd is not None:
        args += ["--seccomp", str(filter_fd)]
    return args + ["--"]


class Child:
    """One sandboxed worker for one submission's files (by default all of them).

    Every read and write has a deadline; a child that overruns one is killed
    by close(). What it sends is decoded by grader/protocol.py, which raises
    protocol.Invalid for anything that is not a reply.
    """

    def __init__(self, student_dir, public_dir, limits=Limits(), files=None, deadline=math.inf):
        self.limits, self.files = limits, tuple(files or FILES)
        self.scratch = tempfile.mkdtemp(prefix="stylelab-child-")
        program = seccomp.filter() if platform.system() == "Linux" else None
        weaker = bubblewrap() is None
        filter_fd = None
        if program is not None and not weaker:
            filter_path = Path(self.scratch) / "seccomp.bpf"
            filter_path.write_bytes(program)
            filter_fd = os.open(filter_path, os.O_RDONLY)
        if weaker:
            _hide_the_grader()  # the child sees the host's /proc, the grader's pid with it
        try:
            command, env, self.isolation = _command(student_dir, public_dir, self.scratch, self.files, filter_fd)
            preexec = _limit(limits, program, weaker_user()) if weaker else _limit(limits)
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.scratch,
                env=env, preexec_fn=preexec, start_new_session=True,
                pass_fds=() if filter_fd is None else (filter_fd,))
        finally:
            if filter_fd is not None:
                os.close(filter_fd)
        self.sends, self.replies = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(self.sends, False)
        self.output, self.output_total = bytearray(), 0
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        try:
            started = min(time.monotonic() + limits.start_seconds, deadline)
            self.hello = protocol.decode_hello(self._receive(started), self.files)
        except BaseException as error:
            self.close()
            error.printed = self.printed()  # why it died at start, for the student's feedback
            raise

    def _read_output(self):
        for chunk in iter(lambda: self.process.stderr.read(65536), b""):
            self.output_total += len(chunk)
            room = self.limits.output_bytes - len(self.output)
            if room > 0:
                self.output += chunk[:room]

    def _death(self):
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "closed its pipe to the grader"
        if code < 0:
            name = signal.Signals(-code).name
            return {"SIGXCPU": "ran out of CPU time", "SIGKILL": "was killed (memory or time limit)",
                    "SIGXFSZ": "wrote a file over the size limit", "SIGSYS": "made a forbidden system call"
                    }.get(name, f"died of {name}")
        return f"exited with status {code} (sys.exit or os._exit?)"

    def _receive(self, deadline):
        try:
            return protocol.read_message(self.replies, deadline)
        except protocol.Timeout:
            raise Timeout from None
        except protocol.Closed:
            raise Crashed(self._death()) from None

    def run(self, exercise, inputs, deadline, needs=None):
        """Send one check's inputs; return the child's reply, decoded, or raise if none comes by deadline.

        needs: the source of a module holding the reference versions of the
        exercises this one builds on, for the child to call them instead of the
        student's (grade.Context.needs says why it is safe to send).
        """
        message = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in inputs.items()}
        request = {"exercise": exercise, "inputs": message}
        if needs:
            request["needs"] = needs
        try:
            protocol.write_all(self.sends, protocol.pack(request), deadline)
        except protocol.Timeout:
            raise Timeout from None
        except protocol.Closed:
            raise Crashed(self._death()) from None
        return protocol.decode_reply(self._receive(deadline))

    def printed(self):
        text = self.output.decode("utf-8", errors="replace")
        if self.output_total > len(self.output):
            text += f"\n[... {self.output_total - len(self.output)} more bytes of output cut]"
        return text

    def close(self):
        """Kill the child (its whole session) and wait until its output is drained."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._drain.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.scratch, ignore_errors=True)
