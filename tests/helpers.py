"""What several test files share: the kit's root, free ports for servers, a headless Chromium, and the solution bodies
(the code between the markers) for leak tests. tests/students.py, the independent oracle, stays apart."""

import ast
import socket
import tempfile
from pathlib import Path

from grader.instructor.starter import END, START

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(playwright, executable):
    """Debian's headless Chromium with a fresh profile: no browser of Playwright's own."""
    return playwright.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="stylelab-chromium-"), executable_path=executable,
        headless=True, viewport={"width": 1400, "height": 1100},
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"])


def port_is_free(port, host="0.0.0.0"):
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def solution_bodies(folder):
    """{(file, function): [stripped body lines]} for every marked body under folder."""
    bodies = {}
    for path in sorted(Path(folder).rglob("*.py")):
        lines = path.read_text().splitlines()
        functions = {node.lineno: node.name for node in ast.walk(ast.parse("\n".join(lines)))
                     if isinstance(node, ast.FunctionDef)}
        current, body = None, None
        for number, line in enumerate(lines, start=1):
            current = functions.get(number, current)
            if line.strip() == START:
                body = []
            elif line.strip() == END:
                bodies[(path.name, current)] = [b for b in body if b]
                body = None
            elif body is not None:
                body.append(line.strip())
    return bodies
