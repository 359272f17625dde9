"""Scale mixing (Gatys et al. 2017): a new style image with one image's fine texture and another's coarse structure.

The layers up to :data:`FINE_LAYERS_END` take their Gram targets from
``fine_style``, the deeper ones from the style; L-BFGS makes the image that
matches both, once before the run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import Tensor

from ..errors import OptionError
from ..images import resize
from ..losses import Objective, Weights
from ..optimize import (
    Interrupted,
    LbfgsConfig,
    Reporter,
    StopCheck,
    run_lbfgs,
)
from ..vgg import get_vgg
from ..vgg_layers import LAYER_INDEX
from .inputs import Inputs, check_shape, shape_at
from .objective import styles_at
from .settings import Settings

#: ``fine_style`` takes the layers up to this one from its image, the deeper ones from the style (Gatys 2017).
FINE_LAYERS_END = "block2_conv1"

#: L-BFGS evaluations that make each scale-mixed style image.
MIX_EVALUATIONS = 100


def mixed_style(
    settings: Settings,
    style: Tensor,
    fine: Tensor,
    evaluations: int = MIX_EVALUATIONS,
    should_stop: StopCheck | None = None,
) -> Tensor:
    """Gatys et al. 2017's scale mixing: an image with ``fine``'s texture and ``style``'s coarse structure.

    Starting from ``style``, L-BFGS matches the Gram matrices of ``fine`` (at
    ``style``'s long side) at the preset's style layers up to
    :data:`FINE_LAYERS_END`, and those of ``style`` at the deeper ones; each
    layer's term is divided by its target's mean square, so that every layer
    counts (unweighted, the shallow layers' large Gram matrices swamp the rest).

    Raises:
        OptionError: on ``fine_style`` when the style layers hold none up to :data:`FINE_LAYERS_END`.
        Interrupted: at step 0 when ``should_stop()`` turns True (nothing of the run is made yet).
    """
    p = settings.preset
    fine_layers = [n for n in p.style_layers if LAYER_INDEX[n] <= LAYER_INDEX[FINE_LAYERS_END]]
    if not fine_layers:
        raise OptionError(
            "fine_style", f"{{option}}: the style layers hold none up to {FINE_LAYERS_END}, where the fine texture is"
        )
    style = style.to(settings.device)
    fine = resize(fine, shape_at(fine, max(style.shape[-2:]))).to(settings.device)
    vgg = get_vgg(settings.weights, settings.device)
    kw: dict[str, Any] = {"weights": Weights(1.0, 0.0, 0.0), "content_layers": [], "pooling": p.pooling}
    objective = Objective(vgg, style, style, style_layers=p.style_layers, **kw)
    objective.style_targets.update(Objective(vgg, style, fine, style_layers=fine_layers, **kw).style_targets)
    # each layer relative to its target's size: the layers' Gram matrices differ by orders of magnitude
    objective.layer_weights = [
        1.0 / max(float(objective.style_targets[n].square().mean()), 1e-30) for n in p.style_layers
    ]
    try:
        report = Reporter(evaluations, None, should_stop=should_stop)
        mixed = run_lbfgs(objective, style, evaluations, report, LbfgsConfig(tv_eps=0))
    except Interrupted:
        raise Interrupted(style.cpu(), 0) from None
    return mixed.detach().cpu()


def mix_scales(inputs: Inputs, settings: Settings, should_stop: StopCheck | None = None) -> Inputs:
    """``inputs`` with each style image replaced by :func:`mixed_style` of it and ``inputs.fine_style``.

    The mixed images are made at the last scale's style size.  Returns a new
    :class:`Inputs` (its ``fine_style`` spent: ``None``) and leaves ``inputs``
    as it is; without a ``fine_style``, ``inputs`` itself.

    Raises:
        Interrupted: at step 0 when ``should_stop()`` turns True.
    """
    fine = inputs.fine_style
    if fine is None:
        return inputs
    p = settings.preset
    side = round(p.style_scale * p.size)
    styles = styles_at(inputs, p.size, replace(p, preserve_colors=None), inputs.content_pixels)
    check_shape("the fine_style image", fine, side, p.style_layers, "fine style")
    mixed = [mixed_style(settings, s, fine, should_stop=should_stop) for s in styles]
    return replace(inputs, style_pixels=mixed, fine_style=None)
