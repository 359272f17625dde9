"""VGG19's layer table: names, channels and spatial factors (torch-free).

The option table and the CLI read layer names from here without importing
torch; :mod:`styletransfer.vgg` builds the network from the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import OptionError


@dataclass(frozen=True)
class LayerInfo:
    """One named layer of VGG19.

    Attributes:
        name: the Keras name, e.g. ``block3_conv1``.
        kind: ``"conv"`` or ``"pool"``.
        in_channels: channels going in.
        out_channels: channels coming out.
        factor: the spatial down-sampling factor of the layer's output against
            the input image (1, 2, 4, 8, 16 or 32).
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    factor: int


def _build_layers() -> tuple[LayerInfo, ...]:
    convs_per_block = (2, 2, 4, 4, 4)
    widths = (64, 128, 256, 512, 512)
    layers: list[LayerInfo] = []
    channels, factor = 3, 1
    for block, (n_convs, width) in enumerate(zip(convs_per_block, widths), start=1):
        for i in range(1, n_convs + 1):
            layers.append(LayerInfo(f"block{block}_conv{i}", "conv", channels, width, factor))
            channels = width
        factor *= 2
        layers.append(LayerInfo(f"block{block}_pool", "pool", channels, channels, factor))
    return tuple(layers)


#: Every layer of the network, in order.
LAYERS: tuple[LayerInfo, ...] = _build_layers()
LAYER_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
CONV_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS if layer.kind == "conv")
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}


def check_layers(names: Iterable[str], option: str = "style_layers") -> list[str]:
    """Return ``names`` as a list; an unknown layer name is an :class:`OptionError` on ``option``."""
    names = list(names)
    unknown = [n for n in names if n not in LAYER_INDEX]
    if unknown:
        raise OptionError(
            option, f"{{option}}: unknown VGG19 layer {unknown[0]!r}; known layers: {', '.join(LAYER_NAMES)}"
        )
    return names


def min_input_side(names: Iterable[str]) -> int:
    """The fewest pixels each side of the input needs for every layer in ``names``.

    Each 2x2 pool of stride 2 halves a side (rounding down), and a side of 1
    pixel cannot be pooled, so a layer after ``k`` pools needs ``2**k`` pixels:
    its spatial factor.  The seed's layers reach ``block5_conv2``, after four
    pools: 16 pixels.  ``1`` for no layers.
    """
    factors = [LAYERS[LAYER_INDEX[n]].factor for n in check_layers(names)]
    return max(factors, default=1)


#: Keras' full VGG19 weights file, with the classifier layers (``classify`` reads it; torch-free, for its help).
FULL_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels.h5"
