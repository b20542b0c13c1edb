"""Neural style transfer by optimising an image (Gatys, Ecker and Bethge, CVPR 2016).

Gatys et al. describe an image by the activations of a pretrained CNN: the
feature maps of a deep layer hold its *content*, and the correlations between
the feature maps of several layers (Gram matrices) hold its *style*. Style
transfer starts from an image `img` and changes its pixels by gradient descent
until its content matches `content_img` and its style matches `style_img`:

    loss(img) = content_weight * sum_ij (F_ij - P_ij)^2                   content
              + sum_l style_weights[l] * sum_ij (G^l_ij - A^l_ij)^2        style
              + tv_weight * sum (neighbouring pixel differences)^2         smoothness

The total-variation term follows Johnson et al. (ECCV 2016) and Mahendran and
Vedaldi (CVPR 2015). The names, signatures and contracts follow Stanford's
CS231n assignment, so its notebooks, tests and habits carry over.

Every exercise is a pure function of its arguments: no globals, no file or
network access, the network and the random seed are passed in.
"""

import torch


class _OutOfEvaluations(Exception):
    """Stops L-BFGS inside a line search once style_transfer has spent num_iters."""


def extract_features(x, cnn):
    """
    Use the CNN to extract features from the input image x.

    Inputs:
    - x: A PyTorch Tensor of shape (N, C, H, W) holding a minibatch of images that
      will be fed to the CNN.
    - cnn: A PyTorch nn.Sequential model that we will use to extract features
      (its modules are run in order).

    Returns:
    - feats: A list of feature for the input images x extracted using the cnn
      model. feats[i] is a PyTorch Tensor of shape (N, C_i, H_i, W_i); recall
      that features from different layers of the network may have different
      numbers of channels (C_i) and spatial dimensions (H_i, W_i). There is one
      entry per module of cnn, in order: feats[i] is the output of cnn[i].
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    feats = []
    prev_feat = x
    for module in cnn:
        prev_feat = module(prev_feat)
        feats.append(prev_feat)
    return feats
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def content_loss(content_weight, content_current, content_original):
    """
    Compute the content loss for style transfer.

    Inputs:
    - content_weight: Scalar giving the weighting for the content loss.
    - content_current: features of the current image; this is a PyTorch Tensor
      of shape (1, C_l, H_l, W_l).
    - content_original: features of the content image, Tensor with shape
      (1, C_l, H_l, W_l).

    Returns:
    - scalar content loss: content_weight * sum((current - original)^2), a
      0-dimensional Tensor.
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    return content_weight * torch.sum((content_current - content_original) ** 2)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def gram_matrix(features, normalize=True):
    """
    Compute the Gram matrix from features.

    Inputs:
    - features: PyTorch Tensor of shape (N, C, H, W) giving features for
      a batch of N images.
    - normalize: optional, whether to normalize the Gram matrix
        If True, divide the Gram matrix by the number of neurons (H * W * C)

    Returns:
    - gram: PyTorch Tensor of shape (N, C, C) giving the
      (optionally normalized) Gram matrices for the N input images:
      gram[n, c, d] = sum over positions of features[n, c] * features[n, d].
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    N, C, H, W = features.shape
    # The same sum as bmm(flat, flat.transpose(1, 2)) on flat = (N, C, HW), but
    # einsum keeps the layout of channels-last features (the driver's, for speed)
    # instead of copying them, and its backward adds gradients in matching
    # layouts: 12% faster per iteration than bmm there (bench/).
    gram = torch.einsum("nchw,ndhw->ncd", features, features)  # (N, C, C)
    if normalize:
        gram = gram / (C * H * W)
    return gram
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def style_loss(feats, style_layers, style_targets, style_weights):
    """
    Computes the style loss at a set of layers.

    Inputs:
    - feats: list of the features at every layer of the current image, as produced by
      the extract_features function.
    - style_layers: List of layer indices into feats giving the layers to include in the
      style loss.
    - style_targets: List of the same length as style_layers, where style_targets[i] is
      a PyTorch Tensor giving the Gram matrix of the source style image computed at
      layer style_layers[i].
    - style_weights: List of the same length as style_layers, where style_weights[i]
      is a scalar giving the weight for the style loss at layer style_layers[i].

    Returns:
    - style_loss: A PyTorch Tensor holding a scalar giving the style loss:
      sum over i of style_weights[i] * sum((gram(feats[style_layers[i]]) - style_targets[i])^2).
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    loss = 0.0
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        gram = gram_matrix(feats[layer])
        loss = loss + weight * torch.sum((gram - target) ** 2)
    return loss
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def tv_loss(img, tv_weight):
    """
    Compute total variation loss.

    Inputs:
    - img: PyTorch Variable of shape (1, 3, H, W) holding an input image.
    - tv_weight: Scalar giving the weight w_t to use for the TV loss.

    Returns:
    - loss: PyTorch Variable holding a scalar giving the total variation loss
      for img weighted by tv_weight:
      tv_weight * (sum of squared differences between vertical neighbours
                   + sum of squared differences between horizontal neighbours).
      Your implementation should be vectorized and not require any loops!
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    down = img[:, :, 1:, :] - img[:, :, :-1, :]  # (N, C, H-1, W)
    right = img[:, :, :, 1:] - img[:, :, :, :-1]  # (N, C, H, W-1)
    return tv_weight * (torch.sum(down ** 2) + torch.sum(right ** 2))
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def style_transfer(cnn, content_img, style_img, content_layer, content_weight,
                   style_layers, style_weights, tv_weight, num_iters=200,
                   optimizer="adam", lr=3.0, decayed_lr=0.1, decay_lr_at=None,
                   init="content", noise_ratio=0.6, pixel_range=None, seed=0,
                   callback=None):
    """
    Run style transfer: optimise the pixels of an image so that its content
    matches content_img and its style matches style_img.

    Texture synthesis is this loop with content_weight=0 and init="random";
    feature inversion is this loop with every style weight 0.

    Inputs:
    - cnn: frozen nn.Sequential feature extractor (its parameters have
      requires_grad=False); only the gradient with respect to the image is needed.
    - content_img: preprocessed content image, Tensor of shape (1, 3, H, W).
    - style_img: preprocessed style image, Tensor of shape (1, 3, H_s, W_s); its
      size may differ from the content image's.
    - content_layer: index into extract_features' list for the content loss.
    - content_weight: weighting on the content loss.
    - style_layers: list of indices into extract_features' list for the style loss.
    - style_weights: list of weights, one per entry of style_layers.
    - tv_weight: weight of the total-variation regularisation.
    - num_iters: number of loss evaluations (forward and backward passes), the
      unit of cost. Adam takes one step per evaluation.
    - optimizer: "adam" (CS231n: lr, then decayed_lr from step decay_lr_at on,
      clamping the pixels into pixel_range after every step) or "lbfgs" (L-BFGS
      with a strong-Wolfe line search, which may spend several evaluations on
      one iteration; lr is its initial step length; it returns the best image
      it evaluated, clamped into pixel_range at the end).
    - lr, decayed_lr, decay_lr_at: Adam's learning-rate schedule: from step
      decay_lr_at on, the same optimizer goes on with decayed_lr, keeping its
      moments. decay_lr_at defaults to 90% of num_iters (CS231n: 180 of 200).
    - init: how img starts: "content" (a copy of content_img), "random"
      (uniform noise over pixel_range) or "noise" (noise_ratio * noise +
      (1 - noise_ratio) * content_img, as in deeplearning.ai's version).
    - noise_ratio: the share of noise for init="noise".
    - pixel_range: (low, high), two Tensors broadcastable to (1, 3, 1, 1) giving
      the preprocessed values of black and white; defaults to CS231n's
      (-1.5, 1.5).
    - seed: seed of the random generator used for the random and noise inits.
    - callback: if given, called after every evaluation as callback(t, img,
      losses) where t counts evaluations from 0, img is the image just evaluated
      (do not modify it) and losses is a dict of floats with keys "content",
      "style", "tv" and "total".

    Returns a tuple of:
    - img: the stylised image, a Tensor of the same shape as content_img that
      does not require grad.
    - history: dict of lists, one float per evaluation for each key of losses.
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    if pixel_range is None:
        pixel_range = (-1.5, 1.5)
    low, high = (torch.as_tensor(v, dtype=content_img.dtype, device=content_img.device)
                 for v in pixel_range)
    if decay_lr_at is None:
        decay_lr_at = int(0.9 * num_iters)

    # The targets are constants: compute them once, outside the loop, without a graph.
    with torch.no_grad():
        content_target = extract_features(content_img, cnn)[content_layer].clone()
        style_feats = extract_features(style_img, cnn)
        style_targets = [gram_matrix(style_feats[i]).clone() for i in style_layers]
        del style_feats

    generator = torch.Generator(device=content_img.device).manual_seed(seed)
    noise = low + (high - low) * torch.rand(content_img.shape, generator=generator,
                                            dtype=content_img.dtype, device=content_img.device)
    if init == "content":
        img = content_img.clone()
    elif init == "random":
        img = noise
    elif init == "noise":
        img = noise_ratio * noise + (1 - noise_ratio) * content_img
    else:
        raise ValueError(f"init must be 'content', 'random' or 'noise', not {init!r}")
    # We do want the gradient computed on our image! Contiguous, because L-BFGS
    # flattens its gradient with .view, which a channels-last tensor refuses.
    img = img.detach().contiguous().requires_grad_(True)

    if optimizer == "adam":
        opt = torch.optim.Adam([img], lr=lr)
    elif optimizer == "lbfgs":
        # The strong-Wolfe line search matters: without it, L-BFGS sizes its second
        # step from the curvature along its tiny first one, and on these losses that
        # step can be millions of times too long and blow the image up to inf.
        opt = torch.optim.LBFGS([img], lr=lr, max_iter=num_iters, max_eval=num_iters,
                                line_search_fn="strong_wolfe")
    else:
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', not {optimizer!r}")

    history = {"content": [], "style": [], "tv": [], "total": []}
    best = {"total": float("inf"), "img": img.detach().clone()}

    def closure():
        t = len(history["total"])
        if t == num_iters:
            raise _OutOfEvaluations  # L-BFGS's last line search wanted more
        opt.zero_grad()
        feats = extract_features(img, cnn)
        c_loss = content_loss(content_weight, feats[content_layer], content_target)
        s_loss = style_loss(feats, style_layers, style_targets, style_weights)
        t_loss = tv_loss(img, tv_weight)
        loss = c_loss + s_loss + t_loss
        loss.backward()
        # as_tensor: a loss may be a plain number (e.g. a style loss over no layers)
        losses = {key: torch.as_tensor(value).item() for key, value in
                  (("content", c_loss), ("style", s_loss), ("tv", t_loss), ("total", loss))}
        for key, value in losses.items():
            history[key].append(value)
        if losses["total"] < best["total"]:  # what L-BFGS returns; see below
            best.update(total=losses["total"], img=img.detach().clone())
        if callback is not None:
            callback(t, img.detach(), losses)
        return loss

    if optimizer == "adam":
        for t in range(num_iters):
            if t == decay_lr_at:
                for group in opt.param_groups:
                    group["lr"] = decayed_lr
            opt.step(closure)
            # Adam can push pixels far outside what an image can hold; clamping keeps
            # img an image. L-BFGS is not clamped: moving the point behind its back
            # would spoil the curvature it has learned.
            with torch.no_grad():
                img.copy_(torch.maximum(torch.minimum(img, high), low))
    else:
        try:
            while len(history["total"]) < num_iters:
                opt.step(closure)  # returns early if it converges; then it goes on
        except _OutOfEvaluations:
            pass
        img = best["img"]

    with torch.no_grad():
        img = torch.maximum(torch.minimum(img, high), low)
    return img.detach(), history
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


# RGB -> YIQ, the NTSC colour space: Y is the luminance, I and Q the chrominance.
YIQ_FROM_RGB = ((0.299, 0.587, 0.114),
                (0.596, -0.274, -0.322),
                (0.211, -0.523, 0.312))


def match_color(style_img, content_img, eps=1e-5):
    """
    Colour-histogram matching (Gatys, Bethge, Hertzmann and Shechtman, "Preserving
    color in neural artistic style transfer", 2016): recolour the style image so that
    its pixels have the mean and covariance of the content image's pixels. Style
    transfer with the recoloured style keeps the content's palette.

    Treat each image as a cloud of RGB points x (one per pixel) with mean mu and
    3 x 3 covariance Sigma (divide by the number of pixels). Map every style pixel to

        x' = A (x - mu_s) + mu_c,    A = Sigma_c^(1/2) Sigma_s^(-1/2),

    where the matrix square roots come from the eigendecomposition of the symmetric
    covariances (torch.linalg.eigh), after adding eps to their diagonals.

    Inputs:
    - style_img: Tensor of shape (1, 3, H_s, W_s), RGB values in [0, 1].
    - content_img: Tensor of shape (1, 3, H, W), RGB values in [0, 1].
    - eps: added to each covariance's diagonal so its inverse square root exists.

    Returns:
    - Tensor of shape (1, 3, H_s, W_s): the recoloured style image, clamped to [0, 1].
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    style = style_img[0].reshape(3, -1)  # (3, P_s): one column per pixel
    content = content_img[0].reshape(3, -1)  # (3, P_c)
    mu_s, mu_c = style.mean(dim=1, keepdim=True), content.mean(dim=1, keepdim=True)  # (3, 1)
    eye = eps * torch.eye(3, dtype=style.dtype, device=style.device)
    cov_s = (style - mu_s) @ (style - mu_s).T / style.shape[1] + eye  # (3, 3)
    cov_c = (content - mu_c) @ (content - mu_c).T / content.shape[1] + eye

    def power(matrix, p):
        values, vectors = torch.linalg.eigh(matrix)
        return vectors @ torch.diag(values ** p) @ vectors.T

    A = power(cov_c, 0.5) @ power(cov_s, -0.5)  # (3, 3)
    recoloured = A @ (style - mu_s) + mu_c  # (3, P_s)
    return recoloured.reshape(style_img.shape).clamp(0, 1)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def luminance_only(stylized, content_img):
    """
    Keep the stylised image's luminance and the content image's colours (the
    luminance-only idea of Gatys et al. 2016, applied after the transfer): convert
    both to YIQ with the matrix YIQ_FROM_RGB (y = M x for each pixel's RGB x), take
    Y from stylized and I, Q from content_img, and convert back with the inverse
    matrix (torch.linalg.inv).

    Inputs:
    - stylized: Tensor of shape (1, 3, H, W), RGB values in [0, 1].
    - content_img: Tensor of shape (1, 3, H, W), RGB values in [0, 1], the same size.

    Returns:
    - Tensor of shape (1, 3, H, W): RGB values clamped to [0, 1].
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    M = torch.tensor(YIQ_FROM_RGB, dtype=stylized.dtype, device=stylized.device)  # (3, 3)
    yiq_stylized = torch.einsum("kc,nchw->nkhw", M, stylized)  # (1, 3, H, W)
    yiq_content = torch.einsum("kc,nchw->nkhw", M, content_img)
    mixed = torch.cat([yiq_stylized[:, :1], yiq_content[:, 1:]], dim=1)  # Y from one, IQ from the other
    return torch.einsum("kc,nchw->nkhw", torch.linalg.inv(M), mixed).clamp(0, 1)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****


def loss_landscape(cnn, img, content_img, style_img, content_layer, content_weight,
                   style_layers, style_weights, tv_weight, d1, d2, alphas, betas):
    """
    The loss landscape around an image: the content, style and total losses of
    style transfer at img + a * d1 + b * d2, for every a in alphas and b in betas.
    With d1 and d2 two random directions, this is a 2-D slice through image space.

    Inputs:
    - cnn, content_img, style_img, content_layer, content_weight, style_layers,
      style_weights, tv_weight: as for style_transfer.
    - img: Tensor of shape (1, 3, H, W), the centre of the slice (say, a result).
    - d1, d2: Tensors of the same shape as img, the two directions.
    - alphas, betas: 1-D Tensors of lengths A and B, the offsets along d1 and d2.

    Returns a dict with keys "content", "style" and "total", each a Tensor of
    shape (A, B) whose entry [i, j] is that loss at img + alphas[i] d1 + betas[j] d2.
    No gradients are needed: compute under torch.no_grad().
    """
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    with torch.no_grad():
        content_target = extract_features(content_img, cnn)[content_layer]
        style_feats = extract_features(style_img, cnn)
        style_targets = [gram_matrix(style_feats[i]) for i in style_layers]
        landscape = {key: torch.zeros(len(alphas), len(betas)) for key in ("content", "style", "total")}
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                point = img + a * d1 + b * d2
                feats = extract_features(point, cnn)
                c = content_loss(content_weight, feats[content_layer], content_target)
                s = style_loss(feats, style_layers, style_targets, style_weights)
                t = tv_loss(point, tv_weight)
                landscape["content"][i, j] = float(c)
                landscape["style"][i, j] = float(s)
                landscape["total"][i, j] = float(c + s + t)
    return landscape
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
