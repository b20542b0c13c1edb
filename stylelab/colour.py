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
covariance exactly onto the painting's.
"""

import torch

EPS = 1e-5  # added to a covariance's eigenvalues: a flat photo has none in some direction


def colour_stats(rgb):
    """(mean (N, 3), covariance (N, 3, 3)) of the colours of each (N, 3, H, W) picture."""
    x = rgb.flatten(2)  # (N, 3, H W)
    mean = x.mean(2)
    centred = x - mean[..., None]
    return mean, centred @ centred.transpose(1, 2) / x.shape[2]


def _power(cov, exponent):
    values, vectors = torch.linalg.eigh(cov)  # symmetric: real eigenvalues, orthogonal vectors
    return vectors @ torch.diag_embed((values.clamp_min(0) + EPS) ** exponent) @ vectors.transpose(-1, -2)


def match_colours(rgb, mean, cov):
    """Each (N, 3, H, W) picture recoloured to mean (N or 1, 3) and covariance (N or 1, 3, 3), in [0, 1]."""
    own_mean, own_cov = colour_stats(rgb.float())
    A = _power(cov.float(), 0.5) @ _power(own_cov, -0.5)  # (N, 3, 3)
    x = rgb.float().flatten(2) - own_mean[..., None]
    return (A @ x + mean.float()[..., None]).reshape(rgb.shape).clamp(0, 1).to(rgb.dtype)
