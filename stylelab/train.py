"""Training the fast style-transfer network (Johnson et al. 2016; Dumoulin et al. 2017).

`train_fast` runs the exercises' `train_step` over batches of photo crops
(stylelab.photos: any folder of photos, COCO as in the papers, or by default
the few bundled photos the kit may use, so that training works offline). With several styles, the batches
take the styles in turn, each with its own objective (stylelab.objective.FAST_STYLES), and
one network learns them all through its per-style normalisation parameters.
Checkpoints are written every few steps and a run can resume from one; with the
same seed a run draws the same batches.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from stylelab import speed
from stylelab.backbones import Margin, load_backbone
from stylelab.colour import colours_of, match_colours
from stylelab.examples import EXAMPLES, resolve_image
from stylelab.fast import NOISE, NUM_RES, SHIPPED, WIDTHS, TransformerNet, save_model
from stylelab.images import load_image
from stylelab.impl import default as default_exercises
from stylelab.objective import FAST, for_each_style, style_objectives
from stylelab.photos import HELD_OUT, Photos

# Training crops are CROP pixels square, and the style images are seen at STYLE_SIZE on
# their shorter side: a crop a quarter of the pixels of 256 trains four times as many steps
# an hour, and the style's strokes keep the size they have at 256, where they are judged.
CROP, STYLE_SIZE = 128, 256
# Each style's own parameters (the gamma and beta of every norm, one row per style) get a
# gradient only on the steps that train that style, one step in S; at ten times the
# learning rate of the shared convolutions they keep up (a probe on three styles painted
# swirls in its own blues by step 500 with it, and still in lavender greys without it).
NORM_LR_SCALE = 10.0
# The loss network sees every picture inside a margin this wide that repeats its edge
# pixels. VGG pads each convolution with zeros, so pixels on the border are judged
# against a frame of mid-grey and the style loss rewards saturated dots along the
# edges: the optimiser paints them too. Behind a mirrored margin the network learnt to
# paint bands along the sides (swirls, in every run); behind a repeated edge it did not
# (stylelab/models/README.md).
LOSS_MARGIN = 16


class Preprocess(nn.Module):
    """The backbone's input normalisation, then the margin, then the tiles: the loss network's first module.

    tiles: cut each picture into tiles x tiles squares, each inside a margin of
    its neighbours' pixels (the repeated edge on the picture's own border), and
    hand the loss network every tile as a picture of its own: (N, 3, H, W) ->
    (tiles**2 N, 3, H / tiles + 2 margin, W / tiles + 2 margin). The Gram
    matrices are then taken per tile, so a picture that paints one region and
    leaves the rest as the photo cannot match the style.
    """

    def __init__(self, normalization, margin=LOSS_MARGIN, tiles=1):
        super().__init__()
        self.normalization, self.margin, self.tiles = normalization, Margin(margin), tiles

    def forward(self, rgb):
        x = self.margin(self.normalization.preprocess(rgb))
        if self.tiles == 1:
            return x
        m, k = self.margin.margin, self.tiles
        h, w = rgb.shape[-2] // k, rgb.shape[-1] // k
        return torch.cat([x[..., i * h:(i + 1) * h + 2 * m, j * w:(j + 1) * w + 2 * m]
                          for i in range(k) for j in range(k)])  # (k * k * N, 3, h + 2m, w + 2m)


@dataclass
class LossNetwork:
    cnn: nn.Sequential  # Preprocess, then the backbone's modules
    content_layer: int
    style_layers: list


def loss_network(objective, device="cpu", channels_last=True, margin=LOSS_MARGIN, precision="float32"):
    """VGG-19 cut after the objective's deepest layer, behind a Preprocess module (indices shift by 1);
    precision: its convolutions' (load_backbone)."""
    layers = (objective.content_layer,) + objective.style_layers
    backbone = load_backbone("vgg19", layers=layers, channels_last=channels_last, precision=precision)
    cnn = nn.Sequential(Preprocess(backbone.normalization, margin), *backbone.cnn).to(device)
    return LossNetwork(cnn, 1 + backbone.index(objective.content_layer),
                       [1 + backbone.index(layer) for layer in objective.style_layers])


def style_name(source):
    return source if source in EXAMPLES else Path(source).stem


def style_grams(loss_net, images, impl):
    """[(S, C, C) per style layer]: the normalised Gram matrices of each (1, 3, H, W) style image.

    impl: the module of labs 1 and 2 (extract_features, gram_matrix)."""
    grams = []
    with torch.no_grad():
        for image in images:
            feats = impl.extract_features(image, loss_net.cnn)
            grams.append([impl.gram_matrix(feats[i]) for i in loss_net.style_layers])
    return [torch.cat(per_layer) for per_layer in zip(*grams)]


def _bar(step, steps, width=24):
    done = round(width * step / steps)
    return "[" + "#" * done + "." * (width - done) + "]"


def train_fast(styles, dataset=None, *, steps=3000, size=CROP, style_size=STYLE_SIZE, batch_size=4, lr=1e-3,
               seed=0, max_seconds=None, out=SHIPPED, checkpoint_every=100, resume=False, device=None,
               widths=None, num_res=None, work_side=None, tiles=1, init=None, precision=None, distil=None,
               pixel_weight=0.0, palette_weight=0.0, shade_weight=0.0, recolour=False, noise=NOISE, log=print,
               command="", impl=None, only=None, **changes):
    """Train one network on one or more styles and write it to out; returns the FastModel's path.

    The checkpoint, written every checkpoint_every steps, is out + '.ckpt'; with
    resume=True a run continues from it (same styles and settings) up to steps,
    at a new lr if one is given (training["lr_schedule"] records each change).
    max_seconds: stop after the step that reaches this much training time (over
    every resumed run), even before `steps`: a budget the same on any machine,
    where a step count takes a minute on one laptop and four on another.
    changes: content_layer, style_layers, content_weight, style_weights,
    tv_weight, replacing those of every style's objective (FAST, or its own in
    FAST_STYLES; stylelab.objective).
    work_side: stored with the model: stylize works on a copy no longer than
    this and enlarges the result guided by the photo (None: at full size).
    tiles: the loss network judges each crop as tiles x tiles tiles of its own
    (Preprocess), the style term being their mean, so that every region must
    take the style; tiles must divide size. tiles, and any of changes, may
    also be a {style name: value} dict, for those styles alone.
    init: a model file (of the same styles and widths) to start from instead
    of fresh weights: a second stage of training on other settings.
    precision: the loss network's convolutions, "float32" or "bfloat16"
    (load_backbone); None: float32 on a GPU, and on a CPU what stylelab.speed
    measured fastest (bfloat16 where the CPU has it). The transformation
    network, its optimiser and every loss stay float32.
    distil: a folder holding corpora of the engine's paintings, each named as
    its style (stylelab.distil.build_corpus): a style with a corpus is trained
    on its pairs instead of the photos, its content target being the
    painting's features rather than the photo's, and pixel_weight weighs the
    squared distance to the painting's pixels (0..255) on top (distil_step).
    palette_weight: the weight of a term on the colours, the distance between
    each picture's palette and its style image's (stylelab.distil.palette).
    shade_weight: the weight of a term on the light and shade, the distance
    between each picture's blurred luma and its photo's (stylelab.distil.shade).
    recolour: hand the network each photo recoloured to its style image's
    colours (stylelab.colour), as stylize then does with the model it writes.
    noise: the standard deviation of the noise added to each crop on the way
    down (transformer_net's noise), new each step; stylize uses it, fixed.
    only: style names (with init): train those styles' own norm parameters
    alone, keeping the shared convolutions and the other styles as init left
    them (a conditional network learns a style through its gammas and betas,
    Dumoulin et al. 2017), so refining one style cannot move the others.
    """
    names = [style_name(s) for s in styles]
    tiles_of = for_each_style(tiles, names, "--tiles", default=1)
    _check(styles, size, tiles_of, max_seconds, steps, checkpoint_every, noise)
    common = FAST.but(**{k: v for k, v in changes.items() if not isinstance(v, dict)})
    objectives = style_objectives(names, tiles, **changes)
    device = _device(device)
    impl, reference = impl or default_exercises("fast_transfer"), default_exercises("fast_transfer")
    precision = precision or (speed.choice()["precision"] if device.type == "cpu" else "float32")
    loss_net = loss_network(common, device, channels_last=impl is reference, precision=precision)
    images = [load_image(resolve_image(s), style_size).to(device) for s in styles]  # for Grams, colours, palettes
    targets = style_grams(loss_net, images, default_exercises())
    photos, pairs = _sources(dataset, distil, names, size, log)
    widths, num_res = tuple(widths or WIDTHS), num_res or NUM_RES

    torch.manual_seed(seed)  # the network's initial weights
    net = TransformerNet(len(styles), widths, num_res, impl, noise).to(device)
    trained = _trained(net, names, only, init)
    start_from = _start_from(net, init, names) if init is not None else {}
    config = dict(styles=names, dataset=str(dataset) if dataset else "built-in photos", size=size,
                  style_size=style_size, batch_size=batch_size, lr=lr, seed=seed, widths=widths,
                  num_res=num_res, work_side=work_side, norm_lr_scale=NORM_LR_SCALE, tiles=tiles, noise=noise,
                  init=str(init) if init else None, precision=precision, **common.as_dict(),
                  per_style={name: objective.as_dict() for name, objective in objectives.items()})
    if distil is not None:  # recorded only when used, so that a checkpoint whose config has no distil entry still resumes
        config.update(distil=str(distil), pixel_weight=pixel_weight)
    extras = dict(palette_weight=palette_weight, shade_weight=shade_weight, recolour=recolour, only=list(only or ()))
    config.update({key: value for key, value in extras.items() if value})
    colours = colours_of(images) if recolour else None
    run = Run(net, config, Path(out), seed)
    if resume and run.checkpoint.is_file():
        run.resume(lr, steps, log)
    if pairs or palette_weight or shade_weight:
        from stylelab.distil import distil_step, palette

        palettes = [palette(image) for image in images]

    net.train()
    every = max(1, min(checkpoint_every, steps // 20 or 1))
    while run.step < steps and (max_seconds is None or run.seconds < max_seconds):
        start = time.perf_counter()
        # step t trains style t mod S (of the styles trained), with its own objective: each equally often
        which = trained[run.step % len(trained)]
        style_mix = F.one_hot(torch.full((batch_size,), which), len(styles)).float().to(device)  # (N, S)
        grams = [layer[which:which + 1] for layer in targets]  # (1, C, C) per layer
        objective = objectives[names[which]]
        loss_net.cnn[0].tiles = tiles_of[names[which]]  # the style images were seen whole; the crops are tiled
        if names[which] in pairs:
            batch, paintings = (x.to(device) for x in pairs[names[which]].batch(batch_size, run.generator))
        else:
            batch, paintings = photos.batch(batch_size, run.generator).to(device), None
        if colours is not None:
            batch = match_colours(batch, colours["mean"][which:which + 1], colours["cov"][which:which + 1])
        drawn = noise * torch.randn(batch.shape, generator=run.generator).to(device) if noise else None
        if paintings is None and not palette_weight and not shade_weight:
            losses = impl.train_step(run.params, run.optimizer, loss_net.cnn, batch, grams, style_mix,
                                     loss_net.content_layer, objective.content_weight, loss_net.style_layers,
                                     list(objective.style_weights), objective.tv_weight, drawn)
        else:
            losses = distil_step(impl, run.params, run.optimizer, loss_net, batch, paintings, grams, style_mix,
                                 objective, pixel_weight, palettes[which], palette_weight, shade_weight, drawn)
        run.advance(losses, time.perf_counter() - start)
        if run.step % every == 0 or run.step == steps:
            log(_progress(run, steps, max_seconds, names[which], losses))
        if run.step % checkpoint_every == 0 and run.step < steps:
            run.save()
    run.save()
    if run.step < steps:
        log(f"stopped after {run.step} of {steps} steps: the {max_seconds:g} s of max_seconds are spent")
    if photos is not None and photos.skipped:
        log(f"skipped {len(photos.skipped)} unreadable files of {len(photos.paths)} in {dataset}")
    training = dict(command=command, steps=run.step, seconds=round(run.seconds, 1), device=str(device),
                    torch=str(torch.__version__), threads=torch.get_num_threads(), **_plain(run.config),
                    lr_schedule=run.schedule, held_out=[] if dataset else list(HELD_OUT), init_training=start_from)
    net.eval()
    return save_model(out, net, names, training, work_side, colours)


def _check(styles, size, tiles, max_seconds, steps, checkpoint_every, noise):
    """Refuse settings that cannot train, naming the flag to change."""
    if not styles:
        raise ValueError("give at least one style image (--style)")
    if not 0 <= noise <= 1:  # also refuses nan
        raise ValueError(f"--noise {noise}: give a standard deviation from 0 (no noise) to 1; 0.1 is the default")
    if size % 8:
        raise ValueError(f"--size {size} must be a multiple of 8 (the network halves it three times)")
    for name, k in tiles.items():
        if k < 1 or size % k:
            raise ValueError(f"--tiles {name}={k}: give a whole number of tiles, at least 1, that divides "
                             f"--size {size}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"a time budget must be above 0 (--minutes {max_seconds / 60:g})")
    if checkpoint_every < 1 or steps < 1:
        raise ValueError(f"--steps ({steps}) and --checkpoint-every ({checkpoint_every}) must be at least 1")


def _device(device):
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA device torch can use; "
                         f"leave --device out (CUDA when there is one, else the CPU) or give cpu")
    return device


def _sources(dataset, distil, names, size, log):
    """(Photos or None, {style: Pairs}): the photos, and the corpora of the styles trained towards the
    engine's paintings (those with a folder under distil)."""
    if distil is None:
        return Photos(dataset, size), {}
    from stylelab.distil import Pairs  # the instructor's kit only: a student release leaves it out

    with_corpus = [name for name in names if Path(distil, name).is_dir()]
    if not with_corpus:
        raise ValueError(f"--distil {distil} holds no folder named after a style of this run ({', '.join(names)}); "
                         f"build one with python -m stylelab distil")
    pairs = {name: Pairs(Path(distil, name), size) for name in with_corpus}
    photos_for = [name for name in names if name not in pairs]
    if photos_for:
        log(f"no corpus in {distil} for {', '.join(photos_for)}: trained on the photos")
    return Photos(dataset, size) if photos_for else None, pairs


def _progress(run, steps, max_seconds, style, losses):
    """One line of progress: the bar, the step's losses, the time per step and the time left."""
    eta = run.seconds / run.step * (steps - run.step)
    if max_seconds is not None:
        eta = max(0.0, min(eta, max_seconds - run.seconds))
    terms = ", ".join(f"{name} {value:.3g}" for name, value in losses.items() if name != "total")
    return (f"{_bar(run.step, steps)} {run.step}/{steps}  {style}: loss {losses['total']:.4g} ({terms})  "
            f"{run.seconds / run.step:.2f} s/step, {eta / 60:.1f} min left")


class Run:
    """A training run's state: the network's optimiser, the batch generator, the step count and time, and
    its checkpoint (out + '.ckpt'), written and resumed whole."""

    def __init__(self, net, config, out, seed):
        self.net, self.config = net, config
        self.params = dict(net.named_parameters())
        is_norm = [k.endswith((".gamma", ".beta")) for k in self.params]  # one row per style
        self.optimizer = torch.optim.Adam(
            [{"params": [v for v, norm in zip(self.params.values(), is_norm) if not norm]},
             {"params": [v for v, norm in zip(self.params.values(), is_norm) if norm]}])
        _set_lr(self.optimizer, config["lr"])
        self.generator = torch.Generator().manual_seed(seed)  # the batches, on the CPU for every device
        self.checkpoint = out.with_name(out.name + ".ckpt")
        self.step, self.seconds, self.history = 0, 0.0, []
        self.schedule = [[0, config["lr"]]]  # [first step, learning rate]: a resume with another lr starts a new entry

    def resume(self, lr, steps, log):
        # on the CPU: the batch generator's state must stay there; load_state_dict moves the rest
        saved = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        if _but_lr(saved["config"]) != _but_lr(_plain(self.config)):
            raise ValueError(f"{self.checkpoint} was written with other settings ({saved['config']}); "
                             f"delete it or run with those settings (only --lr may change)")
        self.net.load_state_dict(saved["net"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.generator.set_state(saved["generator"])
        self.step, self.seconds, self.history = saved["step"], saved["seconds"], saved["history"]
        self.config["lr"] = saved["config"]["lr"]  # the rate it started with; schedule holds the rest
        self.schedule = saved.get("lr_schedule", [[0, self.config["lr"]]])
        log(f"resuming {self.checkpoint} at step {self.step}/{steps}")
        if lr != self.schedule[-1][1]:  # lowering the rate for the steps left: the loss had stopped falling
            log(f"learning rate {lr:g} from step {self.step} on (was {self.schedule[-1][1]:g})")
            self.schedule.append([self.step, lr])
            _set_lr(self.optimizer, lr)

    def advance(self, losses, seconds):
        if not math.isfinite(losses["total"]):
            raise FloatingPointError(f"the loss became {losses['total']} at step {self.step + 1}; "
                                     f"try a smaller --lr than {self.schedule[-1][1]}")
        self.step += 1
        self.seconds += seconds
        self.history.append(losses["total"])

    def save(self):
        torch.save({"config": _plain(self.config), "net": self.net.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                    "step": self.step, "seconds": self.seconds, "history": self.history,
                    "lr_schedule": self.schedule}, self.checkpoint)


def _trained(net, names, only, init):
    """The indices of the styles a run trains: all, or only those named, whose norm rows alone then learn."""
    if not only:
        return list(range(len(names)))
    if init is None or set(only) - set(names):
        raise ValueError(f"--only {' '.join(only)}: name styles of this run ({', '.join(names)}), with --init "
                         f"the model whose shared convolutions they keep")
    for key, value in net.named_parameters():
        value.requires_grad_(key.endswith((".gamma", ".beta")))  # the shared convolutions stay as init left them
    return [names.index(name) for name in only]


def _start_from(net, path, names):
    """Load a trained model's weights into net; returns how that model was trained (its training record)."""
    from stylelab.fast import load_model

    model = load_model(path)
    if model.styles != names or model.net.widths != net.widths or model.net.num_res != net.num_res:
        raise ValueError(f"--init {path} holds styles {model.styles}, widths {list(model.net.widths)} and "
                         f"{model.net.num_res} residual blocks; this run has {names}, {list(net.widths)} and "
                         f"{net.num_res}: start from a model of the same styles, in the same order, and widths")
    net.load_state_dict({k: v.float() for k, v in model.net.state_dict().items()})
    return model.training


def _set_lr(optimizer, lr):
    """The shared convolutions at lr, each style's own norm parameters at NORM_LR_SCALE times it."""
    for group, scale in zip(optimizer.param_groups, (1.0, NORM_LR_SCALE)):
        group["lr"] = lr * scale


def _but_lr(config):
    return {k: v for k, v in config.items() if k != "lr"}


def _plain(config):
    """Settings as plain lists and numbers, to store with weights_only and compare after loading."""
    return {k: _plain(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v
            for k, v in config.items()}
