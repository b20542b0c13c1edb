"""The grader on fast_transfer.py: right answers pass, each catalogued mistake gets its hint.

The students' implementations (tests/students.py) are written independently of
solutions/, from torch's own layers where they can be, the way a student might.
"""

import pytest
import torch

from grader.checks import check_function
from grader.exercises import EXERCISE, of_file
from grader.instructor.hidden import hidden_check
from students import FAST_RIGHT as RIGHT
from students import FAST_WRONG as WRONG

FAST = of_file("fast_transfer.py")


@pytest.mark.parametrize("exercise", FAST)
def test_independent_correct_implementations_pass(exercise):
    assert check_function(RIGHT[exercise], exercise).passed
    assert hidden_check(RIGHT[exercise], exercise).passed


def test_every_fast_mistake_has_a_wrong_implementation_here():
    assert {e: set(EXERCISE[e].hints) for e in FAST} == {e: set(WRONG[e]) for e in FAST}


@pytest.mark.parametrize("exercise,mistake", [(e, m) for e in FAST for m in EXERCISE[e].hints])
def test_each_catalogued_mistake_is_recognised(exercise, mistake):
    wrong = WRONG[exercise][mistake]
    result = check_function(wrong, exercise)
    assert not result.passed and result.reason == EXERCISE[exercise].hints[mistake]
    hidden = hidden_check(wrong, exercise)
    assert not hidden.passed
    # the hidden cases change shapes and switch the upsampling off in one of them,
    # where an upsampling mistake is simply "values differ"
    if not (exercise == "conv_layer" and mistake in ("upsample_after", "nearest", "align_corners")):
        assert hidden.reason == f"hidden check: {EXERCISE[exercise].hints[mistake]}"


@pytest.mark.parametrize("function,exercise,reason", [
    (lambda *a: {"total": torch.zeros(())}, "perceptual_loss", "perceptual_loss must return a dict with the keys"),
    (lambda *a: {k: torch.tensor(1.0) for k in ("content", "style", "tv", "total")}, "perceptual_loss",
     "your total loss is detached from the graph"),
    (lambda params, optimizer, *a, **k: None, "train_step", "train_step must return a dict with the keys"),
    (lambda x, params, style_mix, noise=None: x, "transformer_net", "values differ from the reference"),
    (lambda x, gamma, beta, style_mix, eps=1e-5: x + style_mix.mul_(2).sum(), "conditional_instance_norm",
     "modified its input 'style_mix' in place"),
])
def test_bad_fast_submissions_fail_with_a_one_line_reason(function, exercise, reason):
    result = check_function(function, exercise)
    assert not result.passed and result.reason.startswith(reason), result.reason
