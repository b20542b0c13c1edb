"""The machine a benchmark ran on, in one line: every speed figure is quoted with it.

Speed ratios turn around from one CPU to the next (AVX-512 or not, native
bfloat16 or not), so each bench prints this before its figures.
"""

import os
import re

from stylelab.speed import FLAGS, cpu


def describe():
    """'CPU: AMD EPYC (avx2 avx512f avx512_bf16), 2 cores; torch 2.14.1, oneDNN v3.12.0, 2 threads'."""
    import torch

    model, flags = cpu()
    onednn = re.search(r"MKL-DNN (v[\d.]+)", torch.__config__.show())
    return (f"CPU: {model} ({' '.join(flags) or 'none of ' + ', '.join(FLAGS)}), {os.cpu_count()} cores; "
            f"torch {torch.__version__}, oneDNN {onednn.group(1) if onednn else 'absent'}"
            f"{'' if torch.backends.mkldnn.enabled else ' (off)'}, {torch.get_num_threads()} threads")
