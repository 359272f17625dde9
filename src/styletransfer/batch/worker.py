"""What a worker does with one item: run its job, and say how it ended as plain data.

The same function serves the local worker processes and the Ray actors.  A
local worker reads the inputs and writes the outputs itself (one file
system).  A Ray actor gets a *shipped* payload: the input files' bytes travel
with the job, the worker writes them into a private temporary directory, runs
the job there and sends back the bytes of what it wrote; only the driver
touches the user's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import StyleTransferError
from ..front_options import CUDA_GROUP
from ..job import Job, init_file
from ..manifest import manifest_path
from ..runner import run_jobs


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


#: A shipped item's temporary folder: ``<ITEM_PREFIX><pid>-<random>`` (the pid of the process that runs it).
ITEM_PREFIX = "styletransfer-item-"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on POSIX; elsewhere assumed alive)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def sweep_items(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the item folders left in ``directory`` (default: the temporary one) by processes that are gone.

    A shipped item writes its inputs (the user's images) to a temporary folder
    that it removes when it ends; a worker killed in the middle (``ray.kill``,
    the OOM killer) cannot, so the next worker on that node calls this.

    Returns:
        The folders removed.
    """
    removed = []
    for folder in Path(directory if directory is not None else tempfile.gettempdir()).glob(ITEM_PREFIX + "*"):
        pid = folder.name[len(ITEM_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and folder.is_dir() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def run_payload(payload: dict[str, Any], should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run the job in ``payload`` and return its outcome; never raises for a failed item.

    ``payload``: ``{"job": Job.to_dict()}``, plus ``"files"`` (``{path: bytes}``
    of the inputs) for a shipped job, and ``"weights"`` (a local path of the
    network's weights, for a shipped job).

    Returns:
        ``{"status", "error", "steps", "seconds", "terms"}``, plus for a
        shipped job ``"outputs"``: ``{original path: bytes}`` of every file written.
    """
    return run_payloads([payload], should_stop=should_stop)[0]


def run_payloads(
    payloads: Sequence[dict[str, Any]], should_stop: Callable[[], bool] | None = None, group: int = 1
) -> list[dict[str, Any]]:
    """:func:`run_payload` for several payloads, up to ``group`` of one shape at a time in one batch.

    The jobs run through :func:`~styletransfer.runner.run_jobs`: the items that
    share settings, styles and shape (and use L-BFGS without regions) are
    optimised together, one batched forward and backward per evaluation, each
    with its own L-BFGS state; an item that fails to load or to save fails
    alone.  Each output is written (atomically) by its own item.

    Returns:
        One outcome per payload, in order (see :func:`run_payload`).
    """
    outcomes: list[dict[str, Any] | None] = [None] * len(payloads)
    with contextlib.ExitStack() as stack:
        jobs: list[Job] = []
        places: list[tuple[int, Job, dict[Path, str] | None]] = []
        for i, payload in enumerate(payloads):
            if payload.get("error"):  # the driver could not read an input
                outcomes[i] = _failure(payload["error"])
                continue
            try:
                job = Job.from_dict(payload["job"])
                files: dict[str, bytes] | None = payload.get("files")
                back = None
                local = job
                if files is not None:
                    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{ITEM_PREFIX}{os.getpid()}-")))
                    local, back = _localise(job, files, tmp, payload.get("weights"))
            except Exception as exc:  # a failed item is data: its one-line reason goes in the ledger
                outcomes[i] = _failure(one_line(exc), traceback.format_exc())
                continue
            jobs.append(local)
            places.append((i, job, back))
        try:
            results: list[Any] = run_jobs(jobs, should_stop=should_stop, group=group)
        except Exception as exc:  # an internal error fails the items that ran together
            results = [exc] * len(jobs)
        for (i, job, back), local, result in zip(places, jobs, results):
            if isinstance(result, Exception):
                outcomes[i] = _failure(one_line(result), "".join(traceback.format_exception(result)))
                continue
            outcome = _outcome(result)
            if back is not None:
                try:
                    outcome["outputs"] = _shipped_outputs(job, local, back)
                except OSError as exc:
                    outcome = _failure(one_line(exc), traceback.format_exc())
            outcomes[i] = outcome
    return [o if o is not None else _failure("not run") for o in outcomes]


def _failure(error: str, trace: str | None = None) -> dict[str, Any]:
    failed: dict[str, Any] = {"status": "failed", "error": error, "steps": 0, "seconds": 0.0, "terms": None}
    if trace is not None:
        failed["traceback"] = trace
    return failed


def _shipped_outputs(job: Job, local: Job, back: dict[Path, str]) -> dict[str, bytes]:
    """``{original path: bytes}`` of what a shipped job wrote in its temporary directory."""
    outputs = {original: path.read_bytes() for path, original in back.items() if path.is_file()}
    figures = local.options.get("figures")
    if figures and job.options.get("figures"):
        for f in sorted(Path(figures).glob("*")):
            outputs[str(Path(job.options["figures"]) / f.name)] = f.read_bytes()
    return outputs


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


def unexpected_outputs(job: Job, paths: Sequence[str]) -> list[str]:
    """The paths among ``paths`` (what a worker sent back) that a shipped ``job`` does not write.

    A shipped job writes its output, the output's manifest, its log, and
    files directly inside its figures folder (:func:`_localise`,
    :func:`_shipped_outputs`); the driver writes nothing else, whatever a
    worker sends.
    """
    allowed = set()
    if job.output is not None:
        allowed |= {job.output, str(manifest_path(job.output))}
    if job.options.get("log"):
        allowed.add(str(job.options["log"]))
    figures = job.options.get("figures")

    def in_figures(path: str) -> bool:
        p = Path(path)
        return bool(figures) and p.parent == Path(str(figures)) and p.name not in ("", ".", "..")

    return [p for p in paths if p not in allowed and not in_figures(p)]


def input_paths(job: Job) -> list[str]:
    """The files a job reads: the content, the styles, a starting image."""
    return list(dict.fromkeys([job.content, *job.styles, *init_file(job.options.get("init"))]))


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_group(gpu: bool | None = None) -> int:
    """How many items of one shape a worker optimises together by default: :data:`CUDA_GROUP` with a GPU, else 1.

    ``gpu``: whether the worker has a CUDA GPU (default: whether this process sees one).
    """
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    return CUDA_GROUP if gpu else 1


def chunks(payloads: Sequence[dict[str, Any]], group: int) -> list[list[int]]:
    """The payloads' indices in runs of at most ``group`` that share options, preset fields and styles.

    Only such items can share a batch (their shapes are known once decoded:
    :func:`~styletransfer.runner.run_jobs` groups them further by shape).  The
    runs come in the order of their first item; with ``group=1`` each item is its own.
    """
    by_key: dict[str, list[int]] = {}
    for i, payload in enumerate(payloads):
        job = payload.get("job", {})
        key = json.dumps([job.get("styles"), job.get("options"), job.get("preset_fields")], sort_keys=True, default=str)
        by_key.setdefault(f"failed {i}" if payload.get("error") else key, []).append(i)
    runs = [members[k : k + group] for members in by_key.values() for k in range(0, len(members), max(1, group))]
    return sorted(runs)
