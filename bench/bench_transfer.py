"""Seconds per style-transfer iteration: stylelab against pastiche, measured in the same run.

The setting: 256x256 content, 100 L-BFGS iterations, VGG-19 (the same
weights in both), content relu4_2, style relu1_1..relu5_1. Both tools read the
same two files, already resized, so neither resizes and the images are equal.
Only the optimisation loop is timed (stylelab's includes computing its targets).

An iteration here is one loss evaluation, a forward and backward pass through
VGG-19, the unit both tools pay for: pastiche runs L-BFGS without a line search,
one evaluation per iteration; stylelab's num_iters counts evaluations, which its
strong-Wolfe line search spends (about one per L-BFGS iteration once under way).

    python -m bench.bench_transfer [--iters 100] [--size 256] [--repeats 3]   (or make bench)

The style image is ../shared/images/starry_night.jpg when present (local
benchmarking only), else the built-in `swirls`. A ratio above 1 means stylelab
is faster per iteration.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from stylelab import speed
from stylelab.examples import example_image
from stylelab.images import load_image, save_image
from stylelab.transfer import run_transfer

SHARED_STYLE = Path(__file__).resolve().parents[2] / "shared" / "images" / "starry_night.jpg"


def prepare(folder, size):
    """Write content.png (size x size) and style.png (shorter side size) into folder."""
    style = SHARED_STYLE if SHARED_STYLE.exists() else example_image("swirls")
    save_image(load_image(example_image("astronaut"), (size, size)), folder / "content.png")
    save_image(load_image(style, size), folder / "style.png")
    return folder / "content.png", folder / "style.png", style


def time_pastiche(content, style, iters):
    from pastiche.pastiche import PasticheArtist, save_image as pastiche_save

    artist = PasticheArtist(str(content), [str(style)], optimizer="lbfgs", device="cpu",
                            size=tuple(load_image(content).shape[-2:]),
                            style_size=tuple(load_image(style).shape[-2:]))
    start = time.perf_counter()
    for _ in range(iters):
        artist.draw()
    seconds = time.perf_counter() - start
    Path("out/bench").mkdir(parents=True, exist_ok=True)
    pastiche_save(artist.pastiche, "out/bench/pastiche.png")
    return seconds / iters


def time_stylelab(content, style, iters, student=False, padding="replicate", **choices):
    """Seconds per evaluation of the engine; student: as the labs run a student's losses (contiguous, so
    that `.view` works). choices: channels_last, precision; the rest as stylelab.speed chose."""
    chosen = {**speed.choice("student" if student else "reference"), **choices}
    # no choices: the driver decides everything, as a user gets it (its way of repeating edges too)
    result = run_transfer(content, style, size=None, num_iters=iters, optimizer="lbfgs", padding=padding,
                          impl=_students_copy() if student else None, **choices)
    name = f"{'student' if student else 'reference'}_{chosen['precision']}_{padding}"
    result.image.save(f"out/bench/stylelab_{name}{'_cl' if chosen['channels_last'] else ''}.png")
    return result.seconds / iters


def _students_copy():
    """The reference solutions as another module, so run_transfer treats them as a student's code."""
    import importlib.util

    import solutions.style_transfer as reference

    spec = importlib.util.spec_from_file_location("students_style_transfer", reference.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    Path("out/bench").mkdir(parents=True, exist_ok=True)
    print(describe())
    reference, student = speed.choice(), speed.choice("student")
    layout = {True: "channels-last", False: "contiguous"}
    ours = f"stylelab ({reference['precision']}, {layout[reference['channels_last']]}: stylelab.speed's choice)"
    students = f"stylelab, a student's code ({student['precision']}, contiguous)"
    rows = {
        "pastiche": lambda: time_pastiche(content, style, args.iters),
        ours: lambda: time_stylelab(content, style, args.iters),
        "stylelab, float32 channels-last": lambda: time_stylelab(content, style, args.iters, precision="float32",
                                                                  channels_last=True),
        "stylelab, zero padding as pastiche's": lambda: time_stylelab(content, style, args.iters, padding="zeros"),
        students: lambda: time_stylelab(content, style, args.iters, student=True),
        "stylelab, a student's code in float32": lambda: time_stylelab(content, style, args.iters, student=True,
                                                                        precision="float32"),
    }
    times = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        content, style, source = prepare(Path(tmp), args.size)
        print(f"content {tuple(load_image(content).shape[-2:])}, style {source} "
              f"{tuple(load_image(style).shape[-2:])}; {args.iters} L-BFGS iterations, "
              f"median of {args.repeats} alternating runs")
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
            for name, run in rows.items():
                times[name].append(run())
    median = {name: statistics.median(values) for name, values in times.items()}
    theirs = median.pop("pastiche")
    print(f"{'pastiche':64s} {theirs:.3f} s/iteration")
    for name, seconds in median.items():
        print(f"{name:64s} {seconds:.3f} s/iteration = {theirs / seconds:.2f}x pastiche's speed")
    mine, theirs_students = theirs / median[ours], theirs / median[students]
    print(f"goals: the reference at least 1.25x pastiche's speed: {mine:.2f}x "
          f"({'met' if mine >= 1.25 else 'NOT met'}); a student's code at least 1.0x: {theirs_students:.2f}x "
          f"({'met' if theirs_students >= 1.0 else 'NOT met'})")
    print("outputs in out/bench/")


if __name__ == "__main__":
    main()
