"""Image files: every Pillow mode loads to the right RGB values; bad files give errors that name them."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylelab.backbones import CAFFE
from stylelab.images import ImageError, load_image, resize, save_image

RED = (200, 30, 60)


def expect_rgb(x, rgb, atol=1.5 / 255):
    assert x.shape[:2] == (1, 3) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(rgb) / 255.0, atol=atol, rtol=0)


def test_rgb_png_loads_exactly(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 6, 9)
    torch.testing.assert_close(x[0].permute(1, 2, 0), torch.from_numpy(array) / 255.0)


@pytest.mark.parametrize("mode,fmt", [("L", "png"), ("P", "png"), ("CMYK", "jpeg"), ("1", "png"),
                                      ("RGB", "jpeg"), ("RGB", "bmp"), ("RGB", "tiff"), ("RGB", "webp")])
def test_modes_and_formats_become_rgb(tmp_path, mode, fmt):
    image = Image.new("RGB", (8, 8), RED if mode != "1" else (255, 255, 255))
    # an adaptive palette holds RED exactly; the default web palette would dither it
    image = image.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else image.convert(mode)
    path = tmp_path / f"image.{fmt}"
    image.save(path)
    x = load_image(path)
    assert x.shape == (1, 3, 8, 8)
    expected = {"L": (round(0.299 * 200 + 0.587 * 30 + 0.114 * 60),) * 3, "1": (255, 255, 255)}
    lossy = fmt in ("jpeg", "webp")
    expect_rgb(x, expected.get(mode, RED), atol=0.03 if lossy else 1.5 / 255)


def test_transparent_pixels_are_composited_on_white(tmp_path):
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[..., :3] = RED
    array[0, 0, 3] = 0  # fully transparent
    array[0, 1, 3] = 255  # opaque
    array[0, 2, 3] = 128  # half
    Image.fromarray(array, mode="RGBA").save(tmp_path / "rgba.png")
    x = load_image(tmp_path / "rgba.png")
    torch.testing.assert_close(x[0, :, 0, 0], torch.ones(3))
    torch.testing.assert_close(x[0, :, 0, 1], torch.tensor(RED) / 255.0)
    a = 128 / 255
    torch.testing.assert_close(x[0, :, 0, 2], torch.tensor(RED) / 255.0 * a + (1 - a))
    Image.fromarray(array, mode="RGBA").convert("LA").save(tmp_path / "la.png")
    torch.testing.assert_close(load_image(tmp_path / "la.png")[0, :, 0, 0], torch.ones(3))
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30])
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    torch.testing.assert_close(load_image(tmp_path / "p.png")[0, :, 0, 0], torch.ones(3))


def test_sixteen_bit_greyscale_keeps_its_range(tmp_path):
    array = np.array([[0, 65535], [32768, 4096]], dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = load_image(tmp_path / "deep.png")
    torch.testing.assert_close(x[0, 0], torch.tensor(array / 65535.0, dtype=torch.float32))
    torch.testing.assert_close(x[0, 0], x[0, 2])


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((4, 6, 3), dtype=np.uint8)  # 4 high, 6 wide, red top-left corner
    array[0, 0] = (255, 0, 0)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    x = load_image(tmp_path / "rotated.jpg")
    assert x.shape == (1, 3, 6, 4)  # upright: 6 high, 4 wide
    corner = x[0, 0].argmax()  # the red corner moved to the top right
    assert divmod(int(corner), 4) == (0, 3)


def test_resize_shorter_side_or_exact_size():
    rgb = torch.rand(1, 3, 30, 60)
    assert resize(rgb, 15).shape == (1, 3, 15, 30)
    assert resize(rgb, (7, 9)).shape == (1, 3, 7, 9)
    assert resize(rgb, None) is rgb
    flat = torch.full((1, 3, 40, 20), 0.25)
    torch.testing.assert_close(resize(flat, 10), torch.full((1, 3, 20, 10), 0.25))


def test_save_then_load_round_trips_through_preprocessing(tmp_path):
    rgb = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(2))
    path = save_image(CAFFE.preprocess(rgb), tmp_path / "deep" / "out.png", CAFFE.deprocess)
    assert path.exists() and Image.open(path).format == "PNG"
    back = load_image(path, preprocess=CAFFE.preprocess)
    torch.testing.assert_close(CAFFE.deprocess(back), rgb, atol=0.5 / 255 + 1e-6, rtol=0)
    # values outside the image range are clamped, not wrapped around
    save_image(torch.tensor([-1.0, 2.0, 0.5]).view(1, 3, 1, 1), tmp_path / "clamp.png")
    assert Image.open(tmp_path / "clamp.png").getpixel((0, 0)) == (0, 255, 128)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageError, match=r"nowhere\.png: no such file"):
        load_image(tmp_path / "nowhere.png")


def test_folder_is_refused(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_non_image_names_the_file_and_what_to_do(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(ImageError, match=r"notes\.png: not an image .* PNG or JPEG"):
        load_image(tmp_path / "notes.png")


def test_truncated_image_is_reported_as_corrupt(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: the image is corrupt or truncated"):
        load_image(tmp_path / "cut.png")
