"""Shared fixtures: the real VGG-19 backbone, loaded once per test session."""

import pytest

from stylelab.backbones import load_backbone


@pytest.fixture(scope="session")
def vgg19():
    return load_backbone("vgg19")
