"""The OpenVINO CPU precision both model families compile with."""

from __future__ import annotations

from typing import Any

PRECISIONS = ("auto", "f32", "bf16")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of ``PRECISIONS``.

    Raises:
        ValueError: it is not; the message lists them.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_precision(core: Any, precision: str) -> str:
    """Return the ``INFERENCE_PRECISION_HINT`` for ``precision``: ``auto`` is bf16 where the CPU computes it natively.

    bf16 keeps float32's range with an 8-bit mantissa: on AVX-512 BF16 CPUs it takes about 40% less
    CPU time than f32 for the shipped networks (``benchmarks/embed_speed.py``).
    """
    if precision != "auto":
        return precision
    return "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
