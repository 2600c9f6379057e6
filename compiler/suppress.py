"""Inline suppression: `# yarch: ignore[code]` at the end of a line, as ruff's `# noqa: CODE`.

A comment `# yarch: ignore[stride-remainder]` (several codes separated by commas) drops the
warnings of those codes whose span starts on its line. It is for a warning that is true and
meant, such as torchvision's SqueezeNet, whose first conv drops a row and a column of a
224x224 input. Errors are never dropped: a spec with an error cannot be built, whatever a
comment says. A code that is not a warning yarch reports, an error's code, or a comment that
names none, is reported as `invalid-suppression`, so a misspelt code does not silently keep
a warning; so is a code not reported on its line in the spec linted (ruff's unused `noqa`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .codes import CODES, WARNING
from .diagnostics import Diagnostic, Severity, Span, warning
from .names import did_you_mean

_COMMENT = re.compile(r"(?:^|\s)#\s*yarch:\s*ignore\b(\[([^\]\n]*)\])?")


def _ignores(
    sources: Mapping[str, str],
) -> tuple[dict[tuple[str, int], set[str]], list[Diagnostic]]:
    """The codes ignored on each (file, line), and what is wrong with the comments."""
    ignored: dict[tuple[str, int], set[str]] = {}
    problems: list[Diagnostic] = []
    warnings = sorted(c for c, info in CODES.items() if info.severity == WARNING)
    for file, text in sources.items():
        if "yarch:" not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = _COMMENT.search(line)
            if match is None:
                continue
            if match.group(2) is None or not match.group(2).strip():
                start = match.start() + (1 if line[match.start()].isspace() else 0)
                problems.append(
                    warning(
                        "invalid-suppression",
                        "`# yarch: ignore` names no code, so it ignores nothing",
                        Span(file, number, start + 1, number, match.end() + 1),
                        help="name the warnings it is for: `# yarch: ignore[stride-remainder]`",
                    )
                )
                continue
            offset = match.start(2)
            for part in match.group(2).split(","):
                code = part.strip()
                column = offset + len(part) - len(part.lstrip()) + 1
                offset += len(part) + 1
                if not code:
                    continue
                span = Span(file, number, column, number, column + len(code))
                info = CODES.get(code)
                if info is not None and info.severity == WARNING:
                    ignored.setdefault((file, number), set()).add(code)
                    continue
                if info is not None:
                    message = f"`{code}` is an error, and errors cannot be ignored"
                    help = "fix the error: a spec with an error is not built"
                else:
                    message = f"`{code}` is not a warning yarch reports"
                    help = did_you_mean(code, warnings) or "see the README's table of codes"
                problems.append(warning("invalid-suppression", message, span, help=help))
    return ignored, problems


def suppress(
    diags: list[Diagnostic], sources: Mapping[str, str], own: str | None = None
) -> list[Diagnostic]:
    """`diags` without the warnings that a comment on their line ignores, and with what is
    wrong with the comments. A comment in file `own` (the spec linted, not a base it extends,
    whose comments may be for the base's own warnings) that ignores a code not reported on
    its line is reported too, as ruff reports an unused `# noqa`."""
    ignored, problems = _ignores(sources)
    if not ignored and not problems:
        return diags
    used: dict[tuple[str, int], set[str]] = {}
    kept = []
    for d in diags:
        if d.severity == Severity.WARNING and d.span is not None:
            key = (d.span.file, d.span.line)
            if d.code in ignored.get(key, ()):
                used.setdefault(key, set()).add(d.code)
                continue
        kept.append(d)
    for (file, line), codes in sorted(ignored.items()):
        if file != own:
            continue
        text = sources[file].splitlines()[line - 1]
        for code in sorted(codes - used.get((file, line), set())):
            column = text.find(code, text.find("yarch:")) + 1
            problems.append(
                warning(
                    "invalid-suppression",
                    f"`{code}` is not reported on this line, so ignoring it does nothing",
                    Span(file, line, column, line, column + len(code)),
                    help="remove it from the comment (or the whole comment)",
                )
            )
    return kept + problems
