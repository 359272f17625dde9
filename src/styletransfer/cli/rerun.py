"""``styletransfer rerun OUT.json -o NEW``: repeat a run from its manifest."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .common import PROG, _Parser, _positive_int
from .run import _execute


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

    from ..manifest import load

    loaded = load(args.manifest)
    job = loaded.job(args.output, args.device, save_every=args.save_every, log=args.log, manifest=args.write_manifest)
    from ..job import check_outputs

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
