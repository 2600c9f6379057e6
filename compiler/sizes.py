"""Sizes in bytes: of tensors, of parameters and buffers, and as a person reads them.

Summaries and lint rules both count bytes; this leaf module holds the counting so that neither
imports the other.
"""

from __future__ import annotations

import math

from .syntax import Shape

# bytes per element of the dtypes yarch's layers hold (ops name them in `Op.buffers`)
DTYPE_BYTES = {"float32": 4, "int64": 8}
PARAM_BYTES = DTYPE_BYTES["float32"]  # parameters and activations are float32


def tensor_bytes(shape: Shape | None) -> int:
    """The bytes of a float32 tensor of this shape (one sample: no batch); 0 if unknown."""
    return 0 if shape is None else math.prod(shape) * PARAM_BYTES


def fmt_bytes(n: int) -> str:
    """`512 B`, `37.0 KiB`, `51.0 MiB`, `1.2 GiB`: binary units, one decimal."""
    if n < 1024:
        return f"{n} B"
    if n.bit_length() > 1000:  # beyond a float; sizes are bounded, so a hostile spec at most
        return f"about 2^{n.bit_length() - 1} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if round(value, 1) < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 1e6 else f"{value:.3g} {unit}"
