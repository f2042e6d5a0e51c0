"""The service's settings: one typed object, read from ``REID_*`` environment variables at start-up.

This is the only place the service's defaults are set; where a library has a default of its
own (the upload limits, the detector's min score), the field refers to that constant rather
than repeating it. The web layer hands the values on to the gallery and the models as plain
keyword arguments; library code never reads this object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from detector.registry import DEFAULT_DETECTOR
from footage.settings import TILE_EVERY
from gallery.saved_searches import SEARCH_RETENTION
from gallery.service import MAX_TOP_K
from gallery.uploads import MAX_PIXELS, MAX_REQUEST_PIXELS, MIN_HEIGHT, MIN_WIDTH
from gallery.vector_index import ANN_THRESHOLD

ENV_PREFIX = "REID_"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")  # the hosts served in open mode by default
_UNSHOWN = frozenset({"secret_key", "database_url"})  # values kept out of error messages


class SettingsError(ValueError):
    """A setting the service cannot use; the message names its ``REID_*`` variable."""


def default_data_dir() -> Path:
    """Return the data directory used when none is configured."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "reid"


class Settings(BaseSettings):
    """Every setting of the service; field ``top_k`` is read from ``REID_TOP_K``, and so on.

    ``null`` in a variable means None (e.g. ``REID_MAX_IMAGE_PIXELS=null``: no limit).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_parse_none_str="null",
                                      allow_inf_nan=False, frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)  # $XDG_DATA_HOME/reid or ~/.local/share/reid
    database_url: str | None = None  # None: SQLite file reid.db in data_dir
    embedder: str | None = None  # None: the shipped re-ID model (or the ImageNet baseline)
    detector: str = DEFAULT_DETECTOR  # "auto": pedestrian-adas if its files are there, else ssdlite
    detector_model: Path | None = None  # pedestrian-adas IR; None: detector.pedestrian_adas.DEFAULT_ADAS_PATH
    detector_min_score: float | None = Field(None, ge=0.0, le=1.0)  # None: the detector's own min_score
    detector_tiling: Literal["auto", "off"] = "auto"  # auto: tiles when a frame is larger than the input
    detector_tile_size: int | None = Field(None, ge=16)  # tile width in pixels; None: the detector's own
    footage_tile_every: int = Field(TILE_EVERY, ge=1)  # footage: tile every N-th analysed frame, track between
    inference_precision: Literal["auto", "f32", "bf16"] = "auto"  # OpenVINO models; auto: bf16 where the CPU has it
    ray_address: str | None = Field(None, min_length=1)  # footage on a Ray cluster: "auto", HOST:6379; None: local
    match_threshold: float | None = Field(None, ge=-1.0, le=1.0)  # None: the model's own
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    max_files: int = Field(50, ge=1)
    min_image_width: int = Field(MIN_WIDTH, ge=1)
    min_image_height: int = Field(MIN_HEIGHT, ge=1)
    max_image_pixels: int | None = Field(MAX_PIXELS, ge=1)  # None: no limit, any format OpenCV reads
    max_request_pixels: int | None = Field(MAX_REQUEST_PIXELS, ge=1)  # all images of one request together
    max_concurrent_decodes: int = Field(2, ge=1)  # requests' worth of pixels decoded at once per worker
    max_content_length: int = Field(32 * 1024 * 1024, ge=1)
    search_retention_days: float = Field(SEARCH_RETENTION.days, gt=0)  # stored searches are purged after it
    ann_threshold: int = Field(ANN_THRESHOLD, ge=1)  # vectors from which an index searches approximately (IVF)
    allowed_hosts: Annotated[list[str] | None, NoDecode] = None  # None: loopback names in open mode, else any
    client_timeout: int = Field(20, ge=1)  # seconds to send a request's headers; idle connections close after it
    min_upload_rate: int = Field(500, ge=1)  # bytes per second a request's body must average after that
    connection_limit: int = Field(500, ge=10)  # open connections per worker process
    sign_in_limit_per_address: int = Field(10, ge=1)  # failed sign-ins per client address per window
    sign_in_limit_per_user: int = Field(20, ge=1)  # failed sign-ins per user name per window
    sign_in_limit_window: int = Field(900, ge=1)  # seconds
    secret_key: str | None = None  # None: generated once into data_dir
    session_cookie_samesite: Literal["Lax", "Strict", "None"] = "Lax"  # the sign-in cookie's
    session_cookie_secure: bool = False  # true when served over HTTPS (behind a TLS proxy)
    permanent_session_lifetime: int = Field(12 * 3600, ge=1)  # seconds a sign-in lasts

    @field_validator("data_dir", "detector_model")
    @classmethod
    def _expand_user(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    def detector_options(self) -> dict[str, Any]:
        """Return ``build_detector``'s keyword arguments but the name: tiling, the model path, the precision."""
        return {"tiles": self.detector_tiling == "auto", "tile_size": self.detector_tile_size,
                "model_path": self.detector_model, "precision": self.inference_precision}

    def embedder_options(self) -> dict[str, Any]:
        """Return ``build_embedder``'s keyword arguments but the spec: the precision."""
        return {"precision": self.inference_precision}

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """Read ``REID_ALLOWED_HOSTS`` as a comma-separated list (``*``: any host)."""
        if isinstance(value, str):
            value = [host.strip().lower() for host in value.split(",") if host.strip()]
        return value or None

    def trusted_hosts(self, open_mode: bool) -> list[str] | None:
        """Return the Host header values served (None: any): the setting, else in open mode loopback only."""
        hosts = self.allowed_hosts
        if hosts is None:
            return list(LOOPBACK_HOSTS) if open_mode else None
        return None if "*" in hosts else hosts

    def image_limits(self) -> dict[str, Any]:
        """Return the upload checks' keyword arguments: ``min_width``, ``min_height``, ``max_pixels``."""
        return {"min_width": self.min_image_width, "min_height": self.min_image_height,
                "max_pixels": self.max_image_pixels}

    def flask_config(self) -> dict[str, Any]:
        """Return the settings that Flask itself reads, under its names."""
        return {"MAX_CONTENT_LENGTH": self.max_content_length, "SECRET_KEY": self.secret_key,
                "SESSION_COOKIE_SAMESITE": self.session_cookie_samesite,
                "SESSION_COOKIE_SECURE": self.session_cookie_secure,
                "PERMANENT_SESSION_LIFETIME": self.permanent_session_lifetime}


def is_setting(key: str) -> bool:
    """Return whether ``key`` (any case, e.g. ``"TOP_K"``) names a setting."""
    return key.lower() in Settings.model_fields


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the settings from the ``REID_*`` environment variables, ``overrides`` on top.

    Args:
        overrides: values by setting name, any case (``{"DATA_DIR": ...}``).

    Raises:
        SettingsError: an override names no setting, or a value is invalid; the message
            names each bad ``REID_*`` variable and what it should be.
    """
    values = {key.lower(): value for key, value in (overrides or {}).items()}
    unknown = sorted(key for key in values if not is_setting(key))
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")
    try:
        return Settings(**values)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from error


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        got = "" if name in _UNSHOWN else f" (got {item['input']!r})"
        problems.append(f"{ENV_PREFIX}{name.upper()}: {item['msg']}{got}")
    return "invalid settings: " + "; ".join(problems)
