"""The web demo as a Hugging Face Space: a folder that Spaces runs as it is.

A Gradio Space is a git repository holding `app.py`, `requirements.txt` and a
README whose front matter names the SDK and the app file; Spaces installs the
requirements and runs `python app.py` with GRADIO_SERVER_NAME=0.0.0.0 and
port 7860, on the hardware chosen in the Space's settings. `write_space(out)`
writes that folder from the templates in stylelab/templates/space: the
demo's launcher and README, the kit's runtime requirements (from
pyproject.toml, without gradio, which the front matter's sdk_version pins),
and the code the demo runs: stylelab/ with the shipped model, and solutions/,
whose losses the engine runs. The demo serves a room there: the limits of
stylelab.demo.ROOM, on by default.
"""

import shutil
import tomllib
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
CODE = ("stylelab", "solutions")  # the packages the demo imports
FILES = ("LICENSE", "IMAGES.md")  # the licence and the credits of the built-in images
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.ckpt")

TEMPLATES = Path(__file__).resolve().parent / "templates" / "space"  # app.py and README.md


def requirements(pyproject=KIT / "pyproject.toml"):
    """The runtime dependencies pyproject.toml declares, but gradio (the Space's sdk_version installs it)."""
    if not pyproject.is_file():
        raise FileNotFoundError(f"{pyproject} is missing: write the Space from a clone of the kit")
    listed = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [r for r in listed if not r.startswith("gradio")]


def write_space(out):
    """Write the Space's folder at out (created; it must be empty or absent); returns its Path."""
    import gradio

    from stylelab.demo import ROOM

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: give a new folder for the Space")
    out.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        shutil.copytree(KIT / name, out / name, ignore=SKIPPED)
    for name in FILES:
        shutil.copy2(KIT / name, out / name)
    shutil.copy2(TEMPLATES / "app.py", out / "app.py")
    (out / "requirements.txt").write_text("\n".join(requirements()) + "\n")
    readme = (TEMPLATES / "README.md").read_text()
    (out / "README.md").write_text(readme.format(gradio=gradio.__version__, per_visitor=ROOM.per_visitor,
                                                 evaluations=ROOM.max_work // (256 * 256)))
    return out
