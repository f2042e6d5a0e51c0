"""The lifecycle shared by the project's models: built cheaply, loaded lazily and once."""

from __future__ import annotations

import abc
import threading


class LazyModel(abc.ABC):
    """A model whose weights load on first use; ``load`` is idempotent and thread-safe."""

    def __init__(self) -> None:
        self._loaded = False
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Load the model once; later calls return at once."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abc.abstractmethod
    def _load(self) -> None:
        """Load the model into memory."""
