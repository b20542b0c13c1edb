"""Shared fixtures: the real VGG-19 backbone, loaded once per test session, and the
system packages some tests need (Debian's chromium, bubblewrap)."""

import os
import shutil

import pytest

from stylelab.backbones import load_backbone


@pytest.fixture(scope="session")
def vgg19():
    return load_backbone("vgg19")


def system_tool(command, package):
    """The path of a system package's command; skip the test where it is missing.

    Under CI (CI=true) a missing package is a failure instead: .ci/run installs
    both, and a CI that silently skipped the browser or the sandbox would prove
    nothing about them.
    """
    path = shutil.which(command)
    if not path:
        missing(f"{command} is not installed: `apt-get install {package}` (.ci/run installs it)")
    return path


def missing(message):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; under CI a missing system package fails the test", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path():
    """Debian's chromium: the browser tests never let a tool download a browser of its own."""
    return system_tool("chromium", "chromium")


@pytest.fixture(scope="session")
def bubblewrap():
    """bwrap, the grading sandbox, where it can build one (some containers forbid user namespaces)."""
    from grader.instructor.sandbox import weaker_reason

    path = system_tool("bwrap", "bubblewrap")
    if weaker_reason():
        missing(weaker_reason())
    return path
