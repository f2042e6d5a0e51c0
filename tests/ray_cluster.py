"""A real, small Ray cluster on this machine for the tests, and a slow detector to kill workers in.

The head node has no CPU, so every actor runs on a worker node of one CPU; all of it listens on
loopback only. Worker processes import ``tests...`` plug-ins from the project root (PYTHONPATH).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from base.images import BGRImage
from detector.base import Detection
from tests.conftest import PROJECT_ROOT
from tests.footage.synthetic import ColourDetector

NODE_MEMORY = 80 * 1024 * 1024  # object store of each node: analyses are small
MARKERS = "TEST_REID_RAY_MARKERS"  # folder where SlowColourDetector notes the processes that run it


@dataclass
class LocalCluster:
    """A head and worker nodes started by ``ray.cluster_utils.Cluster``; ``address`` is the head's."""

    cluster: Any
    nodes: list[Any]

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self) -> Any:
        """Start one more worker node of one CPU and wait until it has joined."""
        node = self.cluster.add_node(num_cpus=1, object_store_memory=NODE_MEMORY, node_ip_address="127.0.0.1")
        self.nodes.append(node)
        self.cluster.wait_for_nodes()
        return node


@contextmanager
def local_cluster(workers: int, markers: Path) -> Iterator[LocalCluster]:
    """Start a head without CPUs and ``workers`` nodes of one CPU each, all on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as patch:
        # Ray otherwise advertises the machine's outward address; the tests stay on loopback.
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
        patch.setenv(MARKERS, str(markers))
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        import ray._private.ray_constants as constants
        from ray.cluster_utils import Cluster

        patch.setattr(constants, "ENABLE_RAY_CLUSTER", False)  # read at call time by Ray's address lookup
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "object_store_memory": NODE_MEMORY, "node_ip_address": "127.0.0.1",
            "include_dashboard": False})
        local = LocalCluster(cluster, [])
        try:
            for _ in range(workers):
                local.add_node()
            yield local
        finally:
            cluster.shutdown()


def worker_pids(markers: Path) -> list[int]:
    """Return the processes that have started analysing with ``SlowColourDetector``, oldest first."""
    files = sorted(markers.glob("pid-*"), key=lambda path: path.stat().st_mtime)
    return [int(path.name.removeprefix("pid-")) for path in files]


class SlowColourDetector(ColourDetector):
    """``ColourDetector`` taking ``delay`` seconds a frame; notes its process in ``$TEST_REID_RAY_MARKERS``."""

    delay = 0.03

    def _load(self) -> None:
        """Note each model load, one file per load, to count them."""
        folder = Path(os.environ[MARKERS])
        (folder / f"load-{os.getpid()}-{time.monotonic_ns()}").touch()

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        (Path(os.environ[MARKERS]) / f"pid-{os.getpid()}").touch()
        time.sleep(self.delay * len(images))
        return super()._detect(images, min_score)


class DriftedColourDetector(ColourDetector):
    """``ColourDetector`` under another model id in Ray workers: a node whose model files differ."""

    def __init__(self) -> None:
        super().__init__()
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            self.model_id = "colour-blobs-of-another-version"
