"""Stage 4b: lint rules over the resolved, shape-annotated graph."""

from .rules import RULES, run_rules

__all__ = ["RULES", "run_rules"]
