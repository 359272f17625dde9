"""The main command, ``styletransfer CONTENT STYLE -o OUT``, and ``demo``: one run, planned or executed.

The run options are generated from :data:`styletransfer.options.OPTIONS`; a run
is a :class:`~styletransfer.job.Job` given to :func:`~styletransfer.runner.run_job`.
Ctrl-C and SIGTERM ask the run to stop (it ends within one evaluation and the
image so far is written); a second signal stops it at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..events import JobResult, JobStart, Observer
from ..job import Job, make_job
from ..version import __version__
from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    PROG,
    UsageError,
    _add_table_options,
    _err,
    _job_options,
    _Parser,
    _say,
    _stop_on_signals,
)


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


def _cmd_run(argv: Sequence[str]) -> int:
    """The main command: stylise CONTENT with STYLE (or print the plan with ``--dry-run``)."""
    args = main_parser().parse_args(argv)
    return _run(args, args.content, args.style)


def _cmd_demo(argv: Sequence[str]) -> int:
    from ..examples import example_path

    args = _demo_parser().parse_args(argv)
    return _run(args, example_path("tubingen.jpg"), [example_path("starry_night.jpg")])


def _run(args: argparse.Namespace, content: str | Path, styles: Sequence[str | Path]) -> int:
    """The main command and ``demo``: build the job from the arguments, then plan or run it."""
    if args.json and not args.dry_run:
        raise UsageError("--json works with --dry-run only (the run itself writes an image)")
    if args.output is None and not args.dry_run:
        raise UsageError("the following arguments are required: -o/--output")
    job = make_job(content, [str(s) for s in styles], args.output, **_job_options(args))
    if args.dry_run:
        return _dry_run(args, job)
    return _execute(args, job)


def _dry_run(args: argparse.Namespace, job: Job) -> int:
    """Print the plan of ``job`` (scales, evaluations, time, memory) without optimising."""
    from ..pipeline import plan
    from ..runner import prepare

    settings, inputs = prepare(job)
    found = plan(inputs, settings)
    if args.json:
        print(json.dumps(found))
        return 0
    rule = found["stop_rule"]
    most = "at most " if rule else ""
    print(f"plan ({found['device']}): {len(found['scales'])} scale(s)")
    per_eval = zip(found["seconds_per_evaluation"], found["fp32_finish_seconds_per_evaluation"])
    for (h, w), n, (t, t32), tiles in zip(found["scales"], found["evaluations"], per_eval, found["tiles"]):
        each = (
            f"about {t:.2f} s each" if t32 is None else f"about {t:.2f} s each in bf16, {t32:.2f} s in the fp32 finish"
        )
        tiled = "" if tiles is None else f", in {tiles['count']} tiles of at most {tiles['side']} px"
        print(f"  {w}x{h}: {most}{n} evaluations, {each}{tiled}")
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
    """Run ``job`` with the CLI's observers and signal handling; print what happened; return the exit code.

    The main command, ``demo`` and ``rerun`` end here.
    """
    from ..runner import run_job

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
