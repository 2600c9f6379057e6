"""Sizes in bytes: of tensors, of parameters and buffers, and as a person reads them.

Summaries and lint rules both count bytes; this leaf module holds the counting so that neither
imports the other.
"""

from __future__ import annotations

import math

from .syntax import Shape

# bytes per element of the dtypes yarch's layers hold (ops name them in `Op.buffers`), and of
# the floating-point dtypes a model may be cast to (`module.to(dtype)`, `yarch summary --dtype`)
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int64": 8}
FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
PARAM_BYTES = DTYPE_BYTES["float32"]  # parameters and activations are float32 unless cast


def tensor_bytes(shape: Shape | None, element_bytes: int = PARAM_BYTES) -> int:
    """The bytes of a tensor of this shape (one sample: no batch), float32 unless
    `element_bytes` says otherwise; 0 if unknown."""
    return 0 if shape is None else math.prod(shape) * element_bytes


def cast_bytes(dtype: str, to: str) -> int:
    """Bytes per element of a tensor of `dtype` after `module.to(to)`: floating-point tensors
    take the new dtype, integer ones (batch norm's `num_batches_tracked`) keep theirs."""
    return DTYPE_BYTES[to if dtype in FLOAT_DTYPES else dtype]


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
