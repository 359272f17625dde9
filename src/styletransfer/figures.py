"""The seed's diagnostic figures, drawn with matplotlib.

Every function returns a :class:`matplotlib.figure.Figure` (made without
pyplot, so nothing global changes and no window opens); :func:`save_figure`
writes one as PNG.  Pixel sizes are ``figsize * dpi`` exactly (no tight
bounding box), e.g. 1400x1000 for the high-pass grid at the default 100 dpi.
The layouts follow the seed's ``plt.figure(figsize=(14, 10))``; the Sobel
pair is 14x6 inches, since one row of two images needs no more.

1. :func:`inputs_figure`: content | style, "Content Image" / "Style Image";
2. :func:`high_pass_figure`: the 2x2 grid of ``clip(2*delta + 0.5)``;
3. :func:`sobel_figure`: ``clip(sobel/4 + 0.5)``, horizontal and vertical;
4. :func:`progress_figure`: thumbnails titled "Train step: N";
5. :func:`loss_figure`: total loss and each term against the step, log scale.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .errors import InputError, OptionError
from .images import ImageLike, save_file_atomically, to_tensor
from .inspection import high_pass, sobel_edges

#: Resolution of saved figures, dots per inch.
DPI = 100


def _array(image: ImageLike) -> np.ndarray:
    """An image as ``(H, W, 3)`` float32 in [0, 1] for ``imshow``."""
    return to_tensor(image)[0].permute(1, 2, 0).numpy()


def _show(ax: object, image: np.ndarray, title: str) -> None:
    ax.imshow(np.clip(image, 0.0, 1.0))  # type: ignore[attr-defined]
    ax.set_title(title)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def inputs_figure(content: ImageLike, style: ImageLike, figsize: tuple[float, float] = (12.0, 5.0)) -> Figure:
    """Content and style side by side, titled "Content Image" and "Style Image"."""
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 2)
    _show(axes[0], _array(content), "Content Image")
    _show(axes[1], _array(style), "Style Image")
    return fig


def high_pass_figure(original: ImageLike, stylized: ImageLike, figsize: tuple[float, float] = (14.0, 10.0)) -> Figure:
    """The seed's 2x2 high-pass grid: ``clip(2*delta + 0.5)`` for both images.

    Row 1 the original, row 2 the stylised image; left "Horizontal Deltas"
    (the vertical neighbour difference ``y_var``, which shows horizontal
    edges), right "Vertical Deltas" (``x_var``), with the seed's titles.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 2)
    for row, (image, label) in enumerate(((original, "Original"), (stylized, "Styled"))):
        x_var, y_var = high_pass(image)
        _show(axes[row, 0], 2.0 * y_var + 0.5, f"Horizontal Deltas: {label}")
        _show(axes[row, 1], 2.0 * x_var + 0.5, f"Vertical Deltas: {label}")
    return fig


def sobel_figure(image: ImageLike, figsize: tuple[float, float] = (14.0, 6.0)) -> Figure:
    """Sobel edges of ``image`` shown as ``clip(sobel/4 + 0.5)``: horizontal, vertical."""
    sobel = sobel_edges(image)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 2)
    _show(axes[0], sobel[..., 0] / 4.0 + 0.5, "Horizontal Sobel-edges")
    _show(axes[1], sobel[..., 1] / 4.0 + 0.5, "Vertical Sobel-edges")
    return fig


def progress_figure(frames: Sequence[tuple[int, ImageLike]], columns: int = 5, panel: float = 3.2) -> Figure:
    """A progress sheet: one thumbnail per ``(step, image)``, titled "Train step: N".

    Args:
        frames: ``(step, image)`` pairs in order.
        columns: thumbnails per row (fewer when there are fewer frames).
        panel: width of one thumbnail, inches; the height follows the first image.
    """
    if not frames:
        raise InputError("a progress sheet needs at least one frame")
    arrays = [(step, _array(image)) for step, image in frames]
    cols = min(columns, len(arrays))
    rows = math.ceil(len(arrays) / cols)
    h, w = arrays[0][1].shape[:2]
    fig = Figure(figsize=(panel * cols, (panel * h / w + 0.4) * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (step, arr) in zip(axes, arrays):
        _show(ax, arr, f"Train step: {step}")
    for ax in axes[len(arrays) :]:
        ax.set_axis_off()
    return fig


#: The loss terms a run log holds, in plotting order.
TERMS = ("loss", "style", "content", "tv")


def read_log(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """A run's CSV log (``--log``): one dict per step with ``step`` and :data:`TERMS`."""
    problem = f"{path}: not a styletransfer log (a CSV file from --log, with columns step, {', '.join(TERMS)})"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or any(k not in rows[0] for k in ("step", *TERMS)):
            raise InputError(problem)
        return [{k: float(row[k]) for k in ("step", *TERMS)} for row in rows]
    except (UnicodeDecodeError, csv.Error, TypeError, ValueError) as exc:
        raise InputError(problem) from exc


def loss_figure(
    log: str | os.PathLike[str] | Iterable[Mapping[str, float]], figsize: tuple[float, float] = (8.0, 5.0)
) -> Figure:
    """Total loss and each weighted term against the step, log scale.

    Args:
        log: a CSV log path (``--log``) or rows with ``step``, ``loss``,
            ``style``, ``content``, ``tv`` (e.g. :class:`~styletransfer.Progress` fields).
    """
    rows = read_log(log) if isinstance(log, (str, os.PathLike)) else [dict(r) for r in log]
    if not rows:
        raise InputError("the log has no steps")
    steps = [r["step"] for r in rows]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for key, label in zip(TERMS, ("total", "style", "content", "total variation")):
        values = [r[key] if r[key] > 0 else math.nan for r in rows]  # zeros have no place on a log axis
        ax.plot(steps, values, label=label, linewidth=2.0 if key == "loss" else 1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; its size is ``figsize * dpi`` pixels."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise OptionError("output", f"{p}: figures are written as .png")
    return save_file_atomically(p, lambda f: fig.savefig(f, format="png", dpi=dpi))


#: The file names :func:`write_figures` uses, in the order of the seed's figures.
FIGURE_FILES = ("inputs.png", "highpass.png", "sobel.png", "progress.png", "loss.png")


def write_figures(
    directory: str | os.PathLike[str],
    content: ImageLike,
    style: ImageLike,
    *,
    result: ImageLike | None = None,
    frames: Sequence[tuple[int, ImageLike]] = (),
    log: str | os.PathLike[str] | Iterable[Mapping[str, float]] | None = None,
) -> list[Path]:
    """Write the figures the inputs allow into ``directory`` (created if missing).

    ``inputs.png`` and ``sobel.png`` (of the content) always; ``highpass.png``
    with a ``result``; ``progress.png`` with ``frames``; ``loss.png`` with a
    ``log``.  Existing files of these names in ``directory`` are replaced.

    Returns:
        The paths written, in :data:`FIGURE_FILES` order.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Figure]] = [("inputs.png", inputs_figure(content, style))]
    if result is not None:
        figures.append(("highpass.png", high_pass_figure(content, result)))
    figures.append(("sobel.png", sobel_figure(content)))
    if frames:
        figures.append(("progress.png", progress_figure(frames)))
    if log is not None:
        figures.append(("loss.png", loss_figure(log)))
    return [save_figure(fig, out / name) for name, fig in figures]
