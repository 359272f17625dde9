"""``styletransfer batch INPUT... -o DIR --style S...``: many images, resumable (:mod:`styletransfer.batch`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..front_options import BATCH_OPTIONS
from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    PROG,
    _add_executor_options,
    _add_front_options,
    _add_table_options,
    _err,
    _front_end,
    _job_options,
    _Parser,
)


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
    *items, group = BATCH_OPTIONS  # --group comes after where the items run
    _add_front_options(parser, items)
    _add_executor_options(parser)
    _add_front_options(parser, [group])
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per item, only the summary and errors")
    _add_table_options(parser)
    args = parser.parse_args(argv)
    batch = _front_end("batch")
    items = batch.make_items(
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
