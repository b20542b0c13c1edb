"""Read the solution bodies (the code between the markers) out of solutions/, for leak tests."""

import ast
from pathlib import Path

from grader.instructor.starter import END, START


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
