"""The style-transfer driver: images and a backbone in, a stylised picture out.

Gatys et al. (CVPR 2016) style transfer on the losses of the chosen
implementation (the reference solutions by default, or a student's module).
With optimizer="lbfgs", the default, the kit's engine (stylelab/engine.py:
L-BFGS-B inside the pixel range, coarse to fine) runs them; with "adam", the
exercise's own CS231n loop does. This file prepares what they take: it loads
the backbone cut after the deepest layer needed, turns layer names into module
indices, resizes and preprocesses the images, and picks loss weights tuned for
each backbone (stylelab.objective.PRESETS).
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stylelab import engine, speed
from stylelab.backbones import BACKBONES, Margin, load_backbone
from stylelab.examples import resolve_image
from stylelab.images import ImageError, load_image, save_image, to_pil
from stylelab.impl import default as default_exercises
from stylelab.objective import PRESETS

# Step sizes per optimiser: L-BFGS scales its own steps; Adam's lr is in units of
# the backbone's input, so VGG's 0..255 range wants a larger one than CS231n's 3.0
# on a normalised image.
LEARNING_RATES = {("vgg19", "adam"): 10.0, ("squeezenet1_1", "adam"): 3.0,
                  ("vgg19", "lbfgs"): 1.0, ("squeezenet1_1", "lbfgs"): 1.0}

# Where each optimiser may start: the engine adds the photo recoloured to the
# painting's palette; the exercise's loop knows the three starts of its docstring.
INITS = {"lbfgs": ("recoloured", "content", "noise", "random"), "adam": ("content", "noise", "random")}


@dataclass
class TransferResult:
    image: object  # PIL.Image, the stylised picture
    img: torch.Tensor  # (1, 3, H, W), in the backbone's input space
    history: dict  # "content", "style", "tv", "total" -> one float per step
    seconds: float
    settings: dict = field(default_factory=dict)


def run_transfer(content, style, *, backbone="vgg19", objective=None, size=256, style_size=None,
                 num_iters=200, optimizer="lbfgs", lr=None, init=None,
                 noise_ratio=0.6, seed=0, callback=None, impl=None, channels_last=None, precision=None, margin=0,
                 padding="replicate", device=None, **changes):
    """Stylise content with style and return a TransferResult.

    Inputs:
    - content, style: a built-in image name (see stylelab.examples), a file
      path, or a PIL image.
    - backbone: 'vgg19' (offline) or 'squeezenet1_1'.
    - objective: the stylelab.objective.Objective to minimise; None for the
      backbone's preset. changes: content_layer, style_layers (layer names),
      content_weight, style_weights, tv_weight, replacing the objective's.
    - size: shorter side of the output in pixels; style_size is the style
      image's, defaulting to size.
    - num_iters, optimizer, lr, init, noise_ratio, seed, callback: as for
      style_transfer; lr=None picks one for the backbone and optimiser, and
      init=None the engine's 'recoloured' start (lbfgs) or 'content' (adam).
      optimizer="lbfgs" runs the kit's engine (bounded, coarse to fine; lr is
      unused, and a callback may raise engine.Stop to end the run with the best
      image so far); "adam" runs impl's own style_transfer loop.
    - impl: the module holding the exercises; the reference solutions if None.
    - channels_last: run the backbone channels-last (faster on most CPUs), and
      precision: "float32" or "bfloat16" for its convolutions (load_backbone).
      None: what stylelab.speed measured fastest on this CPU, never channels-last
      for a student's impl, since `.view` calls would break; its way of
      repeating edge pixels (replicate_by) then comes from the probe too.
    - margin: show the backbone the picture inside a margin this many pixels
      wide that repeats its edge, so that its zero padding does not reward
      dots along the borders (the loss of stylelab.train, LOSS_MARGIN); 0: as
      the labs do.
    - padding: how the backbone's convolutions pad (backbones.load_backbone):
      "replicate" repeats the edge pixels, so that no dark bands and dots grow
      along the borders; "zeros" runs the network as it was trained.
    - device: where the network runs: "cpu", "cuda", or None for a GPU when
      torch sees one (in float32, contiguous) and else the CPU, as the probe chose.
    """
    if backbone not in PRESETS:
        raise KeyError(f"unknown backbone {backbone!r}; choose one of: {', '.join(PRESETS)}")
    objective = (objective or PRESETS[backbone]).but(**changes)
    if lr is None:
        lr = LEARNING_RATES[(backbone, optimizer)]
    if init is None:
        init = "recoloured" if optimizer == "lbfgs" else "content"
    if init not in INITS[optimizer]:
        raise ValueError(f"init={init!r} does not go with optimizer={optimizer!r}; choose one of: "
                         f"{', '.join(INITS[optimizer])}")
    reference = default_exercises()
    impl = impl or reference
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    replicate_by = "pad"
    if device.type != "cpu":  # the probe measures CPUs; a GPU runs float32, contiguous
        precision, channels_last = precision or "float32", bool(channels_last)
    if channels_last is None or precision is None:
        fastest = speed.choice("student" if impl is not reference else "reference")
        channels_last = fastest["channels_last"] if channels_last is None else channels_last
        precision = precision or fastest["precision"]
        replicate_by = fastest["replicate_by"]  # the same numbers either way: measured for this layout

    net = load_backbone(backbone, layers=(objective.content_layer,) + objective.style_layers,
                        channels_last=channels_last, padding=padding, precision=precision,
                        replicate_by=replicate_by)
    net.cnn.to(device)
    content_img = load_image(resolve_image(content), size, net.preprocess).to(device)
    style_img = load_image(resolve_image(style), style_size or size, net.preprocess).to(device)
    cnn = torch.nn.Sequential(Margin(margin), *net.cnn) if margin else net.cnn

    def index(layer):  # a margin's module moves every index by one
        return net.index(layer) + bool(margin)

    start = time.perf_counter()
    if optimizer == "lbfgs":
        img, history = engine.paint(cnn, content_img, style_img, losses=impl, objective=objective, index=index,
                                    pixel_range=net.pixel_range(), num_iters=num_iters, init=init,
                                    noise_ratio=noise_ratio, seed=seed, callback=callback)
    else:  # the exercise's own loop: CS231n's Adam, its schedule and its clamp
        img, history = impl.style_transfer(
            cnn, content_img, style_img, content_layer=index(objective.content_layer),
            content_weight=objective.content_weight, style_layers=[index(layer) for layer in objective.style_layers],
            style_weights=list(objective.style_weights), tv_weight=objective.tv_weight, num_iters=num_iters,
            optimizer=optimizer, lr=lr, init=init, noise_ratio=noise_ratio,
            pixel_range=tuple(bound.to(device) for bound in net.pixel_range()), seed=seed, callback=callback)
    seconds = time.perf_counter() - start
    settings = dict(objective.as_dict(), backbone=backbone, size=size, style_size=style_size or size,
                    num_iters=num_iters, optimizer=optimizer, lr=lr, init=init, seed=seed, margin=margin,
                    padding=padding, channels_last=channels_last, precision=precision, replicate_by=replicate_by,
                    device=str(device))
    return TransferResult(to_pil(img, net.deprocess), img, history, seconds, settings)


def blend_styles(styles, weights, height=256):
    """One style image from several: side by side, widths proportional to the weights.

    A Gram matrix averages over positions, so this montage's Gram matrices are the
    weighted blend of the styles' (up to the seams): blending needs no new code in
    the loop. Raises ImageError when no weight is positive.
    """
    from PIL import Image

    total = sum(weights)
    if total <= 0:
        raise ImageError("give at least one style a weight above 0")
    width = 2 * height * len(styles)
    canvas, x = Image.new("RGB", (width, height)), 0
    kept = [(s, w) for s, w in zip(styles, weights) if w > 0]
    for k, (style, weight) in enumerate(kept):
        w = width - x if k == len(kept) - 1 else round(width * weight / total)
        if w > 0:
            canvas.paste(_tiled(style, w, height), (x, 0))
        x += w
    return canvas


def _tiled(style, width, height):
    """style at `height` px high with its own aspect, repeated (mirrored at each seam) to `width`.

    Stretching it to fit would stretch its strokes and tiles too, which its Gram
    matrices would then describe; mirroring keeps the seams from adding edges.
    """
    from PIL import Image, ImageOps

    tile = style.convert("RGB").resize((max(1, round(style.width * height / style.height)), height))
    strip, x, flip = Image.new("RGB", (width, height)), 0, False
    while x < width:
        strip.paste(ImageOps.mirror(tile) if flip else tile, (x, 0))
        x, flip = x + tile.width, not flip
    return strip


def progress(num_iters, every=10, out=print):
    """A callback printing the losses every few steps, with the time per step."""
    start = time.perf_counter()

    def callback(t, img, losses):
        if (t + 1) % every == 0 or t + 1 == num_iters:
            per_step = (time.perf_counter() - start) / (t + 1)
            out(f"step {t + 1:4d}/{num_iters}  total {losses['total']:.4g}  "
                f"content {losses['content']:.4g}  style {losses['style']:.4g}  "
                f"tv {losses['tv']:.4g}  {per_step:.2f} s/step")

    return callback


def snapshots(folder, every, backbone="vgg19"):
    """A callback saving the image as folder/step_0010.png every few steps."""
    folder = Path(folder)
    deprocess = BACKBONES[backbone][1].deprocess

    def callback(t, img, losses):
        if (t + 1) % every == 0:
            save_image(img, folder / f"step_{t + 1:04d}.png", deprocess)

    return callback


def chain(*callbacks):
    """One callback calling several in turn (None entries are skipped)."""
    callbacks = [c for c in callbacks if c is not None]

    def callback(t, img, losses):
        for c in callbacks:
            c(t, img, losses)

    return callback
