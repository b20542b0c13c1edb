"""Fast style transfer with a feed-forward network (Johnson, Alahi and Fei-Fei, ECCV 2016).

Gatys et al. optimise the pixels of one image for a minute. Johnson et al.
train a *transformation network* once, on many photos, to minimise the same
losses; stylising a new photo is then one forward pass:

    out = transformer_net(x, params, style_mix, noise)        (N, 3, H, W) in [0, 1]
    loss = content_weight * ||phi_c(out) - phi_c(x)||^2                   content
         + sum_l style_weights[l] * ||G_l(out) - G_l(style)||^2            style
         + tv_weight * (neighbouring pixel differences of out)^2          smoothness

The losses are the *perceptual losses* of the first labs, measured through a
frozen pretrained CNN (phi); each is averaged over the images of a batch.

One network can hold several styles. Dumoulin, Shlens and Kudlur (ICLR 2017)
keep every convolution shared and give each style its own scale and shift in
every instance normalisation (conditional instance normalisation). Blending
those per-style parameters with weights `style_mix` blends the styles.

The network's parameters are passed in as a dict of tensors, named as in
stylelab.fast.TransformerNet (the table is in transformer_net's docstring), so
every exercise is a pure function of its arguments.
"""

import torch
import torch.nn.functional as F


def conv_layer(x, weight, bias, stride=1, upsample=1):
    """
    A convolution with reflection padding, optionally after a bilinear upsampling.

    Inputs:
    - x: Tensor of shape (N, C_in, H, W).
    - weight: Tensor of shape (C_out, C_in, k, k) with k odd; bias: Tensor of shape (C_out,).
    - stride: the convolution's stride (2 halves the size: the way down).
    - upsample: first enlarge x by this integer factor with bilinear
      interpolation, F.interpolate(..., mode='bilinear', align_corners=False)
      (2 doubles the size: the way up). Johnson et al. used transposed
      convolutions; Odena et al. (Distill 2016) showed that their uneven
      overlaps paint checkerboard artefacts, which upsampling then convolving
      avoids. Bilinear rather than nearest-neighbour: nearest copies each
      value of the 1/8-size middle into an 8x8 block, the convolutions after
      it see the same numbers at the same place in every block, and the
      network learns to stamp one pattern per block, a visible lattice.

    Pad by k // 2 on every side with *reflection* padding (zero padding makes a
    dark frame appear around stylised images), then convolve.

    Returns:
    - out: Tensor of shape (N, C_out, H * upsample // stride, W * upsample // stride)
      when those sizes divide evenly.
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    if upsample > 1:
        x = F.interpolate(x, scale_factor=upsample, mode="bilinear", align_corners=False)
    pad = weight.shape[-1] // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    return F.conv2d(x, weight, bias, stride=stride)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def conditional_instance_norm(x, gamma, beta, style_mix, eps=1e-5):
    """
    Conditional instance normalisation (Dumoulin et al. 2017).

    Instance normalisation (Ulyanov et al. 2016) normalises each channel of each
    image over its own H * W positions, to zero mean and unit variance, then
    scales and shifts it. Here there is one scale and shift per style, and the
    style_mix weights blend them:

        out[n, c] = gamma_n[c] * (x[n, c] - mean[n, c]) / sqrt(var[n, c] + eps) + beta_n[c]
        gamma_n = sum_s style_mix[n, s] * gamma[s]     (the same for beta_n)

    Inputs:
    - x: Tensor of shape (N, C, H, W).
    - gamma, beta: Tensors of shape (S, C), one row per style.
    - style_mix: Tensor of shape (N, S), each image's weights over the S styles
      (one-hot for a single style; rows sum to 1 for a blend).
    - eps: added to the variance, so a flat channel does not divide by zero.

    mean and var are over H and W only; var is the biased variance (divide by
    H * W), as in torch.nn.InstanceNorm2d.

    Returns:
    - out: Tensor of shape (N, C, H, W).
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    mean = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    centred = x - mean
    var = (centred * centred).mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1), biased
    scale = (style_mix @ gamma)[:, :, None, None]  # (N, S) @ (S, C) -> (N, C, 1, 1)
    shift = (style_mix @ beta)[:, :, None, None]
    # shift + centred * scale / sqrt(var + eps) in one pass: at 1024x768 each pass
    # over the activations costs as much as a small convolution (bench/bench_fast.py)
    return torch.addcmul(shift, centred, scale * torch.rsqrt(var + eps))
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def residual_block(x, params, style_mix):
    """
    A residual block (He et al. 2016) as Johnson et al. use it, with conditional instance norm.

        y = relu(norm1(conv1(x)))
        y = norm2(conv2(y))          no ReLU here: the sum is the block's output
        out = x + y

    Inputs:
    - x: Tensor of shape (N, C, H, W).
    - params: dict of Tensors: 'conv1.weight' (C, C, 3, 3), 'conv1.bias' (C,),
      'norm1.gamma' and 'norm1.beta' (S, C), and the same four for conv2 and norm2.
    - style_mix: Tensor of shape (N, S), as for conditional_instance_norm.

    Use conv_layer (stride 1) and conditional_instance_norm.

    Returns:
    - out: Tensor of shape (N, C, H, W).
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    y = conv_layer(x, params["conv1.weight"], params["conv1.bias"])
    y = F.relu(conditional_instance_norm(y, params["norm1.gamma"], params["norm1.beta"], style_mix))
    y = conv_layer(y, params["conv2.weight"], params["conv2.bias"])
    y = conditional_instance_norm(y, params["norm2.gamma"], params["norm2.beta"], style_mix)
    return x + y
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def sub_params(params, prefix):
    """The entries of params under prefix, with the prefix removed: ('res.0.', ...) -> a block's params."""
    return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}


def transformer_net(x, params, style_mix, noise=None):
    """
    The transformation network: a photo in, its stylised version out.

        layer     what                                              output size
        in        x + noise: what the way down sees                 (N, 3, H, W)
        conv1     9x9 conv, stride 2, then norm1 and ReLU           (N, C1, H/2, W/2)
        conv2     3x3 conv, stride 2, then norm2 and ReLU           (N, C2, H/4, W/4)
        conv3     3x3 conv, stride 2, then norm3 and ReLU           (N, C3, H/8, W/8)
        res.0 ... res.{R-1}   residual blocks                       (N, C3, H/8, W/8)
        up1       upsample 2, 3x3 conv, then norm4 and ReLU         (N, C2, H/4, W/4)
        up2       upsample 2, 3x3 conv, then norm5 and ReLU         (N, C1, H/2, W/2)
        up3       upsample 2, 3x3 conv: y                           (N, 3, H, W)
        out       clamp(x + tanh(y), 0, 1)                          (N, 3, H, W)

    Johnson et al.'s network, one octave deeper and half as wide, so that a
    1024x768 photo takes a fraction of a second on a laptop CPU: its first
    convolution already has stride 2, and the residual blocks work at 1/8 size.

    The network changes the photo rather than making a new picture: up3 gives,
    at every pixel, how much to add to each colour, and tanh bounds that change
    to (-1, 1). Where y is 0 the output is the photo itself, eyes and all,
    however little of it survives the 1/8-size middle. The TransformerNet of
    stylelab.fast starts up3 at zero, so an untrained network returns the
    photo and training only has to learn the style (the residual blocks' idea,
    applied to the whole network). The clamp keeps the output a picture, in
    [0, 1].

    The way down sees the photo with a little noise added; the change is still
    added to the clean photo. A flat region (a sky, a white wall) gives a
    network that only sees the photo nothing to paint from, and the same
    everywhere: it answers with one cell of texture repeated at one size.
    Noise gives each region something of its own to grow strokes from, as
    texture networks take noise as their input (Ulyanov et al. 2016). Training
    draws new noise every step; stylelab.fast stylises with the same fixed
    noise every time, so a photo always comes out the same.

    Inputs:
    - x: Tensor of shape (N, 3, H, W), RGB in [0, 1], H and W multiples of 8.
    - params: dict of Tensors: for each conv layer L above, 'L.weight' and
      'L.bias'; for each norm layer, 'normK.gamma' and 'normK.beta' of shape
      (S, C); for each residual block 'res.i.' followed by the names that
      residual_block takes (sub_params(params, 'res.0.') gives them). The
      number of residual blocks R is however many 'res.i.' there are.
    - style_mix: Tensor of shape (N, S), as for conditional_instance_norm.
    - noise: None, or a Tensor of shape (N, 3, H, W) (or (1, 3, H, W), the same
      for every image) added to x before conv1 only. None: no noise.

    Use conv_layer, conditional_instance_norm and residual_block.

    Returns:
    - out: Tensor of shape (N, 3, H, W), in [0, 1].
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    def conv_norm_relu(y, conv, norm, stride=1, upsample=1):
        y = conv_layer(y, params[f"{conv}.weight"], params[f"{conv}.bias"], stride, upsample)
        return F.relu(conditional_instance_norm(y, params[f"{norm}.gamma"], params[f"{norm}.beta"], style_mix))

    y = conv_norm_relu(x if noise is None else x + noise, "conv1", "norm1", stride=2)
    y = conv_norm_relu(y, "conv2", "norm2", stride=2)
    y = conv_norm_relu(y, "conv3", "norm3", stride=2)
    i = 0
    while f"res.{i}.conv1.weight" in params:
        y = residual_block(y, sub_params(params, f"res.{i}."), style_mix)
        i += 1
    y = conv_norm_relu(y, "up1", "norm4", upsample=2)
    y = conv_norm_relu(y, "up2", "norm5", upsample=2)
    y = conv_layer(y, params["up3.weight"], params["up3.bias"], upsample=2)  # (N, 3, H, W)
    return (x + torch.tanh(y)).clamp(0, 1)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def perceptual_loss(feats, content_feats, style_grams, out, content_layer, content_weight,
                    style_layers, style_weights, tv_weight):
    """
    Johnson et al.'s perceptual loss of a batch of the network's outputs.

    The content, style and total-variation losses of the first labs, for a batch:
    each image's loss is the one of lab 3, and the batch's loss is their mean
    over the N images, so that its scale does not depend on the batch size.

    Inputs:
    - feats: list of the features of the output batch at every layer, as
      extract_features gives them; feats[i] has shape (N, C_i, H_i, W_i).
    - content_feats: Tensor of shape (N, C, H, W): the features of the input
      photos at content_layer (the targets: the output keeps each photo's content).
    - style_grams: list, one per style layer, of the target Gram matrices,
      normalised by C * H * W as gram_matrix does, of shape (1, C, C) (one style
      for the whole batch) or (N, C, C) (one per image).
    - out: Tensor of shape (N, 3, H, W): the output batch, for the TV loss.
    - content_layer, content_weight: the content loss's layer index and weight.
    - style_layers, style_weights: lists of layer indices into feats and their weights.
    - tv_weight: the total-variation loss's weight.

    Returns a dict of 0-dimensional Tensors:
    - 'content', 'style', 'tv': each loss (weights included), averaged over the batch;
    - 'total': their sum.
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    N = out.shape[0]
    content = content_weight * torch.sum((feats[content_layer] - content_feats) ** 2) / N
    style = 0.0
    for layer, target, weight in zip(style_layers, style_grams, style_weights):
        _, C, H, W = feats[layer].shape
        gram = torch.einsum("nchw,ndhw->ncd", feats[layer], feats[layer]) / (C * H * W)  # (N, C, C)
        style = style + weight * torch.sum((gram - target) ** 2) / N  # targets broadcast over N
    tv = tv_weight * (torch.sum((out[:, :, 1:, :] - out[:, :, :-1, :]) ** 2)
                      + torch.sum((out[:, :, :, 1:] - out[:, :, :, :-1]) ** 2)) / N
    return {"content": content, "style": style, "tv": tv, "total": content + style + tv}
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def train_step(params, optimizer, cnn, content_batch, style_grams, style_mix, content_layer,
               content_weight, style_layers, style_weights, tv_weight, noise=None):
    """
    One training step of the transformation network.

    Stylise content_batch, measure the perceptual loss of the result through
    cnn, and take one optimizer step on the network's parameters.

    Inputs:
    - params: dict of the network's parameter Tensors (requires_grad=True), as
      for transformer_net. The optimizer updates them in place.
    - optimizer: a torch.optim optimizer over params' values.
    - cnn: the frozen loss network, an nn.Sequential; its first module turns an
      RGB image in [0, 1] into its input, so run it on the output as it is.
    - content_batch: Tensor of shape (N, 3, H, W), photos in [0, 1].
    - style_grams: list of target Gram matrices, as for perceptual_loss.
    - style_mix: Tensor of shape (N, S), as for transformer_net.
    - content_layer, content_weight, style_layers, style_weights, tv_weight: as
      for perceptual_loss.
    - noise: None, or a Tensor of shape (N, 3, H, W) for transformer_net's way
      down (new noise each step); the content targets are the clean photos'.

    Returns:
    - losses: dict with the keys 'content', 'style', 'tv' and 'total', each a
      Python float: the losses *before* this step's update.

    Use transformer_net, perceptual_loss and the forward pass of the first lab
    (run every module of cnn in order, keeping each output). The content targets
    are the photos' own features, which need no gradient. Gradients accumulate
    in PyTorch: clear them before backward.
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    def features(x, modules):
        feats = []
        for module in modules:
            x = module(x)
            feats.append(x)
        return feats

    with torch.no_grad():  # the layers past content_layer are not needed for the targets
        content_feats = features(content_batch, cnn[:content_layer + 1])[content_layer]
    out = transformer_net(content_batch, params, style_mix, noise)
    losses = perceptual_loss(features(out, cnn), content_feats, style_grams, out,
                             content_layer, content_weight, style_layers, style_weights, tv_weight)
    optimizer.zero_grad()
    losses["total"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
