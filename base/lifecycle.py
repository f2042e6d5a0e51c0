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

    def limit_threads(self, threads: int) -> None:  # noqa: B027 (a hook most models leave empty)
        """Compute with at most ``threads`` CPU threads, if the model's runtime is told so at load.

        Call it before ``load``; models whose runtime reads its thread count elsewhere (TensorFlow:
        the environment) ignore it.
        """

    @abc.abstractmethod
    def _load(self) -> None:
        """Load the model into memory."""
