"""Every number of every preset, in one place.

A preset is a frozen :class:`Preset`.  The CLI and the Python API read their
defaults from here, and the README's presets table lists these values.  To add
a preset, add one entry to :data:`PRESETS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import OptionError

#: The seed's layers: content from block5_conv2, style from each block's first conv.
SEED_CONTENT_LAYERS: tuple[str, ...] = ("block5_conv2",)
SEED_STYLE_LAYERS: tuple[str, ...] = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block4_conv1",
    "block5_conv1",
)


@dataclass(frozen=True)
class Preset:
    """The settings of one stylisation run.

    The objective is always the seed's (see :mod:`styletransfer.losses`)::

        total = style_weight / n_style * sum_l mean((G_l(x) - G_l(s))^2)
              + content_weight / n_content * sum_l mean((F_l(x) - F_l(c))^2)
              + tv_weight * TV(x)

    Attributes:
        name: the preset's name.
        description: one line for ``--help`` and the README.
        size: the output's long side in pixels.
        steps: optimiser steps at the final size (Adam updates, or L-BFGS
            function evaluations).
        optimizer: ``"adam"`` (the seed's, with Keras' update rule) or
            ``"lbfgs"``.
        lr: the learning rate (Adam) or the initial step scale (L-BFGS).
        beta1, beta2, eps: Adam's moment decays and epsilon (Keras' "epsilon
            hat", added to ``sqrt(v)`` before bias correction).
        style_weight, content_weight, tv_weight: the loss weights.
        content_layers, style_layers: VGG19 layer names.
        init: ``"content"``, ``"noise"`` or an image path.
        history: the L-BFGS memory (pairs kept).
        tv_eps: L-BFGS optimises a Charbonnier TV, ``sqrt(d^2 + tv_eps^2) -
            tv_eps``, since the L1 TV is not smooth; reports use the exact TV.
        style_blend: one weight per style image (normalised); ``None``: equal.
        style_layer_weights: one weight per style layer; ``None``: all 1.
        style_scale: the style image's long side is ``style_scale`` times the
            long side of the image being optimised (the seed: 1).
        pooling: ``"max"`` (VGG19's, the seed's) or ``"avg"``.
        preserve_colors: ``None`` (the style's colours), ``"luminance"`` or
            ``"histogram"`` (see :mod:`styletransfer.color`).
        coarse_size: above this long side the run is coarse-to-fine: ``steps``
            at ``coarse_size``, then ``refine_steps`` at each doubling up to
            ``size``, each scale starting from the previous result upsampled;
            ``None``: always one scale (the seed).
        refine_steps: evaluations at each scale after the first.
        history_mib: the most memory the L-BFGS history may take (MiB); at
            high resolution the number of pairs is lowered to fit.
        stop_rtol, stop_window: L-BFGS stops before ``steps`` (at each scale:
            before ``refine_steps``) once the best exact seed loss has fallen
            by less than the fraction ``stop_rtol`` over the last
            ``stop_window`` evaluations.  With ``b_k`` the lowest loss of the
            first ``k`` evaluations at this scale, it stops after evaluation
            ``k`` when ``k > stop_window`` and ``b_{k - stop_window} - b_k <=
            stop_rtol * b_k``; ``steps`` stays a hard cap.  ``stop_window =
            0``: no early stop (always ``steps`` evaluations).  Adam ignores both.
        steps_size, min_steps, max_steps: a budget per pixel.  With
            ``steps_size`` set, ``steps`` is the cap at a first scale whose
            long side is ``steps_size``, and a first scale of long side ``L``
            (``size``, or ``coarse_size`` if smaller) gets ``steps * (L /
            steps_size)^2`` evaluations, rounded and kept within
            ``[min_steps, max_steps]`` (see :meth:`Preset.sized`).  ``None``:
            ``steps`` at every size.  An explicit ``steps`` turns it off.
        lowpass_gain, lowpass_sigmas: L-BFGS's initial inverse Hessian is
            ``tau (I + lowpass_gain * sum_k G_k)``, ``G_k`` a Gaussian blur
            whose sigma is ``lowpass_sigmas[k]`` times the long side of the
            scale (:class:`~styletransfer.optimize.LowPassBoost`): steps move
            broad colour changes further than fine texture.  Gain 0 or no
            sigmas: ``tau I``.  Only at the first scale of a coarse-to-fine
            run.  Adam ignores both.
        tile_size: evaluate the objective in tiles of at most this many
            pixels a side (halos included; :mod:`styletransfer.tiling`), at
            every scale larger than one tile: the same loss and gradient in
            one tile's memory.  ``None``: whole, unless the memory guard finds
            that the largest scale will not fit, and then it plans the tiles
            (:func:`styletransfer.memory.scale_tiles`).
        strength: the ``instant`` preset's mix of style vectors: 1 takes the
            style's, 0 the content's own, in between interpolates them
            (:mod:`styletransfer.instant.model`).  The optimising presets have
            no use for it.
    """

    name: str
    description: str
    size: int
    steps: int
    optimizer: str
    lr: float
    beta1: float
    beta2: float
    eps: float
    style_weight: float
    content_weight: float
    tv_weight: float
    content_layers: tuple[str, ...] = SEED_CONTENT_LAYERS
    style_layers: tuple[str, ...] = SEED_STYLE_LAYERS
    init: str = "content"
    history: int = 50
    tv_eps: float = 0.01
    style_blend: tuple[float, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None
    style_scale: float = 1.0
    pooling: str = "max"
    preserve_colors: str | None = None
    coarse_size: int | None = None
    refine_steps: int = 0
    history_mib: int = 1024
    stop_rtol: float = 0.0
    stop_window: int = 0
    steps_size: int | None = None
    min_steps: int = 1
    max_steps: int = 1000
    lowpass_gain: float = 0.0
    lowpass_sigmas: tuple[float, ...] = ()
    strength: float = 1.0
    tile_size: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preset:
        """A preset from :func:`dataclasses.asdict`'s data, read back from JSON (lists become tuples).

        Keys that are not fields (from a newer version) are ignored.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)

    @property
    def instant(self) -> bool:
        """Whether this preset runs the feed-forward network (:mod:`styletransfer.instant`) instead of optimising."""
        return self.optimizer == "instant"

    @property
    def stops_early(self) -> bool:
        """Whether a run may end before its ``steps`` by the stopping rule (L-BFGS with ``stop_window > 0``)."""
        return self.optimizer == "lbfgs" and self.stop_window > 0

    def sized(self) -> Preset:
        """This preset with ``steps`` set to its first scale's budget (see ``steps_size``) and the scaling off.

        With ``L`` the first scale's long side (``min(size, coarse_size)``)::

            steps' = min(max_steps, max(min_steps, round(steps * (L / steps_size)^2)))

        Unchanged when ``steps_size`` is ``None``.
        """
        if self.steps_size is None:
            return self
        first = self.size if self.coarse_size is None else min(self.size, self.coarse_size)
        scaled = round(self.steps * (first / self.steps_size) ** 2)
        return replace(self, steps=min(self.max_steps, max(self.min_steps, scaled)), steps_size=None)

    def with_overrides(self, **overrides: Any) -> Preset:
        """A copy with the given fields replaced; ``None`` values are ignored.

        A given ``steps`` is the cap at every size: it turns the budget per pixel (``steps_size``) off.
        """
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if "steps" in given:
            given.setdefault("steps_size", None)
        return replace(self, **given)


#: The seed's algorithm, exactly: Adam(0.02, 0.99, eps 0.1), 1000 steps, 512 px.
TUTORIAL = Preset(
    name="tutorial",
    description="the seed tutorial exactly: Adam, 1000 steps at 512 px",
    size=512,
    steps=1000,
    optimizer="adam",
    lr=0.02,
    beta1=0.99,
    beta2=0.999,
    eps=0.1,
    style_weight=1e-2,
    content_weight=1e4,
    tv_weight=30.0,
)

#: The default: the seed's objective, minimised by projected L-BFGS inside the [0, 1] box, for
#: a budget per pixel: 320 evaluations at 384 px, in proportion to the pixels elsewhere (40 at
#: 128 px, 142 at 256, 569 at 512; above 512 px, 569 at the 512 px scale and 40 at each finer
#: one).  Tuned on the tune half of bench/benchmarks/pairs.py's eight pairs against the tutorial
#: preset's 1000-step loss, checked on the other half (docs/benchmarks.md, "Fast as a user feels it").
FAST = replace(
    TUTORIAL,
    name="fast",
    description="the seed's objective, projected L-BFGS for a budget per pixel (569 evaluations at 512 px, 320 at 384, 40 at 128); coarse-to-fine above 512",
    steps=320,
    optimizer="lbfgs",
    lr=1.0,
    coarse_size=512,
    refine_steps=40,
    stop_rtol=0.003,
    stop_window=50,
    steps_size=384,
    min_steps=40,
    max_steps=1000,
    lowpass_gain=20.0,
    lowpass_sigmas=(0.02, 0.08),
)

#: Down to the tutorial's loss: L-BFGS until the best loss falls by less than 0.15% over 50
#: evaluations, at most 1500 (the previous default, 0.3% and 1000, reached the tutorial
#: preset's 1000-step loss on all eight pairs of bench/benchmarks/pairs.py at 384 px).
QUALITY = replace(
    FAST,
    name="quality",
    description="the seed's objective, projected L-BFGS until the loss stalls (at most 1500 evaluations) at 512 px; coarse-to-fine above 512",
    steps=1500,
    refine_steps=80,
    stop_rtol=0.0015,
    steps_size=None,
    min_steps=1,
)

#: A feed-forward network instead of an optimisation: TF Hub's arbitrary image stylisation
#: (Ghiasi et al. 2017), one pass at the output's size (:mod:`styletransfer.instant`).  Only
#: ``size``, ``style_blend``, ``strength`` and ``preserve_colors`` apply; the loss fields are the
#: seed's, unused.
INSTANT = replace(
    FAST,
    name="instant",
    description="a feed-forward network (Ghiasi et al. 2017): one pass, under a second at 512 px; no optimisation",
    steps=1,
    optimizer="instant",
    lr=0.0,
    coarse_size=None,
    refine_steps=0,
    stop_rtol=0.0,
    stop_window=0,
    steps_size=None,
    min_steps=1,
    lowpass_gain=0.0,
    lowpass_sigmas=(),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (FAST, QUALITY, TUTORIAL, INSTANT)}

#: The options the ``instant`` preset uses (besides where it runs and what is written): any other
#: run option given with it is an error.
INSTANT_OPTIONS: frozenset[str] = frozenset(
    {"preset", "size", "style_blend", "strength", "preserve_colors", "seed", "device", "precision", "manifest"}
)

#: The preset used when none is named.
DEFAULT_PRESET = "fast"


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or an :class:`~styletransfer.errors.OptionError` naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise OptionError("preset", f"{{option}}: unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


def _cell(value: Any) -> str:
    """One value as the README's presets table shows it."""
    if value is None or value == ():
        return "-"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, tuple):
        return f"`{', '.join(map(str, value))}`"
    return str(value)


def markdown_table() -> str:
    """The README's presets table: one row per :class:`Preset` field (name and description left out)."""
    names = list(PRESETS)
    lines = ["| field | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for f in fields(Preset):
        if f.name in ("name", "description"):
            continue
        lines.append(f"| {f.name} | " + " | ".join(_cell(getattr(PRESETS[n], f.name)) for n in names) + " |")
    return "\n".join(lines)
