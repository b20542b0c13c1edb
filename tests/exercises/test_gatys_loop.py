"""The full loop: it lowers the loss, honours its options and leaves its inputs alone."""

import math

import pytest
import torch
from torch import nn

from solutions.style_transfer import extract_features, gram_matrix, style_transfer


def tiny_cnn(seed=0):
    torch.manual_seed(seed)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
    return cnn.requires_grad_(False)


def images(seed=0, size=16):
    g = torch.Generator().manual_seed(1000 + seed)  # not style_transfer's noise seeds
    return torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size + 4, size, generator=g)


SETUP = dict(content_layer=3, content_weight=1.0, style_layers=[1, 6], style_weights=[100.0, 100.0],
             tv_weight=0.01, pixel_range=(0.0, 1.0))


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.05), ("lbfgs", 1.0)])
def test_loop_lowers_the_total_loss(optimizer, lr):
    content_img, style_img = images()
    img, history = style_transfer(tiny_cnn(), content_img, style_img, num_iters=30,
                                  optimizer=optimizer, lr=lr, init="random", **SETUP)
    assert img.shape == content_img.shape and not img.requires_grad
    assert all(len(v) == 30 for v in history.values())
    assert history["total"][-1] < 0.5 * history["total"][0]
    for c, s, t, total in zip(history["content"], history["style"], history["tv"], history["total"]):
        assert total == pytest.approx(c + s + t, rel=1e-5)


def test_history_is_the_loss_of_the_image_each_step_starts_from():
    content_img, style_img = images()
    cnn = tiny_cnn()
    _, history = style_transfer(cnn, content_img, style_img, num_iters=1, init="content", **SETUP)
    # at init="content" the content loss is zero and the tv loss is the content image's
    assert history["content"] == [0.0]
    dh = (content_img[..., 1:, :] - content_img[..., :-1, :]).pow(2).sum()
    dw = (content_img[..., 1:] - content_img[..., :-1]).pow(2).sum()
    assert history["tv"][0] == pytest.approx(0.01 * float(dh + dw), rel=1e-5)
    feats, style_feats = extract_features(content_img, cnn), extract_features(style_img, cnn)
    expected = sum(100.0 * float(((gram_matrix(feats[i]) - gram_matrix(style_feats[i])) ** 2).sum())
                   for i in (1, 6))
    assert history["style"][0] == pytest.approx(expected, rel=1e-5)


def test_inputs_are_not_modified_and_callback_sees_every_step():
    content_img, style_img = images()
    before = content_img.clone(), style_img.clone()
    seen = []
    style_transfer(tiny_cnn(), content_img, style_img, num_iters=5, lr=0.05,
                   callback=lambda t, img, losses: seen.append((t, tuple(img.shape), sorted(losses))),
                   **SETUP)
    torch.testing.assert_close(content_img, before[0], rtol=0, atol=0)
    torch.testing.assert_close(style_img, before[1], rtol=0, atol=0)
    assert seen == [(t, (1, 3, 16, 16), ["content", "style", "total", "tv"]) for t in range(5)]


def test_adam_keeps_pixels_in_range_and_decays_lr():
    content_img, style_img = images()
    setup = {**SETUP, "pixel_range": (0.2, 0.8)}
    lrs = []
    img, _ = style_transfer(tiny_cnn(), content_img, style_img, num_iters=10, lr=0.5,
                            decayed_lr=0.01, decay_lr_at=7, init="random", **setup,
                            callback=lambda t, img, losses: lrs.append(
                                (img.min().item() >= 0.2 - 1e-6, img.max().item() <= 0.8 + 1e-6)))
    assert all(low and high for low, high in lrs)
    assert img.min() >= 0.2 - 1e-6 and img.max() <= 0.8 + 1e-6


def test_decay_changes_the_trajectory_only_from_decay_step():
    content_img, style_img = images()
    run = lambda at: style_transfer(tiny_cnn(), content_img, style_img, num_iters=6, lr=0.1,
                                    decayed_lr=0.001, decay_lr_at=at, **SETUP)[1]["total"]
    early, late = run(3), run(100)
    assert early[:4] == late[:4]  # step 3's loss is measured before its (decayed) update
    assert early[4:] != late[4:]


def test_random_and_noise_inits_are_seeded_and_follow_their_formulas():
    content_img, style_img = images()
    first = {}
    grab = lambda t, img, losses: first.setdefault("img", img.clone()) if t == 0 else None
    common = dict(num_iters=1, lr=1e-12, decayed_lr=1e-12, **SETUP)  # img stays its init
    style_transfer(tiny_cnn(), content_img, style_img, init="random", seed=3, callback=grab, **common)
    random_init = first.pop("img")
    style_transfer(tiny_cnn(), content_img, style_img, init="random", seed=3, callback=grab, **common)
    torch.testing.assert_close(first.pop("img"), random_init)
    style_transfer(tiny_cnn(), content_img, style_img, init="random", seed=4, callback=grab, **common)
    assert not torch.allclose(first.pop("img"), random_init)
    assert 0.0 <= random_init.min() and random_init.max() <= 1.0 and random_init.std() > 0.2
    style_transfer(tiny_cnn(), content_img, style_img, init="noise", noise_ratio=0.25, seed=3,
                   callback=grab, **common)
    torch.testing.assert_close(first.pop("img"), 0.25 * random_init + 0.75 * content_img,
                               atol=1e-6, rtol=0)


def test_texture_synthesis_and_feature_inversion_are_configurations():
    content_img, style_img = images()
    texture = {**SETUP, "content_weight": 0.0, "tv_weight": 0.0, "style_weights": [1e4, 1e4]}
    _, history = style_transfer(tiny_cnn(), content_img, style_img, num_iters=20, optimizer="lbfgs",
                                lr=1.0, init="random", **texture)
    assert set(history["content"]) == {0.0} and history["style"][-1] < 0.1 * history["style"][0]
    inversion = {**SETUP, "style_weights": [0.0, 0.0], "tv_weight": 0.0}
    _, history = style_transfer(tiny_cnn(), content_img, style_img, num_iters=20, optimizer="lbfgs",
                                lr=1.0, init="random", **inversion)
    assert set(history["style"]) == {0.0} and history["content"][-1] < 0.1 * history["content"][0]


def test_bad_options_raise_clear_errors():
    content_img, style_img = images()
    with pytest.raises(ValueError, match="init"):
        style_transfer(tiny_cnn(), content_img, style_img, num_iters=1, init="zeros", **SETUP)
    with pytest.raises(ValueError, match="optimizer"):
        style_transfer(tiny_cnn(), content_img, style_img, num_iters=1, optimizer="sgd", **SETUP)


def test_real_vgg19_loop_lowers_the_loss(vgg19):
    content_img = vgg19.preprocess(images(size=32)[0])
    style_img = vgg19.preprocess(images(seed=1, size=32)[0])
    img, history = style_transfer(
        vgg19.cnn, content_img, style_img, content_layer=22, content_weight=1.0,
        style_layers=[1, 6, 11, 20, 29], style_weights=[2500.0, 600.0, 150.0, 40.0, 40.0],
        tv_weight=10.0, num_iters=8, optimizer="lbfgs", lr=1.0, pixel_range=vgg19.pixel_range())
    assert history["total"][-1] < 0.5 * history["total"][0]
    low, high = vgg19.pixel_range()
    assert (img >= low - 1e-4).all() and (img <= high + 1e-4).all()


@pytest.mark.parametrize("num_iters", [1, 7, 23])
def test_lbfgs_spends_exactly_num_iters_and_returns_the_best_image(num_iters):
    content_img, style_img = images()
    cnn = tiny_cnn()
    setup = {**SETUP, "pixel_range": (-10.0, 10.0)}  # wide enough that the final clamp is idle
    seen = []
    img, history = style_transfer(cnn, content_img, style_img, num_iters=num_iters, optimizer="lbfgs",
                                  lr=1.0, init="random", callback=lambda t, img, losses: seen.append(t),
                                  **setup)
    assert seen == list(range(num_iters)) and len(history["total"]) == num_iters
    # re-evaluate the returned image: its loss is the lowest the run saw
    feats, style_feats = extract_features(img, cnn), extract_features(style_img, cnn)
    content = extract_features(content_img, cnn)[3]
    loss = (float(((feats[3] - content) ** 2).sum())
            + sum(100.0 * float(((gram_matrix(feats[i]) - gram_matrix(style_feats[i])) ** 2).sum())
                  for i in (1, 6))
            + 0.01 * float((img[..., 1:, :] - img[..., :-1, :]).pow(2).sum()
                           + (img[..., 1:] - img[..., :-1]).pow(2).sum()))
    assert loss == pytest.approx(min(history["total"]), rel=1e-4)


def test_lbfgs_survives_the_input_that_blew_up_without_a_line_search(vgg19):
    from stylelab.examples import example_image
    from stylelab.images import load_image

    # Without strong-Wolfe, L-BFGS's third step sent this pair's loss to inf, then nan.
    content_img = load_image(example_image("chelsea"), 64, vgg19.preprocess)
    style_img = load_image(example_image("swirls"), 64, vgg19.preprocess)
    img, history = style_transfer(
        vgg19.cnn, content_img, style_img, content_layer=22, content_weight=1.0,
        style_layers=[1, 6, 11, 20, 29], style_weights=[2500.0, 600.0, 150.0, 40.0, 40.0],
        tv_weight=10.0, num_iters=12, optimizer="lbfgs", lr=1.0, pixel_range=vgg19.pixel_range())
    assert all(map(math.isfinite, history["total"])) and torch.isfinite(img).all()
    assert min(history["total"]) < 0.9 * history["total"][0]
