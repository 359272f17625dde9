"""What a worker does with one item: run its job, and say how it ended as plain data.

The same function serves the local worker processes and the Ray actors.  A
local worker reads the inputs and writes the outputs itself (one file
system).  A Ray actor gets a *shipped* payload: the input files' bytes travel
with the job, the worker writes them into a private temporary directory, runs
the job there and sends back the bytes of what it wrote; only the driver
touches the user's files.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StyleTransferError
from ..jobs import Job, init_file, run_job
from ..manifest import manifest_path


def set_threads(threads: int) -> int:
    """Give this process ``threads`` torch threads (a worker's share of the cores); the number it had."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    return before


def one_line(exc: BaseException) -> str:
    """An exception as one line: the package's own errors as they read, anything else as an internal error."""
    from ..errors import OptionError

    if isinstance(exc, OptionError):
        text = exc.render()
    elif isinstance(exc, (StyleTransferError, OSError)):
        text = str(exc)
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())


def run_payload(payload: dict[str, Any], should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run the job in ``payload`` and return its outcome; never raises for a failed item.

    ``payload``: ``{"job": Job.to_dict()}``, plus ``"files"`` (``{path: bytes}``
    of the inputs) for a shipped job, and ``"weights"`` (a local path of the
    network's weights, for a shipped job).

    Returns:
        ``{"status", "error", "steps", "seconds", "terms"}``, plus for a
        shipped job ``"outputs"``: ``{original path: bytes}`` of every file written.
    """
    files: dict[str, bytes] | None = payload.get("files")
    if payload.get("error"):  # the driver could not read an input
        return {"status": "failed", "error": payload["error"], "steps": 0, "seconds": 0.0, "terms": None}
    try:
        job = Job.from_dict(payload["job"])
        if files is None:
            return _outcome(run_job(job, should_stop=should_stop))
        with tempfile.TemporaryDirectory(prefix="styletransfer-item-") as tmp:
            local, back = _localise(job, files, Path(tmp), payload.get("weights"))
            outcome = _outcome(run_job(local, should_stop=should_stop))
            outcome["outputs"] = {original: path.read_bytes() for path, original in back.items() if path.is_file()}
            figures = local.options.get("figures")
            if figures and job.options.get("figures"):
                for f in sorted(Path(figures).glob("*")):
                    outcome["outputs"][str(Path(job.options["figures"]) / f.name)] = f.read_bytes()
            return outcome
    except Exception as exc:  # a failed item is data: its one-line reason goes in the ledger
        return {
            "status": "failed",
            "error": one_line(exc),
            "steps": 0,
            "seconds": 0.0,
            "terms": None,
            "traceback": traceback.format_exc(),
        }


def _outcome(result: Any) -> dict[str, Any]:
    return {
        "status": result.status,
        "error": result.error,
        "steps": result.steps,
        "seconds": result.seconds,
        "terms": result.terms,
    }


def _localise(job: Job, files: dict[str, bytes], tmp: Path, weights: str | None) -> tuple[Job, dict[Path, str]]:
    """The job rewritten to run in ``tmp``: its inputs written there from ``files``, its outputs there too.

    Returns:
        The local job and, for each output it may write, the path the driver gives it.
    """
    inputs = tmp / "in"
    out = tmp / "out"
    inputs.mkdir()
    out.mkdir()
    names: dict[str, str] = {}
    for i, (path, data) in enumerate(files.items()):
        written = inputs / f"{i}_{Path(path).name}"
        written.write_bytes(data)
        names[path] = str(written)
    options = dict(job.options)
    back: dict[Path, str] = {}
    output = None
    if job.output is not None:
        output = out / Path(job.output).name
        back[output] = job.output
        back[manifest_path(output)] = str(manifest_path(job.output))
    for f in init_file(options.get("init")):
        options["init"] = names[f]
    if options.get("log"):
        log = out / ("log_" + Path(options["log"]).name)
        back[log] = options["log"]
        options["log"] = str(log)
    if options.get("figures"):
        options["figures"] = str(out / "figures")
    options["save_every"] = None  # snapshots stay on the node: a shipped job returns its final files only
    if weights is not None:
        options["weights"] = weights
    shipped = Job(
        names[job.content],
        [names[s] for s in job.styles],
        None if output is None else str(output),
        options,
        job.preset_fields,
    )
    return shipped, back


def input_paths(job: Job) -> list[str]:
    """The files a job reads: the content, the styles, a starting image."""
    return list(dict.fromkeys([job.content, *job.styles, *init_file(job.options.get("init"))]))


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
