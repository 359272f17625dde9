"""The command-line interface: a thin layer over :mod:`styletransfer.api`.

``styletransfer CONTENT STYLE -o OUT`` stylises (:mod:`.run`);
``styletransfer COMMAND ...`` runs one of the other commands, each in its module:

- ``demo``: the main command on the bundled example (:mod:`.run`);
- ``loss``, ``layers``, ``stats``, ``classify``, ``figures``: what the seed's
  notebook shows about its objective, network and images (:mod:`.inspect`);
- ``rerun``: a run again from its manifest (:mod:`.rerun`);
- ``batch``: many images, resumable (:mod:`.batch`);
- ``video``: videos with temporal consistency (:mod:`.video`);
- ``serve``: the local web studio (:mod:`.serve`).

What they share (the parser, the option table's arguments, messages and exit
codes) is in :mod:`.common`.  Torch is imported only when a command runs, so
``--help`` answers at once.

Every failure is one line on stderr, ``styletransfer: error: ...``, naming the
file or option (as a flag: ``--size``) and saying what to do, with exit code 2
for usage errors (bad options, unreadable inputs, unwritable outputs, all found
before any work) and 1 for runtime failures and internal errors.  ``--debug``
(accepted by every command) prints the traceback above that line.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from .batch import _cmd_batch
from .common import _err, _failure, _quiet_warning, _show_warning
from .inspect import _cmd_classify, _cmd_figures, _cmd_layers, _cmd_loss, _cmd_stats
from .rerun import _cmd_rerun, rerun_threads
from .run import _cmd_demo, _cmd_run, main_parser
from .serve import _cmd_serve
from .video import _cmd_video

__all__ = ["COMMANDS", "main", "main_parser", "rerun_threads"]

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


def _wants(flag: str, argv: Sequence[str], short: str | None = None) -> bool:
    """Whether ``argv`` holds ``flag`` (or an abbreviation, or ``short``) where the parsers would take it."""
    probe = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    probe.add_argument(flag, *([short] if short else []), dest="flag", action="store_true")
    try:
        known, _ = probe.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit):
        return False
    return bool(known.flag)


def _dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return _cmd_run(argv)


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
