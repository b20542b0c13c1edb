"""Quality per second: stylelab's engine against pastiche, on the same images and objective.

Astronaut (scikit-image) at 256 px against The Starry Night from
../shared/images (a public-domain painting, used here only to measure; a
generated style otherwise), with pastiche 1.6's default objective: content
0.01 * mse(relu4_2), style sum_l 10 / C_l^2 * mse(gram_l) with gram = F F^T / (H W),
no TV; the style image resized to the content's pixel count, as pastiche does.
In the kit's terms: content_weight = 0.01 / (C H W) at relu4_2, style weight
10 / C_l^2 per layer, tv_weight 0.

Both saved PNGs are judged by pastiche's own code (its VGG-19 and gram), so
neither side grades itself. Prints each term and the time ratio for
each of stylelab's budgets, and writes out/bench_quality.png: the photo,
pastiche's picture, stylelab's at the first budget.

Each budget runs with the loss network in float32 and in bfloat16 (stylelab.speed),
and the bfloat16 picture's terms are set against the float32 one's.

    python -m bench.bench_quality [--pastiche-steps 300] [--num-iters 30 40 100] [--schedule ...]
    python -m bench.bench_quality --spread --num-iters 40   # bfloat16 within float32's own spread?
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from bench.machine import describe
from stylelab import engine
from stylelab.backbones import PRECISIONS, load_backbone
from stylelab.examples import example_image
from stylelab.images import load_image, to_pil
from stylelab.impl import default as default_exercises
from stylelab.objective import PRESETS, Objective

SHARED_STYLE = Path(__file__).resolve().parents[2] / "shared" / "images" / "starry_night.jpg"
# --spread's photos and paintings
SPREAD_PAIRS = [("astronaut", SHARED_STYLE), ("astronaut", SHARED_STYLE.with_name("the_scream.jpg")),
                ("chelsea", SHARED_STYLE.with_name("woman-with-hat-matisse.jpg"))]
STYLE_LAYERS = PRESETS["vgg19"].style_layers  # Gatys et al.'s, as pastiche's


def presized(image, out, size=None, pixels=None):
    """Save image at the size pastiche would resize it to, with its resampling (PIL bilinear).

    Both tools then read the same pixels at their native size, so neither
    side's resizing differs from the judge's.
    """
    w, h = image.size
    if size is not None:  # the longer side
        h_, w_ = (round(size * h / w), size) if w >= h else (size, round(size * w / h))
    else:  # the same number of pixels
        h_ = round((pixels * h / w) ** 0.5)
        w_ = round(w / h * h_)
    image.convert("RGB").resize((w_, h_), Image.BILINEAR).save(out)


def pastiche_terms(path, content_path, style_path, size):
    """pastiche's content and style terms for the picture at path, by pastiche's own code."""
    from pastiche import pastiche as p

    weights = Path(p.__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    vgg = p.VGG19.from_quantized_bin(str(weights))
    vgg.requires_grad_(False)
    content = p.load_image(str(content_path), size=size)
    pixels = content.shape[2] * content.shape[3]
    style = p.load_image(str(style_path), pixels=pixels)
    picture = p.load_image(str(path), size=list(content.shape[2:]))
    layers = ["block4_relu2"] + [f"block{k}_relu1" for k in range(1, 6)]
    with torch.no_grad():
        ours, theirs, target = vgg.forward(picture, layers), vgg.forward(style, layers), vgg.forward(content, layers)
        content_term = 0.01 * torch.nn.functional.mse_loss(ours["block4_relu2"], target["block4_relu2"])
        style_term = sum(10.0 / ours[layer].shape[1] ** 2
                         * torch.nn.functional.mse_loss(p.gram(ours[layer]), p.gram(theirs[layer]))
                         for layer in layers[1:])
    return float(content_term), float(style_term)


def run_pastiche(content_path, style_path, size, steps, out):
    from pastiche import pastiche as p

    start = time.perf_counter()
    artist = p.PasticheArtist(str(content_path), [str(style_path)], size=size, device="cpu")
    for _ in range(steps):
        artist.draw()
    p.save_image(artist.pastiche, out)
    return time.perf_counter() - start


def run_stylelab(content_path, style_path, num_iters, out, schedule, precision="float32", channels_last=True):
    start = time.perf_counter()
    # zero padding, as pastiche's VGG pads: both optimisers then minimise the same objective
    net = load_backbone("vgg19", layers=("relu4_2",) + STYLE_LAYERS, channels_last=channels_last, padding="zeros",
                        precision=precision)
    content = load_image(content_path, None, net.preprocess)  # both presized() as pastiche sizes them
    style = load_image(style_path, None, net.preprocess)
    channels = {layer: c for layer, c in zip(STYLE_LAYERS, (64, 128, 256, 512, 512))}
    with torch.no_grad():  # pastiche's mse is a mean: 0.01 / (C H W) of relu4_2's map, as a sum
        content_weight = 0.01 / default_exercises().extract_features(content, net.cnn)[net.index("relu4_2")][0].numel()
    objective = Objective(content_layer="relu4_2", content_weight=content_weight, style_layers=STYLE_LAYERS,
                          style_weights=[10.0 / channels[layer] ** 2 for layer in STYLE_LAYERS], tv_weight=0.0)
    img, history = engine.paint(net.cnn, content, style, losses=default_exercises(), objective=objective,
                                index=net.index, pixel_range=net.pixel_range(), num_iters=num_iters,
                                schedule=schedule)
    to_pil(img, net.deprocess).save(out)
    return time.perf_counter() - start


def spread(num_iters, size, schedule):
    """bfloat16 against float32's own spread, on each pair of SPREAD_PAIRS.

    At a few dozen evaluations the picture L-BFGS reaches moves with the
    rounding of every sum: the same float32 run with the backbone contiguous
    instead of channels-last, or on one thread instead of two, lands on a
    picture whose style term differs by a few percent either way. So each
    precision runs under the same four orders of summation (layout x threads),
    and what is compared is the median of each term, beside its range.
    """
    threads = torch.get_num_threads()
    counts = sorted({threads, 1}, reverse=True)
    orders = [(layout, n) for layout in (True, False) for n in counts]
    print(describe())
    print(f"{num_iters} evaluations at {size} px; each term against float32's median "
          f"(orders: channels-last or contiguous, x threads {' or '.join(map(str, counts))})")
    above = beyond = compared = 0  # bfloat16 medians above float32's median, above its worst run
    with tempfile.TemporaryDirectory() as tmp:
        for photo, painting in SPREAD_PAIRS:
            content_path, style_path = Path(tmp) / "content.png", Path(tmp) / "style.png"
            presized(example_image(photo), content_path, size=size)
            width, height = Image.open(content_path).size
            presized(Image.open(painting), style_path, pixels=width * height)
            terms = {}
            for precision in PRECISIONS:
                for layout, n in orders:
                    torch.set_num_threads(n)
                    path = Path(tmp) / "picture.png"
                    run_stylelab(content_path, style_path, num_iters, path, schedule, precision, layout)
                    terms.setdefault(precision, []).append(pastiche_terms(path, content_path, style_path, size))
            torch.set_num_threads(threads)
            base = [statistics.median(t[k] for t in terms["float32"]) for k in (0, 1)]
            worst = [max(t[k] for t in terms["float32"]) / base[k] for k in (0, 1)]
            line = []
            for precision, runs in terms.items():
                for k, name in enumerate(("content", "style")):
                    ratios = sorted(t[k] / base[k] for t in runs)
                    median = statistics.median(ratios)
                    line.append(f"{precision} {name} {median:.3f}x ({ratios[0]:.3f}-{ratios[-1]:.3f})")
                    if precision != "float32":
                        compared += 1
                        above += median > 1.0
                        beyond += median > worst[k]
            print(f"  {photo}, {Path(painting).name}: " + "; ".join(line))
    print(f"bfloat16's median above float32's median on {above} of {compared} terms, "
          f"above float32's worst run on {beyond}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--num-iters", type=int, nargs="+", default=[30, 40, 100],
                        help="stylelab's budgets, in loss evaluations; the first goes in the picture")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--schedule", default=None,
                        help="scale:share pairs, e.g. 0.5:0.5,1.0:0.5 (default: the engine's own plan)")
    parser.add_argument("--spread", action="store_true",
                        help="bfloat16 against float32's own spread over orders of summation, on three pairs "
                             "(the first budget only; needs ../shared/images)")
    args = parser.parse_args()
    schedule = (None if args.schedule is None else
                tuple(tuple(float(v) for v in pair.split(":")) for pair in args.schedule.split(",")))
    if args.spread:
        return spread(args.num_iters[0], args.size, schedule)
    out = Path("out")
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        style_name = SHARED_STYLE.name if SHARED_STYLE.exists() else "swirls (generated)"
        style_rgb = Image.open(SHARED_STYLE).convert("RGB") if SHARED_STYLE.exists() else example_image("swirls")
        content_path, style_path = Path(tmp) / "content.png", Path(tmp) / "style.png"
        presized(example_image("astronaut"), content_path, size=args.size)
        presized(style_rgb, style_path, pixels=Image.open(content_path).width * Image.open(content_path).height)
        rows = {}
        for num_iters in args.num_iters:
            for precision in PRECISIONS:
                suffix = "" if precision == "float32" else f"_{precision}"
                path = out / f"quality_stylelab_{num_iters}{suffix}.png"
                seconds = run_stylelab(content_path, style_path, num_iters, path, schedule, precision)
                rows[num_iters, precision] = seconds, pastiche_terms(path, content_path, style_path, args.size)
        theirs = run_pastiche(content_path, style_path, args.size, args.pastiche_steps, out / "quality_pastiche.png")
        content, style = pastiche_terms(out / "quality_pastiche.png", content_path, style_path, args.size)
        pictures = [Image.open(content_path).convert("RGB"), Image.open(out / "quality_pastiche.png"),
                    Image.open(out / f"quality_stylelab_{args.num_iters[0]}.png")]
        sheet = Image.new("RGB", (sum(p.width for p in pictures), pictures[0].height), "white")
        for k, picture in enumerate(pictures):
            sheet.paste(picture, (k * pictures[0].width, 0))
        sheet.save(out / "bench_quality.png")
    print(describe())
    print(f"astronaut at {args.size} px, style {style_name}; both PNGs judged by pastiche's own loss code")
    print(f"pastiche, {args.pastiche_steps} steps: {theirs:.1f} s; content {content:,.0f}, style {style:,.0f}")
    print(f"stylelab, schedule {args.schedule or 'default'} (goal: time at most 0.33x, both terms at most 1x):")
    for (num_iters, precision), (seconds, (ours_content, ours_style)) in rows.items():
        wins = seconds <= theirs / 3 and ours_content <= content and ours_style <= style
        print(f"  {num_iters:4d} evaluations, {precision:8s}: {seconds:6.1f} s = {seconds / theirs:.2f}x; content "
              f"{ours_content:,.0f} = {ours_content / content:.2f}x, style {ours_style:,.0f} = "
              f"{ours_style / style:.2f}x{'  <- no worse on both, in a third of the time' if wins else ''}")
    for num_iters in args.num_iters:  # bfloat16 may change the speed, never the picture's quality
        (_, single), (_, half) = rows[num_iters, "float32"], rows[num_iters, "bfloat16"]
        verdict = "no worse on both" if half[0] <= single[0] and half[1] <= single[1] else "WORSE on a term"
        print(f"  bfloat16 against float32 at {num_iters} evaluations: content {half[0] / single[0]:.3f}x, style "
              f"{half[1] / single[1]:.3f}x ({verdict})")
    print(f"side by side (photo, pastiche, stylelab at {args.num_iters[0]}): out/bench_quality.png")


if __name__ == "__main__":
    main()
