"""Image files to network input and back.

`load_image` reads anything Pillow can open (RGB, RGBA, L, P, CMYK, 16-bit,
EXIF-rotated) into a (1, 3, H, W) batch, resized and preprocessed for a
backbone; `save_image` writes such a batch back as a PNG. Transparent pixels are
composited onto white, the way a viewer shows them. Unreadable files raise an
ImageError that names the file and what to do.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageError(ValueError):
    """An image file that cannot be used, with a message a user can act on."""


def open_image(path):
    """Open and decode an image file, or raise ImageError naming it."""
    path = Path(path)
    try:
        image = Image.open(path)
        image.load()  # decode now, so a truncated file fails here and not later
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file (looked in {Path.cwd()}); "
                         f"check the path") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder; give an image file inside it") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"{path}: too many pixels to open safely ({error}); "
                         f"shrink it below {Image.MAX_IMAGE_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read; "
                         f"save it as PNG or JPEG and try again") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{path}: the image is corrupt or truncated ({error}); "
                         f"re-save or re-download it") from None
    return image


def pil_to_rgb(image):
    """A PIL image of any mode -> (1, 3, H, W) float32 RGB in [0, 1], upright."""
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0  # (H, W)
        array = np.repeat(grey[..., None], 3, axis=2)  # (H, W, 3)
    elif image.mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        grey = grey / 255.0 if grey.max() > 1 else grey
        array = np.repeat(grey[..., None], 3, axis=2)
    elif image.has_transparency_data:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0  # (H, W, 4)
        alpha = rgba[..., 3:]
        array = rgba[..., :3] * alpha + (1.0 - alpha)  # over a white background
    else:
        try:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        except ValueError as error:
            raise ImageError(f"cannot convert an image of mode {image.mode!r} to RGB "
                             f"({error}); save it as an RGB PNG or JPEG") from None
    rgb = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)  # (3, H, W)
    return rgb.clamp(0, 1).unsqueeze(0)  # (1, 3, H, W)


def resize(rgb, size):
    """Resize a (N, 3, H, W) batch.

    size: an int, the length of the shorter side (the aspect ratio is kept, as in
    CS231n and torchvision's Resize), or an (H, W) pair, or None to keep it.
    """
    if size is None:
        return rgb
    H, W = rgb.shape[-2:]
    if isinstance(size, int):
        scale = size / min(H, W)
        size = (max(1, round(H * scale)), max(1, round(W * scale)))
    if tuple(size) == (H, W):
        return rgb
    # antialias: shrinking a photo without it aliases fine texture into moire
    return F.interpolate(rgb, size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 1)


def load_image(source, size=None, preprocess=None):
    """Read an image into a network-ready batch.

    Inputs:
    - source: a file path or a PIL image.
    - size: see resize().
    - preprocess: a backbone's preprocess function; None keeps RGB in [0, 1].

    Returns a (1, 3, H, W) float32 Tensor.
    """
    image = source if isinstance(source, Image.Image) else open_image(source)
    rgb = resize(pil_to_rgb(image), size)
    return rgb if preprocess is None else preprocess(rgb)


def to_pil(x, deprocess=None):
    """A (1, 3, H, W) or (3, H, W) Tensor (network input if deprocess is given) -> PIL RGB image."""
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if deprocess is not None:
        x = deprocess(x)
    array = (x[0].clamp(0, 1) * 255).round().to(torch.uint8)  # (3, H, W)
    return Image.fromarray(array.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def save_image(x, path, deprocess=None):
    """Write a batch (see to_pil) as a PNG, creating folders; returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(x, deprocess).save(path, format="PNG")
    return path
