"""How the kit's networks run fastest on this CPU: measured once, then remembered.

Two choices decide the speed of a network's convolutions on a CPU, and which
way wins turns around from one CPU to the next:

- precision: bfloat16 convolutions run 1.5-4x faster than float32 where the
  CPU has bfloat16 instructions (AVX512_BF16, AMX), and slower where oneDNN
  has to emulate them, so bfloat16 is tried only where they exist;
- layout: channels-last feature maps suit oneDNN's kernels on most CPUs, but
  not on every one; students' code runs contiguous either way, since their
  `features.view(N, C, H * W)` needs it.

`choice(kind)` times each candidate on first use (a few seconds) and caches
the winner per CPU model, flags, torch version and thread count in
cache_path(). The kinds: "reference", the engine's VGG-19 forward and backward
pass with the reference solutions; "student", the same with a student's code;
"fast", the fast network's forward pass (stylelab.fast). The environment
overrides the probe: STYLELAB_PRECISION=float32|bfloat16 and
STYLELAB_CHANNELS_LAST=0|1. Threads are torch's own default, one per core.
"""

import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

import torch

# the instruction sets that decide which kernels oneDNN picks
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
PROBE_SIDE = 160  # px: relu5_1 still 10x10; one float32 pass takes about 0.2 s on two cores
PROBE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")  # the VGG-19 preset's
FAST_PROBE = (384, 512)  # (H, W): the fast network's forward pass takes about 0.05 s on two cores


def cache_path():
    return Path(os.environ.get("STYLELAB_CACHE", Path.home() / ".cache" / "stylelab")) / "speed.json"


def cpu():
    """(model name, [the FLAGS this CPU has]) from /proc/cpuinfo; the platform's name elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return (model.group(1).strip() if model else platform.machine()), [f for f in FLAGS if f in have]


def native_bfloat16():
    """Whether this CPU computes bfloat16 in hardware (and oneDNN, which runs it, is on)."""
    return torch.backends.mkldnn.enabled and any(flag in cpu()[1] for flag in NATIVE_BF16)


KINDS = ("reference", "student", "fast")


def _key(kind):
    model, flags = cpu()
    return (f"{model} | {' '.join(flags)} | torch {torch.__version__} | oneDNN "
            f"{'on' if torch.backends.mkldnn.enabled else 'off'} | {torch.get_num_threads()} threads | {kind}")


def candidates(kind):
    """The (precision, channels_last) pairs worth timing here for kind."""
    precisions = ["float32"] + (["bfloat16"] if native_bfloat16() else [])
    layouts = {"reference": [True, False], "student": [False], "fast": [True]}[kind]
    return [(precision, layout) for precision in precisions for layout in layouts]


def seconds_per_pass(kind, precision, channels_last, repeats=3):
    """The median time of one pass of kind's network: VGG-19 to relu5_1, forward and backward, on a
    PROBE_SIDE picture; or the fast network's forward pass on a FAST_PROBE picture."""
    one_pass = (_fast_pass if kind == "fast" else _vgg_pass)(precision, channels_last)
    one_pass()  # oneDNN picks and caches its kernels on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _vgg_pass(precision, channels_last):
    from stylelab.backbones import load_backbone

    net = load_backbone("vgg19", layers=PROBE_LAYERS, channels_last=channels_last, padding="replicate",
                        precision=precision)
    taps = [net.index(layer) for layer in PROBE_LAYERS]
    picture = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE)
    if channels_last:
        picture = picture.contiguous(memory_format=torch.channels_last)

    def one_pass():
        x = picture.clone().requires_grad_()
        feats, out = [], x
        for module in net.cnn:
            out = module(out)
            feats.append(out)
        sum(feats[k].square().mean() for k in taps).backward()

    return one_pass


def _fast_pass(precision, channels_last):
    from stylelab.fast import TransformerNet

    net = TransformerNet(1).eval().requires_grad_(False).to(getattr(torch, precision))  # untrained: as fast
    if channels_last:
        net.to(memory_format=torch.channels_last)
    picture = torch.rand(1, 3, *FAST_PROBE, dtype=getattr(torch, precision))
    mix = torch.ones(1, 1, dtype=picture.dtype)

    def one_pass():
        with torch.inference_mode():
            net(picture, mix)

    return one_pass


def probe(kind):
    """{(precision, channels_last): seconds} for every candidate of kind, timed in turns."""
    pairs = candidates(kind)
    times = {pair: [] for pair in pairs}
    for _ in range(2):  # alternating, so a burst of other load hits every candidate alike
        for pair in pairs:
            times[pair].append(seconds_per_pass(kind, *pair))
    return {pair: min(values) for pair, values in times.items()}


def choice(kind="reference"):
    """{"precision": ..., "channels_last": ...} for kind (KINDS) on this machine: the environment's
    overrides, else the cached probe, else a probe now (cached). Students' code is never channels-last."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    chosen = _overrides(kind)
    if len(chosen) < 2:
        measured = _cached(kind)
        if measured is None:
            timed = probe(kind)
            precision, channels_last = min(timed, key=timed.get)
            measured = {"precision": precision, "channels_last": channels_last,
                        "seconds": {f"{p} {'channels-last' if c else 'contiguous'}": round(t, 4)
                                    for (p, c), t in timed.items()}}
            _remember(kind, measured)
        chosen = {"precision": measured["precision"], "channels_last": measured["channels_last"], **chosen}
    chosen["channels_last"] = chosen["channels_last"] and kind != "student"
    return chosen


def _overrides(kind):
    chosen = {}
    precision, layout = os.environ.get("STYLELAB_PRECISION"), os.environ.get("STYLELAB_CHANNELS_LAST")
    if precision:
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"STYLELAB_PRECISION={precision!r}: give float32 or bfloat16, or unset it")
        chosen["precision"] = precision
    if layout:
        if layout not in ("0", "1"):
            raise ValueError(f"STYLELAB_CHANNELS_LAST={layout!r}: give 1 (channels-last) or 0 (contiguous)")
        chosen["channels_last"] = layout == "1"
    elif kind != "reference":
        chosen["channels_last"] = kind == "fast"
    return chosen


def _cached(kind):
    try:
        return json.loads(cache_path().read_text()).get(_key(kind))
    except (OSError, ValueError, AttributeError):  # none yet, or unreadable: probe again
        return None


def _remember(kind, chosen):
    path = cache_path()
    try:
        known = json.loads(path.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[_key(kind)] = chosen
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(known, indent=1))
        temporary.replace(path)  # whole or not at all, should two runs probe at once
    except OSError:
        pass  # a read-only home: probe again next time rather than fail a run
