"""What the lab notebooks share: whose code runs, quick mode, and the figures.

- `exercises(file=...)`: the module the notebooks call: the student's starter/
  by default, `STYLELAB_IMPL=solutions` for the reference (the kit's own tests
  and instructors), or a folder holding style_transfer.py and fast_transfer.py.
  The grader's --impl and check() take the same names.
- `pick(full, quick)`: a setting, shrunk when `STYLELAB_QUICK=1` (CI runs every
  notebook top to bottom that way in seconds).
- Figures with titles and labelled axes: `show`, `feature_maps`, `heatmap`,
  `loss_curves`, and `Snapshots`, a style_transfer callback for a strip.
- `transfer_panel` and `mix_panel`: the ipywidgets playgrounds of labs 3 and 5,
  built in functions so they can be tested without a browser.
"""

import os

import numpy as np
import torch

from stylelab.images import to_pil  # noqa: F401 (the labs call lab.to_pil)


def exercises(impl=None, file="style_transfer.py"):
    """The exercises module file: from impl, else $STYLELAB_IMPL, else 'starter' (fresh, so edits count)."""
    from stylelab import impl as impls

    return impls.load(impl, file)


def quick():
    return os.environ.get("STYLELAB_QUICK", "") not in ("", "0")


def pick(full, quick_value):
    """full normally, quick_value in quick mode."""
    return quick_value if quick() else full


def _plt():
    import matplotlib.pyplot as plt

    return plt


def show(images, titles=None, suptitle=None, ncols=None, deprocess=None, size=3.0):
    """A row (or grid) of images: PIL images, or (1, 3, H, W) tensors with their deprocess."""
    plt = _plt()
    images = [to_pil(im, deprocess) if isinstance(im, torch.Tensor) else im for im in images]
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            if titles:
                ax.set_title(titles[k])
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    plt.show()


def feature_maps(feats, layers, names, channels=6, suptitle="Feature maps"):
    """channels maps of each chosen layer, one row per layer, each map normalised on its own."""
    plt = _plt()
    figure, axes = plt.subplots(len(layers), channels, figsize=(1.8 * channels, 1.9 * len(layers)), squeeze=False)
    for row, layer in zip(axes, layers):
        maps = feats[layer][0].detach()  # (C, H, W)
        strongest = maps.flatten(1).mean(1).argsort(descending=True)[:channels]
        for ax, c in zip(row, strongest):
            ax.imshow(maps[c].numpy(), cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{names[layer]}\n{tuple(maps.shape[1:])}")
    figure.suptitle(f"{suptitle}: the {channels} most active channels per layer")
    figure.tight_layout()
    plt.show()


def heatmap(matrix, title, label="channel"):
    plt = _plt()
    figure, ax = plt.subplots(figsize=(5, 4.3))
    image = ax.imshow(np.asarray(matrix), cmap="viridis")
    ax.set_title(title)
    ax.set_xlabel(label)
    ax.set_ylabel(label)
    figure.colorbar(image, ax=ax)
    figure.tight_layout()
    plt.show()


def loss_curves(history, title="Losses during the optimisation"):
    """total, content, style and tv losses per evaluation, on a log scale."""
    plt = _plt()
    figure, ax = plt.subplots(figsize=(7, 4))
    for key in ("total", "content", "style", "tv"):
        values = np.asarray(history[key], dtype=float)
        if (values > 0).any():
            ax.plot(np.arange(1, len(values) + 1), np.where(values > 0, values, np.nan), label=key)
    ax.set_yscale("log")
    ax.set_xlabel("loss evaluation (forward and backward pass)")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title)
    ax.legend()
    figure.tight_layout()
    plt.show()


class Snapshots:
    """A style_transfer callback keeping the first image evaluated, then one every `every` evaluations.

    steps[k] counts the evaluations made when images[k] was evaluated: 1 for the start.
    """

    def __init__(self, every):
        self.every, self.images, self.steps = every, [], []

    def __call__(self, t, img, losses):
        if t == 0 or (t + 1) % self.every == 0:
            self.images.append(img.detach().clone())
            self.steps.append(t + 1)


def transfer_panel(ex):
    """Dropdowns, sliders and a run button around run_transfer with the exercises in ex.

    Returns the widget; .controls, .button, .output and .result (the last run) are there for tests.
    """
    import ipywidgets as widgets
    from IPython.display import display

    from stylelab.examples import CONTENT_IMAGES, STYLE_IMAGES
    from stylelab.objective import PRESETS
    from stylelab.transfer import run_transfer

    controls = {
        "content": widgets.Dropdown(options=list(CONTENT_IMAGES), value="chelsea", description="content"),
        "style": widgets.Dropdown(options=list(STYLE_IMAGES), value="swirls", description="style"),
        "content_scale": widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, description="content ×"),
        "style_scale": widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, description="style ×"),
        "tv_weight": widgets.FloatLogSlider(value=10.0, base=10, min=-1, max=3, description="tv weight"),
        "size": widgets.IntSlider(value=pick(160, 32), min=32, max=384, step=16, description="size (px)"),
        "num_iters": widgets.IntSlider(value=pick(60, 4), min=2, max=300, step=2, description="iterations"),
    }
    button = widgets.Button(description="Run style transfer", button_style="primary")
    output = widgets.Output()
    preset = PRESETS["vgg19"]

    def on_click(_):
        values = {k: c.value for k, c in controls.items()}
        with output:
            output.clear_output()
            print(f"running {values['num_iters']} iterations at {values['size']} px...")
            result = run_transfer(
                values["content"], values["style"], size=values["size"], num_iters=values["num_iters"],
                impl=ex, objective=preset.scaled(values["content_scale"], values["style_scale"]).but(
                    tv_weight=values["tv_weight"]))
            output.clear_output()
            display(result.image)
        panel.result = result

    button.on_click(on_click)
    panel = widgets.VBox([widgets.HBox([controls["content"], controls["style"]]),
                          *[controls[k] for k in ("content_scale", "style_scale", "tv_weight", "size", "num_iters")],
                          button, output])
    panel.controls, panel.button, panel.output, panel.result = controls, button, output, None
    return panel


def montage(image_a, image_b, ratio, height=256):
    """One style image: `ratio` of it from image_a, the rest from image_b (see transfer.blend_styles)."""
    from stylelab.transfer import blend_styles

    return blend_styles([image_a, image_b], [ratio, 1 - ratio], height)


class Timer:
    """A style_transfer callback recording (seconds since the first evaluation, total loss)."""

    def __init__(self):
        import time

        self.clock, self.start, self.seconds, self.totals = time.perf_counter, None, [], []

    def __call__(self, t, img, losses):
        now = self.clock()
        self.start = now if self.start is None else self.start
        self.seconds.append(now - self.start)
        self.totals.append(losses["total"])


def curves(series, title, xlabel, ylabel, log=True):
    """Several (x, y) curves on one plot: series maps a label to (xs, ys)."""
    plt = _plt()
    figure, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    figure.tight_layout()
    plt.show()


def surfaces(alphas, betas, landscape, title):
    """The total, content and style losses over a 2-D slice, as three surface plots."""
    plt = _plt()
    A, B = np.meshgrid(np.asarray(alphas), np.asarray(betas), indexing="ij")
    figure = plt.figure(figsize=(15, 4.6))
    for k, key in enumerate(("total", "content", "style")):
        ax = figure.add_subplot(1, 3, k + 1, projection="3d")
        ax.plot_surface(A, B, np.asarray(landscape[key]), cmap="viridis")
        ax.set_title(f"{key} loss")
        ax.set_xlabel("a (along d1)")
        ax.set_ylabel("b (along d2)")
        ax.set_zlabel("loss")
    figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def mix_panel(model, image, size=384):
    """Lab 5's playground: one slider per style of a fast model, and the picture following them.

    model: a stylelab.fast.FastModel; image: a PIL photo (its longer side is
    brought to size). Returns the widget; panel.render() redraws it, as a
    slider's move does.

    The picture is an Image widget whose bytes are replaced, not an Output
    widget that a redraw clears and displays into: run headless (nbclient,
    nbval, nbconvert), an Output widget written while its cell executes makes
    nbclient answer on the kernel's shell channel while it waits for that
    cell's reply there: with one, lab 5 stalls in that wait in 2 of 3 runs.
    """
    import io
    import time

    import ipywidgets as widgets

    from stylelab.fast import stylize

    image = image.copy()
    image.thumbnail((size, size))
    sliders = {name: widgets.FloatSlider(value=1.0 if k == 0 else 0.0, min=0, max=1, step=0.05,
                                         description=name, continuous_update=True)
               for k, name in enumerate(model.styles)}
    preserve = widgets.Checkbox(False, description="keep the photo's colours")
    picture = widgets.Image(format="png", width=image.width, height=image.height)
    status = widgets.Label()

    def render(_=None):
        mix = {name: s.value for name, s in sliders.items()}
        if sum(mix.values()) <= 0:
            status.value = "move at least one slider above 0"
            return
        start = time.perf_counter()
        panel.result = stylize(model, image, mix, preserve.value)
        status.value = f"{panel.result.width}x{panel.result.height} in {time.perf_counter() - start:.2f} s"
        buffer = io.BytesIO()
        panel.result.save(buffer, format="PNG")
        picture.value = buffer.getvalue()

    for control in (*sliders.values(), preserve):
        control.observe(render, names="value")
    panel = widgets.VBox([*sliders.values(), preserve, status, picture])
    panel.sliders, panel.preserve, panel.picture, panel.status = sliders, preserve, picture, status
    panel.result, panel.render = None, render
    return panel
