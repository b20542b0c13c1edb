"""`python -m stylelab space OUT/` writes a folder that Hugging Face Spaces runs as it is: its app.py,
started from that folder the way Spaces starts it, serves a room and paints through the API."""

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from stylelab.cli import main as cli
from stylelab.demo import ROOM
from stylelab.examples import example_image
from helpers import ROOT, free_port, port_is_free

gradio_client = pytest.importorskip("gradio_client")
KIT = ROOT


def front_matter(readme):
    head, _, _ = readme.removeprefix("---\n").partition("\n---\n")
    return dict(line.split(": ", 1) for line in head.splitlines())


def test_the_space_folder_holds_what_spaces_reads(tmp_path, capsys):
    import gradio

    assert cli(["space", str(tmp_path / "space")]) == 0
    space = tmp_path / "space"
    meta = front_matter((space / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["sdk_version"] == gradio.__version__
    declared = tomllib.loads((KIT / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = (space / "requirements.txt").read_text().split()
    assert listed == [r for r in declared if not r.startswith("gradio")]  # gradio comes from sdk_version
    assert (space / "stylelab" / "models" / "fast3.pt").is_file()
    assert (space / "solutions" / "style_transfer.py").is_file()
    assert not list(space.rglob("__pycache__")) and (space / "IMAGES.md").is_file()
    assert f"{ROOM.per_visitor} painting queued or running" in (space / "README.md").read_text()
    assert cli(["space", str(space)]) == 2  # never over a folder that holds something
    assert "exists and is not an empty folder" in capsys.readouterr().err


def test_the_space_runs_from_its_folder_and_paints(tmp_path):
    from gradio_client import handle_file

    space = tmp_path / "space"
    assert cli(["space", str(space)]) == 0
    port = 7860 if port_is_free(7860) else free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    # from the folder, as Spaces does: `import stylelab` finds the copy beside app.py, not this clone
    server = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        client = _connect(url, server)
        photo, style = tmp_path / "photo.png", tmp_path / "style.png"
        example_image("chelsea").save(photo)
        example_image("swirls").save(style)
        settings = dict(weight_1=1.0, content_weight=1.0, style_weight=1.0, tv_weight=10.0, backbone="vgg19",
                        start="content", optimizer="lbfgs", keep_colours="off")
        result = client.predict(content=handle_file(str(photo)), style_1=handle_file(str(style)), size=64,
                                iterations=10, **settings, api_name="/paint")
        assert result[3].startswith("done")
        painted = Image.open(result[0])
        assert min(painted.size) == 64
        with pytest.raises(Exception, match="lower the size or the iterations"):  # a room's limits are on
            client.predict(content=handle_file(str(photo)), style_1=handle_file(str(style)), size=512,
                           iterations=100, **settings, api_name="/paint")
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "serving a room" in output, output[-2000:]
    imported = subprocess.run([sys.executable, "-c", "import stylelab; print(stylelab.__file__)"], cwd=space, env=env,
                              capture_output=True, text=True, check=True).stdout
    assert Path(imported.strip()).parent == space / "stylelab"  # the Space's own copy, not this clone


def _connect(url, server, seconds=180):
    from gradio_client import Client

    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"app.py exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet
            time.sleep(1)
    raise AssertionError(f"app.py did not serve {url} within {seconds} s")
