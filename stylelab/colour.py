"""Linear colour transfer: a photo recoloured to a painting's colour statistics.

The fast network adds a change to the photo it is given (stylelab.fast), and
its instance normalisation hides how bright or how red that photo is: it can
add strokes, but it cannot learn where orange must turn blue. Given the photo
already in the painting's colours, it has only the strokes to add.
`match_colours` is that recolouring, the affine map taking the photo's mean
and covariance of RGB to the painting's (the linear colour transfer of
Hertzmann's thesis and of Gatys et al. 2017, *Controlling Perceptual Factors
in Neural Style Transfer*, section 5): x -> A (x - mu_photo) + mu_style with
A = Sigma_style^(1/2) Sigma_photo^(-1/2), which maps the photo's colour
covariance exactly onto the painting's. The engine starts its optimisation
from the same map (stylelab.engine.recoloured); the match_color exercise of lab
4 is its maths the other way round.
"""

import torch

EPS = 1e-6  # the least eigenvalue of a covariance: a flat photo has none in some direction


def colour_stats(rgb):
    """(mean (N, 3), covariance (N, 3, 3)) of the colours of each (N, 3, H, W) picture, in float64."""
    x = rgb.double().flatten(2)  # (N, 3, H W)
    mean = x.mean(2)
    spread = x - mean.unsqueeze(2)
    return mean, spread @ spread.transpose(1, 2) / x.shape[2]


def colours_of(pictures):
    """{"mean": (S, 3), "cov": (S, 3, 3)}: colour_stats of each (1, 3, H, W) picture, as a model file keeps them."""
    means, covs = zip(*(colour_stats(picture) for picture in pictures))
    return {"mean": torch.cat(means), "cov": torch.cat(covs)}


def _power(cov, exponent):
    values, vectors = torch.linalg.eigh(cov)  # symmetric: real eigenvalues, orthogonal vectors
    return vectors @ torch.diag_embed(values.clamp_min(EPS) ** exponent) @ vectors.transpose(-1, -2)


def colour_map(rgb, mean, cov):
    """Each (N, 3, H, W) picture's colours mapped to mean (N or 1, 3) and covariance (N or 1, 3, 3), unclamped."""
    own_mean, own_cov = colour_stats(rgb)
    A = _power(cov.double(), 0.5) @ _power(own_cov, -0.5)  # (N, 3, 3)
    x = rgb.double().flatten(2) - own_mean[..., None]  # (N, 3, H W)
    return (A @ x + mean.double()[..., None]).reshape(rgb.shape).to(rgb.dtype)


def match_colours(rgb, mean, cov):
    """Each (N, 3, H, W) picture in [0, 1] recoloured to mean (N or 1, 3) and covariance (N or 1, 3, 3),
    clamped to [0, 1]."""
    return colour_map(rgb, mean, cov).clamp(0, 1)
