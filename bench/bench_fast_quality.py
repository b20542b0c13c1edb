"""How close the fast network comes to the engine's optimisation, on the objective it was trained on.

For each photo and each style of the model, stylelab.yardstick.judge scores
the network's picture and the picture the kit's engine reaches (the same
objective, --num-iters evaluations) by the training objective's content and
style terms, and prints the ratios network / optimiser (the goal: at most 2 on
each, on photos the model never saw). Writes a sheet to --out: per photo, the
photo, then per style the network's picture over the optimiser's. Look at it.

    python -m bench.bench_fast_quality [--photos astronaut chelsea] [--size 256] [--num-iters 100]
"""

import argparse
import time
from pathlib import Path

from PIL import Image

from stylelab.fast import SHIPPED, load_model, reuse_freed_memory
from stylelab.yardstick import judge


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(SHIPPED))
    parser.add_argument("--photos", nargs="+", default=["astronaut", "chelsea"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-iters", type=int, default=100)
    parser.add_argument("--out", default="out/bench/fast_quality.png")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    model = load_model(args.model)
    print(f"{Path(args.model).name} ({', '.join(model.styles)}) against the engine, {args.num_iters} evaluations, "
          f"{args.size} px; ratios network / optimiser (goal: at most 2):")
    rows = []
    for photo in args.photos:
        row = []
        for style in model.styles:
            start = time.perf_counter()
            verdict = judge(model, photo, style, args.size, args.num_iters)
            print(f"  {photo:10s} {style:8s} content {verdict.ratio('content'):5.2f}x  "
                  f"style {verdict.ratio('style'):5.2f}x   ({time.perf_counter() - start:.0f} s)", flush=True)
            row.append(verdict.pictures)
        rows.append(row)
    # each row at its own photo's size, the network's picture over the optimiser's: nothing squashed
    cell = max(row[0][0].width for row in rows)
    sheet = Image.new("RGB", (cell * (1 + len(model.styles)), sum(2 * row[0][0].height for row in rows)), "white")
    top = 0
    for row in rows:
        height = row[0][0].height
        sheet.paste(row[0][0], (0, top))
        for c, (_, ours, theirs) in enumerate(row):
            sheet.paste(ours, ((c + 1) * cell, top))
            sheet.paste(theirs, ((c + 1) * cell, top + height))
        top += 2 * height
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"per photo: the photo, then per style the network (top) over the optimiser (bottom): {out}")


if __name__ == "__main__":
    main()
