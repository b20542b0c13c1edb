"""The autograder: solutions pass, stubs fail, each catalogued mistake gets its own hint,
bad submissions never crash it, and a hard-coded submission fails the hidden checks."""

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from grader import check
from grader.__main__ import main as grader_main
from grader.checks import (EXERCISES, HINTS, REFERENCE, check_function, check_functions, load_functions,
                           load_reference, rel_error)
from grader.hidden import hidden_check, hidden_functions
from grader.make_reference import differences, generate
from grader.mistakes import MISTAKES
from grader.points import FILES

ROOT = Path(__file__).resolve().parent.parent
GATYS = tuple(FILES["style_transfer.py"])  # fast_transfer.py's exercises: tests/test_fast_grader.py


# --- student-style implementations, written independently of solutions/ -------------

def gram_bmm(features, normalize=True):
    N, C, H, W = features.shape
    flat = features.view(N, C, H * W)
    gram = torch.bmm(flat, flat.permute(0, 2, 1))
    return gram / (C * H * W) if normalize else gram


def cs231n_loop(cnn, content_img, style_img, content_layer, content_weight, style_layers, style_weights,
                tv_weight, num_iters=200, optimizer="adam", lr=3.0, decayed_lr=0.1, decay_lr_at=None,
                init="content", noise_ratio=0.6, pixel_range=None, seed=0, callback=None,
                clamp=True, decay="param_groups"):
    """A CS231n-shaped loop; clamp and decay select the catalogued loop mistakes."""
    def feats_of(x):
        out, h = [], x
        for module in cnn:
            h = module(h)
            out.append(h)
        return out

    low, high = pixel_range
    content_target = feats_of(content_img)[content_layer].detach()
    style_feats = feats_of(style_img)
    targets = [gram_bmm(style_feats[i]).detach() for i in style_layers]
    img = content_img.clone().requires_grad_(True)
    opt = torch.optim.Adam([img], lr=lr)
    totals = []
    for t in range(num_iters):
        if t == decay_lr_at and decay == "param_groups":
            opt.param_groups[0]["lr"] = decayed_lr
        elif t == decay_lr_at and decay == "new_adam":
            opt = torch.optim.Adam([img], lr=decayed_lr)
        opt.zero_grad()
        f = feats_of(img)
        loss = content_weight * ((f[content_layer] - content_target) ** 2).sum()
        for i, layer in enumerate(style_layers):
            loss = loss + style_weights[i] * ((gram_bmm(f[layer]) - targets[i]) ** 2).sum()
        loss = loss + tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum()
                                   + ((img[..., 1:] - img[..., :-1]) ** 2).sum())
        loss.backward()
        totals.append(loss.item())
        opt.step()
        if clamp:
            img.data.clamp_(low, high)
    return img.detach(), {"total": totals}


def _extract(x, cnn, keep):
    feats, h = [], x
    for module in cnn:
        h = module(h)
        feats.append(h)
    return keep(x, feats)


def _tv(img, w, combine):
    dh = img[:, :, 1:, :] - img[:, :, :-1, :]
    dw = img[:, :, :, 1:] - img[:, :, :, :-1]
    return w * combine(dh, dw)


def _style(feats, style_layers, style_targets, style_weights, index=None, reduce=torch.sum, gram=gram_bmm,
           accumulate=True):
    loss = 0
    for i, (layer, target, weight) in enumerate(zip(style_layers, style_targets, style_weights)):
        term = weight * reduce((gram(feats[layer if index is None else i]) - target) ** 2)
        loss = loss + term if accumulate else term
    return loss


def _gram(scale, transpose=False, first_only=False, ignore_flag=False):
    def gram_matrix(features, normalize=True):
        N, C, H, W = features.shape
        flat = features.reshape(N, C, H * W)
        g = flat.transpose(1, 2) @ flat if transpose else flat @ flat.transpose(1, 2)
        if first_only:
            g = g[0]
        return g / scale(N, C, H, W) if (normalize or ignore_flag) else g
    return gram_matrix


def _recolour(style_img, content_img, inverse=False, means_only=False, clamp=True):
    """Mean-and-covariance colour matching via Cholesky-free SVD, written independently."""
    s, c = style_img[0].flatten(1), content_img[0].flatten(1)
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    if means_only:
        out = s - mu_s + mu_c
    else:
        def root(m, p):
            u, sigma, _ = torch.linalg.svd(m)
            return u @ torch.diag(sigma ** p) @ u.T
        cov = lambda x, mu: torch.cov(x, correction=0) + 1e-5 * torch.eye(3)
        cs, cc = cov(s, mu_s), cov(c, mu_c)
        A = root(cs, 0.5) @ root(cc, -0.5) if inverse else root(cc, 0.5) @ root(cs, -0.5)
        out = A @ (s - mu_s) + mu_c
    out = out.reshape(style_img.shape)
    return out.clamp(0, 1) if clamp else out


YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _luminance(stylized, content_img, swap=False, clamp=True):
    to_yiq = lambda x: (YIQ @ x.flatten(2)).reshape(x.shape)
    a, b = to_yiq(stylized), to_yiq(content_img)
    if swap:
        a, b = b, a
    mixed = torch.cat([a[:, :1], b[:, 1:]], dim=1)
    rgb = (torch.linalg.solve(YIQ, mixed.flatten(2))).reshape(mixed.shape)
    return rgb.clamp(0, 1) if clamp else rgb


def _landscape(cnn, img, content_img, style_img, content_layer, content_weight, style_layers, style_weights,
               tv_weight, d1, d2, alphas, betas, transpose=False, tv=True):
    def losses(x):
        f = _extract(x, cnn, keep=lambda _, feats: feats)
        target = _extract(content_img, cnn, keep=lambda _, feats: feats)
        style_f = _extract(style_img, cnn, keep=lambda _, feats: feats)
        c = content_weight * ((f[content_layer] - target[content_layer]) ** 2).sum()
        s = _style(f, style_layers, [gram_bmm(style_f[i]) for i in style_layers], style_weights)
        t = _tv(x, tv_weight, lambda dh, dw: dh.pow(2).sum() + dw.pow(2).sum()) if tv else 0
        return c, s, c + s + t
    grid = torch.tensor([[[float(v) for v in losses(img + a * d1 + b * d2)] for b in betas] for a in alphas])
    grid = grid.transpose(0, 1) if transpose else grid  # (A, B, 3)
    return {"content": grid[..., 0], "style": grid[..., 1], "total": grid[..., 2]}


WRONG = {
    "extract_features": {
        "last_only": functools.partial(_extract, keep=lambda x, f: [f[-1]]),
        "includes_input": functools.partial(_extract, keep=lambda x, f: [x] + f),
        "missing_last": functools.partial(_extract, keep=lambda x, f: f[:-1]),
    },
    "content_loss": {
        "mean": lambda w, cur, orig: w * ((cur - orig) ** 2).mean(),
        "no_weight": lambda w, cur, orig: ((cur - orig) ** 2).sum(),
        "norm": lambda w, cur, orig: w * torch.norm(cur - orig),
        "half": lambda w, cur, orig: 0.5 * w * ((cur - orig) ** 2).sum(),
    },
    "gram_matrix": {
        "unnormalized": _gram(lambda N, C, H, W: 1),
        "hw_only": _gram(lambda N, C, H, W: H * W),
        "c_only": _gram(lambda N, C, H, W: C),
        "with_batch": _gram(lambda N, C, H, W: N * C * H * W),
        "always_normalized": _gram(lambda N, C, H, W: C * H * W, ignore_flag=True),
        "wrong_transpose": _gram(lambda N, C, H, W: C * H * W, transpose=True),
        "first_image_only": _gram(lambda N, C, H, W: C * H * W, first_only=True),
    },
    "style_loss": {
        "by_position": functools.partial(_style, index=True),
        "no_weight": lambda feats, layers, targets, weights: _style(feats, layers, targets, [1.0] * len(layers)),
        "mean": functools.partial(_style, reduce=torch.mean),
        "last_layer_only": functools.partial(_style, accumulate=False),
        "unnormalized_gram": functools.partial(_style, gram=lambda f: gram_bmm(f, normalize=False)),
    },
    "tv_loss": {
        "abs": functools.partial(_tv, combine=lambda dh, dw: dh.abs().sum() + dw.abs().sum()),
        "vertical_only": functools.partial(_tv, combine=lambda dh, dw: (dh ** 2).sum()),
        "horizontal_only": functools.partial(_tv, combine=lambda dh, dw: (dw ** 2).sum()),
        "mean": functools.partial(_tv, combine=lambda dh, dw: (dh ** 2).mean() + (dw ** 2).mean()),
        "no_weight": lambda img, w: _tv(img, 1.0, lambda dh, dw: (dh ** 2).sum() + (dw ** 2).sum()),
        "wraparound": lambda img, w: w * sum(((img - img.roll(1, d)) ** 2).sum() for d in (2, 3)),
    },
    "match_color": {
        "means_only": functools.partial(_recolour, means_only=True),
        "inverted": functools.partial(_recolour, inverse=True),
        "unclamped": functools.partial(_recolour, clamp=False),
    },
    "luminance_only": {
        "swapped": functools.partial(_luminance, swap=True),
        "unclamped": functools.partial(_luminance, clamp=False),
    },
    "loss_landscape": {
        "transposed": functools.partial(_landscape, transpose=True),
        "total_without_tv": functools.partial(_landscape, tv=False),
    },
    "style_transfer": {
        "no_clamp": functools.partial(cs231n_loop, clamp=False),
        "no_decay": functools.partial(cs231n_loop, decay="none"),
        "reset_moments": functools.partial(cs231n_loop, decay="new_adam"),
    },
}

RIGHT = {
    "extract_features": functools.partial(_extract, keep=lambda x, f: f),
    "content_loss": lambda w, cur, orig: w * torch.nn.functional.mse_loss(cur, orig, reduction="sum"),
    "gram_matrix": gram_bmm,
    "style_loss": _style,
    "tv_loss": functools.partial(_tv, combine=lambda dh, dw: dh.pow(2).sum() + dw.pow(2).sum()),
    "style_transfer": cs231n_loop,
    "match_color": _recolour,
    "luminance_only": _luminance,
    "loss_landscape": _landscape,
}


# --- the reference file ----------------------------------------------------------------

def test_reference_file_regenerates_from_solutions():
    committed = torch.load(REFERENCE, weights_only=True)
    assert differences(generate(), committed) == []
    assert set(load_reference()) == set(EXERCISES)


def test_catalogue_and_hints_cover_the_same_mistakes():
    assert {e: set(m) for e, m in MISTAKES.items()} == {e: set(h) for e, h in HINTS.items()}
    assert set(MISTAKES) == set(EXERCISES)
    assert set(WRONG) == set(GATYS) and all(set(WRONG[e]) == set(HINTS[e]) for e in GATYS)


def test_rel_error_is_cs231ns():
    x, y = torch.tensor([1.0, 0.0, -2.0]), torch.tensor([1.5, 0.0, -2.0])
    assert rel_error(x, y) == pytest.approx(0.5 / 2.5)
    assert rel_error(torch.zeros(2), torch.zeros(2)) == 0.0


# --- solutions, stubs and other correct code --------------------------------------------

def test_solutions_pass_every_public_and_hidden_check():
    functions = load_functions("solutions")
    for result in check_functions(functions) + hidden_functions(functions):
        assert result.passed, result.line()
        assert result.points == result.max_points > 0


def test_starter_fails_every_check_as_not_implemented():
    results = check_functions(load_functions("starter"))
    assert [r.reason for r in results] == ["not implemented yet"] * len(EXERCISES)
    assert sum(r.points for r in results) == 0


@pytest.mark.parametrize("exercise", GATYS)
def test_independent_correct_implementations_pass(exercise):
    assert check_function(RIGHT[exercise], exercise).passed
    assert hidden_check(RIGHT[exercise], exercise).passed


# --- every catalogued mistake gets its own hint ------------------------------------------

@pytest.mark.parametrize("exercise,mistake", [(e, m) for e in GATYS for m in HINTS[e]])
def test_each_catalogued_mistake_is_recognised(exercise, mistake):
    wrong = WRONG[exercise][mistake]
    result = check_function(wrong, exercise)
    assert not result.passed and result.reason == HINTS[exercise][mistake]
    hidden = hidden_check(wrong, exercise)
    assert not hidden.passed and hidden.reason == f"hidden check: {HINTS[exercise][mistake]}"


# --- bad submissions fail with one line, never crash --------------------------------------

def raises_value_error(*args, **kwargs):
    raise ValueError("shapes do not line up\nsecond line")


def returns_item(w, cur, orig):
    return (w * ((cur - orig) ** 2).sum()).item()


def modifies_input(w, cur, orig):
    orig.mul_(0)
    return w * ((cur - orig) ** 2).sum()


def returns_nan(img, tv_weight):
    return tv_weight * img.sum() * float("nan")


def tv_with_loop(img, tv_weight):
    total = 0
    for i in range(img.shape[2] - 1):
        total = total + ((img[:, :, i + 1] - img[:, :, i]) ** 2).sum()
    return tv_weight * (total + ((img[..., 1:] - img[..., :-1]) ** 2).sum())


def detached(w, cur, orig):
    return torch.tensor((w * ((cur - orig) ** 2).sum()).item())


@pytest.mark.parametrize("function,exercise,reason", [
    (raises_value_error, "gram_matrix", "raised ValueError: shapes do not line up"),
    (returns_item, "content_loss", "returned a float, not a torch.Tensor: keep the loss a tensor"),
    (detached, "content_loss", "your loss is detached from the graph"),
    (modifies_input, "content_loss", "modified its input 'content_original' in place"),
    (returns_nan, "tv_loss", "returned NaN or inf"),
    (tv_with_loop, "tv_loss", "uses a Python loop (line 3 of the function)"),
    (lambda features, normalize=True: features.sum(dim=1), "gram_matrix", "returned shape 2 tensors"),
    (lambda x, cnn: "features", "extract_features", "returned a str; expected a list of tensors"),
    (lambda x, cnn: [x] * 3, "extract_features", "returned 3 feature maps; cnn has 5 modules"),
    (lambda *args, **kwargs: torch.zeros(1), "style_transfer", "style_transfer must return a tuple (img, history)"),
    (lambda w, cur, orig: w * ((cur - orig) ** 3).sum(), "content_loss", "values differ from the reference"),
])
def test_bad_submissions_fail_with_a_one_line_reason(function, exercise, reason):
    result = check_function(function, exercise)
    assert not result.passed and result.reason.startswith(reason), result.reason
    assert "\n" not in result.reason


def test_unimportable_module_and_missing_function(tmp_path):
    (tmp_path / "style_transfer.py").write_text("def gram_matrix(features:\n    pass\n")
    assert grader_main(["check", "--impl", str(tmp_path)]) == 1
    (tmp_path / "style_transfer.py").write_text("import torch\n")
    results = check_functions(load_functions(tmp_path))
    assert results[0].reason == "style_transfer.py defines no function extract_features"
    assert results[-1].reason.endswith("fast_transfer.py: no such file; --impl takes starter, solutions or a "
                                       "folder holding fast_transfer.py")


def test_unimportable_module_reports_the_syntax_error(tmp_path, capsys):
    (tmp_path / "style_transfer.py").write_text("def gram_matrix(features:\n    pass\n")
    grader_main(["check", "gram_matrix", "--impl", str(tmp_path)])
    out = capsys.readouterr().out
    assert "could not import" in out and "SyntaxError" in out


# --- hidden checks catch hard-coded answers ------------------------------------------------

def test_hard_coded_submission_passes_public_and_fails_hidden(tmp_path):
    (tmp_path / "style_transfer.py").write_text(textwrap.dedent(f"""
        import torch
        _REF = torch.load({str(REFERENCE)!r}, weights_only=True)

        def _answer(name):
            return _REF[name]["expected"]

        def extract_features(x, cnn):
            return list(_answer("extract_features"))

        def content_loss(content_weight, content_current, content_original):
            return _answer("content_loss")[0] + 0 * content_current.sum()

        def gram_matrix(features, normalize=True):
            return _answer("gram_matrix")[0 if normalize else 1]

        def style_loss(feats, style_layers, style_targets, style_weights):
            return _answer("style_loss")[0] + 0 * feats[0].sum()

        def tv_loss(img, tv_weight):
            return _answer("tv_loss")[0] + 0 * img.sum()

        def style_transfer(cnn, content_img, style_img, *args, **kwargs):
            img, totals = _answer("style_transfer")
            return img, {{"total": totals.tolist()}}

        def match_color(style_img, content_img, eps=1e-5):
            return _answer("match_color")[0]

        def luminance_only(stylized, content_img):
            return _answer("luminance_only")[0]

        def loss_landscape(*args):
            total, content, style = _answer("loss_landscape")
            return {{"total": total, "content": content, "style": style}}
    """))
    functions = load_functions(tmp_path, GATYS)
    assert all(r.passed for r in check_functions(functions))
    assert not any(r.passed for r in hidden_functions(functions))


# --- interfaces ----------------------------------------------------------------------------

def test_cli_exit_codes_and_table(capsys):
    assert grader_main(["check", "--impl", "solutions"]) == 0
    out = capsys.readouterr().out
    assert "gram_matrix                PASS" in out and "train_step                 PASS" in out
    assert "total: 41/41 points" in out
    assert grader_main(["check", "tv_loss", "--impl", "starter"]) == 1
    assert "tv_loss   FAIL     -           0/3     not implemented yet" in capsys.readouterr().out
    assert grader_main(["check", "no_such_thing"]) == 2


def test_cli_on_starter_has_no_traceback():
    run = subprocess.run([sys.executable, "-m", "grader", "check", "--impl", "starter"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert run.stdout.count("not implemented yet") == len(EXERCISES)


def test_notebook_check_prints_a_deterministic_verdict_then_details(capsys):
    assert check("gram_matrix", impl="solutions") is None
    assert check(RIGHT["tv_loss"].func) is None  # a function named like no exercise
    check(WRONG["gram_matrix"]["hw_only"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gram_matrix: PASS (3/3 points)"
    assert lines[1].startswith("  details: relative error ")
    assert lines[2].startswith("check: no exercise '_tv'")
    assert lines[3] == ("gram_matrix: FAIL (0/3 points): your Gram matrix is C times too large: "
                        "normalize divides by C*H*W, not H*W")
