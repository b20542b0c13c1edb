"""How the kit's networks run fastest on this CPU: measured once, then remembered.

These choices decide the speed of a network's convolutions on a CPU, and
which way wins turns around from one CPU to the next:

- precision: bfloat16 convolutions run 1.5-4x faster than float32 where the
  CPU has bfloat16 instructions (AVX512_BF16, AMX), and slower where oneDNN
  has to emulate them, so bfloat16 is tried only where they exist;
- layout: channels-last feature maps suit oneDNN's kernels on most CPUs, but
  not on every one; students' code runs contiguous either way, since their
  `features.view(N, C, H * W)` needs it;
- replicate_by: the engine repeats edge pixels around every convolution's
  input, by torch's padding or by concatenation: the same numbers, at a cost
  that differs by layout and CPU;
- threads: one per logical CPU (torch's default) or one per core where two
  share a core (use_threads).

`choice(kind)` times each candidate on first use (a few seconds: every one on
a small picture, then those near the fastest at the engine's size) and caches
the winner per CPU model, flags, torch version and thread count in
cache_path(), unless other processes kept the CPU busy meanwhile: then the
next run measures again. The kinds: "reference", the engine's VGG-19 forward and backward
pass with the reference solutions; "student", the same with a student's code;
"fast", the fast network's forward pass (stylelab.fast). The environment
overrides the probe: STYLELAB_PRECISION=float32|bfloat16,
STYLELAB_CHANNELS_LAST=0|1, STYLELAB_REPLICATE_BY=pad|concat and
STYLELAB_THREADS=N.
"""

import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

import torch

from stylelab.backbones import PRECISIONS, REPLICATE_BY
from stylelab.objective import PRESETS

# Part of every cache key: a change to what the probe times or chooses raises it, so that
# no machine keeps a choice measured on other candidates.
PROBE_VERSION = 3
# the instruction sets that decide which kernels oneDNN picks
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
# VGG-19's candidates are screened on a PROBE_SIDE picture (relu5_1 still 10x10; a float32 pass
# takes about 0.2 s on two cores), and those within CLOSE of the fastest there are timed again at
# DECIDE_SIDE, the engine's own size, which decides. Layouts that tie at 160 px part at 256: with
# one thread bfloat16 channels-last beat contiguous by 3-6% at 160 px and by 13-18% at 256
# (Intel Xeon with AMX, 2026-12-05), so a probe at 160 px alone could keep the slower one.
PROBE_SIDE, DECIDE_SIDE, CLOSE = 160, 256, 1.25
PROBE_LAYERS = (PRESETS["vgg19"].content_layer, *PRESETS["vgg19"].style_layers)  # the layers a transfer reads
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


# Cores' worth of CPU that other processes may use while a probe runs: beyond it the timings say more
# about them than about the candidates, so the choice is kept for this process only, not cached. Beside
# a training run the fast network timed 0.094 s in float32 and 0.105 s in bfloat16, where a quiet
# machine gives 0.049 s and 0.037 s (AMD EPYC, Zen 4, 2 cores, 2026-12-04).
BUSY = 0.25
_UNREMEMBERED = {}  # key -> a choice measured on a busy machine, for this process

KINDS = ("reference", "student", "fast")
SETTINGS = ("precision", "channels_last", "replicate_by")


def _key(kind):
    model, flags = cpu()
    return (f"probe {PROBE_VERSION} | {model} | {' '.join(flags)} | torch {torch.__version__} | oneDNN "
            f"{'on' if torch.backends.mkldnn.enabled else 'off'} | {torch.get_num_threads()} threads | {kind}")


def candidates(kind):
    """The settings worth timing here for kind: dicts of precision, channels_last and replicate_by."""
    precisions = ["float32"] + (["bfloat16"] if native_bfloat16() else [])
    layouts = {"reference": [True, False], "student": [False], "fast": [True]}[kind]
    replicate = ["pad"] if kind == "fast" else list(REPLICATE_BY)  # the fast network pads by its own module
    return [dict(precision=p, channels_last=c, replicate_by=r) for p in precisions for c in layouts for r in replicate]


def seconds_per_pass(kind, precision, channels_last, replicate_by="pad", repeats=3, side=PROBE_SIDE):
    """The median time of one pass of kind's network: VGG-19 to relu5_1, forward and backward, on a
    side x side picture; or the fast network's forward pass on a FAST_PROBE picture."""
    one_pass = (_fast_pass(precision, channels_last) if kind == "fast"
                else _vgg_pass(precision, channels_last, replicate_by, side))
    one_pass()  # oneDNN picks and caches its kernels on the first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _vgg_pass(precision, channels_last, replicate_by, side):
    from stylelab.backbones import load_backbone

    net = load_backbone("vgg19", layers=PROBE_LAYERS, channels_last=channels_last, padding="replicate",
                        precision=precision, replicate_by=replicate_by)
    taps = [net.index(layer) for layer in PROBE_LAYERS]
    picture = torch.rand(1, 3, side, side)
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


def probe(settings, kind, rounds=2, side=PROBE_SIDE):
    """[seconds] for each of settings (dicts of seconds_per_pass's arguments), timed in turns."""
    times = [[] for _ in settings]
    for _ in range(rounds):  # alternating, so a burst of other load hits every candidate alike
        for each, timed in zip(settings, times):
            timed.append(seconds_per_pass(kind, **each, side=side))
    return [min(timed) for timed in times]


def measure(kind):
    """{the fastest of candidates(kind)'s settings, "seconds": {candidate: time}}: VGG-19's screened at
    PROBE_SIDE, then those within CLOSE of the fastest decided at DECIDE_SIDE; the fast network's at
    FAST_PROBE, its own size."""
    settings = candidates(kind)
    if kind == "fast":
        timed = probe(settings, kind)
        seconds = {_name(each): round(t, 4) for each, t in zip(settings, timed)}
    else:
        screened = probe(settings, kind, rounds=1)
        seconds = {f"{_name(each)} at {PROBE_SIDE} px": round(t, 4) for each, t in zip(settings, screened)}
        settings = [each for each, t in zip(settings, screened) if t <= CLOSE * min(screened)]
        timed = probe(settings, kind, side=DECIDE_SIDE) if len(settings) > 1 else [min(screened)]
        if len(settings) > 1:
            seconds.update({f"{_name(each)} at {DECIDE_SIDE} px": round(t, 4) for each, t in zip(settings, timed)})
    return {**settings[min(range(len(timed)), key=timed.__getitem__)], "seconds": seconds}


def _name(settings):
    return " ".join(f"{'channels-last' if v else 'contiguous'}" if k == "channels_last" else str(v)
                    for k, v in settings.items())


def choice(kind="reference"):
    """{"precision", "channels_last", "replicate_by"} for kind (KINDS) on this machine: the environment's
    overrides, else the cached probe, else a probe now (cached). Students' code is never channels-last."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    chosen = _overrides(kind)
    if len(chosen) < len(SETTINGS):
        measured = _cached(kind)
        if measured is None:
            measured, others = busy_elsewhere(lambda: measure(kind))
            _remember(_key(kind), measured, others)
        chosen = {**{key: measured[key] for key in SETTINGS}, **chosen}
    chosen["channels_last"] = chosen["channels_last"] and kind != "student"
    return chosen


def cores():
    """(physical cores, logical CPUs) this process may run on: two logical CPUs share a core under SMT."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    siblings = set()
    for n in allowed:
        try:
            siblings.add(Path(f"/sys/devices/system/cpu/cpu{n}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            siblings.add(str(n))
    return len(siblings), len(allowed)


def use_threads():
    """Set torch's thread count to the fastest for the engine's pass, and return it.

    Torch starts one thread per logical CPU; where two share a core (SMT), one
    per core can be faster, and the probe times both (once, cached). The
    environment decides instead where it says: STYLELAB_THREADS, or
    OMP_NUM_THREADS, which torch itself reads."""
    wanted = os.environ.get("STYLELAB_THREADS")
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"STYLELAB_THREADS={wanted!r}: give a whole number of threads, or unset it")
        torch.set_num_threads(int(wanted))
        return int(wanted)
    physical, logical = cores()
    if os.environ.get("OMP_NUM_THREADS") or physical == logical or torch.get_num_threads() != logical:
        return torch.get_num_threads()  # nothing to choose, or chosen already
    key = f"probe {PROBE_VERSION} | {cpu()[0]} | torch {torch.__version__} | {physical} cores, {logical} CPUs | threads"
    measured = _cached_key(key)
    if measured is None:
        counts, timed = [logical, physical], {}

        def time_counts():
            for count in counts:
                torch.set_num_threads(count)
                timed[count] = probe([dict(precision="float32", channels_last=True)], "reference")[0]

        _, others = busy_elsewhere(time_counts)
        measured = {"threads": min(counts, key=timed.get), "seconds": {str(n): round(t, 4) for n, t in timed.items()}}
        _remember(key, measured, others)
    torch.set_num_threads(measured["threads"])
    return measured["threads"]


def _overrides(kind):
    chosen = {}
    precision, layout = os.environ.get("STYLELAB_PRECISION"), os.environ.get("STYLELAB_CHANNELS_LAST")
    if precision:
        if precision not in PRECISIONS:
            raise ValueError(f"STYLELAB_PRECISION={precision!r}: give one of {', '.join(PRECISIONS)}, or unset it")
        chosen["precision"] = precision
    if layout:
        if layout not in ("0", "1"):
            raise ValueError(f"STYLELAB_CHANNELS_LAST={layout!r}: give 1 (channels-last) or 0 (contiguous)")
        chosen["channels_last"] = layout == "1"
    elif kind != "reference":
        chosen["channels_last"] = kind == "fast"
    replicate_by = os.environ.get("STYLELAB_REPLICATE_BY")
    if replicate_by:
        if replicate_by not in REPLICATE_BY:
            raise ValueError(f"STYLELAB_REPLICATE_BY={replicate_by!r}: give one of {', '.join(REPLICATE_BY)}, "
                             f"or unset it")
        chosen["replicate_by"] = replicate_by
    elif kind == "fast":
        chosen["replicate_by"] = "pad"
    return chosen


def busy_elsewhere(run):
    """(run()'s result, how many cores' worth of CPU other processes used meanwhile): the machine's busy
    time from /proc/stat less this process's own; 0 where /proc/stat cannot be read."""
    before, mine, start = _machine_busy(), time.process_time(), time.perf_counter()
    result = run()
    after = _machine_busy()
    if before is None or after is None:
        return result, 0.0
    others = (after - before) - (time.process_time() - mine)
    return result, max(0.0, others / (time.perf_counter() - start))


def _machine_busy():
    """Seconds of CPU time spent by every process on the machine since boot (steal included), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if fields[:1] != ["cpu"] or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _cached(kind):
    return _cached_key(_key(kind))


def _cached_key(key):
    if key in _UNREMEMBERED:
        return _UNREMEMBERED[key]
    try:
        return json.loads(cache_path().read_text()).get(key)
    except (OSError, ValueError, AttributeError):  # none yet, or unreadable: probe again
        return None


def _remember(key, chosen, others=0.0):
    """Cache chosen under key, unless other processes used more than BUSY cores while it was measured:
    then it holds for this process only, and the next one measures again."""
    if others > BUSY:
        _UNREMEMBERED[key] = chosen
        return
    path = cache_path()
    try:
        known = json.loads(path.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[key] = chosen
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(known, indent=1))
        temporary.replace(path)  # whole or not at all, should two runs probe at once
    except OSError:
        pass  # a read-only home: probe again next time rather than fail a run
