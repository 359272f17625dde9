"""styletransfer: neural style transfer (Gatys et al.) on PyTorch, faithful to
TensorFlow's "Neural style transfer" tutorial and faster by default.

Public API::

    from styletransfer import stylize, loss_terms, plan, make_job, run_job
    image = stylize("photo.jpg", "painting.jpg", preset="fast")
    result = run_job(make_job("photo.jpg", "painting.jpg", "out.png", size=256))

Attributes are imported lazily, so ``import styletransfer`` (and the CLI's
``--help``) does not import torch; a type checker and an editor see them
through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import loss_terms, plan, stylize
    from .classifier import classify, imagenet_classes
    from .display import show
    from .errors import InputError, OptionError, OutputError, StyleTransferError
    from .events import JobResult, Observer
    from .examples import example_path
    from .figures import (
        high_pass_figure,
        inputs_figure,
        loss_figure,
        progress_figure,
        save_figure,
        sobel_figure,
        write_figures,
    )
    from .images import ImageError, load_img, save_image
    from .inspection import high_pass, layer_stats, layers, sobel_edges
    from .job import Job, make_job
    from .losses import Objective, gram_matrix, total_variation
    from .optimize import Diverged, Interrupted, Progress
    from .options import OPTIONS
    from .presets import PRESETS, Preset, get_preset
    from .runner import run_job, run_jobs
    from .vgg import VGG19, WeightsError, get_vgg, preprocess
    from .vgg_layers import LAYER_NAMES

from .version import __version__

_EXPORTS = {
    "stylize": "api",
    "plan": "api",
    "loss_terms": "api",
    "Job": "job",
    "JobResult": "events",
    "Observer": "events",
    "make_job": "job",
    "run_job": "runner",
    "run_jobs": "runner",
    "OPTIONS": "options",
    "StyleTransferError": "errors",
    "OptionError": "errors",
    "InputError": "errors",
    "OutputError": "errors",
    "Progress": "optimize",
    "Interrupted": "optimize",
    "Diverged": "optimize",
    "Preset": "presets",
    "PRESETS": "presets",
    "get_preset": "presets",
    "load_img": "images",
    "save_image": "images",
    "ImageError": "images",
    "gram_matrix": "losses",
    "total_variation": "losses",
    "Objective": "losses",
    "VGG19": "vgg",
    "get_vgg": "vgg",
    "preprocess": "vgg",
    "LAYER_NAMES": "vgg_layers",
    "example_path": "examples",
    "layers": "inspection",
    "layer_stats": "inspection",
    "high_pass": "inspection",
    "sobel_edges": "inspection",
    "classify": "classifier",
    "imagenet_classes": "classifier",
    "show": "display",
    "inputs_figure": "figures",
    "high_pass_figure": "figures",
    "sobel_figure": "figures",
    "progress_figure": "figures",
    "loss_figure": "figures",
    "save_figure": "figures",
    "write_figures": "figures",
    "WeightsError": "vgg",
}

__all__ = [
    "LAYER_NAMES",
    "OPTIONS",
    "PRESETS",
    "VGG19",
    "Diverged",
    "ImageError",
    "InputError",
    "Interrupted",
    "Job",
    "JobResult",
    "Objective",
    "Observer",
    "OptionError",
    "OutputError",
    "Preset",
    "Progress",
    "StyleTransferError",
    "WeightsError",
    "__version__",
    "classify",
    "example_path",
    "get_preset",
    "get_vgg",
    "gram_matrix",
    "high_pass",
    "high_pass_figure",
    "imagenet_classes",
    "inputs_figure",
    "layer_stats",
    "layers",
    "load_img",
    "loss_figure",
    "loss_terms",
    "make_job",
    "plan",
    "preprocess",
    "progress_figure",
    "run_job",
    "run_jobs",
    "save_figure",
    "save_image",
    "show",
    "sobel_edges",
    "sobel_figure",
    "stylize",
    "total_variation",
    "write_figures",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
