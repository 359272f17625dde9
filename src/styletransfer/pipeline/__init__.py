"""The pipeline: resolved settings and decoded inputs in, a stylised image out.

It knows nothing of files to write, progress bars or signals (that is
:mod:`styletransfer.runner` and the front ends).  Its rooms:

- :mod:`.settings`: the preset with the caller's overrides, the device, the precision, the scales;
- :mod:`.inputs`: each input decoded once, and the checks before any work;
- :mod:`.objective`: one scale's objective, the style targets computed once and kept;
- :mod:`.mixing`: scale mixing (a style with another image's fine texture);
- :mod:`.run`: :func:`optimize` coarse to fine, :func:`optimize_batch`, the instant preset's pass, the picture;
- :mod:`.cost`: how an evaluation's time grows with its scale, for the dry run and the time budget;
- :mod:`.estimate`: the dry run's scales, evaluations, time and memory.

Each input is decoded once (:func:`decode_inputs`); each scale of a
coarse-to-fine run resizes the decoded tensors and computes its style targets
once (:func:`build_objective`), and the last scale's objective is kept to
report the result's loss terms.
"""

from __future__ import annotations

from .cost import LARGE_PIXELS, PIXEL_EXPONENT, RUN_OVERHEAD, evaluation_costs, scaled_seconds
from .estimate import plan
from .inputs import (
    FacesProtected,
    Inputs,
    check_before_decoding,
    check_inputs,
    check_shape,
    decode_inputs,
    load_checked,
    needed_sides,
    shape_at,
    styles_list,
)
from .mixing import mixed_style
from .objective import (
    STYLE_TARGETS,
    build_objective,
    content_at,
    evaluate,
    final_terms,
    initial_image,
    layer_masks,
    objective_at,
    styles_at,
)
from .run import (
    batch_key,
    batch_limit,
    budget_deadlines,
    finish_image,
    instant_image,
    optimize,
    optimize_batch,
    run_inputs,
    stylize_batch,
    stylize_tensor,
)
from .settings import (
    Settings,
    check_precision,
    configure_device,
    native_bf16,
    resolve_device,
    resolve_settings,
    stage_sizes,
    stage_steps,
    total_steps,
)

__all__ = [
    "LARGE_PIXELS",
    "PIXEL_EXPONENT",
    "RUN_OVERHEAD",
    "STYLE_TARGETS",
    "FacesProtected",
    "Inputs",
    "Settings",
    "batch_key",
    "batch_limit",
    "budget_deadlines",
    "build_objective",
    "check_before_decoding",
    "check_inputs",
    "check_precision",
    "check_shape",
    "configure_device",
    "content_at",
    "decode_inputs",
    "evaluate",
    "evaluation_costs",
    "final_terms",
    "finish_image",
    "initial_image",
    "instant_image",
    "layer_masks",
    "load_checked",
    "mixed_style",
    "native_bf16",
    "needed_sides",
    "objective_at",
    "optimize",
    "optimize_batch",
    "plan",
    "resolve_device",
    "resolve_settings",
    "run_inputs",
    "scaled_seconds",
    "shape_at",
    "stage_sizes",
    "stage_steps",
    "styles_at",
    "styles_list",
    "stylize_batch",
    "stylize_tensor",
    "total_steps",
]
