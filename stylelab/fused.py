"""The reference transformer_net's pass with each enlargement folded into the convolution after it.

transformer_net's way up enlarges its features twice over, bilinearly, and
convolves them with 3x3 kernels (conv_layer, upsample=2). Away from the borders
that is four 3x3 convolutions of the small picture, one per position in each
2x2 block of the output, whose kernels are the convolution's own mixed by
bilinear's 0.25/0.75 weights, then `pixel_shuffle`: the same multiplications
without the enlarged tensor, which at 1024x768 holds 16 channels of 786,432
pixels. Shi et al. (CVPR 2016) made the sub-pixel convolution a layer; here it
is only a faster way to compute the students' network.

On the outermost row and column of each side the enlarged picture's reflection
padding reads a pixel no padding of the small picture gives, so those are
computed the exercise's way, from a strip three pixels deep. The result is
transformer_net's own to float rounding (tests/fast/test_fused.py); stylelab.fast
runs it for the reference solutions only, never for a student's module. It
writes transformer_net's layers out, so the student release leaves it out,
as it leaves out solutions/ (grader/instructor/release.py).
"""

import torch
from torch.nn import functional as F

# BLEND[p, a, k]: enlarged row 2i + p + a - 1 (a = 0, 1, 2: the 3x3 kernel's rows) as a mix of the
# small picture's rows i - 1, i, i + 1 (k = 0, 1, 2); columns the same. Bilinear doubling
# (align_corners=False): enlarged row 2m is 0.75 of row m and 0.25 of row m - 1, row 2m + 1 0.75 of
# row m and 0.25 of row m + 1.
BLEND = torch.tensor([[[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25]],
                      [[0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.0, 0.25, 0.75]]])


def folded_kernels(weight):
    """The (4 C_out, C_in, 3, 3) kernels that convolve the small picture into the 2x2 blocks of
    conv_layer(x, weight, bias, upsample=2), in pixel_shuffle's order (channel, row, column)."""
    blend = BLEND.to(weight.device)
    kernels = torch.einsum("oiab,pak,qbl->opqikl", weight.float(), blend, blend)  # (C_out, 2, 2, C_in, 3, 3)
    kernels = kernels.reshape(-1, weight.shape[1], 3, 3).to(weight.dtype)  # (4 C_out, C_in, 3, 3)
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        kernels = kernels.contiguous(memory_format=torch.channels_last)
    return kernels


def enlarge_and_convolve(impl, x, weight, bias):
    """impl.conv_layer(x, weight, bias, upsample=2) for a 3x3 weight, computed at x's size: (N, C_out, 2H, 2W)."""
    blocks = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), folded_kernels(weight),
                      bias.repeat_interleave(4))  # (N, 4 C_out, H, W)
    out = F.pixel_shuffle(blocks, 2)  # (N, C_out, 2H, 2W)
    # the edges: rows first, then columns, whose strips run the full height and so mend the corners
    out[..., :1, :] = impl.conv_layer(x[..., :3, :], weight, bias, upsample=2)[..., :1, :]
    out[..., -1:, :] = impl.conv_layer(x[..., -3:, :], weight, bias, upsample=2)[..., -1:, :]
    out[..., :, :1] = impl.conv_layer(x[..., :, :3], weight, bias, upsample=2)[..., :, :1]
    out[..., :, -1:] = impl.conv_layer(x[..., :, -3:], weight, bias, upsample=2)[..., :, -1:]
    return out


def transformer_net(impl, x, params, style_mix, noise=None):
    """impl.transformer_net(x, params, style_mix, noise), its enlargements folded (enlarge_and_convolve).

    impl: the reference solutions, whose layers (conv_layer, conditional_instance_norm,
    residual_block) it calls; the order of layers is transformer_net's docstring's.
    """
    def norm_relu(y, norm):
        return F.relu(impl.conditional_instance_norm(y, params[f"{norm}.gamma"], params[f"{norm}.beta"], style_mix))

    y = x if noise is None else x + noise
    for conv, norm in (("conv1", "norm1"), ("conv2", "norm2"), ("conv3", "norm3")):
        y = norm_relu(impl.conv_layer(y, params[f"{conv}.weight"], params[f"{conv}.bias"], stride=2), norm)
    i = 0
    while f"res.{i}.conv1.weight" in params:
        y = impl.residual_block(y, impl.sub_params(params, f"res.{i}."), style_mix)
        i += 1
    y = norm_relu(enlarge_and_convolve(impl, y, params["up1.weight"], params["up1.bias"]), "norm4")
    y = norm_relu(enlarge_and_convolve(impl, y, params["up2.weight"], params["up2.bias"]), "norm5")
    y = enlarge_and_convolve(impl, y, params["up3.weight"], params["up3.bias"])  # (N, 3, H, W)
    return (x + torch.tanh(y)).clamp(0, 1)
