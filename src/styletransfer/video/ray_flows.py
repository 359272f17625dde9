"""Video on Ray: the flows and certainty masks of all frame pairs computed in parallel Ray tasks.

The frames' optimisation stays with the driver, which alone reads and writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..batch.ray_executor import connect_ray
from . import FlowMap, local_flows


class RayFlows:
    """A :data:`~styletransfer.video.FlowMap` that runs one Ray task (1 CPU) per frame pair.

    ``address``: ``"auto"`` or ``HOST:PORT``; ``None`` starts a local Ray
    instance, shut down by :meth:`close`.
    """

    def __init__(self, address: str | None = None) -> None:
        ray, self.started = connect_ray(address)
        self.ray = ray
        self.task: Any = ray.remote(num_cpus=1)(_pairs)

    def __call__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        chunks = [list(pairs[i : i + 4]) for i in range(0, len(pairs), 4)]
        done: list[tuple[np.ndarray, np.ndarray]] = []
        for part in self.ray.get([self.task.remote(c) for c in chunks]):
            done += part
        return done

    def close(self) -> None:
        """Shut down the local Ray instance if this object started it."""
        if self.started:
            self.ray.shutdown()
            self.started = False


def _pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return local_flows(pairs)


def flow_map(address: str | None = None) -> FlowMap:
    """A :class:`RayFlows` (typed as a flow map)."""
    return RayFlows(address)
