"""One `Diagnostic` type for every stage, and its four renderings.

Every stage (loader, schema, resolver, shape inference, lint rules) reports problems as
`Diagnostic` values; nothing raises to the user. The renderers follow ruff and rustc: a header
`error[code]: message`, the source line with a caret under the smallest span that shows the
problem, the lines of its related spans (where a count it received was made) underlined with
`-` and labelled, then `= note:` lines and a `help:` line.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from . import codes


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True, slots=True)  # one per value of a spec: keep it small
class Span:
    """A region of a source file; lines and columns are 1-based, the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


# What a terminal would act on rather than show: C0 and C1 control characters but the newline
# and the tab (an escape sequence can retitle the window or clear the screen), the bidirectional
# overrides that make text read differently from its bytes, and lone surrogates.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Values from a spec are echoed in messages: none may flood the terminal (a 16 MB string).
MAX_TEXT = 1_000
# Source lines longer than this are shown as a window around the caret.
MAX_LINE = 160


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape (`\\x1b`)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: ascii(m.group(0))[1:-1], text)


def cap(text: str, limit: int = MAX_TEXT) -> str:
    """`text` in at most about `limit` characters: its start and its end (where a message
    says what it is about a value: `cannot read `777...777` as !!int`), with a note of how
    much was left out between them."""
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 4
    return f"{text[:head]}... ({len(text) - head - tail:,} more characters) ...{text[-tail:]}"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    severity: Severity = Severity.ERROR
    label: str | None = None
    notes: tuple[str, ...] = ()
    help: str | None = None
    node: str | None = None  # the graph node or block instance it is about, when known
    # secondary places, each with its label: where the channels a layer receives were made
    # (`65 channels come from here` under the `out: 65` of the layer before)
    related: tuple[tuple[Span, str], ...] = ()
    # a warning that a project's configuration makes an error (`config.Config.apply`)
    raised: bool = False

    def __post_init__(self) -> None:
        # only registered codes, at their registered severity (a bug otherwise: `lint_safely`
        # reports it as `internal-error`); a raised warning is registered as a warning
        registered = Severity.WARNING if self.raised else self.severity
        codes.check(self.code, registered)
        if self.raised and self.severity is not Severity.ERROR:
            raise codes.UnregisteredCode(f"`{self.code}` is raised, so it must be an error")
        # bounded here, once, so that every rendering (and the JSON) is bounded too
        if len(self.message) > MAX_TEXT:
            object.__setattr__(self, "message", cap(self.message))
        if self.help is not None and len(self.help) > MAX_TEXT:
            object.__setattr__(self, "help", cap(self.help))
        if any(len(n) > MAX_TEXT for n in self.notes):
            object.__setattr__(self, "notes", tuple(cap(n) for n in self.notes))
        if self.label is not None and len(self.label) > MAX_TEXT:
            object.__setattr__(self, "label", cap(self.label))

    def __str__(self) -> str:
        """One line, as `yarch lint --format concise` prints it:
        `net.yaml:4:37: error[undefined-reference] no layer named `stemm``."""
        return render_concise([self])

    def render(self, source: str | None = None) -> str:
        """The diagnostic as `yarch lint` prints it, with the source line and the caret when
        `source` (the text of the file it points into) is given."""
        sources = SourceCache()
        if source is not None and self.span is not None:
            sources.add(self.span.file, source)
        return render_text([self], sources)

    def with_note(self, note: str) -> Diagnostic:
        return replace(self, notes=(*self.notes, note))

    def raised_to_error(self, note: str) -> Diagnostic:
        """This warning as an error, as a project's configuration asks, with `note` saying so."""
        return replace(self, severity=Severity.ERROR, raised=True, notes=(*self.notes, note))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: str, message: str, span: Span | None = None, **kw: object) -> Diagnostic:
    return Diagnostic(code, message, span, Severity.ERROR, **kw)  # type: ignore[arg-type]


def warning(code: str, message: str, span: Span | None = None, **kw: object) -> Diagnostic:
    return Diagnostic(code, message, span, Severity.WARNING, **kw)  # type: ignore[arg-type]


@dataclass
class SourceCache:
    """Text of the files diagnostics point into, for rendering source lines."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, file: str, text: str) -> None:
        self.texts[file] = text.splitlines()

    @classmethod
    def of(cls, *sources: dict[str, str]) -> SourceCache:
        """A cache of the files in each `{file: text}` mapping (a result's `sources`)."""
        cache = cls()
        for mapping in sources:
            for file, text in mapping.items():
                cache.add(file, text)
        return cache

    def line(self, file: str, line: int) -> str | None:
        lines = self.texts.get(file)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


def sort_key(d: Diagnostic) -> tuple:
    if d.span is None:
        return ("", 0, 0, d.code, d.message)
    return (d.span.file, d.span.line, d.span.column, d.code, d.message)


def _subject(message: str) -> str:
    """The first `name` a message mentions."""
    match = re.search(r"`[^`]+`", message)
    return match.group(0) if match else message


def merge_duplicates(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Fold diagnostics with the same code at the same place into one.

    A mistake inside a block body, or a block argument used by several convs, is reported once
    per instance by the stages; the user needs to see it once, with the other places named.
    """
    first: dict[tuple, Diagnostic] = {}
    also: dict[tuple, list[str]] = {}
    # the related places of each, as a set and in order: instances of a block at 100,000 call
    # sites may each add one, and a scan of the tuple per instance would be quadratic
    related: dict[tuple, tuple[set, list]] = {}
    for d in diagnostics:
        key = (d.code, d.span) if d.span is not None else (d.code, d.message)
        if key in first:
            if d.message != first[key].message:
                also[key].append(d.message)
            if d.related:
                seen, order = related.setdefault(key, (set(first[key].related), []))
                extra = [r for r in d.related if r not in seen]
                seen.update(extra)
                order += extra  # another instance received its count from elsewhere
            continue
        first[key] = d
        also[key] = []
    out = []
    for key, d in first.items():
        extra = related.get(key, (None, []))[1]
        if extra:
            d = replace(d, related=(*d.related, *extra))
        others = [_subject(m) for m in also[key]]
        if others:
            shown = ", ".join(others[:4])
            more = f" and {len(others) - 4} more" if len(others) > 4 else ""
            d = d.with_note(f"the same place also affects {shown}{more}")
        out.append(d)
    return out


# --- renderers -------------------------------------------------------------------------------


def _location(span: Span | None) -> str:
    if span is None:
        return "<unknown>"
    return f"{span.file}:{span.line}:{span.column}"


def _window(src: str, column: int) -> tuple[str, int]:
    """A long source line as shown: at most `MAX_LINE` characters around `column` (1-based),
    with `...` where it was cut, and the number of columns the shown text is shifted left."""
    if len(src) <= MAX_LINE:
        return src, 0
    start = max(0, min(column - 1 - MAX_LINE // 3, len(src) - MAX_LINE))
    shown = src[start : start + MAX_LINE]
    if start:
        shown = "..." + shown
    if start + MAX_LINE < len(src):
        shown += "..."
    return shown, start - (3 if start else 0)


def _display(text: str) -> str:
    """A source line as shown: a tab as four spaces, as rustc shows it (a terminal would put
    it at its own tab stop, and the caret under it would drift)."""
    return text.replace("\t", "    ")


def _columns(text: str) -> int:
    """The terminal columns `text` takes as shown: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in _display(text))


def _marker(
    span: Span, src: str, mark: str, label: str | None, shift: int = 0, shown: str | None = None
) -> str:
    """The line under `src` with `mark` under the span (to the end of its code when it goes on
    over more lines) and the label after it; `src` is shown shifted `shift` columns left, as
    `shown`, whose tabs and wide characters place the mark by display width."""
    start = span.column - 1
    if span.end_line == span.line:
        width = max(1, span.end_column - span.column)
    else:  # to the end of the first line, not over its comment
        code = src.split(" #", 1)[0].rstrip()
        width = max(1, len(code) - start)
    if shift:
        end = min(start + width, shift + MAX_LINE + 3)
        start = max(start - shift, 3 if shift > 0 else 0)
        width = max(1, end - shift - start)
    line = src if shown is None else shown
    pad = _columns(line[:start]) + max(0, start - len(line))
    width = max(1, _columns(line[start : start + width]) or width)
    text = " " * pad + mark * width
    return f"{text} {label}" if label else text


def _snippet(d: Diagnostic, sources: SourceCache) -> tuple[str, list[str], list[str]] | None:
    """The gutter, the source lines with their markers, and the related places that could not
    be shown (as notes); None when the primary line is not available."""
    assert d.span is not None
    src = sources.line(d.span.file, d.span.line)
    if src is None:
        return None
    # rustc's layout: the lines of one file in order, `...` where lines are skipped; related
    # places in other files (a variant's base) follow under `::: file:line:column`
    here = [(d.span, "^", d.label)]
    elsewhere: list[tuple[Span, str]] = []
    missing = []
    for span, label in d.related:
        if sources.line(span.file, span.line) is None:
            missing.append(f"{label} ({_location(span)})")
        elif span.file == d.span.file:
            here.append((span, "-", label))
        else:
            elsewhere.append((span, label))
    here.sort(key=lambda item: (item[0].line, item[0].column))
    width = max(len(str(s.line)) for s, *_ in [*here, *elsewhere])
    gutter = " " * width
    body = [f"{gutter} |"]
    previous = None
    shift = 0
    for span, mark, label in here:
        line = sources.line(span.file, span.line) or ""
        if previous is not None and span.line > previous + 1:
            body.append("...")
        if span.line != previous:
            shown, shift = _window(line, span.column)
            body.append(f"{span.line:>{width}} | {_display(shown)}")
        body.append(f"{gutter} | {_marker(span, line, mark, label, shift, shown)}")
        previous = span.line
    for span, label in elsewhere:
        line = sources.line(span.file, span.line) or ""
        shown, shift = _window(line, span.column)
        body += [
            f"{gutter} |",
            f"{gutter}::: {_location(span)}",
            f"{gutter} |",
            f"{span.line:>{width}} | {_display(shown)}",
            f"{gutter} | {_marker(span, line, '-', label, shift, shown)}",
        ]
    return gutter, body, missing


# ANSI styles of `render_text(color=True)`, as rustc and ruff colour their diagnostics
_STYLE = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[1;33m",
    "frame": "\x1b[1;34m",
    "help": "\x1b[1;36m",
    "bold": "\x1b[1m",
}
_RESET = "\x1b[0m"
_HEADER = re.compile(r"^(error|warning)(\[[a-z0-9-]+\])(:.*)$", re.MULTILINE)
_FRAME = re.compile(r"^( *(?:\d+ )?(?:\||-->|:::|= note:)|\.\.\.$)", re.MULTILINE)
_MARKS = re.compile(r"^( *\| )([ ]*)([\^-]+)(.*)$", re.MULTILINE)
_HELP = re.compile(r"^help:", re.MULTILINE)


def colorize(text: str) -> str:
    """`render_text`'s output with ANSI colours: the severity and code, the frame (gutter,
    arrows, notes), the carets and `help:`. Applied to text already made terminal-safe, so
    the only escape sequences in the result are these."""

    def header(m: re.Match[str]) -> str:
        return f"{_STYLE[m[1]]}{m[1]}{m[2]}{_RESET}{_STYLE['bold']}{m[3]}{_RESET}"

    text = _HEADER.sub(header, text)
    text = _MARKS.sub(lambda m: f"{m[1]}{m[2]}{_STYLE['error']}{m[3]}{m[4]}{_RESET}", text)
    text = _FRAME.sub(lambda m: f"{_STYLE['frame']}{m[1]}{_RESET}", text)
    return _HELP.sub(f"{_STYLE['help']}help{_RESET}:", text)


def render_text(
    diagnostics: Sequence[Diagnostic], sources: SourceCache, max_shown: int | None = None
) -> str:
    """rustc/ruff style, with the source line and a caret under the span."""
    parts: list[str] = []
    shown = diagnostics if max_shown is None else diagnostics[:max_shown]
    for d in shown:
        lines = [f"{d.severity.value}[{d.code}]: {d.message}"]
        related = [f"{label} ({_location(span)})" for span, label in d.related]
        if d.span is not None:
            snippet = _snippet(d, sources)
            gutter = snippet[0] if snippet else " " * len(str(d.span.line))
            lines.append(f"{gutter}--> {_location(d.span)}")
            notes = [*related, *d.notes]
            if snippet is not None:
                _, body, missing = snippet
                lines += body
                notes = [*missing, *d.notes]
                if notes:
                    lines.append(f"{gutter} |")
            for note in notes:
                lines.append(f"{gutter} = note: {note}")
        else:
            for note in [*related, *d.notes]:
                lines.append(f"  = note: {note}")
        if d.help:
            lines.append(f"help: {d.help}")
        parts.append("\n".join(lines))
    if max_shown is not None and len(diagnostics) > max_shown:
        parts.append(f"... and {len(diagnostics) - max_shown} more")
    return terminal_safe("\n\n".join(parts))


def render_concise(diagnostics: Sequence[Diagnostic]) -> str:
    return terminal_safe(
        "\n".join(
            f"{_location(d.span)}: {d.severity.value}[{d.code}] {d.message}" for d in diagnostics
        )
    )


def as_dict(d: Diagnostic) -> dict:
    s = d.span
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "file": s.file if s else None,
        "line": s.line if s else None,
        "column": s.column if s else None,
        "end_line": s.end_line if s else None,
        "end_column": s.end_column if s else None,
        "notes": list(d.notes),
        "help": d.help,
        "related": [
            {
                "file": r.file,
                "line": r.line,
                "column": r.column,
                "end_line": r.end_line,
                "end_column": r.end_column,
                "label": label,
            }
            for r, label in d.related
        ],
    }


def render_json(
    diagnostics: Sequence[Diagnostic], files: int, skipped: dict[str, str] | None = None
) -> str:
    """The documented object; `skipped` (files found in a folder that are not specs, with the
    reason) adds a `skipped` list when there are any."""
    errors = sum(d.is_error for d in diagnostics)
    payload: dict[str, object] = {
        "files": files,
        "errors": errors,
        "warnings": len(diagnostics) - errors,
        "diagnostics": [as_dict(d) for d in diagnostics],
    }
    if skipped:
        payload["skipped"] = [{"file": f, "reason": r} for f, r in skipped.items()]
    return json.dumps(payload, indent=2, sort_keys=True)


def _github_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands (`::error file=...,line=...::message`)."""
    out = []
    for d in diagnostics:
        props = [f"title={_github_escape(d.code, prop=True)}"]
        if d.span is not None:
            s = d.span
            props = [
                f"file={_github_escape(s.file, prop=True)}",
                f"line={s.line}",
                f"col={s.column}",
                f"endLine={s.end_line}",
                f"endColumn={s.end_column}",
                *props,
            ]
        body = d.message
        for span, label in d.related:
            body += f"\nnote: {label} ({_location(span)})"
        for note in d.notes:
            body += f"\nnote: {note}"
        if d.help:
            body += f"\nhelp: {d.help}"
        out.append(f"::{d.severity.value} {','.join(props)}::{_github_escape(body)}")
    return terminal_safe("\n".join(out))
