"""The search page's timeline: bars per camera on one labelled time axis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gallery.sightings import SightingHit
from web.timeline import layout

START = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)


def hit(sighting_id: int, camera: str, start_s: float, end_s: float) -> SightingHit:
    return SightingHit(sighting_id, camera, "/srv/rec.avi", START + timedelta(seconds=start_s),
                       START + timedelta(seconds=end_s), 0, [0, 0, 10, 20], 0.9, sighting_id)


def test_bars_share_one_axis_with_labelled_ticks() -> None:
    timeline = layout([hit(1, "lobby", 0, 10), hit(2, "gate", 30, 40), hit(3, "lobby", 20, 40)])
    assert timeline is not None and [camera for camera, _ in timeline.rows] == ["gate", "lobby"]
    (gate,), (first, last) = timeline.rows[0][1], timeline.rows[1][1]
    assert (first.left, first.width, gate.left, gate.width) == (0.0, 25.0, 75.0, 25.0) and last.left == 50.0
    assert [(t.left, t.label) for t in timeline.ticks] == [
        (0.0, "21:00:00"), (25.0, "21:00:10"), (50.0, "21:00:20"), (75.0, "21:00:30"), (100.0, "21:00:40")]


def test_ticks_are_labelled_once_and_with_the_date_past_a_day() -> None:
    short = layout([hit(1, "lobby", 0, 2)])
    assert short is not None and [t.label for t in short.ticks] == ["21:00:00", "21:00:01", "21:00:02"]
    long = layout([hit(1, "lobby", 0, 10), hit(2, "lobby", 86_400, 86_410)])
    assert long is not None and long.ticks[0].label == "11-27 21:00" and long.ticks[-1].label == "11-28 21:00"
    assert layout([]) is None
