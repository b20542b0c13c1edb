"""Print the requirements pyproject.toml declares (runtime and dev), for `pip install`.

pyproject.toml is the one place dependencies are declared. The Makefile installs
them into the venv without installing stylelab itself, so one venv can serve
several clones: each runs its own code from its own folder.

    python3 tools/requirements.py          # torch>=2.1 torchvision>=0.16 ...
    python3 tools/requirements.py --hash   # a short hash of that list, for the Makefile's stamp
    python3 tools/requirements.py --floors # each at its lower bound: torch==2.1.* ... (make floors)
    python3 tools/requirements.py --grading  # what the autograder needs: torch and numpy

Standard library only (tomllib: Python 3.11+), since it runs before the venv exists.
"""

import hashlib
import sys
import tomllib
from pathlib import Path


def requirements():
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values()
                                      for r in extra]


if __name__ == "__main__":
    listed = requirements()
    if sys.argv[1:] == ["--hash"]:
        print(hashlib.sha1("\n".join(listed).encode()).hexdigest()[:12])
    elif sys.argv[1:] == ["--grading"]:
        print(" ".join(r for r in listed if r.split(">=")[0] in ("torch", "numpy")))
    elif sys.argv[1:] == ["--floors"]:
        # the newest patch release of each declared minimum: what an old environment holds
        print(" ".join(r.replace(">=", "==") + ".*" for r in listed))
    else:
        print(" ".join(listed))
