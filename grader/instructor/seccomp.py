"""A seccomp filter for the grading child: threads yes; new processes, namespaces and mounts no.

bubblewrap installs it (--seccomp FD) just before it starts the worker, so it
binds the student's code and everything it starts. It is the sandbox's
process limit, and it holds where RLIMIT_NPROC does not (root is exempt from
it): torch's threads are clone() calls with CLONE_THREAD and pass; fork(),
vfork() and clone() without CLONE_THREAD fail with EAGAIN, as they would at
a process limit of one. It also refuses, with EPERM, what a sandbox escape
starts from: unshare, setns, mount and the new mount API, pivot_root, chroot,
ptrace, bpf, perf_event_open and the kernel keyring. clone3() answers ENOSYS,
which makes glibc fall back to clone(), whose flags a filter can read.

The program is classic BPF over struct seccomp_data, written out here so that
no library is needed; x86-64 and AArch64 are covered, and filter() returns
None elsewhere (the sandbox then says the process limit is missing).
"""

import platform
import struct

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
NR, ARCH, ARG0 = 0, 4, 16

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_BIT = 0x40000000  # x86-64's x32 ABI numbers: a second way in to every call
CLONE_THREAD = 0x00010000
EPERM, EAGAIN, ENOSYS = 1, 11, 38

# syscall numbers per architecture; calls that one architecture lacks are left out
SYSCALLS = {
    "x86_64": {"fork": 57, "vfork": 58, "clone": 56, "ptrace": 101, "chroot": 161, "mount": 165,
               "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308, "perf_event_open": 298,
               "bpf": 321, "userfaultfd": 323, "add_key": 248, "request_key": 249, "keyctl": 250},
    "aarch64": {"clone": 220, "ptrace": 117, "chroot": 51, "mount": 40, "umount2": 39, "pivot_root": 41,
                "unshare": 97, "setns": 268, "perf_event_open": 241, "bpf": 280, "userfaultfd": 282,
                "add_key": 217, "request_key": 218, "keyctl": 219},
}
# the same number everywhere since Linux 5.3
COMMON = {"clone3": 435, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
          "fsmount": 432, "fspick": 433, "mount_setattr": 442}

DENIED = ("ptrace", "chroot", "mount", "umount2", "pivot_root", "unshare", "setns", "perf_event_open", "bpf",
          "userfaultfd", "add_key", "request_key", "keyctl", "open_tree", "move_mount", "fsopen", "fsconfig",
          "fsmount", "fspick", "mount_setattr")

# classic BPF opcodes
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW, ERRNO, KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000


def _insn(code, k, jt=0, jf=0):
    return struct.pack("=HBBI", code, jt, jf, k)


def filter(machine=None):
    """The filter as bytes for bwrap's --seccomp, or None on an architecture it does not cover."""
    machine = machine or platform.machine()
    if machine not in AUDIT_ARCH:
        return None
    numbers = {**SYSCALLS[machine], **COMMON}
    errno = {numbers[name]: EPERM for name in DENIED if name in numbers}
    errno.update({numbers[name]: EAGAIN for name in ("fork", "vfork") if name in numbers})
    errno[numbers["clone3"]] = ENOSYS
    program = [_insn(LD_W_ABS, ARCH),
               _insn(JEQ_K, AUDIT_ARCH[machine], 1, 0),  # a foreign ABI (i386 on x86-64): no way in
               _insn(RET_K, KILL_PROCESS),
               _insn(LD_W_ABS, NR)]
    if machine == "x86_64":
        program += [_insn(JGE_K, X32_BIT, 0, 1), _insn(RET_K, ERRNO | EPERM)]
    clone = numbers["clone"]
    # clone: a thread (CLONE_THREAD in the flags, args[0]) may start, a process may not
    program += [_insn(JEQ_K, clone, 0, 4),
                _insn(LD_W_ABS, ARG0),
                _insn(JSET_K, CLONE_THREAD, 0, 1),
                _insn(RET_K, ALLOW),
                _insn(RET_K, ERRNO | EAGAIN)]
    for number, code in errno.items():
        program += [_insn(JEQ_K, number, 0, 1), _insn(RET_K, ERRNO | code)]
    program.append(_insn(RET_K, ALLOW))
    return b"".join(program)
