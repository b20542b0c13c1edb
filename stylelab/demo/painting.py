"""What the demo paints: Gatys et al. (CVPR 2016) streamed from the engine, and the fast network's pictures.

`Painting` is one request to /paint, its inputs by the names the API gives
them; `stream` runs it and yields what the page shows as it paints: the
picture at the start, after the first step and then every FRAME_GAP seconds,
a loss plot (all four terms, log scale) once a second, and at the end the
picture and a PNG to download. The engine runs in a thread (`paint`), so that
Stop ends it at its next evaluation with the best picture so far. Several
styles blend through a montage whose widths follow the normalised weights (a
Gram matrix averages over positions, so the montage's targets are the
weighted blend). The exercises run are whichever stylelab.impl.default picks:
the reference solutions, or in a student release the student's own starter.
"""

import inspect
import queue
import re
import shutil
import tempfile
import threading
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from stylelab.backbones import BACKBONES, BackboneUnavailable
from stylelab.demo.admission import refuse, read_painting, read_upload
from stylelab.images import ImageError, load_image, to_pil
from stylelab.objective import PRESETS
from stylelab.transfer import blend_styles

FRAME_GAP = 0.4  # seconds between streamed images, after the first two (the start, and the first step)
PLOT_GAP = 1.0  # seconds between redrawn loss plots
STRENGTH_DECADES = 3  # the style weight sliders span 10^-3 to 1 of the preset (see strength)

_RUNS = {}  # painting thread -> its stop event, while it runs
_STOPS = {}  # browser session -> the stop event of its run, for the Stop button


@dataclass(frozen=True)
class Painting:
    """One request to /paint: its inputs, named as the API (gradio_client) names them."""

    content: str
    style_1: str = None
    style_2: str = None
    style_3: str = None
    weight_1: float = 1.0
    weight_2: float = 0.5
    weight_3: float = 0.5
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 10.0
    size: int = 256
    iterations: int = 100
    backbone: str = "vgg19"
    start: str = "recoloured"
    optimizer: str = "lbfgs"
    keep_colours: str = "off"

    @property
    def styles(self):
        return self.style_1, self.style_2, self.style_3

    @property
    def weights(self):
        return self.weight_1, self.weight_2, self.weight_3

    @staticmethod
    def parameters():
        """The fields as a function's parameters, with their defaults: the API's names for /paint's inputs."""
        return [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                  default=inspect.Parameter.empty if f.default is MISSING else f.default)
                for f in fields(Painting)]


def stop_all(timeout=10.0):
    """Stop every painting thread and wait for them (a closing server calls this)."""
    for thread, stop in list(_RUNS.items()):
        stop.set()
        thread.join(timeout)


def stop(session):
    """Stop a browser session's run: it ends with its picture in place and a PNG to download."""
    event = _STOPS.get(session)
    if event is not None:
        event.set()


def strength(weight):
    """A style's weight slider -> the factor on the style loss: 0 for 0, then log-spaced up to 1 (the preset).

    At the presets the style term outweighs the content term by orders of
    magnitude: on chelsea in swirls (192 px, 40 evaluations) the factors 1,
    0.1 and 0.01 look alike and 0.001 is nearly the photo, so a linear slider
    would change the picture only in its first hundredth. Log-spaced over
    STRENGTH_DECADES, 0.05 is nearly the photo and 0.33 a hundredth of the preset.
    """
    return 0.0 if weight <= 0 else 10 ** (STRENGTH_DECADES * (min(weight, 1.0) - 1))


def paint(content, styles, weights, objective, size=256, num_iters=100, backbone="vgg19", init="recoloured",
          optimizer="lbfgs", colour="off", stop=None, gap=FRAME_GAP):
    """Generator of (event, payload): ('image', (t, PIL)), ('loss', (t, losses)), ('done', PIL),
    ('stopped', (evaluations, PIL or None)).

    Runs run_transfer on objective (a stylelab.objective.Objective) in a thread
    so that images stream while it works: the start, the first step, then one
    at least `gap` seconds after the last, and the end. Setting the
    threading.Event `stop` ends the run at its next evaluation, with the best
    picture so far (the engine's) or the last one evaluated (the exercise's loop).
    """
    from stylelab import engine
    from stylelab.impl import default as default_exercises
    from stylelab.transfer import run_transfer

    solutions = default_exercises()
    stop = stop or threading.Event()
    content_rgb = load_image(content, size)
    if colour == "histogram matching":  # recolour each style to the photo's palette first
        styles = [to_pil(solutions.match_color(load_image(s, size), content_rgb)) for s in styles]
    style = blend_styles(styles, weights) if len(styles) > 1 else styles[0]
    deprocess = BACKBONES[backbone][1].deprocess

    def finish(img):
        rgb = deprocess(img).clamp(0, 1)
        if colour == "luminance only":
            rgb = solutions.luminance_only(rgb, load_image(content, tuple(rgb.shape[-2:])))
        return to_pil(rgb)

    events = queue.Queue()
    last = {"t": -1, "img": None, "sent": 0.0}

    def callback(t, img, losses):
        if stop.is_set():
            raise engine.Stop
        last.update(t=t, img=img)
        events.put(("loss", (t, losses)))
        now = time.perf_counter()
        if t < 2 or now - last["sent"] >= gap or t + 1 == num_iters:
            last["sent"] = now
            events.put(("image", (t, finish(img))))

    def work():
        try:
            result = run_transfer(
                content, style, backbone=backbone, size=size, num_iters=num_iters, optimizer=optimizer,
                # the exercise's Adam loop has no recoloured start: it starts from the photo
                init="content" if (optimizer, init) == ("adam", "recoloured") else init, callback=callback,
                objective=objective)
            if stop.is_set():  # the engine ended early and returned its best picture
                events.put(("stopped", (last["t"] + 1, finish(result.img))))
            else:
                events.put(("done", finish(result.img)))
        except engine.Stop:  # out of the exercise's own loop, which knows nothing of Stop
            events.put(("stopped", (last["t"] + 1, None if last["img"] is None else finish(last["img"]))))
        except BaseException as error:  # reported in the UI, never a dead worker
            events.put(("error", error))
        finally:
            _RUNS.pop(threading.current_thread(), None)

    thread = threading.Thread(target=work, daemon=True, name="stylelab-paint")
    _RUNS[thread] = stop
    thread.start()
    try:
        yield from _newest(events)
    finally:
        stop.set()  # a cancelled generator (Stop, a closed tab) ends the thread at its next evaluation


def _newest(events):
    """The events as they come, skipping every image but the newest when the caller falls behind."""
    while True:
        waiting = [events.get()]
        while not events.empty():
            waiting.append(events.get_nowait())
        images = [k for k, (kind, _) in enumerate(waiting) if kind == "image"]
        for k, (kind, payload) in enumerate(waiting):
            if kind == "error":
                raise payload
            if kind == "image" and k != images[-1]:
                continue
            yield kind, payload
            if kind in ("done", "stopped"):
                return


def stream(painting, who, session, limits=None):
    """What /paint shows as painting runs: (picture, loss plot, PNG path, status line) tuples.

    Mistakes in the inputs and failures a visitor can act on come as gr.Error;
    session names the browser session whose Stop button ends this run.
    """
    import gradio as gr

    stop_event, folder, events = threading.Event(), None, None
    try:
        try:
            photo, chosen = read_painting(painting.content, painting.styles, painting.weights, painting.size,
                                          painting.iterations, limits)
        except ImageError as error:
            raise refuse(error, who) from None
        # a blend mixes by the weights' ratios, at the strongest one's strength
        factor = strength(max(w for _, _, w in chosen))
        objective = PRESETS[painting.backbone].scaled(painting.content_weight, painting.style_weight * factor) \
            .but(tv_weight=painting.tv_weight)
        history, started, num_iters, drawn = {}, time.perf_counter(), int(painting.iterations), -PLOT_GAP
        _STOPS[session] = stop_event
        events = paint(photo, [image for _, image, _ in chosen], [w for _, _, w in chosen], objective,
                       int(painting.size), num_iters, painting.backbone, painting.start, painting.optimizer,
                       painting.keep_colours, stop=stop_event)
        for kind, payload in events:
            if kind == "loss":
                t, losses = payload
                for term, value in losses.items():
                    history.setdefault(term, []).append((t + 1, value))
                continue
            seconds = time.perf_counter() - started
            if kind == "image":
                t, image = payload
                # the plot costs 0.1 s to draw: redrawn once a second, while the picture streams
                redraw = seconds - drawn >= PLOT_GAP
                drawn = seconds if redraw else drawn
                yield (image, loss_figure(history) if redraw else gr.skip(), None,
                       f"painting: {t + 1} / {num_iters} evaluations, {seconds:.1f} s")
                continue
            done, image = (num_iters, payload) if kind == "done" else payload
            path = None
            if image is not None:  # Gradio copies it into its own cache, which it cleans
                folder = Path(tempfile.mkdtemp(prefix="stylelab-"))
                path = folder / painted_name(painting.content, [f for f, _, _ in chosen])
                image.save(path)
            yield image, loss_figure(history), path and str(path), (
                f"done: {done} evaluations in {seconds:.1f} s" if kind == "done"
                else f"stopped after {done} evaluations, {seconds:.1f} s")
    except BackboneUnavailable as error:
        raise refuse(error, who) from None
    except NotImplementedError as error:  # a student release whose exercises are not all done yet
        raise refuse(f"the demo runs your own exercises, and one is not written yet ({error}); "
                     f"finish it, then press Paint again", who) from None
    finally:
        if events is not None:
            events.close()  # a closed tab or a cancelled job: ends the painting thread at its next evaluation
        if _STOPS.get(session) is stop_event:
            del _STOPS[session]
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def loss_figure(history):
    """The losses so far on a log axis, one line per term (history: term -> [(evaluation, value)])."""
    from matplotlib.figure import Figure  # not pyplot: each figure stands alone, safe in any thread

    figure = Figure(figsize=(6, 2.8), dpi=90, layout="constrained")
    axes = figure.add_subplot()
    styles = {"total": ("black", "-", 2.2), "content": ("tab:blue", "-", 1.4), "style": ("tab:orange", "-", 1.4),
              "tv": ("tab:green", "--", 1.4)}
    for term, (colour, line, width) in styles.items():
        points = [(t, v) for t, v in history.get(term, []) if v > 0]  # a log axis has no room for 0
        axes.plot(*zip(*points) if points else ([], []), color=colour, linestyle=line, linewidth=width,
                  label=term)
    axes.set_yscale("log")
    axes.set_xlabel("evaluation")
    axes.set_ylabel("loss (log scale)")
    axes.legend(loc="upper right", ncols=4, fontsize="small")
    axes.grid(True, which="major", alpha=0.3)
    return figure


def painted_name(content, styles):
    """The download's name says what was painted: 'astronaut_in_swirls.png', 'cat_in_a+b.png'."""
    def stem(path):
        text = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(path)).stem)
        return text[:40] or "image"

    return f"{stem(content)}_in_{'+'.join(stem(s) for s in styles)}.png"


def fast_stylize(model, content, weights, preserve_color=False, size=512):
    """The Fast tab's work: (PIL image, status line) for a content file and one weight per style."""
    from stylelab.fast import stylize

    image = read_upload(content, "content")
    scale = size / max(image.size)  # the longer side, enlarged or shrunk
    mix = dict(zip(model.styles, (float(w) for w in weights)))
    if sum(mix.values()) <= 0:
        raise ImageError("move at least one style slider above 0")
    start = time.perf_counter()
    out = stylize(model, image, mix, preserve_color,
                  size=(max(1, round(image.height * scale)), max(1, round(image.width * scale))))
    return out, f"{out.width}x{out.height} in {time.perf_counter() - start:.2f} s"


def fast_signature(styles):
    """The Fast tab's inputs as /fast's API names them: content, one weight per style (by its name, the
    first at 1), preserve_color, size."""
    def parameter(name, default=inspect.Parameter.empty):
        return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)

    taken = {"content", "preserve_color", "size"}
    weights = []
    for k, style in enumerate(styles):
        name = re.sub(r"\W", "_", style)  # an identifier, so that a client can pass it by keyword
        name = name if name.isidentifier() else f"style_{name}"
        while name in taken:  # 'my-style' beside 'my_style', or a style called 'size'
            name += "_"
        taken.add(name)
        weights.append(parameter(name, 1.0 if k == 0 else 0.0))
    return inspect.Signature([parameter("content"), *weights, parameter("preserve_color", False),
                              parameter("size", 512)])
