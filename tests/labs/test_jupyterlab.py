"""The student release in JupyterLab, in a real browser: what a student sees before writing a line.

The release is built as an instructor would build it (`grader release`), served
by JupyterLab rooted as `make lab` roots it, and opened in Debian's headless
Chromium. The screenshots go to out/jupyterlab_*.png, to look at.
"""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from grader.instructor.release import student_bundle
from helpers import chromium, free_port

OUT = Path("out")


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """(the release's folder, JupyterLab's address) for a server rooted at the release, as `make lab` roots it."""
    release = student_bundle(tmp_path_factory.mktemp("release") / "stylelab")
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               "--ServerApp.root_dir=.", "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp_path_factory.mktemp("log") / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, cwd=release, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("config"))})
    address = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{address}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start: {Path(log.name).read_text()[-2000:]}")
    yield release, address
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_a_student_opens_lab_1_sees_no_verdicts_and_reaches_starter_and_the_references(jupyterlab, chromium_path):
    from playwright.sync_api import sync_playwright

    release, address = jupyterlab
    assert (release / "labs" / "reference" / "01_inversion.png").is_file()
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = chromium(playwright, chromium_path)
        page = browser.new_page()
        page.goto(f"{address}/lab/tree/labs/01_features_and_content.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(OUT / "jupyterlab_lab1_top.png"))
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first
        assert "Lab 1" in notebook.inner_text()
        assert not re.search(r"\w+: (PASS|FAIL) \(\d+/\d+ points\)", notebook.inner_text())  # no stored verdicts
        assert page.locator(".jp-Notebook .jp-OutputArea-output").count() == 0

        # the reference picture under the inversion figure: scroll to it and see it drawn
        picture = page.locator('.jp-Notebook img[src*="01_inversion.png"]').first
        page.mouse.move(800, 600)  # over the notebook, so the wheel scrolls it
        for _ in range(60):  # JupyterLab renders the cells near the view: page down until it exists
            if picture.count():
                break
            page.mouse.wheel(0, 900)
            page.wait_for_timeout(300)
        picture.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=picture.element_handle(),
                               timeout=30_000)
        page.screenshot(path=str(OUT / "jupyterlab_lab1_reference.png"))

        # the file browser reaches the kit's root, where starter/ holds the student's code
        page.locator(".jp-BreadCrumbs-home").first.click()
        page.wait_for_selector('.jp-DirListing-item[title*="starter"], .jp-DirListing-item:has-text("starter")',
                               timeout=30_000)
        names = page.locator(".jp-DirListing-itemText").all_inner_texts()
        assert {"labs", "starter", "stylelab", "grader"} <= set(names), names
        page.locator('.jp-DirListing-item:has-text("starter")').first.dblclick()
        page.wait_for_selector('.jp-DirListing-item:has-text("style_transfer.py")', timeout=30_000)
        page.locator('.jp-DirListing-item:has-text("style_transfer.py")').first.dblclick()
        page.wait_for_selector(".jp-FileEditor .cm-content", timeout=60_000)
        page.wait_for_timeout(1000)
        editor = page.locator(".jp-FileEditor .cm-content").first.inner_text()
        assert "def extract_features" in editor and "NotImplementedError" in editor
        page.screenshot(path=str(OUT / "jupyterlab_starter.png"))
        browser.close()
