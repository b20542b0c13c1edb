"""The loss exercises against explicit loops and formulas written out independently."""

import pytest
import torch
from torch import nn

from solutions.style_transfer import content_loss, extract_features, gram_matrix, style_loss, tv_loss


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def gram_by_loops(features, normalize=True):
    N, C, H, W = features.shape
    gram = torch.zeros(N, C, C, dtype=features.dtype)
    for n in range(N):
        for c in range(C):
            for d in range(C):
                total = 0.0
                for i in range(H):
                    for j in range(W):
                        total += float(features[n, c, i, j] * features[n, d, i, j])
                gram[n, c, d] = total / (C * H * W) if normalize else total
    return gram


def test_extract_features_returns_every_module_output_in_order():
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3), nn.ReLU()).double()
    x = rand(2, 3, 8, 8)
    feats = extract_features(x, cnn)
    assert len(feats) == len(cnn)
    expected = x
    for module, feat in zip(cnn, feats):
        expected = module(expected)
        torch.testing.assert_close(feat, expected)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 4, 4),
                                                (2, 5, 2, 2), (2, 5, 2, 2)]


def test_content_loss_is_weighted_sum_of_squares():
    current, original = rand(1, 3, 4, 5, seed=1), rand(1, 3, 4, 5, seed=2)
    expected = 0.0
    for c in range(3):
        for i in range(4):
            for j in range(5):
                expected += float(current[0, c, i, j] - original[0, c, i, j]) ** 2
    assert content_loss(0.7, current, original).item() == pytest.approx(0.7 * expected, rel=1e-12)
    assert content_loss(0.7, current, current).item() == 0.0


def test_content_loss_is_differentiable_scalar():
    current = rand(1, 2, 3, 3).requires_grad_()
    original = rand(1, 2, 3, 3, seed=3)
    loss = content_loss(2.0, current, original)
    assert loss.dim() == 0
    loss.backward()
    torch.testing.assert_close(current.grad, 4.0 * (current - original).detach())


@pytest.mark.parametrize("normalize", [True, False])
def test_gram_matrix_matches_loops(normalize):
    features = rand(2, 3, 4, 5, seed=4)
    torch.testing.assert_close(gram_matrix(features, normalize=normalize),
                               gram_by_loops(features, normalize=normalize))


def test_gram_matrix_is_symmetric_psd_and_normalized_by_chw():
    features = rand(3, 6, 5, 7, seed=5)
    gram = gram_matrix(features)
    assert gram.shape == (3, 6, 6)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    assert torch.linalg.eigvalsh(gram).min() > -1e-12
    torch.testing.assert_close(gram * (6 * 5 * 7), gram_matrix(features, normalize=False))
    # the diagonal is each channel's mean square activation over the neurons, / C
    torch.testing.assert_close(torch.diagonal(gram, dim1=1, dim2=2),
                               (features ** 2).mean(dim=(2, 3)) / 6)


def test_gram_matrix_accepts_channels_last_features():
    features = rand(1, 4, 5, 6, seed=6)
    torch.testing.assert_close(gram_matrix(features.contiguous(memory_format=torch.channels_last)),
                               gram_by_loops(features))


def test_style_loss_indexes_feats_by_layer_and_weights_each_layer():
    feats = [rand(1, 3, 6, 6, seed=s) for s in range(5)]
    style_layers = [1, 4]
    targets = [gram_by_loops(rand(1, 3, 6, 6, seed=10)), gram_by_loops(rand(1, 3, 6, 6, seed=11))]
    weights = [3.0, 0.5]
    expected = 0.0
    for layer, target, weight in zip(style_layers, targets, weights):
        diff = gram_by_loops(feats[layer]) - target
        expected += weight * sum(float(v) ** 2 for v in diff.flatten())
    got = style_loss(feats, style_layers, targets, weights)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # a target equal to the layer's own Gram matrix contributes nothing
    same = [gram_by_loops(feats[1]), gram_by_loops(feats[4])]
    assert style_loss(feats, style_layers, same, weights).item() == pytest.approx(0.0, abs=1e-20)


def test_tv_loss_matches_loops():
    img = rand(1, 3, 5, 7, seed=7)
    expected = 0.0
    for c in range(3):
        for i in range(5):
            for j in range(7):
                if i + 1 < 5:
                    expected += float(img[0, c, i + 1, j] - img[0, c, i, j]) ** 2
                if j + 1 < 7:
                    expected += float(img[0, c, i, j + 1] - img[0, c, i, j]) ** 2
    assert tv_loss(img, 0.25).item() == pytest.approx(0.25 * expected, rel=1e-12)


def test_tv_loss_is_zero_on_flat_image_and_sees_both_directions():
    assert tv_loss(torch.full((1, 3, 4, 4), 2.0), 1.0).item() == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2, :] = 1.0  # horizontal stripes: only vertical differences
    assert tv_loss(stripes, 1.0).item() == 3 * 4
    assert tv_loss(stripes.transpose(2, 3), 1.0).item() == 3 * 4
