"""One record per exercise: everything the grader knows about it, in one place.

The public checks, the sandboxed child, the hidden cases and the mistake
catalogue, the release, the labs' tests and the points table all iterate
these records. Adding an exercise means one solution (in solutions/), one
record here, one case builder (grader/instructor/cases.py), and its mistakes if it has
any (grader/instructor/mistakes.py, with their hints here).

`kind` says what an exercise returns, which decides how a check calls it
(grader/protocol.py) and how its answer is compared (grader/checks.py):

- features: a list of tensors (extract_features);
- gram: a tensor, called twice, with normalize=True and normalize=False;
- loss: a one-number tensor, differentiable in `grad_inputs`; its gradient
  there is compared too, so a loss rebuilt from .item() cannot pass;
- losses: a dict of one-number tensors 'content', 'style', 'tv', 'total',
  whose total is differentiable in `grad_inputs`;
- tensor: one tensor;
- grid: a dict of (A, B) tensors 'content', 'style', 'total';
- loop: style_transfer's (img, history), run with Adam and again with L-BFGS;
- step: train_step's dict of floats, with the parameters it updated.

`tolerance` and `floor` are measured, not chosen: grader/instructor/numerics.py
recomputes every check under other numerics (float64, no oneDNN, one thread,
channels-last, deterministic) and each tolerance sits at least 10x above the
worst difference a correct answer shows there and 10x below the nearest
catalogued mistake (tests/grading/test_numerics.py asserts both). Below the floor, an
entry's error is judged as an absolute error of tolerance * floor. Scalar
losses, summed once: CS231n's floor 1e-8, tolerance 1e-5; activations of order
1 through convolutions: floor 0.1, tolerance 1e-3; images in [0, 1]: floor 1.

This module imports nothing: the sandboxed child reads it too.
"""

from dataclasses import dataclass, field

# The share of an exercise's points that its hidden checks carry; the public
# check, which students can run themselves, carries the rest.
HIDDEN_SHARE = 0.5


@dataclass(frozen=True)
class Exercise:
    name: str
    file: str  # the student's file that defines it
    lab: int  # the notebook that introduces it
    points: int
    kind: str  # what it returns: see the module's docstring
    tolerance: float  # the largest relative error that passes
    floor: float = 1e-8  # the floor of the relative error's denominator
    hints: dict = field(default_factory=dict)  # catalogued mistake -> what the student reads
    grad_inputs: tuple = ()  # inputs the answer must stay differentiable in
    mutates: tuple = ()  # inputs it is meant to change in place
    needs: tuple = ()  # earlier exercises it calls

    def signature(self, inputs):
        """How a check calls it, named as its docstring names the arguments: 'conv_layer(x, weight, ...)'.

        inputs: a check's inputs, in the exercise's argument order (train_step's
        optimizer is made from its 'lr'; gram_matrix is called with normalize too)."""
        if self.kind == "gram":
            names = ["features", "normalize"]
        else:
            names = ["optimizer" if self.kind == "step" and name == "lr" else name for name in inputs]
        return f"{self.name}({', '.join(names)})"

    def split(self):
        """{'public': ..., 'hidden': ...}: how the points divide between the checks."""
        hidden = self.points * HIDDEN_SHARE
        return {"public": self.points - hidden, "hidden": hidden}


ST, FT = "style_transfer.py", "fast_transfer.py"

RECORDS = (
    Exercise("extract_features", ST, 1, 2, "features", 1e-3, 0.1, {
        "last_only": "you returned only the last layer's output: append every module's output to the list",
        "includes_input": "your list starts with the input x: feats[i] must be the output of cnn[i]",
        "missing_last": "your list misses the last module's output: run every module of cnn",
    }),
    Exercise("content_loss", ST, 1, 2, "loss", 1e-5, hints={
        "mean": "you averaged the squared differences: the content loss sums them",
        "no_weight": "you forgot to multiply by content_weight",
        "norm": "you took the square root (a norm): the content loss is the sum of squares itself",
        "half": "your loss is half the expected value: there is no 1/2 factor here",
    }, grad_inputs=("content_current",)),
    Exercise("gram_matrix", ST, 2, 3, "gram", 1e-3, 0.1, {
        "unnormalized": "your Gram matrix is C*H*W times too large: did you skip normalize?",
        "hw_only": "your Gram matrix is C times too large: normalize divides by C*H*W, not H*W",
        "c_only": "your Gram matrix is H*W times too large: normalize divides by C*H*W, not C",
        "with_batch": "your Gram matrix is N times too small: divide by C*H*W, not N*C*H*W; each image has its own",
        "always_normalized": "with normalize=False the Gram matrix must not be divided by C*H*W",
        "wrong_transpose": "your Gram matrix is (N, H*W, H*W): multiply the (C, H*W) features by their transpose, "
                           "so that it compares channels, not positions",
        "first_image_only": "you returned one (C, C) matrix: compute a Gram matrix for each of the N images",
    }, grad_inputs=("features",)),
    Exercise("style_loss", ST, 2, 3, "loss", 1e-5, hints={
        "by_position": "you indexed feats by position (feats[i]): use the layer index feats[style_layers[i]]",
        "no_weight": "you forgot to multiply each layer's term by style_weights[i]",
        "mean": "you averaged the squared differences: the style loss sums them",
        "last_layer_only": "only the last layer counts in your loss: add the layers' terms up instead of "
                           "overwriting the loss in the loop",
        "unnormalized_gram": "your Gram matrices are not normalized: call gram_matrix with its default "
                             "normalize=True, as the targets were",
    }, grad_inputs=("feats",), needs=("gram_matrix",)),
    Exercise("tv_loss", ST, 3, 3, "loss", 1e-5, hints={
        "abs": "you summed absolute differences: the total-variation loss here squares them",
        "vertical_only": "you only compared vertical neighbours: add the horizontal differences too",
        "horizontal_only": "you only compared horizontal neighbours: add the vertical differences too",
        "mean": "you averaged the squared differences: the total-variation loss sums them",
        "no_weight": "you forgot to multiply by tv_weight",
        "wraparound": "your differences wrap around the border (torch.roll?): compare only neighbours inside the image",
    }, grad_inputs=("img",)),
    Exercise("style_transfer", ST, 3, 5, "loop", 1e-4, hints={
        "no_clamp": "your image leaves pixel_range: clamp img into (low, high) after every Adam step",
        "no_decay": "the learning rate never drops: switch to decayed_lr at step decay_lr_at",
        "reset_moments": "you created a new Adam at decay_lr_at, which forgets its moments: change the "
                         "learning rate of the existing optimizer instead (opt.param_groups)",
        "lbfgs_ran_adam": "with optimizer='lbfgs' your loop ran Adam: build a torch.optim.LBFGS over img with "
                          "line_search_fn='strong_wolfe' and let its step call your closure",
        "no_line_search": "your L-BFGS has no line search: pass line_search_fn='strong_wolfe' (without it, a step "
                          "sized from the first tiny one can blow the image up)",
        "last_not_best": "with L-BFGS you returned the last image evaluated, which can be a line-search trial it "
                         "rejected: keep the image with the lowest total loss and return that",
        "lbfgs_unclamped": "your L-BFGS result leaves pixel_range: clamp the image you return into (low, high)",
    }, needs=("extract_features", "content_loss", "gram_matrix", "style_loss", "tv_loss")),
    Exercise("match_color", ST, 4, 2, "tensor", 1e-4, 1.0, {
        "means_only": "you matched the means only: also map the covariance, with A = Sigma_c^(1/2) Sigma_s^(-1/2)",
        "inverted": "your A maps the wrong way round: A = Sigma_c^(1/2) Sigma_s^(-1/2) turns the style's "
                    "covariance into the content's",
        "unclamped": "some values leave [0, 1]: clamp the recoloured image",
    }),
    Exercise("luminance_only", ST, 4, 2, "tensor", 1e-4, 1.0, {
        "swapped": "you kept the content's luminance and the stylised colours: Y comes from stylized, I and Q "
                   "from content_img",
        "unclamped": "some values leave [0, 1]: clamp the result",
    }),
    Exercise("loss_landscape", ST, 4, 3, "grid", 1e-4, hints={
        "transposed": "your grid is (B, A): entry [i, j] is for alphas[i] and betas[j]",
        "total_without_tv": "your total leaves out the total-variation loss",
    }, needs=("extract_features", "content_loss", "gram_matrix", "style_loss", "tv_loss")),
    Exercise("conv_layer", FT, 5, 2, "tensor", 1e-3, 0.1, {
        "zero_padding": "you padded with zeros: use reflection padding (F.pad(..., mode='reflect')), "
                        "which keeps a dark frame from appearing around the image",
        "no_padding": "your output is smaller than the input: pad by k // 2 on every side before convolving",
        "upsample_after": "you upsampled after the convolution: upsample x first, then pad and convolve",
        "nearest": "you upsampled with nearest-neighbour copies: use mode='bilinear' (with align_corners=False)",
        "align_corners": "you upsampled with align_corners=True, which stretches the picture by a fraction of a "
                         "pixel: use align_corners=False",
    }),
    Exercise("conditional_instance_norm", FT, 5, 3, "tensor", 1e-3, 0.1, {
        "batch_stats": "you normalised over the whole batch (batch norm): each image's channels use their "
                       "own mean and variance, over H and W only",
        "unbiased": "you used the unbiased variance (divided by H*W - 1): use unbiased=False",
        "no_affine": "you left out gamma and beta: scale and shift the normalised x with the style's parameters",
        "first_style": "you used gamma[0] and beta[0] only: blend the styles' rows with style_mix @ gamma",
    }, grad_inputs=("x",)),
    Exercise("residual_block", FT, 5, 2, "tensor", 1e-3, 0.1, {
        "no_skip": "you returned y without adding x: a residual block returns x + y",
        "relu_after_sum": "you applied a ReLU after the sum: the block's output is x + norm2(conv2(...)) as it is",
        "relu_after_norm2": "you applied a ReLU after norm2: only the first convolution is followed by a ReLU",
    }, needs=("conv_layer", "conditional_instance_norm")),
    Exercise("transformer_net", FT, 5, 3, "tensor", 1e-3, 1.0, {
        "no_tanh": "you added y to the photo as it is: bound the change first, clamp(x + tanh(y), 0, 1)",
        "no_clamp": "your output leaves [0, 1]: clamp x + tanh(y) to [0, 1], so that it stays a picture",
        "no_photo": "your output is the change alone: add it to the photo, clamp(x + tanh(y), 0, 1)",
        "sigmoid": "you bounded the change with a sigmoid, which only adds: tanh gives changes in (-1, 1), "
                   "so the network can darken as well as lighten",
        "no_residual": "your output ignores the residual blocks: run every 'res.i.' block in order",
        "no_noise": "your output ignores noise: add it to x before conv1 (when it is not None)",
        "noisy_change": "you added the change to the noisy photo: only conv1 sees x + noise; the output is "
                        "clamp(x + tanh(y), 0, 1) with the clean x",
    }, needs=("conv_layer", "conditional_instance_norm", "residual_block")),
    Exercise("perceptual_loss", FT, 5, 3, "losses", 1e-5, hints={
        "sum_over_batch": "your loss is N times too large: average each loss over the N images of the batch",
        "unnormalized_gram": "your Gram matrices are not normalised: divide by C * H * W as gram_matrix does",
        "no_tv": "your total leaves out the total-variation loss",
        "by_position": "you indexed feats by position (feats[i]): use the layer index feats[style_layers[i]]",
        "element_mean": "you averaged over every element (F.mse_loss's default reduction='mean'?): each image's "
                        "losses are sums, as in Lab 3; only divide by the batch size N",
    }, grad_inputs=("feats", "out")),
    Exercise("train_step", FT, 5, 3, "step", 1e-3, 0.1, {
        "no_zero_grad": "gradients from before the step leaked into the update: clear them with the "
                        "optimizer's zero_grad before backward()",
        "no_step": "the parameters did not change: after backward(), let the optimizer take its step",
        "losses_after": "you returned the losses after the update: return those of this step's forward pass",
        "no_noise": "your network ran without noise: hand train_step's noise on to transformer_net",
    }, grad_inputs=("params",), mutates=("params",),
        needs=("conv_layer", "conditional_instance_norm", "residual_block", "transformer_net", "perceptual_loss")),
)

EXERCISE = {record.name: record for record in RECORDS}
EXERCISES = tuple(EXERCISE)
FILES = tuple(dict.fromkeys(record.file for record in RECORDS))  # the student's files, in lab order
TOTAL_POINTS = sum(record.points for record in RECORDS)


def of_file(file):
    """The names of the exercises one file defines, in order."""
    return tuple(r.name for r in RECORDS if r.file == file)
