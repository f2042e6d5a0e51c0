"""Where an analysis spends its time: wall and CPU seconds per stage.

CPU seconds (``time.process_time``: all threads of the process) say what a stage costs even on
a machine shared with other work, where wall time also counts the waits for a core.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

STAGES = ("decode", "motion", "detect", "embed", "track")


@dataclass(slots=True)
class StageClock:
    """Accumulates wall and CPU seconds per stage; a stage opened inside another is not counted twice."""

    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    _inner: list[list[float]] = field(default_factory=list)  # per open stage: [wall, cpu] of stages within

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the time spent in the ``with`` block, less that of stages opened in it, towards ``name``."""
        wall, cpu = time.perf_counter(), time.process_time()
        self._inner.append([0.0, 0.0])
        try:
            yield
        finally:
            spent_wall, spent_cpu = time.perf_counter() - wall, time.process_time() - cpu
            inner_wall, inner_cpu = self._inner.pop()
            self.wall[name] = self.wall.get(name, 0.0) + spent_wall - inner_wall
            self.cpu[name] = self.cpu.get(name, 0.0) + spent_cpu - inner_cpu
            if self._inner:
                self._inner[-1][0] += spent_wall
                self._inner[-1][1] += spent_cpu

    def timed(self, items: Iterable[T], name: str) -> Iterator[T]:
        """Yield ``items``, counting the time spent producing each towards stage ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item
