"""yarch: a declarative architecture-spec compiler for convolutional networks.

The lint path (`lint_file`, `lint_text`) is pure Python and never imports torch;
`compiler.build(spec, **params)` compiles a spec into a torch module.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .diagnostics import Diagnostic, Severity, Span
    from .passes import optimize
    from .pipeline import Result, SpecError, lint_file, lint_text
    from .torchbuild import build

__all__ = [
    "Diagnostic",
    "MissingTorchError",
    "Result",
    "Severity",
    "Span",
    "SpecError",
    "build",
    "data_path",
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
    "SpecError": "pipeline",
    "lint_file": "pipeline",
    "lint_text": "pipeline",
    "build": "torchbuild",
    "optimize": "passes",
}
# What `data_path` serves: the top-level folders of the repository a wheel carries copies of
BUNDLED = ("specs", "schema")
# The names that need PyTorch (the `torch` extra); everything else works without it
NEEDS_TORCH = ("build", "optimize")


class MissingTorchError(ModuleNotFoundError):
    """`compiler.build` or `compiler.optimize` was used where PyTorch is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"compiler.{what} needs PyTorch: pip install 'yarch[torch]'", name="torch")


def data_path(name: str) -> Path:
    """The folder of bundled data: `data_path("specs")` (the spec library) or
    `data_path("schema")` (`spec.schema.json`)."""
    if name not in BUNDLED:
        raise ValueError(f"bundled data is {' or '.join(BUNDLED)}, not {name!r}")
    # A wheel carries copies (setup.py puts them there); a checkout, and so an editable
    # install, reads the originals at the top of the repository, which stay the source of truth
    packaged = Path(__file__).parent / "data" / name
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / name


def _torch_missing() -> bool:
    try:
        import torch  # noqa: F401  (build and optimize import it anyway)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":  # torch is there but broken: its own error says why
            raise
        return True
    return False


def _stand_in(what: str) -> Callable[..., NoReturn]:
    # a function, not an error on attribute access: `from compiler import *` and
    # `from compiler import build` keep working; only the call fails, and says what to install
    def needs_torch(*args: object, **kwargs: object) -> NoReturn:
        raise MissingTorchError(what)

    needs_torch.__name__ = needs_torch.__qualname__ = what
    needs_torch.__doc__ = f"`compiler.{what}`, which needs PyTorch: pip install 'yarch[torch]'"
    return needs_torch


class _Package(types.ModuleType):
    """The package's module type: its public names are imported when first used (see
    `_HOME`). A class rather than a module-level `__getattr__` so that `help(compiler)` lists
    `build` and `optimize`, not `__getattr__` and `__dir__`."""

    def __getattr__(self, name: str) -> object:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module 'compiler' has no attribute {name!r}")
        if name in NEEDS_TORCH and _torch_missing():
            return _stand_in(name)
        value = getattr(importlib.import_module(f".{home}", __name__), name)
        setattr(self, name, value)  # once: later lookups do not come here
        return value

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *__all__})


sys.modules[__name__].__class__ = _Package
