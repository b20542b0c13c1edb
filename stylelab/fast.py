"""Fast style transfer: the transformation network's module, model files, stylising and ONNX.

The network's forward pass is the exercises' own `transformer_net`
(solutions/fast_transfer.py: Johnson et al., ECCV 2016, with Dumoulin et al.'s
conditional instance normalisation, ICLR 2017), the reference's computed with
its enlargements folded (stylelab/fused.py); this file only holds its
parameters, reads and writes trained models, frames and pads photos of any size
for it, can stylise a reduced copy and enlarge it with the photo as a guide (He and
Sun's fast guided filter, 2015), and exports it to ONNX. Training lives in
stylelab/train.py.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from stylelab.backbones import PRECISIONS
from stylelab.images import ImageError, pil_to_rgb, resize, to_pil
from stylelab.impl import default as default_exercises
from stylelab.impl import reference as reference_exercises

WIDTHS = (16, 32, 64)  # channels after conv1, conv2, conv3 (Johnson et al.: 32, 64, 128)
NUM_RES = 5
MULTIPLE = 8  # three stride-2 convolutions: sides must divide by 2**3
MIN_SIDE = 16
# stylize hands the network the photo inside a mirrored frame this wide and crops the frame
# off, so the network's own edge (where its convolutions pad) falls outside the picture.
# Without it fast3.pt painted a dotted column down coffee's right side at 768 px (2.10 times
# as busy as the photo's own edge); with 8 every side of both held-out photos, every style,
# at 256 and 768 px, is within 1.04 of the photo's. Wider frames did worse (1.31 at 16,
# 1.39 at 32: the mirror's seam), and 8 costs 4% more pixels at 1024x768.
FRAME = 8
# The standard deviation of the noise added to the photo the way down sees (transformer_net's
# noise): new noise each training step, and NOISE_TILE-square tiles of one fixed draw when
# stylising, so that a photo always comes out the same, any size, in torch and in ONNX.
NOISE, NOISE_TILE, NOISE_SEED = 0.1, 256, 0
MAX_SIDE = 2048  # the longest side stylize resizes a photo to: 2048x1536 took 1.7 s and 0.7 GB here
FORMAT = "stylelab-fast-model"
SHIPPED = Path(__file__).resolve().parent / "models" / "fast3.pt"


class Conv(nn.Module):
    """The weight and bias of one conv_layer, initialised as nn.Conv2d initialises its own."""

    def __init__(self, c_in, c_out, kernel):
        super().__init__()
        template = nn.Conv2d(c_in, c_out, kernel)
        self.weight = nn.Parameter(template.weight.detach().clone())
        self.bias = nn.Parameter(template.bias.detach().clone())


class Norm(nn.Module):
    """One scale and shift per style for conditional_instance_norm: gamma, beta of shape (S, C)."""

    def __init__(self, num_styles, channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))


class Block(nn.Module):
    def __init__(self, num_styles, channels):
        super().__init__()
        self.conv1, self.norm1 = Conv(channels, channels, 3), Norm(num_styles, channels)
        self.conv2, self.norm2 = Conv(channels, channels, 3), Norm(num_styles, channels)


class TransformerNet(nn.Module):
    """The parameters of transformer_net, named as its docstring lists them.

    forward(x, style_mix) calls impl.transformer_net (the reference solutions by
    default, or a student's module) on dict(self.named_parameters()), with the
    fixed noise (fixed_noise) times noise, the standard deviation the network
    was trained with (0: none). The reference solutions' pass runs with its
    enlargements folded into the convolutions after them (stylelab.fused): the
    same picture, 1.4x faster at 1024x768; a student's always runs as written.
    """

    def __init__(self, num_styles=1, widths=WIDTHS, num_res=NUM_RES, impl=None, noise=NOISE):
        super().__init__()
        c1, c2, c3 = widths
        self.num_styles, self.widths, self.num_res, self.noise = num_styles, tuple(widths), num_res, float(noise)
        self.conv1, self.norm1 = Conv(3, c1, 9), Norm(num_styles, c1)
        self.conv2, self.norm2 = Conv(c1, c2, 3), Norm(num_styles, c2)
        self.conv3, self.norm3 = Conv(c2, c3, 3), Norm(num_styles, c3)
        self.res = nn.ModuleList(Block(num_styles, c3) for _ in range(num_res))
        self.up1, self.norm4 = Conv(c3, c2, 3), Norm(num_styles, c2)
        self.up2, self.norm5 = Conv(c2, c1, 3), Norm(num_styles, c1)
        self.up3 = Conv(c1, 3, 3)  # the change to each colour of the photo, before tanh
        # an untrained network returns the photo, so training starts from the subject, not from noise
        nn.init.zeros_(self.up3.weight)
        nn.init.zeros_(self.up3.bias)
        self.impl = impl or default_exercises("fast_transfer")
        if self.noise:  # not in the state_dict: every network draws the same tile
            self.register_buffer("noise_tile", fixed_noise(), persistent=False)

    def forward(self, x, style_mix=None):
        if style_mix is None:  # the first style
            style_mix = F.one_hot(torch.zeros(x.shape[0], dtype=torch.long), self.num_styles).to(x)
        noise = None
        if self.noise:
            # row i and column j of the tile at pixel (i mod NOISE_TILE, j mod NOISE_TILE): gathered
            # by index, which ONNX's exporter keeps dynamic in H and W (a repeat count it would not)
            rows, cols = (torch.arange(n, device=x.device) % NOISE_TILE for n in x.shape[-2:])
            noise = self.noise * self.noise_tile.index_select(2, rows).index_select(3, cols).to(x.dtype)  # (1, 3, H, W)
        params = dict(self.named_parameters())
        if self.impl is reference_exercises("fast_transfer") and not torch.onnx.is_in_onnx_export():
            from stylelab import fused  # the instructor's kit only: it writes transformer_net's layers out

            return fused.transformer_net(self.impl, x, params, style_mix, noise)  # the same picture, faster
        return self.impl.transformer_net(x, params, style_mix, noise)


def fixed_noise(side=NOISE_TILE, seed=NOISE_SEED):
    """The noise a trained network stylises with: a (1, 3, side, side) draw of N(0, 1), the same on every
    machine (torch's CPU generator), repeated over larger pictures."""
    return torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(seed))


@dataclass
class FastModel:
    """A trained network and the names of its styles, in the order of style_mix's columns."""
    net: TransformerNet
    styles: list
    training: dict = field(default_factory=dict)  # how it was made: command, seconds, steps...
    work_side: int = None  # stylise a copy at most this long and enlarge it (guided_upsample); None: full size
    colours: dict = None  # {"mean": (S, 3), "cov": (S, 3, 3)}: each style's colours, or None (stylelab.colour)

    def recolour(self, rgb, style_mix):
        """The (1, 3, H, W) photo in the colours of the style_mix (1, S) blend of the styles' colours, as the
        network was trained to see it (train-fast --recolour); the photo itself for a model without."""
        if self.colours is None:
            return rgb
        from stylelab.colour import match_colours

        mix = style_mix.float()
        return match_colours(rgb, mix @ self.colours["mean"], (mix @ self.colours["cov"].flatten(1)).view(1, 3, 3))

    @property
    def dtype(self):
        """What the network computes in: torch.float32 or torch.bfloat16 (load_model's precision)."""
        return self.net.conv1.weight.dtype

    @property
    def device(self):
        """Where the network runs: model.net.to("cuda") moves it, and stylize follows."""
        return self.net.conv1.weight.device

    def mix(self, weights=None):
        """A (1, S) style_mix from {style name: weight} (normalised to sum 1); None -> the first style."""
        weights = weights or {self.styles[0]: 1.0}
        unknown = [name for name in weights if name not in self.styles]
        if unknown:
            raise KeyError(f"this model has no style {unknown[0]!r}; its styles are: {', '.join(self.styles)}")
        values = torch.tensor([float(weights.get(name, 0.0)) for name in self.styles])
        if (values < 0).any() or not math.isfinite(float(values.sum())) or values.sum() <= 0:
            raise ValueError(f"style weights must be >= 0 and not all 0; got {dict(weights)}")
        return (values / values.sum()).unsqueeze(0)  # (1, S)


def save_model(path, net, styles, training=None, work_side=None, colours=None):
    """Write a trained network as float16 (half the size; stylising runs in float32).

    colours: {"mean": (S, 3), "cov": (S, 3, 3)} for a network trained on photos
    recoloured to each style's colours (FastModel.recolour), else None."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    colours = None if colours is None else {k: v.detach().float().cpu() for k, v in colours.items()}
    torch.save({"format": FORMAT, "version": 1, "styles": list(styles), "widths": list(net.widths),
                "num_res": net.num_res, "noise": net.noise, "work_side": work_side, "training": dict(training or {}),
                "colours": colours,
                "state_dict": {k: v.detach().to("cpu", torch.float16) for k, v in net.state_dict().items()}},
               path)
    return path


def load_model(path=SHIPPED, impl=None, channels_last=None, precision="float32"):
    """A FastModel from a file save_model wrote (loaded safely: tensors and plain data only).

    impl: the module whose transformer_net runs it (the reference solutions if None).
    channels_last: store the weights channels-last, so the activations follow:
    oneDNN's convolutions run faster that way (1024x768: 0.116 s -> 0.097 s for
    the network, bench/), but `x.view(N, C, H * W)` then fails, so by default it
    is on for the reference solutions only, as in stylelab.transfer.
    precision: "float32", or "bfloat16", which runs the whole network in
    bfloat16 (stylize hands it a bfloat16 photo and returns float32): 1.4-1.5x
    faster at 1024x768 where the CPU has bfloat16 instructions, and the
    stylised pixels differ by under 4 levels in 98.5% of cases.
    speed.choice("fast")["precision"] is what is fastest here (the CLI and
    the demo use it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; train one with `python -m stylelab train-fast` "
                                f"or leave --model out to use the shipped {SHIPPED.name}")
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a model file stylelab can read ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]})") from None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        raise ValueError(f"{path} is not a stylelab fast model (a checkpoint? pass the --out file of "
                         f"train-fast, not its .ckpt)")
    net = TransformerNet(len(stored["styles"]), stored["widths"], stored["num_res"], impl, stored.get("noise", 0.0))
    net.load_state_dict({k: v.float() for k, v in stored["state_dict"].items()})
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    net.to(getattr(torch, precision))
    if impl is None if channels_last is None else channels_last:
        net.to(memory_format=torch.channels_last)
    return FastModel(net.eval().requires_grad_(False), list(stored["styles"]), stored.get("training", {}),
                     stored.get("work_side"), stored.get("colours"))


def reuse_freed_memory():
    """Ask glibc to keep freed memory for reuse rather than hand it back to the system.

    At 1024x768 each layer's activations take tens of MB. glibc serves blocks
    that large with mmap and unmaps them on free, so every layer of every
    stylisation pays page faults on fresh memory; keeping them cut a 1024x768
    stylisation from 0.18 s to 0.14 s here (bench/bench_fast.py). Process-wide:
    the CLI and the demo call it, the library does not on its own. Returns
    whether it took effect (never off Linux's glibc).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30) and mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


def return_freed_memory():
    """Hand memory freed by finished work back to the system (glibc's malloc_trim).

    reuse_freed_memory keeps freed blocks for the next stylisation; a server
    that has just painted a large picture should not keep them while it idles:
    after two 512-px paintings this took a process from 1.76 GB back to 0.68 GB.
    Returns whether it took effect (never off Linux's glibc).
    """
    import ctypes
    import gc

    gc.collect()  # tensors held only by reference cycles go first
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def pad_to_multiple(rgb, multiple=MULTIPLE, frame=0):
    """Reflect-pad a (N, 3, H, W) batch by frame on every side, then on the bottom and right so
    both sides divide by multiple; the picture is at [frame:frame + H, frame:frame + W]."""
    H, W = rgb.shape[-2:]
    if min(H, W) < MIN_SIDE:
        raise ImageError(f"the image is {W}x{H} pixels; fast style transfer needs at least "
                         f"{MIN_SIDE} pixels on each side")
    right, bottom = frame + -(W + 2 * frame) % multiple, frame + -(H + 2 * frame) % multiple
    return F.pad(rgb, (frame, right, frame, bottom), mode="reflect")


def _box(x, radius):
    """The mean of each (2 radius + 1)-wide square around every pixel of a (N, C, H, W) batch."""
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)


def luma(rgb):
    """The Y of YIQ (the labs' YIQ_FROM_RGB) of a (N, 3, H, W) batch: (N, 1, H, W)."""
    weights = torch.tensor(default_exercises().YIQ_FROM_RGB[0], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("c,nchw->nhw", weights, rgb).unsqueeze(1)


GUIDE_RADIUS = 1  # at the reduced size: the window of each local model is 3x3 pixels of the copy
GUIDE_EPS = 1e-3  # larger: smoother, nearer plain enlarging; smaller: more of the photo's edges


def guided_upsample(small_out, small_photo, photo, radius=GUIDE_RADIUS, eps=GUIDE_EPS):
    """Enlarge a stylised copy to the photo's size, its detail guided by the photo (He and Sun 2015).

    The fast guided filter: in each small window of the reduced copy, the
    stylised picture is fitted as a linear function of the photo's luminance,
    out = a * luma + b; a and b are smooth, so they are enlarged by bilinear
    interpolation and applied to the full-size photo's luminance. The edges
    of the subject come back sharp where plain enlarging would blur them.

    small_out, small_photo: (N, 3, h, w); photo: (N, 3, H, W); all in [0, 1].
    Returns (N, 3, H, W) in [0, 1].
    """
    guide = luma(small_photo)  # (N, 1, h, w)
    mean_guide, mean_out = _box(guide, radius), _box(small_out, radius)
    covariance = _box(guide * small_out, radius) - mean_guide * mean_out  # (N, 3, h, w)
    variance = _box(guide * guide, radius) - mean_guide * mean_guide  # (N, 1, h, w)
    a = covariance / (variance + eps)
    b = mean_out - a * mean_guide
    size = photo.shape[-2:]
    a = F.interpolate(_box(a, radius), size=size, mode="bilinear", align_corners=False)  # (N, 3, H, W)
    b = F.interpolate(_box(b, radius), size=size, mode="bilinear", align_corners=False)
    return torch.addcmul(b, a, luma(photo)).clamp(0, 1)


def stylize(model, image, mix=None, preserve_color=False, size=None, run=None):
    """Stylise a photo of any size with a FastModel; returns a PIL image.

    image: a PIL image or an RGB (1, 3, H, W) tensor in [0, 1]. mix: {style: weight}
    (see FastModel.mix). preserve_color keeps the photo's colours and takes only
    the luminance from the stylised image (Gatys et al. 2017). size: the
    output's size, as for stylelab.images.resize (the shorter side, or (H, W)):
    a small photo is enlarged first and a large one shrunk, up to MAX_SIDE on
    the longer side; None keeps the photo's size. A model trained with
    train-fast --recolour first recolours the photo to the blend of its styles'
    colours (FastModel.recolour). A photo longer than the model's work_side is
    stylised from a copy of that length and enlarged by
    guided_upsample, so strokes keep their size relative to the picture. The
    network sees the photo inside a mirrored frame (FRAME) that is cropped off.
    run: what computes the network, run(padded (1, 3, h, w), style_mix) ->
    (1, 3, h, w) tensor (an ONNX session, say); None: model.net.
    """
    photo = image if isinstance(image, torch.Tensor) else pil_to_rgb(image)
    if size is not None:
        photo = resize(photo, size)
        if max(photo.shape[-2:]) > MAX_SIDE:
            raise ImageError(f"asked for {photo.shape[-1]}x{photo.shape[-2]} pixels; fast style transfer makes "
                             f"at most {MAX_SIDE} on the longer side: ask for a smaller size")
    style_mix = model.mix(mix)
    rgb = model.recolour(photo, style_mix)
    H, W = rgb.shape[-2:]
    small = rgb
    if model.work_side and max(H, W) > model.work_side:
        scale = model.work_side / max(H, W)
        small = resize(rgb, (max(MIN_SIDE, round(H * scale)), max(MIN_SIDE, round(W * scale))))
    h, w = small.shape[-2:]
    dtype, device = (model.dtype, model.device) if run is None else (torch.float32, "cpu")
    with torch.inference_mode():
        out = (run or model.net)(pad_to_multiple(small, frame=FRAME).to(device, dtype), style_mix.to(device, dtype))
        out = out[..., FRAME:FRAME + h, FRAME:FRAME + w].float().cpu()
        if small is not rgb:
            out = guided_upsample(out, small, rgb)
        if preserve_color:
            out = default_exercises().luminance_only(out, photo)
    return to_pil(out)


class _Exported(nn.Module):
    """forward(image, style_mix) with the network's parameters as constants, for ONNX."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image, style_mix):
        return self.net(image, style_mix)


def export_onnx(model, path, example_size=(256, 256)):
    """Write model as ONNX: inputs image (1, 3, H, W) in [0, 1] and style_mix (1, S); output
    stylized (1, 3, H, W). H and W may change from call to call but must be multiples of 8:
    pad other sizes first and crop after, as pad_to_multiple and stylize do."""
    import importlib.util
    import inspect
    import warnings

    if importlib.util.find_spec("onnx") is None:
        raise ValueError("exporting to ONNX needs the onnx package: pip install onnx onnxruntime "
                         "(stylelab's `deploy` extra)")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = torch.rand(1, 3, *example_size)
    # torch 2.5 added a dynamo exporter (the default from 2.9) and the argument that
    # picks it; before that, TorchScript's exporter was the only one: same file
    choose = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(_Exported(model.net).eval(), (image, model.mix()), str(path),
                          input_names=["image", "style_mix"], output_names=["stylized"],
                          dynamic_axes={"image": {2: "height", 3: "width"},
                                        "stylized": {2: "height", 3: "width"}},
                          opset_version=17, **choose)
    return path
