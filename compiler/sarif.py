"""`yarch lint --format sarif`: diagnostics as SARIF 2.1.0, the format GitHub code scanning
uploads (`github/codeql-action/upload-sarif`) and editors' SARIF viewers read.

One run, yarch as its tool, every registered code as a rule (its summary as the description,
its severity as the default level); each diagnostic a result with the rule's id and index, its
message (notes and help appended, as the text format prints them), its place as a physical
location (columns counted in code points, as yarch counts them) and its related places
(`65 channels come from here`) as related locations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from . import __version__
from .codes import CODES
from .diagnostics import Diagnostic, Span

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_RULES = sorted(CODES)
_INDEX = {code: i for i, code in enumerate(_RULES)}


def _region(span: Span) -> dict[str, int]:
    return {
        "startLine": span.line,
        "startColumn": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _location(span: Span, message: str | None = None, ident: int | None = None) -> dict:
    location: dict = {
        "physicalLocation": {
            "artifactLocation": {"uri": span.file.replace("\\", "/")},
            "region": _region(span),
        }
    }
    if ident is not None:
        location["id"] = ident
    if message:
        location["message"] = {"text": message}
    return location


def _text(d: Diagnostic) -> str:
    lines = [d.message, *(f"note: {note}" for note in d.notes)]
    if d.help:
        lines.append(f"help: {d.help}")
    return "\n".join(lines)


def _result(d: Diagnostic) -> dict:
    result: dict = {
        "ruleId": d.code,
        "ruleIndex": _INDEX[d.code],
        "level": d.severity.value,
        "message": {"text": _text(d)},
    }
    if d.span is not None:
        result["locations"] = [_location(d.span)]
    if d.related:
        result["relatedLocations"] = [
            _location(span, label, i) for i, (span, label) in enumerate(d.related)
        ]
    return result


def render_sarif(diagnostics: Sequence[Diagnostic]) -> str:
    """The SARIF 2.1.0 log of one lint run; the same diagnostics give the same bytes."""
    rules = [
        {
            "id": code,
            "name": "".join(part.title() for part in code.split("-")),
            "shortDescription": {"text": CODES[code].summary},
            "defaultConfiguration": {"level": CODES[code].severity},
        }
        for code in _RULES
    ]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "yarch", "version": __version__, "rules": rules}},
                "columnKind": "unicodeCodePoints",
                "results": [_result(d) for d in diagnostics],
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=True, ensure_ascii=False)
