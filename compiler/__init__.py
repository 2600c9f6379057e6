"""yarch: a declarative architecture-spec compiler for convolutional networks.

The lint path (`lint_file`, `lint_text`) is pure Python and never imports torch;
`compiler.build(spec, **params)` compiles a spec into a torch module.
"""

from .diagnostics import Diagnostic, Severity, Span
from .pipeline import Result, lint_file, lint_text

__all__ = [
    "Diagnostic",
    "Result",
    "Severity",
    "Span",
    "build",
    "lint_file",
    "lint_text",
    "optimize",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `compiler.build` imports torch; importing `compiler` for linting must not
    if name in ("build", "SpecError"):
        from . import torchbuild

        return getattr(torchbuild, name)
    if name == "optimize":
        from .passes import optimize

        return optimize
    raise AttributeError(f"module 'compiler' has no attribute {name!r}")
