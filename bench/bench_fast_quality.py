"""How far fast networks carry the held-out photos towards each style, region by region.

For each photo and each style, stylelab.yardstick's neutral judge (VGG-19 as
trained, the kit's preset weights) scores the network's picture against the
engine's picture at its defaults (--num-iters evaluations) and prints:

- strength: how far the whole picture's style loss went from the photo's
  (0) to the engine's (1);
- the median tile and the 25th-percentile tile of a --grid x --grid cut,
  each tile judged on its own against the painting: a picture with one patch
  of strong texture and the photo elsewhere scores well whole and badly here;
- content: the network's content loss over the engine's;
- lattice: how strongly what the network adds repeats every 8 pixels, the
  period of its 1/8-size middle (stylelab.yardstick.lattice: about 1 for the
  engine, hundreds for a stamp laid into every 8x8 block).

The goals for a shipped model, on the photos it never saw (stylelab.train.
HELD_OUT): strength at least 0.8, median tile at least 0.6, content at most
2x. Several --model files are judged against the same engine pictures;
--work-side sets each one's reduced-copy length (0: its own). Writes a sheet
to --out: per photo, the photo, then per style each network's picture over
the engine's. Look at it.

    python -m bench.bench_fast_quality [--model A.pt B.pt --work-side 0 128] [--photos astronaut] [--size 256]

The engine's pictures take a minute each; they are kept in --cache, named by
photo, style, size and evaluations, for the next run.
"""

import argparse
import statistics
import time
from pathlib import Path

from PIL import Image

from bench.machine import describe
from stylelab.backbones import PRECISIONS
from stylelab.fast import SHIPPED, load_model, reuse_freed_memory, stylize
from stylelab.photos import HELD_OUT
from stylelab.yardstick import GRID, Judge, engine_picture, lattice, strength

GOALS = dict(whole=0.8, median_tile=0.6, content=2.0)


def cached_engine_picture(cache, photo, style, size, num_iters):
    path = Path(cache, f"{photo}_{style}_{size}_{num_iters}.png")
    if path.is_file():
        return Image.open(path).convert("RGB")
    picture = engine_picture(photo, style, size, num_iters)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return picture


def meets_goals(s):
    return s.whole >= GOALS["whole"] and s.median_tile >= GOALS["median_tile"] and s.content <= GOALS["content"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=[str(SHIPPED)])
    parser.add_argument("--work-side", nargs="+", type=int, default=None,
                        help="one per --model: stylise from a copy this long (0: the model's own setting)")
    parser.add_argument("--photos", nargs="+", default=list(HELD_OUT))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-iters", type=int, default=100)
    parser.add_argument("--grid", type=int, default=GRID, help="tiles per side")
    parser.add_argument("--precision", default="float32", choices=list(PRECISIONS),
                        help="what the networks compute in (stylelab.fast.load_model)")
    parser.add_argument("--out", default="out/bench/fast_quality.png")
    parser.add_argument("--cache", default="out/cache/engine", metavar="DIR",
                        help="where the engine's pictures are kept")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    models = [load_model(path, precision=args.precision) for path in args.model]
    for model, side in zip(models, args.work_side or []):
        model.work_side = side or model.work_side
    styles = models[0].styles
    # by file name, or by the whole path where two file names are the same (run1/m.pt, run2/m.pt)
    files = [Path(path).name for path in args.model]
    names = [name if files.count(name) == 1 else str(path) for name, path in zip(files, args.model)]
    names = [f"{name} (work side {model.work_side or 'none'}, {args.precision})"
             for name, model in zip(names, models)]
    print(describe())
    print(f"against the engine ({args.num_iters} evaluations, {args.size} px), {args.grid}x{args.grid} tiles; "
          f"goals: strength >= {GOALS['whole']}, median tile >= {GOALS['median_tile']}, "
          f"content <= {GOALS['content']}x")
    print(f"  {'photo':10s} {'style':8s} {'model':34s} strength  median tile  25% tile  content  lattice")
    rows, results = [], {name: [] for name in names}
    for photo in args.photos:
        row = []
        for style in styles:
            start = time.perf_counter()
            engine = cached_engine_picture(args.cache, photo, style, args.size, args.num_iters)
            judge = Judge(photo, style, args.size)
            pictures = []
            for name, model in zip(names, models):
                picture = stylize(model, judge.photo, {style: 1.0})
                s = strength(judge, picture, engine, args.grid)
                results[name].append(s)
                pictures.append(picture)
                print(f"  {photo:10s} {style:8s} {name:34s} {s.whole:8.2f}  {s.median_tile:11.2f}  "
                      f"{s.low_tile:8.2f}  {s.content:6.2f}x  {lattice(picture, judge.photo):7.0f}"
                      f"{'' if meets_goals(s) else '  (short of a goal)'}"
                      f"   ({time.perf_counter() - start:.0f} s)", flush=True)
            row.append((judge.photo, pictures, engine))
        rows.append(row)
    for name in names:
        found = results[name]
        print(f"{name}: worst strength {min(s.whole for s in found):.2f}, worst median tile "
              f"{min(s.median_tile for s in found):.2f}, worst content {max(s.content for s in found):.2f}x; "
              f"medians {statistics.median(s.whole for s in found):.2f}, "
              f"{statistics.median(s.median_tile for s in found):.2f}, "
              f"{statistics.median(s.content for s in found):.2f}x; "
              f"{sum(map(meets_goals, found))} of {len(found)} pairs meet every goal")
    # each row at its own photo's size, each network's picture over the engine's: nothing squashed
    cell = max(row[0][0].width for row in rows)
    tall = len(models) + 1
    sheet = Image.new("RGB", (cell * (1 + len(styles)), sum(tall * row[0][0].height for row in rows)), "white")
    top = 0
    for row in rows:
        height = row[0][0].height
        sheet.paste(row[0][0], (0, top))
        for c, (_, pictures, engine) in enumerate(row):
            for r, picture in enumerate(pictures + [engine]):
                sheet.paste(picture, ((c + 1) * cell, top + r * height))
        top += tall * height
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"per photo: the photo, then per style each network ({', '.join(names)}) over the engine "
          f"(bottom): {out}")


if __name__ == "__main__":
    main()
