"""Laying out sightings on a per-camera timeline for the search page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gallery.sightings import SightingHit

TICKS = 5  # labelled times on the axis, the first and last included


@dataclass(frozen=True)
class TimelineBar:
    """One sighting placed on its camera's row, in percent of the timeline's width."""

    hit: SightingHit
    left: float
    width: float


@dataclass(frozen=True)
class Tick:
    """A labelled time on the axis, in percent of the timeline's width."""

    left: float
    at: datetime


@dataclass(frozen=True)
class Timeline:
    """Rows of bars, one row per camera, sharing one time axis."""

    start: datetime
    end: datetime
    rows: list[tuple[str, list[TimelineBar]]]
    ticks: list[Tick]

    @property
    def tick_format(self) -> str:
        """Return the ticks' time format: with the date when the axis spans more than one day."""
        return "%H:%M:%S" if self.start.date() == self.end.date() else "%m-%d %H:%M"


def layout(hits: list[SightingHit], min_width: float = 0.8) -> Timeline | None:
    """Place ``hits`` on one time axis, one row per camera (sorted by name); None if no hits."""
    if not hits:
        return None
    first = min(h.start for h in hits)
    last = max(h.end for h in hits)
    span = max((last - first).total_seconds(), 1.0)
    rows: dict[str, list[TimelineBar]] = {}
    for hit in sorted(hits, key=lambda h: h.start):
        left = 100.0 * (hit.start - first).total_seconds() / span
        width = max(100.0 * (hit.end - hit.start).total_seconds() / span, min_width)
        rows.setdefault(hit.camera, []).append(TimelineBar(hit, min(left, 100.0 - min_width), width))
    ticks = [Tick(100.0 * i / (TICKS - 1), first + timedelta(seconds=span * i / (TICKS - 1))) for i in range(TICKS)]
    return Timeline(first, last, sorted(rows.items()), ticks)
