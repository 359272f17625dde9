"""What the commands share: the parser, argument types, the option table's arguments, messages and exit codes.

Every command builds its parser with :class:`_Parser` (one-line errors,
``--debug``); options are spelled as flags by :func:`_flag`; a failure becomes
one error line and an exit code by :func:`_failure`.  Nothing here imports
torch, so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, NoReturn

from ..errors import MissingExtra, Notice, OptionError, StyleTransferError, is_usage_error
from ..options import OPTIONS, Option
from ..presets import PRESETS

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


def _int_at_least(least: int, refusal: str) -> Callable[[str], int]:
    """An argparse type: a whole number ``>= least``; ``refusal`` (with ``{value}``) says why another is not."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(refusal.format(value=value))
        return value

    return parse


#: A whole number >= 1 (for the subcommands' own options: the inspection commands', serve's limits).
_positive_int = _int_at_least(1, "must be at least 1, not {value}")
#: A whole number >= 0.
_non_negative_int = _int_at_least(0, "must be 0 or more, not {value}")


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


def _add_option(
    parser: argparse.ArgumentParser,
    opt: Option,
    help_text: str | None = None,
    parse: Callable[[str], Any] | None = None,
) -> None:
    """One option of a table as an argparse argument (``dest`` is the option's name).

    A number is parsed by ``parse``, by default by the option table's own parsing and limits.
    """
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
        kwargs["type"] = parse or _converter(opt)
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


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    """Every option of the table (the main command's, ``demo``'s, ``batch``'s and ``video``'s)."""
    presets = "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
    for opt in OPTIONS:
        _add_option(parser, opt, f"{opt.help} ({presets})" if opt.name == "preset" else None)


def _add_front_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """A front end's own options (:mod:`styletransfer.front_options`), in their order.

    A whole number is parsed with its ``minimum`` (1 or 0) checked, any other
    number by ``float``: their other checks are the front end's, which name the option.
    """
    least = {1: _positive_int, 0: _non_negative_int}
    for opt in options:
        _add_option(parser, opt, parse=least[int(opt.minimum or 0)] if opt.type == "int" else float)


def _job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The option table's values from parsed arguments (for :func:`~styletransfer.job.make_job`)."""
    return {o.name: getattr(args, o.name) for o in OPTIONS}


def _add_executor_options(
    parser: argparse.ArgumentParser,
    *,
    workers: int | None = 1,
    workers_help: str = "worker processes or Ray actors (default: %(default)s)",
) -> None:
    """Where the work runs (``batch``'s items, ``video``'s videos): ``--executor``, ``--workers``, ``--ray-address``."""
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where items run (default: %(default)s)"
    )
    parser.add_argument("--workers", type=_positive_int, default=workers, metavar="N", help=workers_help)
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="with --executor ray: 'auto' or HOST:PORT (default: start a local Ray)"
    )


def _front_end(module: str, extra: str | None = None) -> Any:
    """Import a front-end subpackage; a missing optional package is one line naming the extra."""
    package = __name__.split(".")[0]
    try:
        return importlib.import_module(f"{package}.{module}")
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").startswith(package):
            raise
        raise MissingExtra(f"{module} needs {exc.name}: pip install 'gatys-styletransfer[{extra}]'") from None


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


def _say(args: argparse.Namespace, message: str) -> None:
    """A message on stderr, unless ``--quiet``."""
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
