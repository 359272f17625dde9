"""Inspection tools around the algorithm (the seed's layer listing)."""

from __future__ import annotations

from .presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS
from .vgg import LAYERS


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
        {"name": info.name, "kind": info.kind, "channels": info.out_channels, "factor": info.factor, "role": role(info.name)}
        for info in LAYERS
    ]
