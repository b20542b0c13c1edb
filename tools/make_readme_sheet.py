"""Draw docs/sheet.png, the picture at the top of README.md, from the labs' reference pictures.

The sheet is a strip of the kit's own results: two photos, each followed by
what the reference solutions paint from it (chelsea in mosaic, astronaut in
swirls). Every panel is cut from a picture under labs/reference/, which
tools/make_lab_references.py draws by running the labs, so the sheet shows
what a student's finished code draws. Pillow only: no network, no engine runs.
The same reference pictures give the same sheet.

    python tools/make_readme_sheet.py                 # writes docs/sheet.png
    python tools/make_readme_sheet.py --out x.png     # somewhere else

Each panel is found inside a box of its reference picture as the longest run
of rows, and of columns, that are mostly not white (a title above a panel is
sparse). If a redrawn reference moves a panel so that it no longer sits inside
its box with white all round, the script stops and names the picture and the
box to adjust in PANELS below.
"""

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "labs" / "reference"
OUT = ROOT / "docs" / "sheet.png"

# (reference picture, box (left, top, right, bottom) holding one panel with white all round it)
PANELS = (
    ("05_one_minute.png", (0, 70, 280, 269)),     # the photo: chelsea
    ("03_weights.png", (250, 310, 530, 545)),     # chelsea in mosaic, 3x style
    ("05_three_styles.png", (0, 38, 190, 210)),   # the photo: astronaut
    ("03_weights.png", (0, 309, 250, 545)),       # astronaut in swirls, preset weights
)
ARROWS = (0, 2)       # an arrow after these panels: photo -> stylised
HEIGHT = 180          # every panel's height on the sheet, in pixels
GAP, ARROW = 36, 14   # the space after a panel with an arrow, and the length of its head
PAIR_GAP = 40         # the space between the two pairs
COLOURS = 256         # a palette keeps the file small
WHITE = (255, 255, 255)
INK = (90, 90, 90)


def panel(name, box):
    """The panel inside box of labs/reference/NAME: the block of rows and columns mostly not white."""
    picture = Image.open(REFERENCE / name).convert("RGB")
    region = picture.crop(box)
    # anything more than a faint tint of white is ink; a title is ink too, but sparse
    ink = ImageChops.difference(region, Image.new("RGB", region.size, WHITE)).convert("L")
    ink = ink.point(lambda v: 1 if v > 24 else 0)
    width, height = region.size
    pixels = ink.tobytes()  # one byte a pixel, row by row
    rows = densest(sum(pixels[y * width:(y + 1) * width]) / width for y in range(height))
    columns = densest(sum(pixels[x::width]) / height for x in range(width))
    if rows is None or columns is None or 0 in (rows[0], columns[0]) or rows[1] == height or columns[1] == width:
        sys.exit(f"make_readme_sheet: the panel in {REFERENCE / name} is not inside the box {box} with white "
                 f"all round it (found rows {rows}, columns {columns} in a {width}x{height} box): look at the "
                 f"picture and adjust its box in PANELS")
    return region.crop((columns[0], rows[0], columns[1], rows[1]))


def densest(fractions):
    """(start, end) of the longest run of lines more than half ink, or None."""
    best, start = None, None
    for k, fraction in enumerate(list(fractions) + [0.0]):
        if fraction > 0.5 and start is None:
            start = k
        elif fraction <= 0.5 and start is not None:
            if best is None or k - start > best[1] - best[0]:
                best = (start, k)
            start = None
    return best


def sheet(panels):
    """The panels side by side at one height, with an arrow from each photo to its painting."""
    scaled = [p.resize((round(p.width * HEIGHT / p.height), HEIGHT), Image.LANCZOS) for p in panels]
    gaps = [GAP if k in ARROWS else PAIR_GAP for k in range(len(scaled) - 1)] + [0]
    out = Image.new("RGB", (sum(p.width for p in scaled) + sum(gaps), HEIGHT), WHITE)
    draw = ImageDraw.Draw(out)
    x, middle = 0, HEIGHT // 2
    for k, (picture, gap) in enumerate(zip(scaled, gaps)):
        out.paste(picture, (x, 0))
        x += picture.width
        if k in ARROWS:  # a shaft and a head, centred in the gap
            left, right = x + 8, x + gap - 8
            draw.rectangle((left, middle - 2, right - ARROW, middle + 2), fill=INK)
            draw.polygon(((right - ARROW, middle - ARROW // 2 - 2), (right, middle),
                          (right - ARROW, middle + ARROW // 2 + 2)), fill=INK)
        x += gap
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    picture = sheet([panel(name, box) for name, box in PANELS])
    # a fixed palette method and no dithering: the same panels give the same bytes
    small = picture.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    small.save(args.out, optimize=True)
    print(f"wrote {args.out} ({small.width}x{small.height}, {args.out.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
