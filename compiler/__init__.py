"""yarch: a declarative architecture-spec compiler for convolutional networks.

The lint path (`lint_file`, `lint_text`) is pure Python and never imports torch.
"""

from .diagnostics import Diagnostic, Severity, Span
from .pipeline import Result, lint_file, lint_text

__all__ = ["Diagnostic", "Result", "Severity", "Span", "lint_file", "lint_text"]
__version__ = "0.1.0"
