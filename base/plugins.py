"""Plug-ins named as ``module:attribute``, for the embedder and detector registries."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

_FACTORY_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def factory_at(spec: str) -> Callable[..., Any] | None:
    """Return the callable a ``module:attribute`` spec names (a plug-in's factory), else None."""
    if not _FACTORY_PATH.fullmatch(spec):
        return None
    module, attribute = spec.split(":")
    return getattr(importlib.import_module(module), attribute)
