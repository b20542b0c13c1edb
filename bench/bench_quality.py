"""Quality per second: stylelab's engine against pastiche, on the same images and objective.

Astronaut (scikit-image) at 256 px against The Starry Night from
../shared/images (a public-domain painting, used here only to measure; a
generated style otherwise), with pastiche 1.6's default objective: content
0.01 * mse(relu4_2), style sum_l 10 / C_l^2 * mse(gram_l) with gram = F F^T / (H W),
no TV; the style image resized to the content's pixel count, as pastiche does.
In the kit's terms: content_weight = 0.01 / (C H W) at relu4_2, style weight
10 / C_l^2 per layer, tv_weight 0.

Both saved PNGs are judged by pastiche's own code (its VGG-19 and gram), so
neither side grades itself. Prints each term, the time ratio, and writes
out/bench_quality.png: the photo, pastiche's picture, stylelab's.

    python -m bench.bench_quality [--pastiche-steps 300] [--num-iters 150] [--method ...]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from stylelab import engine
from stylelab.backbones import load_backbone
from stylelab.examples import example_image
from stylelab.images import load_image, to_pil
from stylelab.transfer import default_impl

SHARED_STYLE = Path(__file__).resolve().parents[2] / "shared" / "images" / "starry_night.jpg"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def pastiche_terms(path, content_path, style_path, size):
    """pastiche's content and style terms for the picture at path, by pastiche's own code."""
    from pastiche import pastiche as p

    vgg = p.VGG19.from_quantized_bin(str(Path(p.__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"))
    vgg.requires_grad_(False)
    content = p.load_image(str(content_path), size=size)
    pixels = content.shape[2] * content.shape[3]
    style = p.load_image(str(style_path), pixels=pixels)
    picture = p.load_image(str(path), size=list(content.shape[2:]))
    layers = ["block4_conv2"] + [f"block{k}_conv1" for k in range(1, 6)]
    with torch.no_grad():
        ours, theirs, target = vgg.forward(picture, layers), vgg.forward(style, layers), vgg.forward(content, layers)
        content_term = 0.01 * torch.nn.functional.mse_loss(ours["block4_conv2"], target["block4_conv2"])
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


def run_stylelab(content_path, style_path, size, num_iters, out, schedule):
    start = time.perf_counter()
    net = load_backbone("vgg19", layers=("relu4_2",) + STYLE_LAYERS, channels_last=True)
    content = load_image(content_path, None, net.preprocess)
    if max(content.shape[-2:]) != size:  # pastiche's size is the longer side
        H, W = content.shape[-2:]
        content = load_image(content_path, (round(H * size / max(H, W)), round(W * size / max(H, W))),
                             net.preprocess)
    H, W = content.shape[-2:]
    style_rgb = Image.open(style_path).convert("RGB")
    scale = (H * W / (style_rgb.width * style_rgb.height)) ** 0.5
    style = load_image(style_rgb, (round(style_rgb.height * scale), round(style_rgb.width * scale)), net.preprocess)
    channels = {layer: c for layer, c in zip(STYLE_LAYERS, (64, 128, 256, 512, 512))}
    with torch.no_grad():  # pastiche's mse is a mean: 0.01 / (C H W) of relu4_2's map, as a sum
        content_weight = 0.01 / default_impl().extract_features(content, net.cnn)[net.index("relu4_2")][0].numel()
    img, history = engine.paint(
        net.cnn, content, style, losses=default_impl(), content_layer=net.index("relu4_2"),
        content_weight=content_weight, style_layers=[net.index(layer) for layer in STYLE_LAYERS],
        style_weights=[10.0 / channels[layer] ** 2 for layer in STYLE_LAYERS], tv_weight=0.0,
        pixel_range=net.pixel_range(), num_iters=num_iters, schedule=schedule)
    to_pil(img, net.deprocess).save(out)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--num-iters", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--schedule", default="0.5:0.6,1.0:0.4",
                        help="scale:share pairs, e.g. 1.0:1.0 for a single scale")
    args = parser.parse_args()
    schedule = tuple(tuple(float(v) for v in pair.split(":")) for pair in args.schedule.split(","))
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        content_path = Path(tmp) / "astronaut.png"
        example_image("astronaut").save(content_path)
        style_path = SHARED_STYLE if SHARED_STYLE.exists() else Path(tmp) / "swirls.png"
        if not SHARED_STYLE.exists():
            example_image("swirls").save(style_path)
        out = Path("out")
        out.mkdir(exist_ok=True)
        ours = run_stylelab(content_path, style_path, args.size, args.num_iters, out / "quality_stylelab.png",
                            schedule)
        theirs = run_pastiche(content_path, style_path, args.size, args.pastiche_steps, out / "quality_pastiche.png")
        judged = {name: pastiche_terms(out / f"quality_{name}.png", content_path, style_path, args.size)
                  for name in ("pastiche", "stylelab")}
        photo = Image.open(content_path).convert("RGB")
        pictures = [Image.open(out / f"quality_{name}.png") for name in ("pastiche", "stylelab")]
        photo = photo.resize(pictures[0].size)
        sheet = Image.new("RGB", (3 * photo.width, photo.height), "white")
        for k, picture in enumerate([photo] + pictures):
            sheet.paste(picture, (k * photo.width, 0))
        sheet.save(out / "bench_quality.png")
    print(f"style image: {style_path.name}; content astronaut at {args.size} px")
    print(f"pastiche, {args.pastiche_steps} steps: {theirs:.1f} s; content {judged['pastiche'][0]:,.0f}, "
          f"style {judged['pastiche'][1]:,.0f}")
    print(f"stylelab, {args.num_iters} evaluations, schedule {args.schedule}: {ours:.1f} s; "
          f"content {judged['stylelab'][0]:,.0f}, style {judged['stylelab'][1]:,.0f}")
    print(f"time ratio stylelab / pastiche: {ours / theirs:.2f} (goal: at most 0.33); "
          f"content {judged['stylelab'][0] / judged['pastiche'][0]:.2f}x, "
          f"style {judged['stylelab'][1] / judged['pastiche'][1]:.2f}x of pastiche's (goal: at most 1)")
    print("side by side (photo, pastiche, stylelab): out/bench_quality.png")


if __name__ == "__main__":
    main()
