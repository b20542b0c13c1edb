"""The web demo: Gatys et al. (CVPR 2016) style transfer, painted live in the browser.

A Gradio Blocks app around the kit's exercises, whichever implementation
stylelab.impl.default picks (the reference solutions, or in a student
release the student's own starter): the engine runs their losses, and colour
preservation uses their match_color and luminance_only. No second
implementation. A photo and a painting are preselected, so the first click
paints; the built-in ones are thumbnails to click, for the photo or any style
slot. The image streams as it paints with the count and Gradio's queue place
beside it, never over it, and a loss plot (all four terms, log scale) grows
below it; Stop ends the run with its picture and a PNG to download. Several
styles blend through a montage whose widths follow the normalised weights (a
Gram matrix averages over positions, so the montage's targets are the
weighted blend).

Served to a room (any address but localhost, or a share link), it holds to
Limits: a cap on size x evaluations per run and on paintings queued per
visitor. Always: an upload size limit, cached files deleted after an hour,
messages without the server's paths, and one log line, not a traceback, per
user mistake.

A second tab, "Fast", runs the shipped feed-forward network (Johnson et al.
2016, with Dumoulin et al.'s conditional instance norm): one slider per style
it holds, and the picture follows the sliders as they move.

`build_demo()` builds the app and launches nothing; `python -m stylelab demo`
(or `make demo`) launches it.
"""

import functools
import inspect
import logging
import math
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from stylelab import speed
from stylelab.backbones import BACKBONES, BackboneUnavailable, available_backbones, load_backbone
from stylelab.examples import CONTENT_IMAGES, STYLE_IMAGES, example_image
from stylelab.images import ImageError, load_image, open_image, to_pil
from stylelab.objective import PRESETS
from stylelab.transfer import blend_styles

MAX_SIDE = 2048  # uploads are downscaled to this longest side before anything else
MIN_SIDE = 16  # smaller than this and there is nothing for the network to see
FRAME_GAP = 0.4  # seconds between streamed images, after the first two (the start, and the first step)
PLOT_GAP = 1.0  # seconds between redrawn loss plots
MAX_STYLES = 3
STRENGTH_DECADES = 3  # the style weight sliders span 10^-3 to 1 of the preset (see strength)
FIRST_PHOTO, FIRST_STYLE = "astronaut", "swirls"  # preselected, so Paint works on a fresh page
MAX_UPLOAD = "20mb"  # a phone's photo fits; anything larger is refused before it is stored
CACHE_CLEANUP = (600, 3600)  # every 10 minutes, delete uploads and results older than an hour
LOCAL = ("127.0.0.1", "localhost", "::1")
# where a client's file inputs show an example: a real photo, not Gradio's sample PDF
EXAMPLE_URL = "https://raw.githubusercontent.com/scikit-image/scikit-image/main/skimage/data/astronaut.png"

log = logging.getLogger("stylelab.demo")


@dataclass(frozen=True)
class Limits:
    """What one visitor may ask of a server shared with a room."""

    max_work: int = 256 * 256 * 200  # size^2 x evaluations per run: 256 px x 200 or 512 px x 50, ~2 min here
    per_visitor: int = 1  # paintings queued or running at once, per visitor
    hold: float = 600.0  # seconds a queued painting that never starts (a closed tab) still counts


ROOM = Limits()


class Mistake(ImageError):
    """Something a visitor can change: the message, and the name of the input to change (the API's)."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field

_RUNS = {}  # painting thread -> its stop event, while it runs
_STOPS = {}  # browser session -> the stop event of its run, for the Stop button


def stop_all(timeout=10.0):
    """Stop every painting thread and wait for them (a closing server calls this)."""
    for thread, stop in list(_RUNS.items()):
        stop.set()
        thread.join(timeout)


def public(message):
    """message without the server's paths: each absolute path is cut to its file name."""
    return re.sub(r"(?<![\w.:/])(?:[A-Za-z]:)?[\\/](?:[^\s\\/:'\"()]+[\\/])*([^\s\\/:'\"()]*)", r"\1", str(message))


def refuse(message, who=None):
    """A visitor's mistake: its message in the UI, one line in the server's log, no traceback."""
    import gradio as gr
    import torch

    message = public(message)
    log.warning("refused%s: %s", f" ({who})" if who else "", message)
    return gr.Error(message, print_exception=False)


def visitor(request):
    """Who is asking: the client's address, or behind a local proxy or tunnel the address it forwards."""
    client = getattr(getattr(request, "client", None), "host", None) or "unknown"
    forwarded = (request.headers.get("x-forwarded-for") or "") if request is not None else ""
    return (forwarded.split(",")[0].strip() or client) if client in LOCAL else client


class Admissions:
    """The paintings each visitor has queued or running, so that no one visitor fills a shared queue.

    admit() is called when a painting joins the queue (Gradio's validator),
    start() when a worker takes it up, finish() when it ends however it ends.
    A queued painting whose job never starts (its tab was closed) stops
    counting after limits.hold seconds.
    """

    def __init__(self, limits):
        self.limits = limits
        self.lock = threading.Lock()
        self.held = defaultdict(list)  # visitor -> [admitted at, started]

    def admit(self, who):
        with self.lock:
            now = time.monotonic()
            self.held[who] = [h for h in self.held[who] if h[1] or now - h[0] < self.limits.hold]
            if len(self.held[who]) >= self.limits.per_visitor:
                return False
            self.held[who].append([now, False])
            return True

    def start(self, who):
        with self.lock:
            waiting = [h for h in self.held[who] if not h[1]]
            if waiting:
                waiting[0][1] = True
            else:  # not admitted through the queue's validator: counts from now
                self.held[who].append([time.monotonic(), True])

    def finish(self, who):
        with self.lock:
            started = [h for h in self.held[who] if h[1]]
            if started:
                self.held[who].remove(started[0])
            if not self.held[who]:
                del self.held[who]


def strength(weight):
    """A style's weight slider -> the factor on the style loss: 0 for 0, then log-spaced up to 1 (the preset).

    At the presets the style term outweighs the content term by orders of
    magnitude: on chelsea in swirls (192 px, 40 evaluations) the factors 1,
    0.1 and 0.01 look alike and 0.001 is nearly the photo, so a linear slider
    would change the picture only in its first hundredth. Log-spaced over
    STRENGTH_DECADES, 0.05 is nearly the photo and 0.33 a hundredth of the preset.
    """
    return 0.0 if weight <= 0 else 10 ** (STRENGTH_DECADES * (min(weight, 1.0) - 1))


def read_upload(path, role):
    """An uploaded file -> an RGB PIL image no larger than MAX_SIDE, or ImageError for the UI."""
    if not path:
        raise ImageError(f"add a {role} image (upload one or click a built-in one)")
    try:
        image = open_image(path)
    except ImageError as error:  # named by its file name: the server's folders are nobody's business
        raise ImageError(f"the {role} image: {public(error)}") from None
    if min(image.size) < MIN_SIDE:
        raise ImageError(f"the {role} image is {image.size[0]}x{image.size[1]} pixels; "
                         f"give one at least {MIN_SIDE} pixels on each side")
    image.thumbnail((MAX_SIDE, MAX_SIDE))  # huge uploads shrink first, so nothing else pays for them
    return to_pil(load_image(image))  # any mode (RGBA, CMYK, 16-bit, EXIF-rotated) -> RGB


def read_painting(content, styles, weights, size, iterations, limits=None):
    """(photo, [(file, image, weight)]) for a run, or a Mistake naming the input to change.

    Styles with weight 0 are left out; each weight is its style's strength.
    limits caps size^2 x evaluations (a server shared with a room).
    """
    if limits and int(size) ** 2 * int(iterations) > limits.max_work:
        most = limits.max_work // int(size) ** 2
        raise Mistake(f"this server paints at most {limits.max_work // (256 * 256)} evaluations at 256 px per "
                      f"run (size x size x evaluations); at {int(size)} px that is {most}: lower the size or "
                      f"the iterations", "iterations")

    def read(path, role, field):
        try:
            return read_upload(path, role)
        except ImageError as error:
            raise Mistake(str(error), field) from None

    photo = read(content, "content", "content")
    chosen = [(f, read(f, f"style {k + 1}", f"style_{k + 1}"), float(w or 0))
              for k, (f, w) in enumerate(zip(styles, weights)) if f]
    if not chosen:
        raise Mistake("add at least one style image", "style_1")
    if max(w for _, _, w in chosen) <= 0:
        raise Mistake("every style's weight is 0: move at least one above 0", "weight_1")
    return photo, [(f, image, w) for f, image, w in chosen if w > 0]


def example_files(folder):
    """Write the built-in images as PNGs (Gradio's galleries and defaults are files); {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in list(CONTENT_IMAGES) + list(STYLE_IMAGES):
        path = folder / f"{name}.png"
        if not path.exists():
            example_image(name).save(path)
        paths[name] = str(path)
    return paths


def paint(content, styles, weights, content_scale=1.0, style_scale=1.0, tv_weight=10.0, size=256,
          num_iters=100, backbone="vgg19", init="recoloured", optimizer="lbfgs", colour="off",
          stop=None, gap=FRAME_GAP):
    """Generator of (event, payload): ('image', (t, PIL)), ('loss', (t, losses)), ('done', PIL),
    ('stopped', (evaluations, PIL or None)).

    Runs run_transfer in a thread so that images stream while it works: the
    start, the first step, then one at least `gap` seconds after the last, and
    the end. Setting the threading.Event `stop` ends the run at its next
    evaluation, with the best picture so far (the engine's) or the last one
    evaluated (the exercise's loop).
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
    objective = PRESETS[backbone].scaled(content_scale, style_scale).but(tv_weight=tv_weight)

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
            _work()
        finally:
            _RUNS.pop(threading.current_thread(), None)

    def _work():
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

    thread = threading.Thread(target=work, daemon=True, name="stylelab-paint")
    _RUNS[thread] = stop
    thread.start()
    try:
        while True:
            waiting = [events.get()]
            while not events.empty():  # the caller fell behind: only the newest image is worth showing
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
    finally:
        stop.set()  # a cancelled generator (Stop, a closed tab) ends the thread at its next evaluation


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


def build_demo(examples_dir=None, model_path=None, limits=None):
    """The Gradio Blocks app; launches nothing.

    limits: a Limits for a server shared with a room, None for one person's.
    """
    import gradio as gr
    import torch

    from stylelab.fast import SHIPPED, load_model, return_freed_memory

    def image_file(**settings):
        """A file input whose API example is a photo, not Gradio's sample PDF.

        Set on the instance: a subclass of a Gradio component would make Gradio
        write a .pyi stub next to this file at import.
        """
        from gradio_client import handle_file

        upload = gr.File(file_types=["image"], **settings)
        upload.example_payload = lambda: handle_file(EXAMPLE_URL)
        return upload

    paths = example_files(examples_dir or Path(tempfile.gettempdir()) / "stylelab-examples")
    load_backbone("vgg19")  # warm the weights' cache now, so the first Paint streams at once
    speed.use_threads()  # and measure this CPU's fastest settings now (cached), not on the first click
    speed.choice()
    if torch.cuda.is_available():  # a GPU (a Space's, say) runs both the engine and the fast network
        model = load_model(model_path or SHIPPED, channels_last=False)
        model.net.to("cuda")
    else:
        model = load_model(model_path or SHIPPED, precision=speed.choice("fast")["precision"])
    admissions = Admissions(limits) if limits else None

    def admit(content, style_1=None, style_2=None, style_3=None, weight_1=1.0, weight_2=0.5, weight_3=0.5,
              content_weight=1.0, style_weight=1.0, tv_weight=10.0, size=256, iterations=100, backbone="vgg19",
              start="recoloured", optimizer="lbfgs", keep_colours="off", request: gr.Request = None):
        """Run as a painting joins the queue: a mistake, or a visitor over the limit, never takes a place in it.

        Returns one verdict per input, as Gradio's validators do: the browser
        shows a refusal on the input to change, and gradio_client raises it.
        """
        who, names = visitor(request), [p for p in inspect.signature(run).parameters if p != "request"]

        def verdicts(message=None, field=None):
            if message:
                log.warning("refused (%s): %s: %s", who, field, message)
            return [gr.validate(name != field, message if name == field else "") for name in names]

        try:
            read_painting(content, (style_1, style_2, style_3), (weight_1, weight_2, weight_3), size, iterations,
                          limits)
        except Mistake as mistake:
            return verdicts(public(mistake), mistake.field)
        if admissions and not admissions.admit(who):
            return verdicts("you already have a painting queued or running on this server: wait for it to "
                            "finish, or press Stop, then Paint again", "content")
        return verdicts()

    # Named parameters, not *args: they are the API's names (gradio_client), and the
    # optional styles are optional there too.
    def run(content, style_1=None, style_2=None, style_3=None, weight_1=1.0, weight_2=0.5, weight_3=0.5,
            content_weight=1.0, style_weight=1.0, tv_weight=10.0, size=256, iterations=100, backbone="vgg19",
            start="recoloured", optimizer="lbfgs", keep_colours="off", request: gr.Request = None):
        who, session, stop = visitor(request), getattr(request, "session_hash", None), threading.Event()
        if admissions:
            admissions.start(who)
        folder, events = None, None
        try:
            try:
                photo, chosen = read_painting(content, (style_1, style_2, style_3), (weight_1, weight_2, weight_3),
                                              size, iterations, limits)
            except ImageError as error:
                raise refuse(error, who) from None
            # a blend mixes by the weights' ratios, at the strongest one's strength
            factor = strength(max(w for _, _, w in chosen))
            history, started, num_iters, drawn = {}, time.perf_counter(), int(iterations), -PLOT_GAP
            _STOPS[session] = stop
            events = paint(photo, [image for _, image, _ in chosen], [w for _, _, w in chosen], content_weight,
                           style_weight * factor, tv_weight, int(size), num_iters, backbone, start, optimizer,
                           keep_colours, stop=stop)
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
                    path = folder / painted_name(content, [f for f, _, _ in chosen])
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
            if _STOPS.get(session) is stop:
                del _STOPS[session]
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
            if admissions:
                admissions.finish(who)
            return_freed_memory()  # a large painting's memory goes back to the system, not to the idle server

    def stop_run(request: gr.Request):
        """Stop this browser session's run: it ends with its picture in place and a PNG to download."""
        stop = _STOPS.get(getattr(request, "session_hash", None))
        if stop is not None:
            stop.set()

    def run_fast(content, *args):
        *weights, preserve_color, size = args
        try:
            return fast_stylize(model, content, weights, preserve_color, int(size))
        except ImageError as error:
            raise refuse(error) from None

    # the API names each weight by its style, as /paint names its inputs: a model's styles are known only here
    run_fast.__signature__ = fast_signature(model.styles)

    def picked_photo(evt: gr.SelectData):
        return paths[list(CONTENT_IMAGES)[evt.index]]

    def picked_style(slot, evt: gr.SelectData):
        chosen = paths[list(STYLE_IMAGES)[evt.index]]
        return [chosen if k == int(slot) else gr.update() for k in range(MAX_STYLES)]

    def gallery(names, label, elem_id):
        rows = math.ceil(len(names) / 4)
        return gr.Gallery([(paths[n], n) for n in names], label=label, columns=4, rows=rows, height=125 * rows + 50,
                          allow_preview=False, object_fit="cover", elem_id=elem_id)

    with gr.Blocks(title="stylelab: neural style transfer") as demo:
        with gr.Tabs():
            with gr.Tab("Paint (Gatys et al.)", id="paint-tab"):
                gr.Markdown("# stylelab: neural style transfer\nGatys, Ecker and Bethge (CVPR 2016), "
                            "painted live: pick a photo and one or more styles, then press **Paint**.")
                with gr.Row():
                    with gr.Column():
                        # Files, not gr.Image: Gradio would decode an upload before our code sees it, and a
                        # corrupt one would end in its generic error instead of our message.
                        with gr.Row():
                            content = image_file(label="Content image", height=120,
                                                value=paths[FIRST_PHOTO], elem_id="content")
                            content_preview = gr.Image(paths[FIRST_PHOTO], label="Content", interactive=False,
                                                       height=160)
                        photos = gallery(CONTENT_IMAGES, "Built-in photos: click one", "photos")
                        styles, weights, previews = [], [], []
                        for k in range(MAX_STYLES):
                            with gr.Row():
                                first = paths[FIRST_STYLE] if k == 0 else None
                                # the slider under the file, not beside it: a narrow file box
                                # shows 'swirls.png' as '.p'
                                with gr.Column(scale=3, min_width=240):
                                    styles.append(image_file(label=f"Style {k + 1}",
                                                            height=100, value=first, elem_id=f"style{k + 1}"))
                                    weights.append(gr.Slider(0, 1, value=1.0 if k == 0 else 0.5, step=0.05,
                                                             label=f"weight of style {k + 1} (log scale)",
                                                             elem_id=f"weight{k + 1}"))
                                previews.append(gr.Image(first, label=f"Style {k + 1}", interactive=False,
                                                         height=190, scale=2, min_width=120))
                        slot = gr.Radio([(f"Style {k + 1}", k) for k in range(MAX_STYLES)], value=0,
                                        label="a clicked style goes into", elem_id="slot")
                        paintings = gallery(STYLE_IMAGES, "Built-in styles: click one", "paintings")
                    with gr.Column():
                        output = gr.Image(label="Painting", type="pil", height=360, format="png",
                                          elem_id="painting")
                        with gr.Row(equal_height=True):
                            status = gr.Markdown("Press **Paint** to start.", elem_id="status")
                            # Gradio's progress (queue place, seconds) shows here, beside the picture
                            progress = gr.Markdown("", elem_id="progress", min_width=160, height=44)
                        with gr.Row():
                            paint_button = gr.Button("Paint", variant="primary", elem_id="paint")
                            stop_button = gr.Button("Stop", elem_id="stop")
                        download = gr.File(label="Download PNG", elem_id="download")
                        plot = gr.Plot(label="Losses", elem_id="losses")
                with gr.Accordion("Settings", open=True):
                    with gr.Row():
                        content_scale = gr.Slider(0.1, 10, value=1.0, label="content weight (x preset)")
                        style_scale = gr.Slider(0.1, 10, value=1.0, label="style weight (x preset)")
                        tv_weight = gr.Slider(0, 200, value=10.0, label="TV weight")
                    with gr.Row():
                        size = gr.Slider(64, 512, value=256, step=32, label="output size (shorter side, px)")
                        num_iters = gr.Slider(10, 500, value=100, step=10, label="iterations")
                    with gr.Row():
                        # only what loads here: SqueezeNet's weights need a download, offline it would fail
                        backbone = gr.Radio(available_backbones(), value="vgg19", label="backbone")
                        init = gr.Radio([("the photo in the painting's colours", "recoloured"),
                                         ("the photo", "content"), ("noise", "noise")],
                                        value="recoloured", label="start from")
                        optimizer = gr.Radio(["lbfgs", "adam"], value="lbfgs", label="optimizer")
                        colour = gr.Radio(["off", "luminance only", "histogram matching"], value="off",
                                          label="keep the photo's colours")
                backbone.change(tv_default, backbone, tv_weight, api_name=False)
                photos.select(picked_photo, None, content, api_name=False)
                paintings.select(picked_style, slot, styles, api_name=False)
                for upload, preview, role in [(content, content_preview, "content")] + \
                        [(f, p, f"style {k + 1}") for k, (f, p) in enumerate(zip(styles, previews))]:
                    upload.change(functools.partial(preview_upload, role=role), upload, preview, api_name=False)
                inputs = [content, *styles, *weights, content_scale, style_scale, tv_weight, size, num_iters,
                          backbone, init, optimizer, colour]
                # Gradio's progress goes on its own box, never over the painting it reports on
                paint_button.click(run, inputs, [output, plot, download, status], api_name="paint",
                                   show_progress="full", show_progress_on=progress, validator=admit)
                stop_button.click(stop_run, None, None, api_name="stop", queue=False)
            with gr.Tab("Fast (Johnson et al.)", id="fast-tab"):
                gr.Markdown("A feed-forward network (Johnson, Alahi and Fei-Fei, ECCV 2016) trained once on "
                            f"{len(model.styles)} styles at a time (Dumoulin et al., ICLR 2017): one pass per "
                            "picture. Move the sliders to blend the styles.")
                with gr.Row():
                    with gr.Column():
                        fast_content = image_file(label="Content image", height=120,
                                                 value=paths["astronaut"], elem_id="fast-content")
                        fast_photos = gallery(CONTENT_IMAGES, "Built-in photos: click one", "fast-photos")
                        mix = [gr.Slider(0, 1, value=1.0 if k == 0 else 0.0, step=0.05, label=name,
                                         elem_id=f"mix-{name}") for k, name in enumerate(model.styles)]
                        preserve = gr.Checkbox(False, label="keep the photo's colours")
                        fast_size = gr.Slider(128, 1024, value=512, step=32, label="longer side (px)")
                    with gr.Column():
                        fast_output = gr.Image(label="Stylised", type="pil", height=420, format="png",
                                               elem_id="fast-output")
                        fast_status = gr.Markdown("")
                fast_photos.select(picked_photo, None, fast_content,
                                   api_name=False)
                fast_inputs = [fast_content, *mix, preserve, fast_size]
                for control in fast_inputs:
                    # "always_last": while a slider moves, only its newest value waits, so the
                    # picture keeps up with the hand instead of replaying every step
                    control.change(run_fast, fast_inputs, [fast_output, fast_status], show_progress="hidden",
                                   trigger_mode="always_last", api_name=False)
                demo.load(run_fast, fast_inputs, [fast_output, fast_status], api_name="fast")
    # api_open=False: every call goes through the queue (and its validator); none skips it by POST
    demo.queue(default_concurrency_limit=2, max_size=32, api_open=False)
    return demo


def tv_default(backbone):
    """The TV slider's value for a backbone: each has its own scale (VGG's 0..255 input, SqueezeNet's normalised)."""
    return PRESETS[backbone].tv_weight


def preview_upload(path, role):
    """The preview of an upload, or a clear message in the UI when it is not a usable image."""
    import gradio as gr
    import torch

    if not path:
        return None
    try:
        return read_upload(path, role)
    except ImageError as error:
        raise gr.Error(str(error)) from None


def painted_name(content, styles):
    """The download's name says what was painted: 'astronaut_in_swirls.png', 'cat_in_a+b.png'."""
    def stem(path):
        text = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(path)).stem)
        return text[:40] or "image"

    return f"{stem(content)}_in_{'+'.join(stem(s) for s in styles)}.png"


def parse_auth(text):
    """'USER:PASS' -> (user, password); ValueError naming the expected form otherwise."""
    user, colon, password = (text or "").partition(":")
    if not (user and colon and password):
        raise ValueError("--auth (or STYLELAB_AUTH) takes USER:PASS, both non-empty, e.g. --auth class:s3cret")
    return user, password


def addresses(host, port):
    """The URLs a visitor can open: for 0.0.0.0 (every interface) the machine's own addresses, not 0.0.0.0."""
    import socket

    if host not in ("0.0.0.0", "::", ""):
        return [f"http://{host}:{port}/"]
    found = set()
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    try:  # the address of the interface a packet would leave by (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    found.discard("127.0.0.1")
    return [f"http://{address}:{port}/" for address in sorted(found)] + [f"http://127.0.0.1:{port}/"]


def sweep(demo, age):
    """Delete the files demo's visitors left that are over age seconds old (None: all of them).

    Gradio's function, which keeps the app's own files (defaults, thumbnails).
    Returns False when an upload landed mid-sweep ("Set changed size during
    iteration"): the next sweep deletes what this one missed.
    """
    from gradio.route_utils import delete_files_created_by_app

    try:
        delete_files_created_by_app(demo, age)
        return True
    except RuntimeError:
        return False


def keep_sweeping(demo, every, age):
    """sweep(demo, age) every `every` seconds while demo runs.

    Not Gradio's own delete_cache: its task dies the first time an upload
    lands while it sweeps (Gradio 6.31), and nothing is deleted after that.
    """
    while True:
        time.sleep(every)
        if not demo.is_running:
            return
        sweep(demo, age)


def launch(host="127.0.0.1", port=7860, share=False, auth=None, limits="auto", block=True,
           cache_cleanup=CACHE_CLEANUP, **build):
    """Build and serve the demo until interrupted (block=False: return the running app).

    auth: 'USER:PASS' or None. limits: a Limits, None for none, or "auto": ROOM
    when serving beyond this machine (any other host, or a share link).
    cache_cleanup: (every, age) in seconds: visitors' uploads and results older than age are deleted.
    build: passed to build_demo (examples_dir, model_path).
    """
    credentials = parse_auth(auth) if auth else None
    if limits == "auto":
        limits = ROOM if share or host not in LOCAL else None
    if not log.handlers:  # one line per refused request, in the lecturer's terminal
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s stylelab demo: %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    demo = build_demo(limits=limits, **build)
    threading.Thread(target=keep_sweeping, args=(demo, *cache_cleanup), daemon=True, name="stylelab-sweep").start()
    settings = dict(server_name=host, server_port=port, prevent_thread_lock=True, auth=credentials,
                    max_file_size=MAX_UPLOAD, quiet=not block)
    try:
        demo.launch(share=share, **settings)
    except Exception as error:  # a share link needs the internet; serving locally does not
        if not share:
            raise
        print(f"no public link: {error}. Serving locally only.")
        demo.launch(share=False, **settings)
    if not block:
        return demo
    if share and not getattr(demo, "share_url", None):
        print("no public link (no internet connection?); serving locally only")
    print(f"stylelab demo on {' or '.join(addresses(host, port))} (Ctrl-C to stop)"
          + (f"; user {credentials[0]!r} and its password required" if credentials else ""))
    if limits:
        print(f"serving a room: each visitor may have {limits.per_visitor} painting queued or running, of at most "
              f"{limits.max_work // (256 * 256)} evaluations at 256 px (--no-limits lifts this)")
    try:
        demo.block_thread()
    finally:
        stop_all()
        sweep(demo, None)  # what visitors left goes with the server
