"""Laying out sightings on a per-camera timeline for the search page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    label: str


@dataclass(frozen=True)
class Timeline:
    """Rows of bars, one row per camera, sharing one time axis."""

    start: datetime
    end: datetime
    rows: list[tuple[str, list[TimelineBar]]]
    ticks: list[Tick]


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
    return Timeline(first, last, sorted(rows.items()), _ticks(first, last, span))


def _ticks(first: datetime, last: datetime, span: float) -> list[Tick]:
    """Label up to ``TICKS`` evenly spaced times (UTC), each label once; with the date past one day."""
    fmt = "%H:%M:%S" if first.date() == last.date() else "%m-%d %H:%M"
    ticks: list[Tick] = []
    for i in range(TICKS):
        label = (first + timedelta(seconds=span * i / (TICKS - 1))).astimezone(UTC).strftime(fmt)
        if not ticks or ticks[-1].label != label:
            ticks.append(Tick(100.0 * i / (TICKS - 1), label))
    return ticks
