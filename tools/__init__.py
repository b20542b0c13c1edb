"""The kit's maintenance scripts, importable (from tools import make_lab_references) by the tests."""
