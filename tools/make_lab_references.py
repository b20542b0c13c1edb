"""Draw the labs' reference pictures: what each main figure looks like with the solutions.

CS231n ships the pictures a student should get; so does this kit. A lab's
figure cell that opens with the line

    # Reference picture: reference/NAME.png

has its figure redrawn here by running the whole notebook top to bottom with
STYLELAB_IMPL=solutions at its default settings (not quick mode), exactly as a
student runs it, and the picture is saved small under labs/reference/. The
markdown cell after it shows that file, so in JupyterLab the reference sits
under the student's own figure. labs/reference/MANIFEST.json records a
fingerprint of what drew them (the solutions, the kit modules the figures run,
the shipped fast network and each figure cell's code); tests/labs/test_labs.py fails
when the fingerprint no longer matches, so the pictures cannot drift from the
code unnoticed.

    python tools/make_lab_references.py           # all labs (about 12 minutes on two cores)
    python tools/make_lab_references.py 01 03     # some of them
    python tools/make_lab_references.py --check   # exit 1 if the fingerprint is stale
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
REFERENCE = LABS / "reference"
MANIFEST = REFERENCE / "MANIFEST.json"
MARKER = re.compile(r"^# Reference picture: reference/([\w-]+\.png)$", re.M)
# what the figures are drawn from; a change to any of them redraws the pictures
SOURCES = ("solutions/style_transfer.py", "solutions/fast_transfer.py", "stylelab/engine.py",
           "stylelab/colour.py", "stylelab/transfer.py", "stylelab/backbones.py", "stylelab/fast.py",
           "stylelab/fused.py", "stylelab/lab.py", "stylelab/train.py", "stylelab/photos.py", "stylelab/speed.py",
           "stylelab/objective.py", "stylelab/impl.py", "stylelab/models/fast3.pt")
SLOW = 10  # seconds: a cell this slow is named with its time
MAX_WIDTH = 800  # pixels: a figure stays readable, the file stays under 300 kB


def marked_cells(path):
    """[(picture name, cell source)] for the figure cells of one notebook, in order."""
    cells = json.loads(path.read_text())["cells"]
    found = []
    for cell in cells:
        source = "".join(cell["source"])
        match = MARKER.match(source) if cell["cell_type"] == "code" else None
        if match:
            found.append((match.group(1), source))
    return found


def fingerprint(path):
    """A digest of everything that draws one notebook's reference pictures."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    for name, source in marked_cells(path):
        digest.update(name.encode() + b"\0" + source.encode())
    return digest.hexdigest()


def stale(paths):
    """The notebooks whose pictures were drawn from other code than there is now."""
    recorded = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    return [p for p in paths if marked_cells(p) and recorded.get(p.name) != fingerprint(p)]


def cell_seconds(cell):
    """How long nbclient took to run a cell, from the timing it records in the cell's metadata."""
    from datetime import datetime

    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def draw(path):
    """Run one notebook with the solutions and save its marked figures; returns the seconds it took.

    Prints the cells that took SLOW seconds or more: where the lab's time goes.
    """
    import time

    import nbclient
    import nbformat
    from PIL import Image

    notebook = nbformat.read(path, as_version=4)
    os.environ.update(STYLELAB_IMPL="solutions", STYLELAB_QUICK="0")
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend is what draws the figures
    client = nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and cell_seconds(cell) >= SLOW:
            print(f"  cell {index} ({cell.source.splitlines()[0][:60]}): {cell_seconds(cell):.0f} s", flush=True)
    REFERENCE.mkdir(exist_ok=True)
    for cell in notebook.cells:
        match = MARKER.match(cell.source) if cell.cell_type == "code" else None
        if not match:
            continue
        pictures = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        if not pictures:
            raise RuntimeError(f"{path.name}: the cell marked {match.group(1)} drew no figure")
        figures = [Image.open(io.BytesIO(base64.b64decode(p))).convert("RGB") for p in pictures]
        image = Image.new("RGB", (max(f.width for f in figures), sum(f.height for f in figures)), "white")
        top = 0
        for figure in figures:  # a cell's figures, one under the other
            image.paste(figure, (0, top))
            top += figure.height
        save_small(image, REFERENCE / match.group(1))
    return seconds


def save_small(image, path):
    """image as an 8-bit PNG at most MAX_WIDTH wide (a third of the size of full colour)."""
    from PIL import Image

    image = image.convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labs", nargs="*", help="notebook numbers (01 ... 05); default: all")
    parser.add_argument("--check", action="store_true", help="exit 1 if any lab's pictures are stale")
    args = parser.parse_args(argv)
    paths = [p for p in sorted(LABS.glob("*.ipynb")) if not args.labs or p.name[:2] in args.labs]
    if args.check:
        for path in stale(paths):
            print(f"labs/reference: {path.name}'s pictures are stale; run python tools/make_lab_references.py "
                  f"{path.name[:2]}", file=sys.stderr)
        return 1 if stale(paths) else 0
    recorded = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for path in paths:
        if not marked_cells(path):
            continue
        seconds = draw(path)
        recorded[path.name] = fingerprint(path)
        MANIFEST.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"{path.name}: {len(marked_cells(path))} pictures in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
