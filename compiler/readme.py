"""The README's generated sections: the table of diagnostic codes (`codes.py`) and the table of
ops (`ops/catalog.py`), each between its two marker comments.

`python -m compiler.readme README.md` (run by `make generate`) rewrites them; the tests fail
when either is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from . import codes
from .ops import catalog

# (begin marker, end marker, what goes between them)
SECTIONS: tuple[tuple[str, str, Callable[[], str]], ...] = (
    (codes.BEGIN, codes.END, codes.render),
    (catalog.BEGIN, catalog.END, catalog.render),
)


def rewrite(text: str) -> str:
    """`text` (the README) with every generated section rendered anew."""
    for begin, end, render in SECTIONS:
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"the markers `{begin}` and `{end}` are missing")
        # a blank line before the end marker: a table ends only at a blank line or a block
        text = f"{text[: start + len(begin)]}\n{render()}\n\n{text[stop:]}"
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m compiler.readme README.md", file=sys.stderr)
        return 2
    path = Path(args[0])
    text = path.read_text(encoding="utf-8")
    new = rewrite(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"rewrote the generated tables in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
