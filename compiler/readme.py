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

ZOO_BEGIN = "<!-- zoo: generated from specs/zoo/ by `make generate`; do not edit -->"
ZOO_END = "<!-- end of zoo -->"


def _yaml_lines(path: Path) -> int:
    """Lines of YAML in a spec file: not blank, not only a comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def render_zoo(folder: Path) -> str:
    """The table of the zoo: each spec's model, parameters, MACs, and its lines of YAML (its
    own, and with the specs it extends)."""
    from .pipeline import lint_file
    from .summary import summarize

    rows = [
        "| model | spec | parameters | MACs | lines of YAML (with its bases) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path in sorted(folder.glob("*.yaml")):
        result = lint_file(path)
        if result.graph is None or result.errors:
            raise ValueError(f"{path} does not lint clean")
        summary = summarize(result.graph)
        chain = [Path(f) for f in result.doc.chain] if result.doc is not None else [path]
        own, total = _yaml_lines(path), sum(_yaml_lines(Path(f)) for f in chain)
        rows.append(
            f"| {path.stem} | [`{path.name}`](specs/zoo/{path.name}) | "
            f"{summary.total_params:,} | {summary.total_macs:,} | {own} ({total}) |"
        )
    return "\n".join(rows)


def sections(root: Path) -> tuple[tuple[str, str, Callable[[], str]], ...]:
    """(begin marker, end marker, what goes between them), for the README in `root`."""
    return (
        (codes.BEGIN, codes.END, codes.render),
        (catalog.BEGIN, catalog.END, catalog.render),
        (ZOO_BEGIN, ZOO_END, lambda: render_zoo(root / "specs" / "zoo")),
    )


def rewrite(text: str, root: Path | None = None) -> str:
    """`text` (the README of the project in `root`, by default this checkout) with every
    generated section rendered anew."""
    root = root or Path(__file__).resolve().parent.parent
    for begin, end, render in sections(root):
        start, stop = _markers(text, begin, end)
        # a blank line before the end marker: a table ends only at a blank line or a block
        text = f"{text[:start]}\n{render()}\n\n{text[stop:]}"
    return text


def current(text: str, begin: str, end: str) -> str:
    """What the README `text` holds between two markers, as `rewrite` writes it there."""
    start, stop = _markers(text, begin, end)
    return text[start:stop].removeprefix("\n").removesuffix("\n\n")


def _markers(text: str, begin: str, end: str) -> tuple[int, int]:
    """Where a section's text starts (after `begin`) and ends (at `end`)."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the markers `{begin}` and `{end}` are missing")
    return start + len(begin), stop


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m compiler.readme README.md", file=sys.stderr)
        return 2
    path = Path(args[0])
    text = path.read_text(encoding="utf-8")
    new = rewrite(text, path.resolve().parent)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"rewrote the generated tables in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
