"""The ``video`` and ``batch`` commands' own options, defined once: name, type, default, limits, help (torch-free).

Beside :data:`~styletransfer.options.OPTIONS` (every run's options), each of
these front ends has a few options of its own; their defaults live here, and
the CLI's arguments, the front ends' keyword defaults and ``--help`` read
them from here.  Each is an :class:`~styletransfer.options.Option`; its
``group`` is the front end's name.  A whole number's ``minimum`` is checked
as the CLI parses it; the other checks are the front end's own (they name
the option, as the run options' do).
"""

from __future__ import annotations

from .options import BATCH_NAME, Option

#: The temporal term's weight by default (``temporal_weight``; see :mod:`styletransfer.video.temporal`).
DEFAULT_TEMPORAL_WEIGHT: float = 2e5

#: The instant preset's ``b`` by default, the share of the warped previous output kept where the flow is
#: trusted (see :mod:`styletransfer.video.instant`): flicker and style loss fall as it grows, lag grows
#: (about ``1 / (1 - b)`` frames).
DEFAULT_INSTANT_BLEND: float = 0.85

#: A video's frames after the first take ``steps / FRAME_STEPS_DIVISOR`` evaluations (rounded, at least 1)
#: unless ``frame_steps`` says otherwise: they start from the previous frame warped.
FRAME_STEPS_DIVISOR: int = 3

#: The frame rate of a directory of frames unless ``fps`` is given.
DEFAULT_FPS: int = 24

#: Items per batch where a CUDA GPU is available (on the CPU batching does not pay: see docs/benchmarks.md).
CUDA_GROUP: int = 8


def _exponent(value: float) -> str:
    """``2e5`` for 200000.0: a round number as ``--help`` writes it."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


#: ``video``'s options, in the order of its ``--help``.
VIDEO_OPTIONS: tuple[Option, ...] = (
    Option(
        "frame_steps",
        "int",
        f"evaluations of each frame after the first (default: steps/{FRAME_STEPS_DIVISOR})",
        default=None,
        minimum=1,
        metavar="M",
        group="video",
        nullable=True,
    ),
    Option(
        "temporal_weight",
        "float",
        f"weight of the temporal loss (default: {_exponent(DEFAULT_TEMPORAL_WEIGHT)}); with --preset instant, "
        "the share of the previous frame warped kept where the flow is trusted, 0 to 1 "
        f"(default: {DEFAULT_INSTANT_BLEND:g})",
        default=None,
        metavar="W",
        group="video",
        nullable=True,
    ),
    Option("no_temporal", "bool", "stylise every frame independently (the baseline)", default=False, group="video"),
    Option(
        "long_term",
        "int",
        "also hold each frame to the stylised frames 2..J back (long-term consistency; default 0: off)",
        default=0,
        minimum=0,
        metavar="J",
        group="video",
    ),
    Option(
        "metrics",
        "str",
        "write each frame's warping error, evaluations, seconds (with several INs: a directory, NAME.json each)",
        default=None,
        metavar="FILE.json",
        group="video",
        nullable=True,
    ),
    Option(
        "work_dir",
        "str",
        "where the stylised frames are kept (default: OUT.work; several: DIR/NAME)",
        default=None,
        metavar="DIR",
        group="video",
        nullable=True,
    ),
    Option(
        "fps",
        "float",
        f"frame rate of a directory of frames (default: {DEFAULT_FPS})",
        default=None,
        metavar="F",
        group="video",
        nullable=True,
    ),
)

#: ``batch``'s options, in the order of its ``--help``.
BATCH_OPTIONS: tuple[Option, ...] = (
    Option("recursive", "bool", "descend into the input directories", default=False, group="batch"),
    Option("name", "str", "output names", default=BATCH_NAME, group="batch"),
    Option("overwrite", "bool", "run every item again, done or not", default=False, group="batch"),
    Option(
        "group",
        "int",
        "optimise up to N items of one size, styles and settings together in one batch, each with its own "
        f"L-BFGS state (default: {CUDA_GROUP} with a CUDA GPU, 1 on the CPU, where batching does not pay)",
        default=None,
        minimum=1,
        metavar="N",
        group="batch",
        nullable=True,
    ),
)
