"""styletransfer: neural style transfer (Gatys et al.) on PyTorch, faithful to
TensorFlow's "Neural style transfer" tutorial and faster by default.

Public API::

    from styletransfer import stylize, loss_terms, plan, make_job, run_job
    image = stylize("photo.jpg", "painting.jpg", preset="fast")
    result = run_job(make_job("photo.jpg", "painting.jpg", "out.png", size=256))

Attributes are imported lazily, so ``import styletransfer`` (and the CLI's
``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "stylize": "api",
    "plan": "api",
    "loss_terms": "api",
    "Job": "jobs",
    "JobResult": "jobs",
    "Observer": "jobs",
    "make_job": "jobs",
    "run_job": "jobs",
    "run_jobs": "jobs",
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
    "LAYER_NAMES": "vgg",
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

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
