"""How close fast networks come to the engine's optimisation, on the objective they were trained on.

For each photo and each style, stylelab.yardstick.judge scores the network's
picture and the picture the kit's engine reaches (the same objective,
--num-iters evaluations) by the training objective's content and style terms,
and prints the ratios network / optimiser (the goal: at most 2 on each, on the
held-out photos the model never saw, stylelab.train.HELD_OUT). Several
--model files are judged against the same optimised pictures; --work-side
sets each one's reduced-copy length (0: its own), to compare architectures at
one time budget. Writes a sheet to --out: per photo, the photo, then per style
each network's picture over the optimiser's. Look at it.

    python -m bench.bench_fast_quality [--model A.pt B.pt --work-side 0 128] [--photos astronaut] [--size 256]

The optimiser's pictures take a minute each; --cache DIR keeps them, named by
photo, style, size, evaluations and objective, for the next run.
"""

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from PIL import Image

from stylelab.fast import SHIPPED, load_model, reuse_freed_memory
from stylelab.backbones import Margin
from stylelab.train import HELD_OUT, LOSS_MARGIN
from stylelab.yardstick import judge, objective


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=[str(SHIPPED)])
    parser.add_argument("--work-side", nargs="+", type=int, default=None,
                        help="one per --model: stylise from a copy this long (0: the model's own setting)")
    parser.add_argument("--photos", nargs="+", default=list(HELD_OUT))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-iters", type=int, default=100)
    parser.add_argument("--out", default="out/bench/fast_quality.png")
    parser.add_argument("--cache", default=None, metavar="DIR", help="keep the optimiser's pictures here")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    models = [load_model(path) for path in args.model]
    for model, side in zip(models, args.work_side or []):
        model.work_side = side or model.work_side
    styles = models[0].styles
    margin = Margin(LOSS_MARGIN)  # the loss network's, part of the objective the cache was made for
    # by file name, or by the whole path where two file names are the same (run1/m.pt, run2/m.pt)
    files = [Path(path).name for path in args.model]
    files = [name if files.count(name) == 1 else str(path) for name, path in zip(files, args.model)]
    names = [f"{name} (work side {model.work_side or 'none'})" for name, model in zip(files, models)]
    print(f"{', '.join(names)} against the engine ({args.num_iters} evaluations, {args.size} px); "
          f"ratios network / optimiser (goal: at most 2):")
    rows, ratios = [], {name: {"content": [], "style": []} for name in names}
    for photo in args.photos:
        row = []
        for style in styles:
            start = time.perf_counter()
            settings = objective(models[0], style)
            key = hashlib.sha256(json.dumps([photo, style, args.size, args.num_iters, settings, str(margin)],
                                            default=list).encode()).hexdigest()[:12]
            cached = Path(args.cache or ".", f"{photo}_{style}_{args.size}_{args.num_iters}_{key}.png")
            theirs = Image.open(cached).convert("RGB") if args.cache and cached.is_file() else None
            pictures = []
            for name, model in zip(names, models):
                verdict = judge(model, photo, style, args.size, args.num_iters, settings, theirs=theirs)
                if theirs is None and args.cache:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    verdict.pictures[2].save(cached)
                theirs = verdict.pictures[2]
                pictures.append(verdict.pictures[1])
                for term in ("content", "style"):
                    ratios[name][term].append(verdict.ratio(term))
                print(f"  {photo:10s} {style:8s} {name:32s} content {verdict.ratio('content'):5.2f}x  "
                      f"style {verdict.ratio('style'):5.2f}x   ({time.perf_counter() - start:.0f} s)", flush=True)
            row.append((verdict.pictures[0], pictures, theirs))
        rows.append(row)
    for name in names:
        print(f"{name}: content median {statistics.median(ratios[name]['content']):.2f}x, max "
              f"{max(ratios[name]['content']):.2f}x; style median {statistics.median(ratios[name]['style']):.2f}x, "
              f"max {max(ratios[name]['style']):.2f}x")
    # each row at its own photo's size, each network's picture over the optimiser's: nothing squashed
    cell = max(row[0][0].width for row in rows)
    tall = len(models) + 1
    sheet = Image.new("RGB", (cell * (1 + len(styles)), sum(tall * row[0][0].height for row in rows)), "white")
    top = 0
    for row in rows:
        height = row[0][0].height
        sheet.paste(row[0][0], (0, top))
        for c, (_, pictures, theirs) in enumerate(row):
            for r, picture in enumerate(pictures + [theirs]):
                sheet.paste(picture, ((c + 1) * cell, top + r * height))
        top += tall * height
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"per photo: the photo, then per style each network ({', '.join(names)}) over the optimiser "
          f"(bottom): {out}")


if __name__ == "__main__":
    main()
