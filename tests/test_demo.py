"""The web demo: builds without launching, survives bad input, streams, serves four
clients, stops on request, and works in a real browser."""

import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylelab.demo import (MAX_SIDE, addresses, blend_styles, build_demo, fast_stylize, parse_auth, read_upload,
                           stop_all)
from stylelab.fast import load_model
from stylelab.images import ImageError

gradio_client = pytest.importorskip("gradio_client")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    examples = tmp_path_factory.mktemp("examples")
    demo = build_demo(examples)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", examples
    stop_all()  # no painting thread may outlive the server: torch aborts at exit under one
    demo.close()


def submit(url, content, style, size=64, num_iters=10, **overrides):
    from gradio_client import Client, handle_file

    settings = dict(weight_1=1.0, content_weight=1.0, style_weight=1.0, tv_weight=10.0, size=size,
                    iterations=num_iters, backbone="vgg19", start="content", optimizer="lbfgs",
                    keep_colours="off")
    settings.update(overrides)
    client = Client(url, verbose=False)
    return client.submit(content=handle_file(str(content)), style_1=handle_file(str(style)), **settings,
                         api_name="/paint")


def test_building_the_demo_launches_nothing(tmp_path):
    import stylelab.demo  # noqa: F401 (importing must not serve anything either)

    demo = build_demo(tmp_path)
    assert not demo.is_running
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["astronaut.png", "brick.png"]


def test_uploads_of_every_kind_become_rgb(tmp_path):
    Image.new("L", (40, 30), 128).save(tmp_path / "grey.png")
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    frames = [Image.new("P", (40, 30), k) for k in (1, 2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.zeros((5000, 3000, 3), dtype=np.uint8)).save(tmp_path / "huge.png")
    rotated = Image.new("RGB", (60, 20))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "rotated.jpg", exif=exif)
    for name in ("grey.png", "clear.png", "cmyk.jpg", "anim.gif"):
        image = read_upload(tmp_path / name, "content")
        assert image.mode == "RGB" and image.size == (40, 30), name
    assert read_upload(tmp_path / "clear.png", "content").getpixel((0, 0)) == (255, 255, 255)
    assert max(read_upload(tmp_path / "huge.png", "content").size) == MAX_SIDE
    assert read_upload(tmp_path / "rotated.jpg", "content").size == (20, 60)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "the style image: .* corrupt or truncated"),
    (lambda p: p.write_text("not a picture"), "the style image: .* not an image"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), "8x8 pixels; give one at least 16"),
])
def test_bad_uploads_get_a_clear_message(tmp_path, make, message):
    make(tmp_path / "upload.png")
    with pytest.raises(ImageError, match=message):
        read_upload(tmp_path / "upload.png", "style")
    with pytest.raises(ImageError, match="add a content image"):
        read_upload(None, "content")


def test_blended_style_widths_follow_the_normalised_weights():
    red, blue = Image.new("RGB", (50, 50), (255, 0, 0)), Image.new("RGB", (50, 50), (0, 0, 255))
    montage = np.asarray(blend_styles([red, blue], [3.0, 1.0], height=20))
    assert montage.shape == (20, 80, 3)
    assert (montage[0, :, 0] > 128).sum() == 60 and (montage[0, :, 2] > 128).sum() == 20
    with pytest.raises(ImageError, match="weight above 0"):
        blend_styles([red, blue], [0, 0])


def test_a_run_streams_several_images_then_a_downloadable_png(server):
    url, examples = server
    job = submit(url, examples / "chelsea.png", examples / "mosaic.png", size=64, num_iters=20)
    streamed = list(job)
    image_updates = [out for out in streamed if out[0]]
    assert len(image_updates) >= 4  # evaluation 1, then every 5, then the final image
    final = job.result()
    assert final[2] and Image.open(final[2]).format == "PNG" and Image.open(final[2]).size == (96, 64)
    assert final[3].startswith("done: 20 evaluations")


def test_four_clients_at_once_all_finish(server):
    url, examples = server
    jobs = [submit(url, examples / c, examples / s, size=64, num_iters=10)
            for c, s in [("astronaut.png", "swirls.png"), ("chelsea.png", "mosaic.png"),
                         ("coffee.png", "shards.png"), ("rocket.png", "brick.png")]]
    results = [job.result(timeout=300) for job in jobs]
    assert all(r[3].startswith("done: 10 evaluations") for r in results)


def test_stop_ends_the_run(server):
    url, examples = server
    job = submit(url, examples / "astronaut.png", examples / "swirls.png", size=128, num_iters=500)
    deadline = time.time() + 60
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.1)
    assert job.outputs(), "no image streamed"
    job.cancel()
    # a generous limit: how fast Stop answers is bench/bench_demo.py's to measure
    stopped_at = time.time()
    while any(t.name == "stylelab-paint" for t in threading.enumerate()) and time.time() - stopped_at < 60:
        time.sleep(0.05)
    assert not any(t.name == "stylelab-paint" for t in threading.enumerate())


def test_in_a_student_release_it_paints_with_the_students_code_and_names_what_is_missing(server, monkeypatch):
    from starter import style_transfer as starter

    url, examples = server
    monkeypatch.setattr("stylelab.transfer.default_impl", lambda: starter)  # no solutions/ in the bundle
    job = submit(url, examples / "astronaut.png", examples / "swirls.png")
    with pytest.raises(Exception, match=r"not written yet \(extract_features: write your code in starter/"):
        job.result(timeout=60)


def test_the_api_names_its_parameters_and_hides_the_preview_handlers(server):
    from gradio_client import Client

    url, _ = server
    api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    parameters = {p["parameter_name"]: p for p in api["named_endpoints"]["/paint"]["parameters"]}
    assert list(parameters)[:8] == ["content", "style_1", "style_2", "style_3", "weight_1", "weight_2", "weight_3",
                                    "content_weight"]
    assert parameters["style_2"]["parameter_has_default"] and parameters["style_2"]["parameter_default"] is None
    assert not any(name.startswith("/partial") for name in api["named_endpoints"])
    assert not api["unnamed_endpoints"]


def test_one_styles_weight_scales_its_strength_and_all_zero_is_refused(server):
    url, examples = server
    with pytest.raises(Exception, match="every style's weight is 0"):
        submit(url, examples / "chelsea.png", examples / "swirls.png", weight_1=0.0).result(timeout=60)
    strong, weak = (submit(url, examples / "chelsea.png", examples / "swirls.png", size=64, num_iters=20,
                           weight_1=w).result(timeout=120) for w in (1.0, 0.001))
    photo = np.asarray(Image.open(examples / "chelsea.png").convert("RGB").resize((96, 64)), dtype=float)
    strong, weak = (np.asarray(Image.open(r[0]).convert("RGB").resize((96, 64)), dtype=float) for r in (strong, weak))
    assert np.abs(weak - photo).mean() < 0.7 * np.abs(strong - photo).mean()  # 16 against 28.5 measured


def test_auth_keeps_out_a_visitor_without_the_password(tmp_path):
    from gradio_client import Client

    assert parse_auth("class:s3:cret") == ("class", "s3:cret")
    for bad in ("class", "class:", ":s3cret", ""):
        with pytest.raises(ValueError, match="USER:PASS"):
            parse_auth(bad)
    demo = build_demo(tmp_path)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, auth=parse_auth("class:s3cret"))
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception):
            Client(url, verbose=False)
        with pytest.raises(Exception):
            Client(url, auth=("class", "wrong"), verbose=False)
        api = Client(url, auth=("class", "s3cret"), verbose=False).view_api(return_format="dict", print_info=False)
        assert "/paint" in api["named_endpoints"]
    finally:
        demo.close()


def test_serving_on_every_interface_prints_addresses_a_visitor_can_open():
    assert addresses("127.0.0.1", 7860) == ["http://127.0.0.1:7860/"]
    urls = addresses("0.0.0.0", 7863)
    assert urls[-1] == "http://127.0.0.1:7863/" and not any("0.0.0.0" in url for url in urls)


def test_stop_keeps_the_picture_and_offers_the_png(server):
    from gradio_client import Client, handle_file

    url, examples = server
    client = Client(url, verbose=False)  # one session: its Stop stops its own run
    job = client.submit(content=handle_file(str(examples / "astronaut.png")),
                        style_1=handle_file(str(examples / "swirls.png")), size=128, iterations=500,
                        api_name="/paint")
    deadline = time.time() + 60
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.1)
    assert job.outputs(), "no image streamed"
    client.predict(api_name="/stop")
    image, _, png, status = job.result(timeout=60)
    assert re.match(r"stopped after \d+ evaluations", status), status
    assert int(status.split()[2]) < 500
    assert Image.open(png).size == Image.open(image).size == (128, 128)


def test_only_backbones_that_load_here_are_offered_each_with_its_tv_default(tmp_path, monkeypatch):
    import torch
    import torchvision

    from stylelab.backbones import available_backbones

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert available_backbones() == ["vgg19"]  # offline and nothing cached: SqueezeNet would only fail
    demo = build_demo(tmp_path / "examples")
    radios = [c["props"] for c in demo.config["components"] if c["props"].get("label") == "backbone"]
    assert [choice[1] for choice in radios[0]["choices"]] == ["vgg19"]
    url = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]).write_bytes(b"weights")
    assert available_backbones() == ["vgg19", "squeezenet1_1"]
    handler = next(fn.fn for fn in demo.fns.values() if fn.name == "tv_default")  # on backbone.change
    assert handler("squeezenet1_1") == 5e-2 and handler("vgg19") == 10.0


def test_a_corrupt_upload_is_reported_in_the_ui(server, tmp_path):
    url, examples = server
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    job = submit(url, tmp_path / "broken.png", examples / "swirls.png")
    with pytest.raises(Exception, match="the content image"):
        job.result(timeout=60)


def chromium(playwright, executable):
    """Debian's headless Chromium with a fresh profile: no browser of Playwright's own."""
    return playwright.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="stylelab-chromium-"), executable_path=executable,
        headless=True, viewport={"width": 1400, "height": 1100},
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"])


def screenshot_once_changed(page, selector, first, name, timeout):
    """Wait until the image at selector shows something other than first, then save out/name."""
    page.wait_for_function(
        "([selector, first]) => { const img = document.querySelector(selector); "
        "return img && img.src !== first; }", arg=[selector, first], timeout=timeout)
    page.wait_for_timeout(500)
    shot = Path("out") / name
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    return shot


# Where an <img> draws its picture inside its box, in page pixels (object-fit contain or
# scale-down, centred, as Gradio's image box has it).
DRAWN = """img => {
    const box = img.getBoundingClientRect();
    let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
    if (getComputedStyle(img).objectFit === "scale-down") scale = Math.min(scale, 1);
    const width = img.naturalWidth * scale, height = img.naturalHeight * scale;
    return {x: box.x + (box.width - width) / 2, y: box.y + (box.height - height) / 2, width, height};
}"""


def shown(page, selector):
    """(what the element at selector looks like on screen, the image its src holds), both (64, 64, 3)."""
    from io import BytesIO

    element = page.locator(selector).first
    for _ in range(5):  # a new frame may arrive between the two looks: look again
        src = element.get_attribute("src")
        drawn = element.evaluate(DRAWN)
        on_screen = Image.open(BytesIO(page.screenshot(clip=drawn))).convert("RGB").resize((64, 64))
        if element.get_attribute("src") == src:
            break
    source = Image.open(BytesIO(page.request.get(src).body())).convert("RGB")
    return np.asarray(on_screen, dtype=float), np.asarray(source.resize((64, 64)), dtype=float)


def test_in_a_real_browser_one_click_paints_and_the_painting_stays_visible(server, chromium_path):
    from playwright.sync_api import sync_playwright

    url, examples = server
    photo = np.asarray(Image.open(examples / "astronaut.png").convert("RGB").resize((64, 64)), dtype=float)
    with sync_playwright() as playwright:
        browser = chromium(playwright, chromium_path)
        try:
            page = browser.new_page()
            page.goto(url)
            page.locator("#paint").click()  # nothing else touched: a photo and a painting are preselected
            page.locator("#painting img").first.wait_for(timeout=60_000)
            moments, sources = [], []
            for k in range(4):  # a lecture audience watches it for a while, not once at the end
                on_screen, source = shown(page, "#painting img")
                moments.append(np.abs(on_screen - source).mean())
                sources.append(source)
                if k == 3:
                    page.screenshot(path=str(Path("out") / "demo_screenshot.png"), full_page=True)
                page.wait_for_timeout(2500)
            status = page.locator("#status").inner_text()
            page.locator("#stop").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped after')",
                                   timeout=60_000)
            stopped = page.locator("#status").inner_text()
            page.locator("#download a").first.wait_for(timeout=10_000)
            downloaded = page.locator("#download a").first.get_attribute("href")
            still, _ = shown(page, "#painting img")
        finally:
            browser.close()
    # Stop leaves the picture in place, says where it stopped, and offers the PNG
    assert re.match(r"stopped after \d+ evaluations", stopped), stopped
    assert downloaded.endswith("astronaut_in_swirls.png") and np.abs(still - sources[-1]).mean() < 40
    # on screen, at every moment, is the picture itself: no overlay over it
    assert max(moments) < 12, moments
    assert np.abs(sources[0] - photo).mean() > 15  # from the first frame on, not the photo
    assert np.abs(sources[-1] - sources[0]).mean() > 3  # and it went on painting while watched
    assert re.match(r"painting: \d+ / 100 evaluations", status), status


def test_fast_tab_follows_its_sliders(server):
    from gradio_client import Client, handle_file

    url, examples = server
    client = Client(url, verbose=False)
    model = load_model()
    pictures = []
    for weights in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]):
        image, status = client.predict(handle_file(str(examples / "chelsea.png")), *weights, False, 256,
                                       api_name="/fast")
        pictures.append(np.asarray(Image.open(image), dtype=np.float32))
        assert re.fullmatch(r"256x170 in \d+\.\d\d s", status), status
    assert len(model.styles) == 3
    assert np.abs(pictures[0] - pictures[1]).mean() > 10  # each slider is a style of its own
    assert np.abs(pictures[2] - pictures[0]).mean() > 3 and np.abs(pictures[2] - pictures[1]).mean() > 3


def test_fast_stylize_keeps_colours_and_refuses_all_zero_weights(tmp_path):
    Image.new("RGB", (64, 48), (200, 40, 40)).save(tmp_path / "red.png")
    model = load_model()
    image, status = fast_stylize(model, str(tmp_path / "red.png"), [0, 0, 1], preserve_color=True, size=64)
    assert image.size == (64, 48) and status.startswith("64x48 in ")
    red, green, blue = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(0)
    assert red > green + 40 and red > blue + 40  # the photo's red survives any style
    with pytest.raises(ImageError, match="move at least one style slider above 0"):
        fast_stylize(model, str(tmp_path / "red.png"), [0, 0, 0])


def test_in_a_real_browser_the_fast_tab_follows_a_slider(server, chromium_path):
    from playwright.sync_api import sync_playwright

    url, _ = server
    second = load_model().styles[1]
    with sync_playwright() as playwright:
        browser = chromium(playwright, chromium_path)
        try:
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("tab", name="Fast (Johnson et al.)").click()
            picture = page.locator("#fast-output img")
            picture.first.wait_for(timeout=60_000)  # the page's load event stylises the default photo
            first = picture.first.get_attribute("src")
            number = page.locator(f"#mix-{second} input[type=number]")
            number.fill("1")
            number.press("Enter")
            shot = screenshot_once_changed(page, "#fast-output img", first, "demo_fast_screenshot.png", 60_000)
        finally:
            browser.close()
    assert Image.open(shot).size[0] == 1400
