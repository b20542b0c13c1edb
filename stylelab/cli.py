"""Command line: `python -m stylelab transfer|distil|train-fast|stylize|export-onnx|demo|space|examples|layers`.

`transfer` runs Gatys et al. (CVPR 2016) style transfer on built-in images or
your own files and writes a PNG; texture synthesis is `--content-weight 0
--init random`, feature inversion is `--style-weights 0 0 0 0 0 --init random`.
`train-fast` trains Johnson et al.'s (ECCV 2016) feed-forward network on one or
more styles (towards the engine's paintings of training crops, which
`distil` paints, or towards the Gram statistics alone), `stylize` runs a trained one (the shipped model by default) on a
photo of any size, and `export-onnx` writes one for deployment. `demo` serves
the web demo, and `space` writes it as a folder Hugging Face Spaces runs.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from stylelab import speed
from stylelab.backbones import BACKBONES, PADDINGS, PRECISIONS, BackboneUnavailable
from stylelab.examples import CONTENT_IMAGES, EXAMPLES, STYLE_IMAGES, resolve_image
from stylelab.images import ImageError
from stylelab.train import CROP, STYLE_SIZE


def build_parser():
    parser = argparse.ArgumentParser(prog="stylelab", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    t = commands.add_parser("transfer", help="stylise an image",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--content", default="astronaut",
                   help=f"a file, or a built-in image: {', '.join(CONTENT_IMAGES)}")
    t.add_argument("--style", default="swirls",
                   help=f"a file, or a built-in image: {', '.join(STYLE_IMAGES)}")
    t.add_argument("--out", default=None, help="PNG to write (default: out/CONTENT_STYLE.png)")
    t.add_argument("--backbone", default="vgg19", choices=list(BACKBONES))
    t.add_argument("--size", type=int, default=256, help="shorter side of the output, in pixels")
    t.add_argument("--style-size", type=int, default=None, help="shorter side of the style image")
    t.add_argument("--num-iters", type=int, default=200)
    t.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam"])
    t.add_argument("--lr", type=float, default=None, help="step size (default: per backbone)")
    t.add_argument("--init", default=None, choices=["recoloured", "content", "random", "noise"],
                   help="where the picture starts (default: recoloured for lbfgs, the photo in the "
                        "painting's colours; content for adam)")
    t.add_argument("--noise-ratio", type=float, default=0.6)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--padding", default="replicate", choices=list(PADDINGS),
                   help="how the backbone's convolutions pad: replicate repeats the edge pixels, so no dark "
                        "bands and dots grow along the borders; zeros runs the network as it was trained")
    t.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="what the backbone's convolutions compute in (default: what stylelab.speed measured "
                        "fastest on this CPU; bfloat16 only where the CPU has it)")
    t.add_argument("--content-layer", default=None, help="layer name, e.g. relu4_2")
    t.add_argument("--style-layers", nargs="+", default=None, help="layer names")
    t.add_argument("--content-weight", type=float, default=None)
    t.add_argument("--style-weights", type=float, nargs="+", default=None)
    t.add_argument("--tv-weight", type=float, default=None)
    t.add_argument("--snapshot-every", type=int, default=0,
                   help="also save the image every N steps, beside --out")
    t.add_argument("--quiet", action="store_true", help="print only the output path")

    g = commands.add_parser("distil", help="paint training crops with the engine, as targets for train-fast",
                            description="Paint COUNT crops of the training photos in each style with the engine "
                                        "into OUT/STYLE; resumable: pairs already painted are kept.")
    g.add_argument("--style", action="append", required=True, metavar="IMG",
                   help="a built-in style or an image file; repeat for several styles")
    g.add_argument("--dataset", default=None, metavar="DIR",
                   help="a folder of photos to crop (default: the built-in training photos)")
    g.add_argument("--count", type=int, default=20, help="crops per style")
    g.add_argument("--size", type=int, default=None, help="side of the square crops (default: 256)")
    g.add_argument("--num-iters", type=int, default=None, help="the engine's evaluations per crop (default: 80)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="out/distil", metavar="DIR")

    f = commands.add_parser("train-fast", help="train a fast style-transfer network on one or more styles",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--style", action="append", required=True, metavar="IMG",
                   help=f"a style image (a file, or a built-in: {', '.join(STYLE_IMAGES)}); repeat for "
                        f"one network holding several styles")
    f.add_argument("--dataset", default=None, metavar="DIR",
                   help="a folder of photos to train on (COCO, say); default: random crops, flips and "
                        "rescales of the built-in photos, which works offline")
    f.add_argument("--steps", type=int, default=3000)
    f.add_argument("--minutes", type=float, default=None,
                   help="stop once this much training time is spent, even before --steps (--resume counts "
                        "the time already spent)")
    f.add_argument("--size", type=int, default=CROP, help="side of the square training crops (a multiple of 8)")
    f.add_argument("--style-size", type=int, default=STYLE_SIZE, help="shorter side of the style images")
    f.add_argument("--batch-size", type=int, default=4)
    f.add_argument("--lr", type=float, default=1e-3, help="Adam's step size; with --resume, for the steps left")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default="out/fast.pt", metavar="MODEL")
    f.add_argument("--checkpoint-every", type=int, default=100, help="write MODEL.ckpt every N steps")
    f.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt if it exists")
    f.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    f.add_argument("--content-layer", default=None, help="layer name, e.g. relu2_2")
    f.add_argument("--content-weight", nargs="+", default=None, metavar="[STYLE=]W",
                   help="one weight for every style, or STYLE=W for some (the rest keep their own)")
    f.add_argument("--style-weights", type=float, nargs="+", default=None)
    f.add_argument("--tv-weight", type=float, default=None)
    f.add_argument("--widths", type=int, nargs=3, default=None, metavar=("C1", "C2", "C3"),
                   help="channels after conv1, conv2, conv3 (default: stylelab.fast.WIDTHS)")
    f.add_argument("--tiles", nargs="+", default=["1"], metavar="[STYLE=]K",
                   help="judge each crop's style as K x K tiles, each on its own, so that every region "
                        "must take the style: one K for every style, or STYLE=K for some (the rest: 1)")
    f.add_argument("--init", default=None, metavar="MODEL",
                   help="start from this model's weights (the same styles and widths) instead of fresh ones")
    f.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="the loss network's convolutions (default: float32 on a GPU; on a CPU what "
                        "stylelab.speed measured fastest, bfloat16 where the CPU has it)")
    f.add_argument("--work-side", type=int, default=None, metavar="PIXELS",
                   help="stylise photos longer than this from a reduced copy, enlarged guided by the photo "
                        "(default: always at full size)")
    f.add_argument("--distil", default=None, metavar="DIR",
                   help="train towards the engine's paintings in DIR/STYLE (python -m stylelab distil) "
                        "instead of the photos alone")
    f.add_argument("--pixel-weight", type=float, default=0.0,
                   help="with --distil: the weight of the squared distance to the painting's pixels")
    f.add_argument("--recolour", action="store_true",
                   help="hand the network each photo recoloured to the style's colours (stylelab.colour); "
                        "the model then recolours every photo it stylises the same way")
    f.add_argument("--noise", type=float, default=None, metavar="STD",
                   help="the standard deviation of the noise added to each photo on the network's way down, "
                        "new every step (default: 0.1; 0: none)")
    f.add_argument("--palette-weight", type=float, default=0.0,
                   help="the weight of a term on the picture's colours: the distance between its palette and "
                        "the style image's (stylelab.distil.palette)")
    f.add_argument("--only", nargs="+", default=None, metavar="STYLE",
                   help="with --init: train these styles' own norm parameters alone; the shared "
                        "convolutions and the other styles stay as they are")
    f.add_argument("--shade-weight", type=float, default=0.0,
                   help="the weight of a term on the light and shade: the distance between the picture's "
                        "blurred luma and the photo's (stylelab.distil.shade)")

    z = commands.add_parser("stylize", help="stylise a photo with a trained fast network")
    z.add_argument("--model", default=None, help="a model from train-fast (default: the shipped one)")
    z.add_argument("--content", required=True, help=f"a file, or a built-in image: {', '.join(CONTENT_IMAGES)}")
    z.add_argument("--mix", action="append", default=[], metavar="STYLE=W",
                   help="a style of the model and its weight; repeat to blend (default: the first style)")
    z.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    z.add_argument("--size", type=int, default=None,
                   help="the output's shorter side: the photo is enlarged or shrunk first (longer side at most 2048)")
    z.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="what the network computes in (default: what stylelab.speed measured fastest on this "
                        "CPU; bfloat16 only where the CPU has it)")
    z.add_argument("--out", default=None, help="PNG to write (default: out/CONTENT_fast.png)")

    x = commands.add_parser("export-onnx", help="write a fast model as ONNX")
    x.add_argument("--model", default=None, help="a model from train-fast (default: the shipped one)")
    x.add_argument("--out", required=True, help="the .onnx file to write")

    h = commands.add_parser("space", help="write the web demo as a Hugging Face Space (a folder to push)")
    h.add_argument("folder", help="a new folder: app.py, requirements.txt, README.md and the kit's code")

    e = commands.add_parser("examples", help="list the built-in images, or write them as PNGs")
    e.add_argument("folder", nargs="?", help="write every built-in image here")

    d = commands.add_parser("demo", help="the web demo (Gradio)")
    d.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 for a lecture hall)")
    d.add_argument("--port", type=int, default=7860)
    d.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs the internet)")
    d.add_argument("--auth", default=None, metavar="USER:PASS",
                   help="ask every visitor for this user name and password (default: $STYLELAB_AUTH, if set)")
    d.add_argument("--no-limits", action="store_true",
                   help="serve a room without the per-visitor limits (size x iterations, one painting each)")

    layers = commands.add_parser("layers", help="list a backbone's layer names and indices")
    layers.add_argument("--backbone", default="vgg19", choices=list(BACKBONES))
    return parser


def transfer(args):
    from stylelab.objective import PRESETS
    from stylelab.transfer import chain, progress, run_transfer, snapshots

    out = Path(args.out or f"out/{Path(args.content).stem}_{Path(args.style).stem}.png")
    objective = PRESETS[args.backbone].but(  # a flag not given keeps the preset's value
        content_layer=args.content_layer, style_layers=args.style_layers, content_weight=args.content_weight,
        style_weights=args.style_weights, tv_weight=args.tv_weight)
    callback = chain(
        None if args.quiet else progress(args.num_iters, every=max(1, args.num_iters // 10)),
        snapshots(out.with_suffix(""), args.snapshot_every, args.backbone)
        if args.snapshot_every else None)
    result = run_transfer(args.content, args.style, backbone=args.backbone, size=args.size,
                          style_size=args.style_size, num_iters=args.num_iters,
                          optimizer=args.optimizer, lr=args.lr, init=args.init,
                          noise_ratio=args.noise_ratio, seed=args.seed, callback=callback,
                          padding=args.padding, precision=args.precision, objective=objective)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    history = out.with_suffix(".json")
    history.write_text(json.dumps({"settings": result.settings, "history": result.history}))
    if not args.quiet:
        print(f"{result.seconds:.1f} s for {args.num_iters} steps; losses in {history}")
    print(f"wrote {out}")


def train_fast(args):
    import shlex

    from stylelab.train import train_fast as train

    command = "python -m stylelab " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train-fast"] else ""
    path = train(args.style, args.dataset, steps=args.steps, size=args.size, style_size=args.style_size,
                 batch_size=args.batch_size, lr=args.lr, seed=args.seed, out=args.out,
                 max_seconds=None if args.minutes is None else 60 * args.minutes,
                 checkpoint_every=args.checkpoint_every, resume=args.resume, device=args.device,
                 widths=args.widths, work_side=args.work_side, tiles=per_style(args.tiles, int, "--tiles"),
                 init=args.init, precision=args.precision, distil=args.distil, pixel_weight=args.pixel_weight,
                 palette_weight=args.palette_weight, shade_weight=args.shade_weight, recolour=args.recolour,
                 **({} if args.noise is None else {"noise": args.noise}), command=command, only=args.only,
                 content_layer=args.content_layer,
                 content_weight=per_style(args.content_weight, float, "--content-weight"),
                 style_weights=args.style_weights, tv_weight=args.tv_weight)  # None keeps each style's own
    print(f"wrote {path}")


def has_distil(what):
    """Whether stylelab.distil is here; a student release leaves it out (grader/instructor/release.py)."""
    import importlib.util

    if importlib.util.find_spec("stylelab.distil") is None:
        print(f"stylelab: error: {what} part of the instructor's kit, not of this release", file=sys.stderr)
        return False
    return True


def per_style(texts, cast, flag):
    """['2'] -> 2; ['mosaic=2', 'shards=3'] -> {'mosaic': 2, 'shards': 3}; None -> None."""
    if texts is None:
        return None
    try:
        if len(texts) == 1 and "=" not in texts[0]:
            return cast(texts[0])
        pairs = [text.split("=", 1) for text in texts]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError
        return {name: cast(value) for name, value in pairs}
    except ValueError:
        raise ValueError(f"{flag} {' '.join(texts)}: give one number for every style, "
                         f"or STYLE=NUMBER for some, e.g. {flag} mosaic=2") from None


def parse_mix(pairs):
    """['swirls=2', 'mosaic=1'] -> {'swirls': 2.0, 'mosaic': 1.0}."""
    mix = {}
    for pair in pairs:
        name, _, weight = pair.partition("=")
        try:
            mix[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--mix {pair!r}: write STYLE=WEIGHT, e.g. --mix swirls=0.7") from None
    return mix


def stylize(args):
    import time

    from stylelab.fast import SHIPPED, load_model, stylize as run
    from stylelab.images import load_image

    model = load_model(args.model or SHIPPED, precision=args.precision or speed.choice("fast")["precision"])
    rgb = load_image(resolve_image(args.content))
    start = time.perf_counter()
    image = run(model, rgb, parse_mix(args.mix) or None, args.preserve_color, size=args.size)
    seconds = time.perf_counter() - start
    out = Path(args.out or f"out/{Path(args.content).stem}_fast.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    print(f"{image.width}x{image.height} in {seconds:.2f} s; wrote {out}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command in ("transfer", "distil", "train-fast", "stylize", "demo"):
        speed.use_threads()  # one per core where that measured faster than one per logical CPU
    if args.command in ("train-fast", "stylize", "demo"):
        from stylelab.fast import reuse_freed_memory

        reuse_freed_memory()  # big activations, allocated layer after layer
    try:
        if args.command == "transfer":
            transfer(args)
        elif args.command == "distil":
            if not has_distil("distil is"):
                return 2
            from stylelab.distil import build_corpus
            from stylelab.train import style_name

            given = {key: value for key, value in (("size", args.size), ("num_iters", args.num_iters))
                     if value is not None}
            for style in args.style:
                folder = Path(args.out, style_name(style))
                build_corpus(style, folder, args.count, dataset=args.dataset, seed=args.seed, **given)
                print(f"{folder}: {args.count} pairs")
        elif args.command == "train-fast":
            if ((args.distil or args.palette_weight or args.shade_weight)
                    and not has_distil("--distil, --palette-weight and --shade-weight are")):
                return 2
            train_fast(args)
        elif args.command == "stylize":
            stylize(args)
        elif args.command == "export-onnx":
            from stylelab.fast import SHIPPED, export_onnx, load_model

            model = load_model(args.model or SHIPPED)
            print(f"wrote {export_onnx(model, args.out)}")
            if model.colours is not None:  # trained with --recolour: the recolouring is not in the graph
                print("note: this model recolours each photo before its network (stylelab.colour.match_colours, "
                      "to the mixed styles' colours, as stylize does); the exported graph expects the photo "
                      "already recoloured")
        elif args.command == "space":
            from stylelab.space import write_space

            folder = write_space(args.folder)
            print(f"wrote {folder}: create a Gradio Space on huggingface.co, clone its repository, copy this "
                  f"folder's contents into it, then git add, commit and push (docs/demo.md)")
        elif args.command == "examples":
            if args.folder:
                from stylelab.examples import main as write_examples

                write_examples([args.folder])
            else:
                for name, (_, credit) in EXAMPLES.items():
                    kind = "content" if name in CONTENT_IMAGES else "style"
                    print(f"{name:10s} {kind:8s} {credit}")
        elif args.command == "demo":
            from stylelab.demo import launch

            launch(args.host, args.port, args.share, args.auth or os.environ.get("STYLELAB_AUTH"),
                   limits=None if args.no_limits else "auto")
        elif args.command == "layers":
            from stylelab.backbones import load_backbone

            net = load_backbone(args.backbone)
            for index, name in enumerate(net.layer_names):
                print(f"{index:3d}  {name}")
    except NotImplementedError as error:  # the student edition runs the student's own exercises
        print(f"stylelab: error: {error}: it is not implemented yet, and this command runs it",
              file=sys.stderr)
        return 2
    except (ImageError, BackboneUnavailable, KeyError, ValueError, FileNotFoundError, FileExistsError,
            ArithmeticError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"stylelab: error: {message}", file=sys.stderr)
        return 2
    return 0
