"""The demo's page: a Gradio Blocks app with a Paint tab (Gatys et al.) and a Fast tab (Johnson et al.).

Paint: a photo and a painting are preselected, so the first click paints; the
built-in ones are thumbnails to click, for the photo or any style slot. The
picture streams as it paints with the count and Gradio's queue place beside
it, never over it, and a loss plot grows below it; Stop ends the run with its
picture and a PNG to download. Fast: one slider per style the shipped network
holds, and the picture follows the sliders as they move.

Each input is named as the API names it (/paint's as Painting's fields, /fast's
by fast_signature), so that gradio_client can pass them by keyword.
"""

import functools
import inspect
import math
import tempfile
from pathlib import Path

from stylelab import speed
from stylelab.backbones import available_backbones, load_backbone
from stylelab.demo.admission import Admissions, log, read_upload, refusal, refuse, visitor
from stylelab.demo.painting import Painting, fast_signature, fast_stylize, stop, stream
from stylelab.examples import CONTENT_IMAGES, STYLE_IMAGES, example_image
from stylelab.images import ImageError
from stylelab.objective import PRESETS

MAX_STYLES = 3
FIRST_PHOTO, FIRST_STYLE = "astronaut", "swirls"  # preselected, so Paint works on a fresh page
# where a client's file inputs show an example: a real photo, not Gradio's sample PDF
EXAMPLE_URL = "https://raw.githubusercontent.com/scikit-image/scikit-image/main/skimage/data/astronaut.png"


def build_demo(examples_dir=None, model_path=None, limits=None):
    """The Gradio Blocks app; launches nothing.

    limits: a stylelab.demo.Limits for a server shared with a room, None for one person's.
    """
    import gradio as gr

    paths = example_files(examples_dir or Path(tempfile.gettempdir()) / "stylelab-examples")
    model = _warm(model_path)
    with gr.Blocks(title="stylelab: neural style transfer") as demo:
        with gr.Tabs():
            with gr.Tab("Paint (Gatys et al.)", id="paint-tab"):
                _paint_tab(paths, limits)
            with gr.Tab("Fast (Johnson et al.)", id="fast-tab"):
                _fast_tab(paths, model, demo)
    # api_open=False: every call goes through the queue (and its validator); none skips it by POST
    demo.queue(default_concurrency_limit=2, max_size=32, api_open=False)
    return demo


def _warm(model_path):
    """Load now what the first click would wait for; returns the fast network, on the GPU where there is one."""
    import torch

    from stylelab.fast import SHIPPED, load_model

    load_backbone("vgg19")  # warm the weights' cache now, so the first Paint streams at once
    speed.use_threads()  # and measure this CPU's fastest settings now (cached), not on the first click
    speed.choice()
    if torch.cuda.is_available():  # a GPU (a Space's, say) runs both the engine and the fast network
        model = load_model(model_path or SHIPPED, channels_last=False)
        model.net.to("cuda")
        return model
    return load_model(model_path or SHIPPED, precision=speed.choice("fast")["precision"])


def takes_painting(function):
    """function(painting, request) as Gradio calls it: /paint's inputs as named parameters (the API's names,
    Painting's fields), then the request, which Gradio finds by its annotation."""
    import gradio as gr

    if inspect.isgeneratorfunction(function):  # Gradio streams what a generator function yields
        def call(*values):
            *inputs, request = values
            yield from function(Painting(*inputs), request)
    else:
        def call(*values):
            *inputs, request = values
            return function(Painting(*inputs), request)
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=gr.Request)
    call.__signature__ = inspect.Signature([*Painting.parameters(), request])
    call.__annotations__ = {"request": gr.Request}
    call.__name__ = call.__qualname__ = function.__name__
    return call


def _paint_handlers(limits):
    """(admit, run, stop_run): /paint's validator and handler, and /stop's, sharing one Admissions."""
    import gradio as gr

    from stylelab.fast import return_freed_memory

    admissions = Admissions(limits) if limits else None
    names = [f.name for f in Painting.parameters()]

    def admit(painting, request):
        """Run as a painting joins the queue: a mistake, or a visitor over the limit, never takes a place in it.

        Returns one verdict per input, as Gradio's validators do: the browser
        shows a refusal on the input to change, and gradio_client raises it.
        """
        who = visitor(request)
        message, field = refusal(painting, who, limits, admissions) or (None, None)
        if message:
            log.warning("refused (%s): %s: %s", who, field, message)
        return [gr.validate(name != field, message if name == field else "") for name in names]

    def run(painting, request):
        who = visitor(request)
        if admissions:
            admissions.start(who)
        try:
            yield from stream(painting, who, getattr(request, "session_hash", None), limits)
        finally:
            if admissions:
                admissions.finish(who)
            return_freed_memory()  # a large painting's memory goes back to the system, not to the idle server

    def stop_run(request: gr.Request):
        """Stop this browser session's run: it ends with its picture in place and a PNG to download."""
        stop(getattr(request, "session_hash", None))

    return takes_painting(admit), takes_painting(run), stop_run


def _paint_tab(paths, limits):
    import gradio as gr

    admit, run, stop_run = _paint_handlers(limits)
    gr.Markdown("# stylelab: neural style transfer\nGatys, Ecker and Bethge (CVPR 2016), "
                "painted live: pick a photo and one or more styles, then press **Paint**.")
    with gr.Row():
        with gr.Column():
            # Files, not gr.Image: Gradio would decode an upload before our code sees it, and a
            # corrupt one would end in its generic error instead of our message.
            with gr.Row():
                content = image_file(label="Content image", height=120, value=paths[FIRST_PHOTO], elem_id="content")
                content_preview = gr.Image(paths[FIRST_PHOTO], label="Content", interactive=False, height=160)
            photos = gallery(paths, CONTENT_IMAGES, "Built-in photos: click one", "photos")
            styles, weights, previews = [], [], []
            for k in range(MAX_STYLES):
                with gr.Row():
                    first = paths[FIRST_STYLE] if k == 0 else None
                    # the slider under the file, not beside it: a narrow file box shows 'swirls.png' as '.p'
                    with gr.Column(scale=3, min_width=240):
                        styles.append(image_file(label=f"Style {k + 1}", height=100, value=first,
                                                 elem_id=f"style{k + 1}"))
                        weights.append(gr.Slider(0, 1, value=1.0 if k == 0 else 0.5, step=0.05,
                                                 label=f"weight of style {k + 1} (log scale)", elem_id=f"weight{k + 1}"))
                    previews.append(gr.Image(first, label=f"Style {k + 1}", interactive=False, height=190, scale=2,
                                             min_width=120))
            slot = gr.Radio([(f"Style {k + 1}", k) for k in range(MAX_STYLES)], value=0,
                            label="a clicked style goes into", elem_id="slot")
            paintings = gallery(paths, STYLE_IMAGES, "Built-in styles: click one", "paintings")
        with gr.Column():
            output = gr.Image(label="Painting", type="pil", height=360, format="png", elem_id="painting")
            with gr.Row(equal_height=True):
                status = gr.Markdown("Press **Paint** to start.", elem_id="status")
                # Gradio's progress (queue place, seconds) shows here, beside the picture
                progress = gr.Markdown("", elem_id="progress", min_width=160, height=44)
            with gr.Row():
                paint_button = gr.Button("Paint", variant="primary", elem_id="paint")
                stop_button = gr.Button("Stop", elem_id="stop")
            download = gr.File(label="Download PNG", elem_id="download")
            plot = gr.Plot(label="Losses", elem_id="losses")
    settings = _settings()
    settings["backbone"].change(tv_default, settings["backbone"], settings["tv_weight"], api_name=False)
    def picked_style(slot, evt: gr.SelectData):
        chosen = paths[list(STYLE_IMAGES)[evt.index]]
        return [chosen if k == int(slot) else gr.update() for k in range(MAX_STYLES)]

    photos.select(photo_picker(paths), None, content, api_name=False)
    paintings.select(picked_style, slot, styles, api_name=False)
    for upload, preview, role in [(content, content_preview, "content")] + \
            [(f, p, f"style {k + 1}") for k, (f, p) in enumerate(zip(styles, previews))]:
        upload.change(functools.partial(preview_upload, role=role), upload, preview, api_name=False)
    inputs = [content, *styles, *weights, *settings.values()]  # in Painting's order
    # Gradio's progress goes on its own box, never over the painting it reports on
    paint_button.click(run, inputs, [output, plot, download, status], api_name="paint",
                       show_progress="full", show_progress_on=progress, validator=admit)
    stop_button.click(stop_run, None, None, api_name="stop", queue=False)


def _settings():
    """The Settings panel's controls, in Painting's order from content_weight on."""
    import gradio as gr

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
            init = gr.Radio([("the photo in the painting's colours", "recoloured"), ("the photo", "content"),
                             ("noise", "noise")], value="recoloured", label="start from")
            optimizer = gr.Radio(["lbfgs", "adam"], value="lbfgs", label="optimizer")
            colour = gr.Radio(["off", "luminance only", "histogram matching"], value="off",
                              label="keep the photo's colours")
    return dict(content_weight=content_scale, style_weight=style_scale, tv_weight=tv_weight, size=size,
                iterations=num_iters, backbone=backbone, start=init, optimizer=optimizer, keep_colours=colour)


def _fast_tab(paths, model, demo):
    import gradio as gr

    def run_fast(content, *args):
        *weights, preserve_color, size = args
        try:
            return fast_stylize(model, content, weights, preserve_color, int(size))
        except ImageError as error:
            raise refuse(error) from None

    # the API names each weight by its style, as /paint names its inputs: a model's styles are known only here
    run_fast.__signature__ = fast_signature(model.styles)
    gr.Markdown("A feed-forward network (Johnson, Alahi and Fei-Fei, ECCV 2016) trained once on "
                f"{len(model.styles)} styles at a time (Dumoulin et al., ICLR 2017): one pass per "
                "picture, a fraction of a second on a laptop. It repaints the photo in each style's colours; "
                "with the shipped network swirls and mosaic paint every region and shards paints the dark "
                "ones. The Paint tab fits one photo at a time and keeps a face better. Move the sliders to "
                "blend the styles.")
    with gr.Row():
        with gr.Column():
            content = image_file(label="Content image", height=120, value=paths["astronaut"], elem_id="fast-content")
            photos = gallery(paths, CONTENT_IMAGES, "Built-in photos: click one", "fast-photos")
            mix = [gr.Slider(0, 1, value=1.0 if k == 0 else 0.0, step=0.05, label=name, elem_id=f"mix-{name}")
                   for k, name in enumerate(model.styles)]
            preserve = gr.Checkbox(False, label="keep the photo's colours")
            size = gr.Slider(128, 1024, value=512, step=32, label="longer side (px)")
        with gr.Column():
            output = gr.Image(label="Stylised", type="pil", height=420, format="png", elem_id="fast-output")
            status = gr.Markdown("")
    photos.select(photo_picker(paths), None, content, api_name=False)
    inputs = [content, *mix, preserve, size]
    for control in inputs:
        # "always_last": while a slider moves, only its newest value waits, so the
        # picture keeps up with the hand instead of replaying every step
        control.change(run_fast, inputs, [output, status], show_progress="hidden", trigger_mode="always_last",
                       api_name=False)
    demo.load(run_fast, inputs, [output, status], api_name="fast")


def image_file(**settings):
    """A file input whose API example is a photo, not Gradio's sample PDF.

    Set on the instance: a subclass of a Gradio component would make Gradio
    write a .pyi stub next to this file at import.
    """
    import gradio as gr
    from gradio_client import handle_file

    upload = gr.File(file_types=["image"], **settings)
    upload.example_payload = lambda: handle_file(EXAMPLE_URL)
    return upload


def gallery(paths, names, label, elem_id):
    import gradio as gr

    rows = math.ceil(len(names) / 4)
    return gr.Gallery([(paths[n], n) for n in names], label=label, columns=4, rows=rows, height=125 * rows + 50,
                      allow_preview=False, object_fit="cover", elem_id=elem_id)


def photo_picker(paths):
    """A gallery's select handler: the file of the built-in photo clicked (Gradio passes the click by its
    annotation)."""
    import gradio as gr

    def picked_photo(evt: gr.SelectData):
        return paths[list(CONTENT_IMAGES)[evt.index]]

    return picked_photo


def tv_default(backbone):
    """The TV slider's value for a backbone: each has its own scale (VGG's 0..255 input, SqueezeNet's normalised)."""
    return PRESETS[backbone].tv_weight


def preview_upload(path, role):
    """The preview of an upload, or a clear message in the UI when it is not a usable image."""
    import gradio as gr

    if not path:
        return None
    try:
        return read_upload(path, role)
    except ImageError as error:
        raise gr.Error(str(error)) from None


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
