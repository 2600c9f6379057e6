"""`no_cyclic_gc`: the stages allocate many small objects and free them by reference counting;
Python's cyclic collector would only walk them again and again, and its passes grow with the
heap, which makes a long network's cost grow faster than its length. Every stage runs without
it, and switches it back on afterwards."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (usable as a decorator). Measured: a 100,000-node
    spec lints in 11 s with it, 6.5 s without; its generated code takes 3.9 s with it, 2.3 s
    without, and its optimised code 8.7 s and 2.5 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
