"""pyproject.toml is the one place dependencies are declared; environment.yml must agree with it."""

import re
import tomllib
from helpers import ROOT



def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def environment_pip_requirements():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    return [line.strip()[2:] for line in lines[start + 1:] if line.startswith("      - ")]


def normalise(requirement):
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_lists_exactly_the_pyproject_requirements():
    assert sorted(map(normalise, environment_pip_requirements())) == \
        sorted(map(normalise, pyproject_requirements()))


def test_environment_yml_pins_python_311():
    assert "  - python=3.11" in (ROOT / "environment.yml").read_text().splitlines()


def test_requirements_are_lower_bounds_not_pins():
    for requirement in pyproject_requirements():
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+>=[0-9.]+", requirement.replace(" ", "")), requirement
