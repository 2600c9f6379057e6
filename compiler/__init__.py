"""yarch: a declarative architecture-spec compiler for convolutional networks.

The lint path (`lint_file`, `lint_text`) is pure Python and never imports torch;
`compiler.build(spec, **params)` compiles a spec into a torch module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diagnostics import Diagnostic, Severity, Span
    from .passes import optimize
    from .pipeline import Result, lint_file, lint_text
    from .torchbuild import SpecError, build

__all__ = [
    "Diagnostic",
    "Result",
    "Severity",
    "Span",
    "SpecError",
    "build",
    "lint_file",
    "lint_text",
    "optimize",
]
__version__ = "0.1.0"

# Where each public name lives. Nothing is imported with the package: the `yarch` command
# installs its signal handlers before the imports (a few tenths of a second, in which Ctrl-C
# would otherwise print a traceback), and `compiler.build` imports torch, which linting must not.
_HOME = {
    "Diagnostic": "diagnostics",
    "Severity": "diagnostics",
    "Span": "diagnostics",
    "Result": "pipeline",
    "lint_file": "pipeline",
    "lint_text": "pipeline",
    "build": "torchbuild",
    "SpecError": "torchbuild",
    "optimize": "passes",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'compiler' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
