"""Parameters: the spec's `params:`, the chosen row of `scales:`, `--set` overrides, and the
substitution of `$name` and `${...}` in layer fields, block arguments and the input shape.

A value whose substitution fails is reported once and becomes `FAILED`: whatever reads it
fails silently, so one undefined parameter is one error, not one per use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, Span, error
from .expr import MAX_MAGNITUDE, ExprError, fmt_number, is_reference, substitute
from .loader import Document
from .names import Suggestions, did_you_mean, shown
from .schema import Scale, Spec, fmt_value
from .syntax import Loc

# how many parameters a help line names when there is no close match
KNOWN_SHOWN = 10

FAILED = object()  # a value whose substitution failed (reported once)


class CommandLineValues(dict):
    """Parameter overrides given as `--set name=value` (messages name the option), rather than
    as keyword arguments of `compiler.build` or `lint_file(overrides=...)`."""


_TEMPLATE = re.compile(r"\$\{([^}]*)\}")  # the `${...}` parts of a name template


@dataclass(frozen=True)
class Param:
    value: Any
    span: Span | None


@dataclass
class Env:
    """Parameters visible in a scope: a block's arguments, then the spec's parameters."""

    params: dict[str, Param]
    parent: Env | None = None
    # `names()` by `count()`: every undefined parameter's help needs them, and a spec may have
    # thousands of both (parameters are only ever added, so the count tells a stale list)
    _names: tuple[int, list[str]] = field(default=(-1, []), repr=False, compare=False)

    def get(self, name: str) -> Param | None:
        env: Env | None = self
        while env is not None:
            if name in env.params:
                return env.params[name]
            env = env.parent
        return None

    def names(self) -> list[str]:
        count = self.count()
        if self._names[0] != count:
            out: set[str] = set()
            env: Env | None = self
            while env is not None:
                out.update(env.params)
                env = env.parent
            self._names = (count, sorted(out))
        return self._names[1]

    def count(self) -> int:
        """How many names `names()` has at most (a name shadowed in a block counts twice)."""
        total = 0
        env: Env | None = self
        while env is not None:
            total += len(env.params)
            env = env.parent
        return total

    def root(self) -> Env:
        """The spec's own parameters, which a block's defaults are computed in."""
        env = self
        while env.parent is not None:
            env = env.parent
        return env


def scale_functions(scale: Scale) -> dict[str, Callable[..., Any]]:
    """`w(c)` and `d(n)`, as Ultralytics scales widths and depths."""

    def w(channels: Any) -> int:
        if not isinstance(channels, int | float) or isinstance(channels, bool):
            raise TypeError("w() takes a channel count")
        capped = min(channels, scale.max_channels) if scale.max_channels else channels
        return max(math.ceil(capped * scale.width / scale.divisor) * scale.divisor, 1)

    def d(repeats: Any) -> int:
        if not isinstance(repeats, int) or isinstance(repeats, bool):
            raise TypeError("d() takes a whole number")
        return max(round(repeats * scale.depth), 1) if repeats > 1 else repeats

    return {"w": w, "d": d}


def origins(value: Any, env: Env, loc: Loc) -> dict[Loc, Span]:
    """Locations holding a plain `$name` reference -> where that parameter's value was written."""
    if value is None or type(value) in (int, float, bool):
        return {}
    if isinstance(value, str) and is_reference(value) and value[1:].isidentifier():
        param = env.get(value[1:])
        return {loc: param.span} if param is not None and param.span is not None else {}
    if isinstance(value, list):
        out: dict[Loc, Span] = {}
        for i, v in enumerate(value):
            out.update(origins(v, env, (*loc, i)))
        return out
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(origins(v, env, (*loc, k)))
        return out
    return {}


class Parameters:
    """The spec's parameters as the chosen scale and `--set` leave them, and substitution."""

    def __init__(
        self,
        doc: Document,
        spec: Spec,
        diags: list[Diagnostic],
        suggest: Suggestions,
        overrides: dict[str, Any] | None = None,
        scale: str | None = None,
    ) -> None:
        self.doc = doc
        self.spec = spec
        self.diags = diags
        self.suggest = suggest
        self.overrides = overrides or {}
        self.scale_name = scale
        self.scale: str | None = None  # the row of `scales:` chosen, if any
        self.functions: dict[str, Callable[..., Any]] = scale_functions(Scale())

    def choose_scale(self) -> dict[str, tuple[Any, Span | None]]:
        """The chosen row of `scales` (the first when none is named): its `w` and `d`
        functions, and the parameters it sets."""
        scales = {k: v for k, v in self.spec.scales.items() if v is not None}
        if self.scale_name is not None and self.scale_name not in scales:
            self.diags.append(
                error(
                    "unknown-scale",
                    f"`--scale {self.scale_name}`: the spec has no scale `{self.scale_name}`",
                    self.doc.key_span(("scales",)) if scales else None,
                    help="scales: " + ", ".join(f"`{n}`" for n in scales)
                    if scales
                    else "the spec declares no `scales:`",
                )
            )
            return {}
        if not scales:
            return {}
        name = self.scale_name or next(iter(scales))
        self.scale = name
        row = scales[name]
        self.functions = scale_functions(row)
        sets = {}
        for key, value in (row.model_extra or {}).items():
            span = self.doc.span(("scales", name, key))
            if key not in self.spec.params:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"scale `{name}` sets `{shown(str(key))}`, which is not a parameter",
                        span,
                        help=self.suggest(
                            key, lambda: list(self.spec.params), len(self.spec.params)
                        ),
                    )
                )
                continue
            sets[key] = (value, span)
        return sets

    def top_env(self) -> Env:
        env = Env({})
        scaled = self.choose_scale()
        for name, value in self.spec.params.items():
            span = self.doc.span(("params", name))
            if name in scaled:
                value, span = scaled[name]
            if name in self.overrides:
                value, span = self.overrides[name], None
            value = self.subst(value, env, span, lambda loc, s=span: s)
            env.params[name] = Param(value, span)
        for name in self.overrides:
            if name not in self.spec.params:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"`{'--set ' if isinstance(self.overrides, CommandLineValues) else ''}"
                        f"{name}=...`: the spec has no parameter `{name}`",
                        None,
                        help=did_you_mean(name, list(self.spec.params))
                        or "parameters: " + ", ".join(f"`{n}`" for n in self.spec.params)
                        if self.spec.params
                        else "the spec declares no `params:`",
                    )
                )
        return env

    def subst(
        self,
        value: Any,
        env: Env,
        span: Span | None,
        span_of: Callable[[Loc], Span | None],
        loc: Loc = (),
    ) -> Any:
        """Substitute references in `value`; on failure report and return `FAILED`."""

        def lookup(name: str) -> Any:
            param = env.get(name)
            if param is None:
                raise ExprError(f"`{name}` is not a parameter", name)
            if param.value is FAILED:
                raise ExprError("", "")
            return param.value

        try:
            return substitute(value, lookup, self.functions)
        except ExprError as exc:
            if exc.name == "":
                return FAILED
            where = span_of(loc) or span
            if exc.name:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"`{exc.name}` is not a parameter here",
                        where,
                        help=self.param_help(exc.name, env),
                    )
                )
            else:
                self.diags.append(error("invalid-expression", str(exc), where))
            return FAILED

    def peek(self, value: Any, env: Env) -> Any:
        """`value` substituted, or `FAILED`, reporting nothing (`subst` reports)."""

        def lookup(name: str) -> Any:
            param = env.get(name)
            if param is None or param.value is FAILED:
                raise ExprError("", "")
            return param.value

        try:
            return substitute(value, lookup, self.functions)
        except ExprError:
            return FAILED

    def template(self, text: str, env: Env, span: Span | None) -> Any:
        """`text` with each `${...}` in it replaced by its value (`denselayer${i + 1}`), or
        `FAILED`, reported."""
        parts: list[str] = []
        for k, piece in enumerate(_TEMPLATE.split(text)):
            if k % 2 == 0:
                parts.append(piece)
                continue
            value = self.subst("${" + piece + "}", env, span, lambda loc: None)
            if value is FAILED:
                return FAILED
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.diags.append(
                    error(
                        "invalid-expression",
                        f"`${{{piece}}}` in a name gives {fmt_value(value)}, not a whole number "
                        "or a text",
                        span,
                    )
                )
                return FAILED
            parts.append(str(value))
        return "".join(parts)

    def param_help(self, name: str, env: Env) -> str:
        if name in ("i", "n"):
            return (
                "`i` (the copy's index, from 0) and `n` (the number of copies) are defined "
                "in the fields of a layer with `repeat:`"
            )
        count = env.count()
        if not count:
            return "declare it under `params:`"
        suggestion = self.suggest(name, env.names, count)
        if suggestion:
            return suggestion
        # a spec may declare thousands of parameters: name a few, as `... and N more` does
        names = env.names()
        known = names[:KNOWN_SHOWN]
        more = f" and {len(names) - len(known)} more" if len(names) > len(known) else ""
        return "known parameters: " + ", ".join(f"`{n}`" for n in known) + more

    def input_shape(self, env: Env) -> tuple[int, ...]:
        dims = []
        for i, value in enumerate(self.spec.input):
            span = self.doc.span(("input", i))
            value = self.subst(value, env, span, lambda loc, s=span: s)
            if value is FAILED:
                return ()
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 1 <= value <= MAX_MAGNITUDE
            ):
                got = fmt_number(value) if isinstance(value, int) else repr(value)
                self.diags.append(
                    error(
                        "invalid-value",
                        f"input sizes must be whole numbers from 1 to {MAX_MAGNITUDE:,}, got {got}",
                        span,
                    )
                )
                return ()
            dims.append(value)
        return tuple(dims)
