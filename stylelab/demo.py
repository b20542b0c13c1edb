"""The web demo: Gatys et al. (CVPR 2016) style transfer, painted live in the browser.

A Gradio Blocks app around the kit's exercises, whichever implementation
stylelab.transfer.default_impl picks (the reference solutions, or in a student
release the student's own starter): the engine runs their losses, and colour
preservation uses their match_color and luminance_only. No second
implementation. A photo and a painting are preselected, so the first click
paints. The image streams every few evaluations with the count beside it, never
covered by a progress overlay, and a growing loss plot; Stop cancels and keeps
the last image; the result downloads as a PNG. Several styles blend through a
montage whose widths follow the normalised weights (a Gram matrix averages
over positions, so the montage's targets are the weighted blend).

A second tab, "Fast", runs the shipped feed-forward network (Johnson et al.
2016, with Dumoulin et al.'s conditional instance norm): one slider per style
it holds, and the picture follows the sliders as they move.

`build_demo()` builds the app and launches nothing; `python -m stylelab demo`
(or `make demo`) launches it.
"""

import functools
import math
import queue
import tempfile
import threading
import time
from pathlib import Path

from stylelab.backbones import BACKBONES, BackboneUnavailable, available_backbones, load_backbone
from stylelab.examples import CONTENT_IMAGES, STYLE_IMAGES, example_image
from stylelab.images import ImageError, load_image, open_image, to_pil
from stylelab.transfer import PRESETS, blend_styles

MAX_SIDE = 2048  # uploads are downscaled to this longest side before anything else
MIN_SIDE = 16  # smaller than this and there is nothing for the network to see
STREAM_EVERY = 5  # evaluations between streamed images
MAX_STYLES = 3
FIRST_PHOTO, FIRST_STYLE = "astronaut", "swirls"  # preselected, so Paint works on a fresh page


_RUNS = {}  # painting thread -> its stop event, while it runs
_STOPS = {}  # browser session -> the stop event of its run, for the Stop button


def stop_all(timeout=10.0):
    """Stop every painting thread and wait for them (a closing server calls this)."""
    for thread, stop in list(_RUNS.items()):
        stop.set()
        thread.join(timeout)


def read_upload(path, role):
    """An uploaded file -> an RGB PIL image no larger than MAX_SIDE, or ImageError for the UI."""
    if not path:
        raise ImageError(f"add a {role} image (upload one or click an example)")
    try:
        image = open_image(path)
    except ImageError as error:
        raise ImageError(f"the {role} image: {error}") from None
    if min(image.size) < MIN_SIDE:
        raise ImageError(f"the {role} image is {image.size[0]}x{image.size[1]} pixels; "
                         f"give one at least {MIN_SIDE} pixels on each side")
    image.thumbnail((MAX_SIDE, MAX_SIDE))  # huge uploads shrink first, so nothing else pays for them
    return to_pil(load_image(image))  # any mode (RGBA, CMYK, 16-bit, EXIF-rotated) -> RGB


def example_files(folder):
    """Write the built-in images as PNGs (Gradio's examples are files); {name: path}."""
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
          stop=None, every=STREAM_EVERY):
    """Generator of (event, payload): ('image', (t, PIL)), ('loss', (t, losses)), ('done', PIL),
    ('stopped', (evaluations, PIL or None)).

    Runs run_transfer in a thread so that images stream while it works; setting
    the threading.Event `stop` ends the run at its next evaluation, with the best
    picture so far (the engine's) or the last one evaluated (the exercise's loop).
    """
    from stylelab import engine
    from stylelab.transfer import default_impl, run_transfer

    solutions = default_impl()

    stop = stop or threading.Event()
    content_rgb = load_image(content, size)
    if colour == "histogram matching":  # recolour each style to the photo's palette first
        styles = [to_pil(solutions.match_color(load_image(s, size), content_rgb)) for s in styles]
    style = blend_styles(styles, weights) if len(styles) > 1 else styles[0]
    deprocess = BACKBONES[backbone][1].deprocess
    preset = PRESETS[backbone]

    def finish(img):
        rgb = deprocess(img).clamp(0, 1)
        if colour == "luminance only":
            rgb = solutions.luminance_only(rgb, load_image(content, tuple(rgb.shape[-2:])))
        return to_pil(rgb)

    events = queue.Queue()

    last = {"t": -1, "img": None}

    def callback(t, img, losses):
        if stop.is_set():
            raise engine.Stop
        last.update(t=t, img=img)
        events.put(("loss", (t, losses)))
        if t == 0 or (t + 1) % every == 0 or t + 1 == num_iters:
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
                content_weight=preset["content_weight"] * content_scale,
                style_weights=[w * style_scale for w in preset["style_weights"]], tv_weight=tv_weight)
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
            kind, payload = events.get()
            if kind == "error":
                raise payload
            yield kind, payload
            if kind in ("done", "stopped"):
                return
    finally:
        stop.set()  # a cancelled generator (Stop, a closed tab) ends the thread at its next evaluation


def fast_stylize(model, content, weights, preserve_color=False, size=512):
    """The Fast tab's work: (PIL image, status line) for a content file and one weight per style."""
    from stylelab.fast import stylize

    image = read_upload(content, "content")
    image.thumbnail((size, size))  # the longer side
    mix = dict(zip(model.styles, (float(w) for w in weights)))
    if sum(mix.values()) <= 0:
        raise ImageError("move at least one style slider above 0")
    start = time.perf_counter()
    out = stylize(model, image, mix, preserve_color)
    return out, f"{out.width}x{out.height} in {time.perf_counter() - start:.2f} s"


def build_demo(examples_dir=None, model_path=None):
    """The Gradio Blocks app; launches nothing."""
    import gradio as gr
    import pandas as pd

    from stylelab.fast import SHIPPED, load_model

    paths = example_files(examples_dir or Path(tempfile.gettempdir()) / "stylelab-examples")
    load_backbone("vgg19")  # warm the weights' cache now, so the first Paint streams at once
    model = load_model(model_path or SHIPPED)

    # Named parameters, not *args: they are the API's names (gradio_client), and the
    # optional styles are optional there too.
    def run(content, style_1=None, style_2=None, style_3=None, weight_1=1.0, weight_2=0.5, weight_3=0.5,
            content_weight=1.0, style_weight=1.0, tv_weight=10.0, size=256, iterations=100, backbone="vgg19",
            start="recoloured", optimizer="lbfgs", keep_colours="off", request: gr.Request = None):
        slots = zip((style_1, style_2, style_3), (weight_1, weight_2, weight_3))
        try:
            content_image = read_upload(content, "content")
            chosen = [(f, read_upload(f, f"style {k + 1}"), float(w or 0)) for k, (f, w) in enumerate(slots) if f]
            if not chosen:
                raise ImageError("add at least one style image")
            strength = max(w for _, _, w in chosen)
            if strength <= 0:
                raise ImageError("every style's weight is 0: move at least one above 0")
        except ImageError as error:
            raise gr.Error(str(error)) from None
        # each weight is its style's strength: one style's slider scales it, and a blend
        # mixes by the weights' ratios at the strongest one's strength
        chosen = [(f, image, w) for f, image, w in chosen if w > 0]
        rows, image, started = [], None, time.perf_counter()
        num_iters = int(iterations)
        session, stop = getattr(request, "session_hash", None), threading.Event()
        _STOPS[session] = stop
        events = paint(content_image, [image for _, image, _ in chosen], [w for _, _, w in chosen], content_weight,
                       style_weight * strength, tv_weight, int(size), num_iters, backbone, start, optimizer,
                       keep_colours, stop=stop)
        try:
            for kind, payload in events:
                if kind == "loss":
                    t, losses = payload
                    rows += [{"evaluation": t + 1, "term": key, "log10 loss": math.log10(value)}
                             for key, value in losses.items() if value > 0]
                    continue
                if kind == "image":
                    t, image = payload
                    status = f"painting: {t + 1} / {num_iters} evaluations, {time.perf_counter() - started:.1f} s"
                    yield image, pd.DataFrame(rows), None, status
                elif kind in ("done", "stopped"):
                    done, image = (num_iters, payload) if kind == "done" else payload
                    path = None
                    if image is not None:
                        name = painted_name(content, [f for f, _, _ in chosen])
                        path = Path(tempfile.mkdtemp(prefix="stylelab-")) / name
                        image.save(path)
                    seconds = time.perf_counter() - started
                    yield image, pd.DataFrame(rows), path and str(path), (
                        f"done: {done} evaluations in {seconds:.1f} s" if kind == "done"
                        else f"stopped after {done} evaluations, {seconds:.1f} s")
        except BackboneUnavailable as error:
            raise gr.Error(str(error)) from None
        except NotImplementedError as error:  # a student release whose exercises are not all done yet
            raise gr.Error(f"the demo runs your own exercises, and one is not written yet ({error}); "
                           f"finish it, then press Paint again") from None
        finally:
            events.close()  # a closed tab or a cancelled job: ends the painting thread at its next evaluation
            if _STOPS.get(session) is stop:
                del _STOPS[session]

    def stop_run(request: gr.Request):
        """Stop this browser session's run: it ends with its picture in place and a PNG to download."""
        stop = _STOPS.get(getattr(request, "session_hash", None))
        if stop is not None:
            stop.set()

    def run_fast(content, *args):
        *weights, preserve, size = args
        try:
            return fast_stylize(model, content, weights, preserve, int(size))
        except ImageError as error:
            raise gr.Error(str(error)) from None

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
                            content = gr.File(label="Content image", file_types=["image"], height=120,
                                              value=paths[FIRST_PHOTO], elem_id="content")
                            content_preview = gr.Image(paths[FIRST_PHOTO], label="Content", interactive=False,
                                                       height=160)
                        gr.Examples([[paths[n]] for n in CONTENT_IMAGES], inputs=[content],
                                    label="Built-in photos")
                        styles, weights, previews = [], [], []
                        for k in range(MAX_STYLES):
                            with gr.Row():
                                first = paths[FIRST_STYLE] if k == 0 else None
                                styles.append(gr.File(label=f"Style {k + 1}", file_types=["image"], height=120,
                                                      value=first, elem_id=f"style{k + 1}"))
                                previews.append(gr.Image(first, label=f"Style {k + 1}", interactive=False,
                                                         height=120))
                                weights.append(gr.Slider(0, 1, value=1.0 if k == 0 else 0.5, step=0.05,
                                                         label=f"weight of style {k + 1}"))
                        gr.Examples([[paths[n]] for n in STYLE_IMAGES], inputs=[styles[0]],
                                    label="Built-in styles")
                    with gr.Column():
                        output = gr.Image(label="Painting", type="pil", height=360, format="png",
                                          elem_id="painting")
                        status = gr.Markdown("Press **Paint** to start.", elem_id="status")
                        with gr.Row():
                            paint_button = gr.Button("Paint", variant="primary", elem_id="paint")
                            stop_button = gr.Button("Stop", elem_id="stop")
                        download = gr.File(label="Download PNG", elem_id="download")
                        plot = gr.LinePlot(x="evaluation", y="log10 loss", color="term", title="Losses",
                                           x_title="evaluation", y_title="log10 loss", height=260)
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
                for upload, preview, role in [(content, content_preview, "content")] + \
                        [(f, p, f"style {k + 1}") for k, (f, p) in enumerate(zip(styles, previews))]:
                    upload.change(functools.partial(preview_upload, role=role), upload, preview, api_name=False)
                inputs = [content, *styles, *weights, content_scale, style_scale, tv_weight, size, num_iters,
                          backbone, init, optimizer, colour]
                # no progress overlay: it would cover the painting it reports on; status says how far
                paint_button.click(run, inputs, [output, plot, download, status], api_name="paint",
                                           show_progress="hidden")
                stop_button.click(stop_run, None, None, api_name="stop", queue=False)
            with gr.Tab("Fast (Johnson et al.)", id="fast-tab"):
                gr.Markdown("A feed-forward network (Johnson, Alahi and Fei-Fei, ECCV 2016) trained once on "
                            f"{len(model.styles)} styles at a time (Dumoulin et al., ICLR 2017): one pass per "
                            "picture. Move the sliders to blend the styles.")
                with gr.Row():
                    with gr.Column():
                        fast_content = gr.File(label="Content image", file_types=["image"], height=120,
                                               value=paths["astronaut"], elem_id="fast-content")
                        gr.Examples([[paths[n]] for n in CONTENT_IMAGES], inputs=[fast_content],
                                    label="Built-in photos")
                        mix = [gr.Slider(0, 1, value=1.0 if k == 0 else 0.0, step=0.05, label=name,
                                         elem_id=f"mix-{name}") for k, name in enumerate(model.styles)]
                        preserve = gr.Checkbox(False, label="keep the photo's colours")
                        fast_size = gr.Slider(128, 1024, value=512, step=32, label="longer side (px)")
                    with gr.Column():
                        fast_output = gr.Image(label="Stylised", type="pil", height=420, format="png",
                                               elem_id="fast-output")
                        fast_status = gr.Markdown("")
                fast_inputs = [fast_content, *mix, preserve, fast_size]
                for control in fast_inputs:
                    # "always_last": while a slider moves, only its newest value waits, so the
                    # picture keeps up with the hand instead of replaying every step
                    control.change(run_fast, fast_inputs, [fast_output, fast_status], show_progress="hidden",
                                   trigger_mode="always_last", api_name=False)
                demo.load(run_fast, fast_inputs, [fast_output, fast_status], api_name="fast")
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def tv_default(backbone):
    """The TV slider's value for a backbone: each has its own scale (VGG's 0..255 input, SqueezeNet's normalised)."""
    return PRESETS[backbone]["tv_weight"]


def preview_upload(path, role):
    """The preview of an upload, or a clear message in the UI when it is not a usable image."""
    import gradio as gr

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


def launch(host="127.0.0.1", port=7860, share=False, auth=None):
    """Build and serve the demo until interrupted; auth is 'USER:PASS' or None."""
    credentials = parse_auth(auth) if auth else None
    demo = build_demo()
    settings = dict(server_name=host, server_port=port, prevent_thread_lock=True, auth=credentials)
    try:
        demo.launch(share=share, **settings)
    except Exception as error:  # a share link needs the internet; serving locally does not
        if not share:
            raise
        print(f"no public link: {error}. Serving locally only.")
        demo.launch(share=False, **settings)
    if share and not getattr(demo, "share_url", None):
        print("no public link (no internet connection?); serving locally only")
    print(f"stylelab demo on {' or '.join(addresses(host, port))} (Ctrl-C to stop)"
          + (f"; user {credentials[0]!r} and its password required" if credentials else ""))
    try:
        demo.block_thread()
    finally:
        stop_all()
