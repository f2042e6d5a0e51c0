"""Training checkpoints: model weights, optimizer state and loop state in one atomic ``.npz``.

A checkpoint stores everything as saved, so resuming from it is exact. Checkpoints live in a
local folder (``--checkpoint-dir``), never in the repository.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.npz"
HISTORY_FILE = "history.jsonl"


@dataclass
class LoopState:
    """Where training stands: the next (epoch, step) to run, and the best validation so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    state: LoopState) -> Path:
    """Write ``model``'s weights, ``optimizer``'s variables and ``state`` to ``path`` atomically."""
    arrays: dict[str, NDArray] = {
        "state": np.frombuffer(json.dumps(asdict(state)).encode(), dtype=np.uint8)}
    for i, variable in enumerate(model.weights):
        arrays[f"model/{i:04d}"] = np.asarray(variable.numpy())
    for i, variable in enumerate(optimizer.variables):
        arrays[f"optimizer/{i:04d}"] = np.asarray(variable.numpy())
    write = np.savez
    # numpy's stubs fear that a name in **arrays is allow_pickle; ours are state, model/..., optimizer/...
    _atomic_write(Path(path), lambda file: write(file, **arrays))  # type: ignore[arg-type]
    log.info("saved checkpoint %s (epoch %d, step %d)", path, state.epoch, state.step)
    return Path(path)


def read_state(path: Path) -> LoopState:
    """Return the loop state stored in the checkpoint at ``path``."""
    with np.load(path) as archive:
        return LoopState(**json.loads(archive["state"].tobytes()))


def load_model_weights(path: Path, model: keras.Model) -> None:
    """Set ``model``'s weights from the checkpoint at ``path``, leaving its optimizer state aside.

    Raises:
        ValueError: the checkpoint's tensors do not match the model.
    """
    with np.load(path) as archive:
        stored = sorted(key for key in archive.files if key.startswith("model/"))
        if len(stored) != len(model.weights):
            raise ValueError(f"{path} holds {len(stored)} model tensors; expected {len(model.weights)}")
        values = [archive[key] for key in stored]
    _assign(path, model.weights, values)


def _assign(path: Path, variables: list[keras.Variable], values: list[NDArray]) -> None:
    """Assign ``values`` to ``variables`` in order, refusing a shape mismatch."""
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{path}: {variable.path} has shape {tuple(variable.shape)}, "
                             f"the checkpoint {value.shape}")
        variable.assign(value)


def load_checkpoint(path: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> LoopState:
    """Restore ``model`` and the built ``optimizer`` from ``path`` and return the loop state.

    Raises:
        ValueError: the checkpoint's tensors do not match the model or the optimizer.
    """
    with np.load(path) as archive:
        stored_model = sum(1 for key in archive.files if key.startswith("model/"))
        stored_optimizer = sum(1 for key in archive.files if key.startswith("optimizer"))
        if stored_model != len(model.weights) or stored_optimizer != len(optimizer.variables):
            raise ValueError(f"{path} holds {stored_model} model and {stored_optimizer} optimizer "
                             f"tensors; expected {len(model.weights)} and {len(optimizer.variables)}")
        state = LoopState(**json.loads(archive["state"].tobytes()))
        model_values = [archive[f"model/{i:04d}"] for i in range(len(model.weights))]
        optimizer_values = [archive[f"optimizer/{i:04d}"] for i in range(len(optimizer.variables))]
    _assign(path, model.weights, model_values)
    _assign(path, optimizer.variables, optimizer_values)
    log.info("resumed from %s at epoch %d, step %d", path, state.epoch, state.step)
    return state


def append_history(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(json.dumps(record, sort_keys=True) + "\n")
