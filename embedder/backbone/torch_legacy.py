"""Reading PyTorch's legacy (pre-1.6, non-zip) ``torch.save`` files without torch.

The legacy format is five pickles in a row, then raw storage bytes::

    magic number | protocol version | sys info | state dict | storage keys
    then, for each key in that list's order: int64 element count, element bytes

The state dict's tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, backward_hooks)`` calls whose ``storage`` is a persistent id
``("storage", torch.FloatStorage, key, location, numel, view_metadata)``. The unpickler
here resolves only those globals, to inert placeholders, and refuses every other one.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class LegacyFormatError(ValueError):
    """A file that is not a legacy ``torch.save`` state dict this reader accepts."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for a ``torch.*Storage`` class."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """Stands in for a storage whose bytes follow the pickles."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """Stands in for a tensor until its storage has been read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: _StorageRef, offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], requires_grad: bool,
                       backward_hooks: collections.OrderedDict, *extra: Any) -> _TensorRef:
    """Record a tensor's view of its storage, as ``torch._utils._rebuild_tensor_v2`` would build it."""
    if not isinstance(storage, _StorageRef):
        raise LegacyFormatError(f"a tensor refers to {type(storage).__name__}, not a storage")
    if backward_hooks or extra:
        raise LegacyFormatError("tensors with backward hooks or extra metadata are not supported")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a legacy state dict needs."""

    def find_class(self, module: str, name: str) -> Any:
        """Return the stand-in for an allowed global.

        Raises:
            LegacyFormatError: any other global.
        """
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        raise LegacyFormatError(f"refusing to load global {module}.{name}: not part of a state dict")

    def persistent_load(self, pid: Any) -> _StorageRef:
        """Turn a ``("storage", type, key, location, numel, view)`` id into a storage reference.

        Raises:
            LegacyFormatError: any other persistent id, or a storage view.
        """
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise LegacyFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise LegacyFormatError(f"storage {key!r} has type {storage_type!r}, not a torch storage")
        if view_metadata is not None:
            raise LegacyFormatError(f"storage {key!r} is a view of another; views are not supported")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


class _HeaderUnpickler(pickle.Unpickler):
    """Unpickler for the header records, which hold only numbers, strings and dicts."""

    def find_class(self, module: str, name: str) -> Any:
        """Refuse every global.

        Raises:
            LegacyFormatError: always.
        """
        raise LegacyFormatError(f"refusing to load global {module}.{name} in the file header")


def read_legacy_state_dict(path: Path) -> dict[str, NDArray]:
    """Read a legacy-format ``torch.save(state_dict)`` file into numpy arrays.

    Args:
        path: the ``.pth`` file.

    Returns:
        Parameter name to a C-contiguous array with the tensor's shape and dtype, in file order.

    Raises:
        LegacyFormatError: not a little-endian legacy file, a forbidden global or persistent id,
            a storage missing or of the wrong size, or bytes left over at the end.
    """
    with open(path, "rb") as stream:
        if _HeaderUnpickler(stream).load() != MAGIC_NUMBER:
            raise LegacyFormatError(f"{path} is not a legacy torch.save file (wrong magic number)")
        version = _HeaderUnpickler(stream).load()
        if version != PROTOCOL_VERSION:
            raise LegacyFormatError(f"{path} has protocol version {version}, expected {PROTOCOL_VERSION}")
        sys_info = _HeaderUnpickler(stream).load()
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian") is True):
            raise LegacyFormatError(f"{path} was not saved on a little-endian machine")
        state = _RestrictedUnpickler(stream).load()
        keys = _HeaderUnpickler(stream).load()
        if not isinstance(state, dict):
            raise LegacyFormatError(f"{path} holds a {type(state).__name__}, not a state dict")
        if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
            raise LegacyFormatError(f"{path} has no list of storage keys after the state dict")

        refs: dict[str, _StorageRef] = {}
        for ref in state.values():
            if isinstance(ref, _TensorRef) and refs.setdefault(ref.storage.key, ref.storage) != ref.storage:
                raise LegacyFormatError(f"{path}: storage {ref.storage.key} is described two ways")
        if set(refs) != set(keys):
            raise LegacyFormatError(
                f"{path}: the tensors use storages {sorted(set(refs) - set(keys))} that are not stored,"
                f" or storages {sorted(set(keys) - set(refs))} are stored but unused")
        storages = {key: _read_storage(stream, refs[key], path) for key in keys}
        if stream.read(1):
            raise LegacyFormatError(f"{path} has bytes left after the last storage")

    arrays: dict[str, NDArray] = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise LegacyFormatError(f"{path}: entry {name!r} is a {type(ref).__name__}, not a tensor")
        arrays[name] = _materialize(storages[ref.storage.key], ref, name)
    return arrays


def _read_storage(stream: io.BufferedIOBase, ref: _StorageRef, path: Path) -> NDArray:
    """Read one storage: an int64 element count, then that many elements.

    Raises:
        LegacyFormatError: the count differs from the pickled one, or the file ends early.
    """
    header = stream.read(8)
    count = int.from_bytes(header, "little", signed=True) if len(header) == 8 else -1
    if count != ref.numel:
        raise LegacyFormatError(
            f"{path}: storage {ref.key} should hold {ref.numel} elements, its header says {count}")
    data = stream.read(count * ref.dtype.itemsize)
    if len(data) != count * ref.dtype.itemsize:
        raise LegacyFormatError(f"{path} ends inside storage {ref.key}")
    return np.frombuffer(data, dtype=ref.dtype)


def _materialize(storage: NDArray, ref: _TensorRef, name: str) -> NDArray:
    """Copy a tensor's strided view of ``storage`` into its own C-contiguous array.

    Raises:
        LegacyFormatError: the view reaches outside the storage.
    """
    if len(ref.size) != len(ref.stride) or ref.offset < 0 or min(ref.stride, default=0) < 0:
        raise LegacyFormatError(f"tensor {name!r} has a malformed size {ref.size} / stride {ref.stride}")
    if 0 not in ref.size:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
        if last >= storage.size:
            raise LegacyFormatError(f"tensor {name!r} reaches past the end of its storage")
    itemsize = storage.dtype.itemsize
    view = np.ndarray(ref.size, dtype=storage.dtype, buffer=storage, offset=ref.offset * itemsize,
                      strides=tuple(s * itemsize for s in ref.stride))
    return view.copy()
