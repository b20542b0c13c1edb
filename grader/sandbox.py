"""Run a student's code in a sandboxed child process (instructors only).

Student code never runs in the grader's process. Each submission gets one
child (grader/worker.py), which imports torch once and then answers one request
per check, so torch's start-up is paid per submission, not per check. The child:

- runs under bubblewrap where it is installed (Linux): a read-only view of
  Python, the installed packages, the public grader modules and the student's
  own folder, a private 64 MiB /tmp, no network, nothing of the kit, so neither
  solutions/ nor the reference data can be read or written;
- elsewhere (macOS, Windows, no bwrap) runs in a temporary directory with the
  same resource limits, and the grade says that isolation is weaker;
- has limits on CPU time, address space and file size, a wall-clock timeout per
  check enforced by the parent, and its output drained and capped.
"""

import io
import os
import resource
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from grader import worker

PUBLIC_MODULES = ("__init__.py", "checks.py", "points.py", "worker.py")


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
    """The child died (os._exit, a signal, a resource limit)."""


def bubblewrap():
    """The bwrap executable, or None where the stronger sandbox is missing."""
    return shutil.which("bwrap")


def public_grader(folder):
    """Copy the public grader modules (and nothing else of the kit) into folder/grader."""
    target = Path(folder) / "grader"
    target.mkdir(parents=True, exist_ok=True)
    for name in PUBLIC_MODULES:
        shutil.copy(Path(__file__).with_name(name), target / name)
    return Path(folder)


def _limit(limits):
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _command(student_dir, public_dir, scratch, files):
    """The child's command line: bwrap'd where possible, else plain Python in scratch."""
    python = [sys.executable, "-m", "grader.worker"]
    bwrap = bubblewrap()
    if bwrap is None:
        shutil.copytree(student_dir, Path(scratch) / "submission")
        env = {"PYTHONPATH": str(public_dir), "HOME": str(scratch), "OMP_NUM_THREADS": "1",
               "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
        return python + [str(Path(scratch) / "submission"), *files], env, "weaker"
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
            "--size", str(64 * 2 ** 20), "--tmpfs", "/tmp"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    for prefix in sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    args += ["--ro-bind", str(public_dir), "/grader-public", "--ro-bind", str(student_dir), "/submission",
             "--chdir", "/tmp", "--setenv", "PYTHONPATH", "/grader-public", "--setenv", "HOME", "/tmp",
             "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "PATH", "/usr/bin:/bin",
             "--setenv", "PYTHONNOUSERSITE", "1", "--"]
    return args + python + ["/submission", *files], None, "bubblewrap"


class Child:
    """One sandboxed worker for one submission's files (by default all of them)."""

    def __init__(self, student_dir, public_dir, limits=Limits(), files=None):
        from grader.points import FILES

        self.limits, self.files = limits, tuple(files or FILES)
        self.scratch = tempfile.mkdtemp(prefix="stylelab-child-")
        command, env, self.isolation = _command(student_dir, public_dir, self.scratch, self.files)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=self.scratch, env=env,
                                        preexec_fn=_limit(limits), start_new_session=True)
        self.output, self.output_total = bytearray(), 0
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        self.hello = self._reply(limits.start_seconds)

    def _read_output(self):
        for chunk in iter(lambda: self.process.stderr.read(65536), b""):
            self.output_total += len(chunk)
            room = self.limits.output_bytes - len(self.output)
            if room > 0:
                self.output += chunk[:room]

    def _read_exact(self, size, deadline):
        data = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while len(data) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise Timeout
                chunk = os.read(self.process.stdout.fileno(), size - len(data))
                if not chunk:
                    self.process.wait()
                    raise Crashed(self._death())
                data += chunk
        return bytes(data)

    def _death(self):
        code = self.process.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return {"SIGXCPU": "ran out of CPU time", "SIGKILL": "was killed (memory or time limit)",
                    "SIGXFSZ": "wrote a file over the size limit"}.get(name, f"died of {name}")
        return f"exited with status {code} (sys.exit or os._exit?)"

    def _reply(self, seconds):
        deadline = time.monotonic() + seconds
        (size,) = struct.unpack("<Q", self._read_exact(8, deadline))
        if size > 2 ** 30:
            raise Crashed("sent a reply too large to read")
        return torch.load(io.BytesIO(self._read_exact(size, deadline)), weights_only=True)

    def run(self, exercise, inputs, seconds):
        """Send one check's inputs; return the child's reply, decoded."""
        message = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in inputs.items()}
        try:
            worker.send(self.process.stdin, {"exercise": exercise, "inputs": message})
        except (BrokenPipeError, OSError):
            self.process.wait()
            raise Crashed(self._death()) from None
        reply = self._reply(seconds)
        reply["inputs_after"] = worker.decode(reply.get("inputs_after", {}))
        if "result" in reply:
            reply["result"] = worker.decode(reply["result"])
        return reply

    def printed(self):
        text = self.output.decode("utf-8", errors="replace")
        if self.output_total > len(self.output):
            text += f"\n[... {self.output_total - len(self.output)} more bytes of output cut]"
        return text

    def close(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._drain.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
