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


def old_starter(x, params, style_mix):  # transformer_net as a starter without noise had it
    return x


def calls_conv_layer_wrongly(x, params, style_mix, noise=None):
    return torch.nn.functional.conv2d(x, params["conv1.weight"], 1, 2, 3, 4, 5, 6)


def test_a_missing_argument_names_the_arguments_the_grader_passes():
    reason = check_function(old_starter, "transformer_net").reason
    assert reason.startswith("raised TypeError: old_starter() takes 3 positional arguments but 4 were given")
    assert "transformer_net(x, params, style_mix, noise)" not in reason  # it names old_starter, not the exercise
    old_starter.__name__ = old_starter.__qualname__ = "transformer_net"
    reason = check_function(old_starter, "transformer_net").reason
    assert "(the grader calls transformer_net(x, params, style_mix, noise), as its docstring says" in reason
    reason = check_function(lambda params, lr: None, "train_step").reason  # keywords, with an optimizer made from lr
    assert "got an unexpected keyword argument 'optimizer'" in reason and "the grader calls" not in reason
    # a TypeError inside the function is the function's own bug: no word on its arguments
    reason = check_function(calls_conv_layer_wrongly, "transformer_net").reason
    assert reason.startswith("raised TypeError: ") and "the grader calls" not in reason


def train_step(params, optimizer, cnn, content_batch, style_grams, style_mix, content_layer, content_weight,
               style_layers, style_weights, tv_weight):  # no noise, as an older starter
    return {}


def test_the_longest_call_fits_the_one_line_reason():
    reason = check_function(train_step, "train_step").reason
    assert reason.startswith("raised TypeError: train_step() got an unexpected keyword argument 'noise' (the grader "
                             "calls train_step(params, optimizer, cnn, content_batch, style_grams, style_mix, ")
    assert reason.endswith("tv_weight, noise), as its docstring says; a starter older than the grader may lack one)")
