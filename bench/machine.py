"""The machine a benchmark ran on, in one line: every speed figure is quoted with it.

Speed ratios turn around from one CPU to the next (AVX-512 or not, native
bfloat16 or not), so each bench prints this before its figures.
"""

import os
import platform
import re

# the instruction sets that decide which kernels oneDNN and onnxruntime pick
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu():
    """(model name, [the FLAGS this CPU has]) from /proc/cpuinfo; the platform's name elsewhere."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return (model.group(1).strip() if model else platform.machine()), [f for f in FLAGS if f in have]


def describe():
    """'CPU: AMD EPYC (avx2 avx512f avx512_bf16), 2 cores; torch 2.14.1, oneDNN v3.12.0, 2 threads'."""
    import torch

    model, flags = cpu()
    onednn = re.search(r"MKL-DNN (v[\d.]+)", torch.__config__.show())
    return (f"CPU: {model} ({' '.join(flags) or 'none of ' + ', '.join(FLAGS)}), {os.cpu_count()} cores; "
            f"torch {torch.__version__}, oneDNN {onednn.group(1) if onednn else 'absent'}"
            f"{'' if torch.backends.mkldnn.enabled else ' (off)'}, {torch.get_num_threads()} threads")
