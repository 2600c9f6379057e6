"""Stage 1b: `extends:` — a variant is its base spec with named changes applied.

Merging happens on the loaded data, before validation, and keeps every value's span: a value
the variant wrote points into the variant's file, a value it inherited into the base's. Layers
are addressed by name, never by position, so inserting a layer in the base does not break a
variant's changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Span, error
from .files import project_root
from .loader import Document, LoadError, PathKey, load_file
from .ops import OPS
from .ops.base import did_you_mean

MERGED_MAPPINGS = ("params", "scales", "blocks", "outputs")
REPLACED = ("name", "source", "description", "input")
VARIANT_KEYS = ("extends", "modify", "replace", "delete", "insert", "append")
MAX_CHAIN = 32


def _sub(table: dict[PathKey, Span], prefix: PathKey) -> dict[PathKey, Span]:
    n = len(prefix)
    return {loc[n:]: s for loc, s in table.items() if loc[:n] == prefix}


def _put(table: dict[PathKey, Span], prefix: PathKey, sub: dict[PathKey, Span]) -> None:
    for loc, s in sub.items():
        table[(*prefix, *loc)] = s


def _drop(table: dict[PathKey, Span], prefix: PathKey) -> None:
    n = len(prefix)
    for loc in [loc for loc in table if loc[:n] == prefix]:
        del table[loc]


@dataclass
class Entry:
    """A layer being merged, with the spans of everything inside it."""

    item: Any
    spans: dict[PathKey, Span]
    keys: dict[PathKey, Span]

    @property
    def name(self) -> str | None:
        if isinstance(self.item, dict) and len(self.item) == 1:
            (fields,) = self.item.values()
            if isinstance(fields, dict) and isinstance(fields.get("name"), str):
                return fields["name"]
        return None


class Merge:
    def __init__(self, base: Document, variant: Document) -> None:
        self.base = base
        self.var = variant
        self.data: dict[Hashable, Any] = {}
        self.spans: dict[PathKey, Span] = {}
        self.keys: dict[PathKey, Span] = {}
        self.diags: list[Diagnostic] = []
        self.lists: dict[PathKey, list[Entry]] = {}  # ("layers",) and ("blocks", B, "layers")

    def take(self, doc: Document, path: PathKey, value: Any) -> None:
        """Set `path` to `value` with the spans `doc` has for it (replacing older ones)."""
        parent: Any = self.data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
        _drop(self.spans, path)
        _drop(self.keys, path)
        _put(self.spans, path, _sub(doc.spans, path))
        _put(self.keys, path, _sub(doc.key_spans, path))
        if path in doc.key_spans:
            self.keys[path] = doc.key_spans[path]

    def run(self) -> Document:
        base, var = self.base.data, self.var.data
        for key, value in base.items():
            self.take(self.base, (key,), _copy(value))
        for key in REPLACED:
            if key in var:
                self.take(self.var, (key,), _copy(var[key]))
        for key in MERGED_MAPPINGS:
            changes = var.get(key)
            if not isinstance(changes, dict):
                continue
            if not isinstance(self.data.get(key), dict):
                self.take(self.var, (key,), {})
            for name, value in changes.items():
                if value is None:
                    self.data[key].pop(name, None)
                    _drop(self.spans, (key, name))
                    _drop(self.keys, (key, name))
                else:
                    self.take(self.var, (key, name), _copy(value))
        if isinstance(var.get("layers"), list):
            self.take(self.var, ("layers",), _copy(var["layers"]))
        self.lists[("layers",)] = self.entries(self.data.get("layers"), ("layers",))
        blocks = self.data.get("blocks")
        for block, spec in (blocks if isinstance(blocks, dict) else {}).items():
            if isinstance(spec, dict) and isinstance(spec.get("layers"), list):
                prefix = ("blocks", block, "layers")
                self.lists[prefix] = self.entries(spec["layers"], prefix)
        self.apply()
        for prefix, entries in self.lists.items():
            _drop(self.spans, prefix)
            _drop(self.keys, prefix)
            items = []
            for i, entry in enumerate(entries):
                items.append(entry.item)
                _put(self.spans, (*prefix, i), entry.spans)
                _put(self.keys, (*prefix, i), entry.keys)
            parent: Any = self.data
            for part in prefix[:-1]:
                parent = parent[part]
            parent[prefix[-1]] = items
        for key in VARIANT_KEYS:
            self.data.pop(key, None)
            _drop(self.spans, (key,))
            _drop(self.keys, (key,))
        sources = {**self.base.sources, self.var.file: self.var.text}
        return Document(
            self.var.file,
            self.var.text,
            self.data,
            self.spans,
            self.keys,
            sources=sources,
            chain=(self.var.file, *self.base.chain),
        )

    def entries(self, items: Any, prefix: PathKey) -> list[Entry]:
        if not isinstance(items, list):
            return []
        return [
            Entry(
                item,
                _sub(self.spans, (*prefix, i)),
                _sub(self.keys, (*prefix, i)),
            )
            for i, item in enumerate(items)
        ]

    def new_entry(self, item: Any, path: PathKey) -> Entry:
        return Entry(_copy(item), _sub(self.var.spans, path), _sub(self.var.key_spans, path))

    # --- addressing layers by name -----------------------------------------------------------

    def find(self, target: Any, verb: str, path: PathKey) -> tuple[list[Entry], int] | None:
        where = self.var.span(path)
        if not isinstance(target, str) or not target:
            self.diags.append(error("invalid-value", f"`{verb}` names layers by name", where))
            return None
        block, _, name = target.rpartition(".")
        prefix = ("blocks", block, "layers") if block else ("layers",)
        entries = self.lists.get(prefix)
        if entries is None:
            blocks = [p[1] for p in self.lists if len(p) == 3]
            self.diags.append(
                error(
                    "override-target",
                    f"`{verb}` names `{target}`, but the base has no block `{block}`",
                    where,
                    help=did_you_mean(block, blocks),
                )
            )
            return None
        for i, entry in enumerate(entries):
            if entry.name == name:
                return entries, i
        names = [e.name for e in entries if e.name]
        scope = f"block `{block}`" if block else "the layers"
        self.diags.append(
            error(
                "override-target",
                f"`{verb}` names `{target}`, but no layer of {scope} of `{self.base.file}` "
                f"is named `{name}`",
                where,
                help=did_you_mean(name, names) or "only layers with a `name:` can be changed",
            )
        )
        return None

    def apply(self) -> None:
        var = self.var.data
        for i, target in enumerate(var.get("delete") or []):
            found = self.find(target, "delete", ("delete", i))
            if found:
                entries, j = found
                del entries[j]
        for target, item in (var.get("replace") or {}).items():
            found = self.find(target, "replace", ("replace", target))
            if found:
                entries, j = found
                entry = self.new_entry(item, ("replace", target))
                entries[j] = _named(entry, target.rpartition(".")[2])
        for target, changes in (var.get("modify") or {}).items():
            found = self.find(target, "modify", ("modify", target))
            if found and isinstance(changes, dict):
                entries, j = found
                self.modify(entries[j], changes, ("modify", target))
        for i, insert in enumerate(var.get("insert") or []):
            if not isinstance(insert, dict):
                continue
            anchor = insert.get("after", insert.get("before"))
            side = "after" if "after" in insert else "before"
            found = self.find(anchor, f"insert {side}", ("insert", i, side))
            if found:
                entries, j = found
                new = [
                    self.new_entry(item, ("insert", i, "layers", k))
                    for k, item in enumerate(insert.get("layers") or [])
                ]
                at = j + 1 if side == "after" else j
                entries[at:at] = new
        for k, item in enumerate(var.get("append") or []):
            self.lists[("layers",)].append(self.new_entry(item, ("append", k)))

    def modify(self, entry: Entry, changes: dict, path: PathKey) -> None:
        (op,) = entry.item
        fields = entry.item[op]
        for field, value in changes.items():
            _drop(entry.spans, (op, field))
            _drop(entry.keys, (op, field))
            if value is None:  # `~` removes the field: `expect: ~`
                fields.pop(field, None)
                continue
            fields[field] = _copy(value)
            _put(entry.spans, (op, field), _sub(self.var.spans, (*path, field)))
            key = self.var.key_spans.get((*path, field))
            if key is not None:
                entry.keys[(op, field)] = key


def _named(entry: Entry, name: str) -> Entry:
    """A replacement keeps the name of the layer it replaces, so references still hold."""
    item = entry.item
    if isinstance(item, str):
        entry.item = {item: {"name": name}}
    elif isinstance(item, dict) and len(item) == 1:
        ((op, value),) = item.items()
        if value is None:
            entry.item = {op: {"name": name}}
        elif isinstance(value, dict):
            value.setdefault("name", name)
        elif op in OPS and OPS[op].primary:
            primary = OPS[op].primary
            entry.item = {op: {primary: value, "name": name}}
            entry.spans = {
                ((op, primary, *loc[1:]) if loc[:1] == (op,) else loc): s
                for loc, s in entry.spans.items()
            }
    return entry


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _display(variant_display: str, ref: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(variant_display), ref)).replace(
        os.sep, "/"
    )


Check = Callable[[Document], list[Diagnostic]]


def load_spec(
    path: Path,
    display: str,
    check: Check,
    chain: tuple[Path, ...] = (),
    root: Path | None = None,
) -> tuple[Document | None, list[Diagnostic]]:
    """Load a spec and, through `extends:`, its bases, merged into one Document.

    `check` validates each variant as written (so a misspelt `modfy:` is reported in its own
    file) before it is merged. Raises `LoadError` for the file itself; problems with its base
    are diagnostics. Bases must lie inside `root` (by default `project_root` of the spec).
    """
    doc = load_file(path, display)
    data = doc.data
    if not isinstance(data, dict) or "extends" not in data:
        return doc, []
    problems = check(doc)
    if problems:
        return None, problems
    ref = data["extends"]
    span = doc.span(("extends",))
    if not isinstance(ref, str) or not ref.strip():
        return None, [error("invalid-value", "`extends` names the base spec's file", span)]
    if os.path.isabs(ref) or ref.startswith("~"):
        return None, [
            error(
                "missing-base",
                f"`extends` names `{ref}`, an absolute path",
                span,
                help="write the base's path relative to the folder of this spec",
            )
        ]
    if "\0" in ref or any(len(part.encode()) > 255 for part in Path(ref).parts):
        return None, [
            error(
                "missing-base",
                "`extends` names a path that no file can have"
                + (" (it holds a NUL character)" if "\0" in ref else " (a name over 255 bytes)"),
                span,
                help="the path is relative to the folder of the spec that extends it",
            )
        ]
    root = root or project_root(path)
    base_path = path.parent / ref
    try:
        here, target = path.resolve(strict=True), base_path.resolve()
    except RuntimeError:  # a symlink loop
        return None, [
            error(
                "extends-cycle",
                f"`extends` names `{ref}`, which runs through a symbolic link cycle",
                span,
            )
        ]
    except OSError as exc:
        return None, [
            error("missing-base", f"`extends` names `{ref}`: {exc.strerror or exc}", span)
        ]
    seen = (*chain, here)
    if target in seen or len(seen) > MAX_CHAIN:
        files = " -> ".join(f"`{p.name}`" for p in (*seen, target))
        return None, [error("extends-cycle", f"specs extend each other in a cycle: {files}", span)]
    base_display = _display(display, ref)
    if target != root and root not in target.parents:
        return None, [
            error(
                "missing-base",
                f"`extends` names `{ref}`, which is outside the project folder "
                f"`{root.name or root}`",
                span,
                help="a spec may extend only specs in its own project: its git repository, "
                "else the nearest folder with a `pyproject.toml`, else its own folder "
                "(symbolic links are followed before this check)",
            )
        ]
    if not _is_file(base_path):
        return None, [
            error(
                "missing-base",
                f"`extends` names `{base_display}`, which is not a file",
                span,
                help="the path is relative to the folder of the spec that extends it",
            )
        ]
    try:
        base, diags = load_spec(base_path, base_display, check, seen, root)
    except LoadError as exc:
        return None, [exc.diagnostic.with_note(f"`{display}` extends `{base_display}`")]
    if base is None:
        return None, diags
    merge = Merge(base, doc)
    merged = merge.run()
    return merged, diags + merge.diags


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # too long, not permitted
        return False


def chain_note(doc: Document, d: Diagnostic) -> Diagnostic:
    """Say through which files a diagnostic in a base spec was inherited."""
    if d.span is None or len(doc.chain) < 2 or d.span.file == doc.file:
        return d
    if d.span.file not in doc.chain:
        return d
    files = doc.chain[: doc.chain.index(d.span.file) + 1]
    return d.with_note("inherited: " + " extends ".join(f"`{f}`" for f in files))
