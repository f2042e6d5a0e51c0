"""FootageSettings: validation and a fingerprint that follows every field."""

from __future__ import annotations

import dataclasses

import pytest

from footage.settings import FootageSettings


def test_fingerprint_is_stable_and_follows_each_field() -> None:
    base = FootageSettings()
    assert base.fingerprint() == FootageSettings().fingerprint()
    assert len(base.fingerprint()) == 16 and int(base.fingerprint(), 16) >= 0
    changed = {dataclasses.replace(base, analysis_fps=3.0).fingerprint(),
               dataclasses.replace(base, min_height=60).fingerprint(),
               dataclasses.replace(base, track_min_similarity=0.8).fingerprint()}
    assert base.fingerprint() not in changed and len(changed) == 3


@pytest.mark.parametrize(("field", "value", "message"), [
    ("analysis_fps", 0.0, "analysis_fps must be positive"),
    ("min_score", 1.5, r"min_score must be in \[0, 1\]"),
    ("track_min_score", 0.5, "track_min_score .* must not exceed min_score"),
    ("edge_margin", -1, "edge_margin must be >= 0"),
    ("best_crops", 9, "best_crops .* must not exceed max_members"),
    ("jpeg_quality", 0, "jpeg_quality"),
])
def test_out_of_range_settings_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FootageSettings(**{field: value})
