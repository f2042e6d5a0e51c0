"""Tests for the torch-free reader of legacy ``torch.save`` files."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from embedder.backbone.mobilenet_v2 import imagenet_weights_path
from embedder.backbone.torch_legacy import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    LegacyFormatError,
    read_legacy_state_dict,
)

# Pickle protocol 2 opcodes, to write the state dict the way torch.save does without torch.
PROTO2, MARK, TUPLE, EMPTY_TUPLE, REDUCE = b"\x80\x02", b"(", b"t", b")", b"R"
BINPERSID, NEWFALSE, NONE, SETITEMS, STOP = b"Q", b"\x89", b"N", b"u", b"."


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def _tensor(storage_type: str, key: str, numel: int, offset: int,
            size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """Pickle ``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""
    storage = _tuple(_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"),
                     _int(numel), NONE) + BINPERSID
    hooks = _global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    args = _tuple(storage, _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)),
                  NEWFALSE, hooks)
    return _global("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def _state_dict(entries: list[tuple[str, bytes]]) -> bytes:
    """Pickle an OrderedDict of already pickled values."""
    items = b"".join(_str(name) + value for name, value in entries)
    ordered_dict = _global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    return PROTO2 + ordered_dict + MARK + items + SETITEMS + STOP


def _legacy_file(state: bytes, storages: list[tuple[str, np.ndarray]], *,
                 magic: int = MAGIC_NUMBER) -> bytes:
    """Assemble a whole legacy file: header pickles, state dict, key list, storage bytes."""
    header = b"".join(pickle.dumps(value, protocol=2) for value in (
        magic, PROTOCOL_VERSION,
        {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 8}}))
    keys = pickle.dumps([key for key, _ in storages], protocol=2)
    data = b"".join(struct.pack("<q", array.size) + array.tobytes() for _, array in storages)
    return header + state + keys + data


FLOATS = np.arange(6, dtype="<f4") / 2
LONGS = np.array([42], dtype="<i8")
TINY_STATE = _state_dict([
    ("w", _tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1))),
    ("w_t", _tensor("FloatStorage", "0", 6, 0, (3, 2), (1, 3))),
    ("b", _tensor("FloatStorage", "0", 6, 4, (2,), (1,))),
    ("n", _tensor("LongStorage", "1", 1, 0, (), ())),
])


def test_reads_the_shipped_torchvision_file() -> None:
    state = read_legacy_state_dict(imagenet_weights_path())
    assert len(state) == 314
    assert next(iter(state)) == "features.0.0.weight"
    expected = {
        "features.0.0.weight": ((32, 3, 3, 3), np.float32),
        "features.1.conv.0.0.weight": ((32, 1, 3, 3), np.float32),
        "features.2.conv.0.1.running_var": ((96,), np.float32),
        "features.18.0.weight": ((1280, 320, 1, 1), np.float32),
        "features.18.1.num_batches_tracked": ((), np.int64),
        "classifier.1.weight": ((1000, 1280), np.float32),
        "classifier.1.bias": ((1000,), np.float32),
    }
    for name, (shape, dtype) in expected.items():
        assert state[name].shape == shape and state[name].dtype == dtype, name
    # First values as torch.load gives them (the reader was checked bit for bit against torch 2.13).
    np.testing.assert_array_equal(state["features.0.0.weight"].ravel()[:3],
                                  np.array([0.01318534, -0.0043212944, 0.014823136], dtype=np.float32))
    assert int(state["features.0.1.num_batches_tracked"]) == 1431430
    assert all(array.flags.c_contiguous and array.flags.writeable for array in state.values())


def test_reads_a_hand_written_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    path.write_bytes(_legacy_file(TINY_STATE, [("0", FLOATS), ("1", LONGS)]))
    state = read_legacy_state_dict(path)
    assert list(state) == ["w", "w_t", "b", "n"]
    np.testing.assert_array_equal(state["w"], [[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]])
    np.testing.assert_array_equal(state["w_t"], state["w"].T)
    np.testing.assert_array_equal(state["b"], [2.0, 2.5])
    assert state["w"].dtype == np.float32 and state["n"].dtype == np.int64
    assert state["n"].shape == () and int(state["n"]) == 42
    state["w"][0, 0] = 7.0  # tensors that shared a storage are independent copies
    assert state["w_t"][0, 0] == 0.0


@pytest.mark.parametrize("where", ["state dict", "header"])
def test_refuses_a_forbidden_global(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"
    attack = PROTO2 + _global("os", "system") + _tuple(_str(f"touch {marker}")) + REDUCE + STOP
    data = _legacy_file(attack, []) if where == "state dict" else attack + b"rest"
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(LegacyFormatError, match=r"refusing to load global os\.system"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_refuses_a_file_with_the_wrong_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    path.write_bytes(_legacy_file(TINY_STATE, [("0", FLOATS), ("1", LONGS)], magic=1234))
    with pytest.raises(LegacyFormatError, match="magic number"):
        read_legacy_state_dict(path)


def test_refuses_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    path.write_bytes(_legacy_file(TINY_STATE, [("0", FLOATS), ("1", LONGS)])[:-4])
    with pytest.raises(LegacyFormatError, match="ends inside storage 1"):
        read_legacy_state_dict(path)


def test_refuses_a_storage_whose_count_disagrees(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(_legacy_file(TINY_STATE, [("0", FLOATS[:5]), ("1", LONGS)]))
    with pytest.raises(LegacyFormatError, match="should hold 6 elements"):
        read_legacy_state_dict(path)
