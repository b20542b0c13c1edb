"""Built-in example images: photos and textures that may ship, and painted styles.

Content photos and textures come from scikit-image's bundled data, all public
domain or CC0 (see IMAGES.md). The painterly styles are drawn here, procedurally
and deterministically from a seed, so the kit ships no third-party artwork:

- `swirls`: short impasto strokes that follow a field of vortices, in night
  blues and star yellows, after the manner of post-impressionist skies;
- `mosaic`: stained glass, Voronoi cells of saturated colour in dark lead;
- `shards`: overlapping flat planes with black contours, after cubist collage.

`python -m stylelab.examples OUT_DIR` writes every example as a PNG to look at.
"""

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def skimage_photo(name):
    """One of scikit-image's bundled images (skimage.data.<name>) as a PIL RGB image."""
    import skimage.data

    array = getattr(skimage.data, name)()
    return Image.fromarray(array).convert("RGB")


def _hex(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def paint_swirls(size=512, seed=0):
    """Impasto strokes following swirling flow, blues with yellow stars."""
    rng = np.random.default_rng(seed)
    scale = 2  # draw at twice the size, then downsample: PIL's lines are aliased
    S = size * scale
    vortices = rng.uniform(0.1, 0.9, size=(5, 2)) * S  # (5, 2) centres
    radii = rng.uniform(0.12, 0.25, size=5) * S
    spins = rng.choice([-1.0, 1.0], size=5)

    def flow(p):
        """Unit direction of the flow at points p, shape (K, 2) -> (K, 2)."""
        v = np.stack([np.ones(len(p)), 0.6 * np.sin(p[:, 0] / S * 9.0)], axis=1)
        for centre, radius, spin in zip(vortices, radii, spins):
            d = p - centre  # (K, 2)
            fall = np.exp(-(d ** 2).sum(1) / radius ** 2)[:, None]
            v += 3.0 * spin * fall * np.stack([-d[:, 1], d[:, 0]], axis=1) / radius
        return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)

    night = [_hex(c) for c in ("#13205c", "#1d3a8a", "#2f56b0", "#4a78c9", "#6f9bd8", "#a9c8ea")]
    stars = [_hex(c) for c in ("#f4d35e", "#eebc3a", "#f7e9a0", "#fbf6e0")]
    canvas = Image.new("RGB", (S, S), night[1])
    draw = ImageDraw.Draw(canvas)
    num_strokes, steps = 9000, 7
    starts = rng.uniform(0, S, size=(num_strokes, 2))
    paths = [starts]
    for _ in range(steps):  # every stroke advances along the flow at once
        paths.append(paths[-1] + flow(paths[-1]) * 4.0 * scale)
    paths = np.stack(paths, axis=1)  # (K, steps + 1, 2)
    near_star = np.min(np.linalg.norm(starts[:, None] - vortices[None], axis=2) / radii, axis=1)
    is_star = (near_star < 0.35) | (rng.random(num_strokes) < 0.04)
    picks = np.where(is_star, rng.integers(len(stars), size=num_strokes),
                     rng.integers(len(night), size=num_strokes))
    jitter = rng.normal(0, 10, size=(num_strokes, 3))
    widths = rng.integers(3, 7, size=num_strokes) * scale
    for k in range(num_strokes):
        base = (stars if is_star[k] else night)[picks[k]]
        colour = tuple(int(c) for c in np.clip(np.add(base, jitter[k]), 0, 255))
        line = [tuple(p) for p in paths[k]]
        shade = tuple(int(c * 0.6) for c in colour)
        draw.line(line, fill=shade, width=int(widths[k]) + 2 * scale)  # a darker rim reads as paint
        draw.line(line, fill=colour, width=int(widths[k]))
    return canvas.resize((size, size), Image.LANCZOS)


def paint_mosaic(size=512, seed=0, cells_per_side=20):
    """Stained glass: Voronoi cells of saturated colour separated by dark lead.

    Neighbouring panes share a hue, as in a window's design: each cell's colour
    is read off a smooth random field. With independent random colours every
    photo comes out as uniform confetti, since that is what the painting's
    Gram matrices then ask for; with colour regions the optimiser can lay
    them along the photo's own.
    """
    rng = np.random.default_rng(seed)
    # A jittered grid, not uniform points: two centres that nearly coincide would
    # make a whole cell of lead.
    n = cells_per_side
    grid = np.stack(np.mgrid[0:n, 0:n], axis=-1).reshape(-1, 2)  # (n*n, 2)
    centres = ((grid + 0.5 + rng.uniform(-0.4, 0.4, size=grid.shape)) * size / n).astype(np.float32)
    # ordered round the colour wheel, so that nearby field values are related hues
    palette = np.array([_hex(c) for c in (
        "#1f4fa3", "#2aa7b8", "#1e8a5a", "#e0a526", "#d9622b", "#b3202a", "#6b2d8f", "#f1e4b3")],
        dtype=np.float32)
    waves = rng.normal(size=(4, 2)) * 1.6 * np.pi / size  # about one period across the window
    phases = rng.uniform(0, 2 * np.pi, size=4)
    field = np.sin(centres @ waves.T + phases).mean(axis=1) + rng.normal(0, 0.05, size=len(centres))  # (n*n,)
    rank = np.argsort(np.argsort(field))  # equal shares of every colour
    colours = palette[rank * len(palette) // len(centres)]  # (K, 3)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    pixels = np.stack([ys.ravel(), xs.ravel()], axis=1)  # (HW, 2)
    nearest = np.empty(len(pixels), dtype=np.int64)
    gap = np.empty(len(pixels), dtype=np.float32)
    for start in range(0, len(pixels), 65536):  # chunks keep the (chunk, K) distances small
        chunk = pixels[start:start + 65536]
        d = np.sqrt((chunk[:, :1] - centres[:, 0]) ** 2 + (chunk[:, 1:] - centres[:, 1]) ** 2)
        two = np.partition(d, 1, axis=1)[:, :2]
        nearest[start:start + 65536] = d.argmin(axis=1)
        gap[start:start + 65536] = two[:, 1] - two[:, 0]
    glass = colours[nearest].reshape(size, size, 3)  # (H, W, 3)
    # uneven glass: a smooth brightness wobble inside each cell
    wobble = rng.normal(0, 1, size=(size // 16, size // 16)).astype(np.float32)
    wobble = np.asarray(Image.fromarray(wobble, mode="F").resize((size, size), Image.BICUBIC))
    glass = glass * (1 + 0.12 * wobble[..., None])
    width = 1.5 * size / 512  # lead as wide, for its window, at any size
    lead = np.clip((gap.reshape(size, size) - width) / width, 0, 1)[..., None]  # 0 on the seams
    image = glass * lead + np.float32(26) * (1 - lead)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")


def paint_shards(size=512, seed=0, num_planes=140):
    """Cubist collage: overlapping flat polygons in earth tones with black contours."""
    rng = np.random.default_rng(seed)
    palette = [_hex(c) for c in ("#c8963e", "#8c4a2f", "#6b6b3a", "#3e4a5c", "#d9c7a1",
                                 "#a0522d", "#2f2f2f", "#b8b08d", "#5f7a7a")]
    scale = 2
    S = size * scale
    canvas = Image.new("RGBA", (S, S), palette[4] + (255,))
    for _ in range(num_planes):
        centre = rng.uniform(-0.1, 1.1, size=2) * S
        radius = rng.uniform(0.06, 0.22) * S
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=rng.integers(3, 6)))
        polygon = [tuple(centre + radius * rng.uniform(0.6, 1.2) * np.array([np.cos(a), np.sin(a)]))
                   for a in angles]
        layer = Image.new("RGBA", (S, S), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        colour = palette[rng.integers(len(palette))]
        draw.polygon(polygon, fill=colour + (int(rng.uniform(170, 255)),),
                     outline=(20, 20, 20, 255), width=3 * scale)
        canvas.alpha_composite(layer)
    canvas = canvas.convert("RGB").filter(ImageFilter.GaussianBlur(0.6 * scale))
    return canvas.resize((size, size), Image.LANCZOS)


# name -> (function making a PIL image, where it comes from)
CONTENT_IMAGES = {
    "astronaut": (lambda: skimage_photo("astronaut"), "Eileen Collins, NASA; public domain (scikit-image)"),
    "chelsea": (lambda: skimage_photo("chelsea"), "Chelsea the cat, Stefan van der Walt; CC0 (scikit-image)"),
    "coffee": (lambda: skimage_photo("coffee"), "Coffee cup, Rachel Michetti; CC0 (scikit-image)"),
    "rocket": (lambda: skimage_photo("rocket"), "DSCOVR launch, SpaceX; public domain (scikit-image)"),
}
STYLE_IMAGES = {
    "swirls": (paint_swirls, "generated by stylelab (examples.py)"),
    "mosaic": (paint_mosaic, "generated by stylelab (examples.py)"),
    "shards": (paint_shards, "generated by stylelab (examples.py)"),
    "hubble": (lambda: skimage_photo("hubble_deep_field"), "Hubble eXtreme Deep Field, NASA; public domain (scikit-image)"),
    "brick": (lambda: skimage_photo("brick"), "Bricks25, CC0Textures; CC0 (scikit-image)"),
    "gravel": (lambda: skimage_photo("gravel"), "Gravel04, CC0Textures; CC0 (scikit-image)"),
    "grass": (lambda: skimage_photo("grass"), "Grass 01, linolafett; CC0 (scikit-image)"),
}
EXAMPLES = {**CONTENT_IMAGES, **STYLE_IMAGES}


@lru_cache(maxsize=None)
def _example(name):
    return EXAMPLES[name][0]()


def example_image(name):
    """The built-in image called name, as a PIL RGB image (a fresh copy)."""
    if name not in EXAMPLES:
        raise KeyError(f"no built-in image {name!r}; choose one of: {', '.join(EXAMPLES)}")
    return _example(name).copy()


def resolve_image(source):
    """A built-in image name, a file path or a PIL image -> a PIL image or a Path for load_image."""
    if isinstance(source, Image.Image):
        return source
    return example_image(source) if str(source) in EXAMPLES else Path(source)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "out/examples")
    out.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        example_image(name).save(out / f"{name}.png")
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
