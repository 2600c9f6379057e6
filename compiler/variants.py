"""Stage 1b: `extends:` — a variant is its base spec with named changes applied.

Merging happens on the loaded data, before validation, and keeps every value's span: a value
the variant wrote points into the variant's file, a value it inherited into the base's. Layers
are addressed by name, never by position, so inserting a layer in the base does not break a
variant's changes.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Span, error
from .files import inside, project_root
from .loader import Document, LoadError, PathKey, load_file, load_text
from .names import Suggestions, did_you_mean
from .ops import OPS

MERGED_MAPPINGS = ("params", "scales", "blocks", "outputs")
REPLACED = ("name", "source", "description", "input")
VARIANT_KEYS = ("extends", "modify", "replace", "delete", "insert", "append")
MAX_CHAIN = 32
# `extends: yarch:googlenet.yaml` names a spec of the bundled library (`compiler.data_path`)
BUNDLED_PREFIX = "yarch:"


class _Tree:
    """A span table (path -> span) as a tree of path parts.

    Merging takes, replaces and drops everything under a path (a layer, a field); on the flat
    table each of those scans the whole table, which made a variant of a 5,000-layer base cost
    seconds. On the tree each costs the length of the path, and the merged table is flattened
    once at the end.
    """

    __slots__ = ("kids", "span")

    def __init__(self, span: Span | None = None) -> None:
        self.span = span
        self.kids: dict[Hashable, _Tree] = {}

    @classmethod
    def of(cls, table: dict[PathKey, Span]) -> _Tree:
        root = cls()
        for loc, span in table.items():
            node = root
            for part in loc:
                kid = node.kids.get(part)
                if kid is None:
                    kid = node.kids[part] = cls()
                node = kid
            node.span = span
        return root

    def get(self, path: PathKey) -> _Tree:
        """The subtree at `path`, or an empty one."""
        node = self
        for part in path:
            kid = node.kids.get(part)
            if kid is None:
                return _Tree()
            node = kid
        return node

    def put(self, path: PathKey, sub: _Tree) -> None:
        """Make `sub` the subtree at `path`, replacing what was there."""
        node = self
        for part in path[:-1]:
            kid = node.kids.get(part)
            if kid is None:
                kid = node.kids[part] = _Tree()
            node = kid
        node.kids[path[-1]] = sub

    def drop(self, path: PathKey) -> None:
        node = self
        for part in path[:-1]:
            kid = node.kids.get(part)
            if kid is None:
                return
            node = kid
        node.kids.pop(path[-1], None)

    def copy(self) -> _Tree:
        out = _Tree(self.span)
        out.kids = {k: v.copy() for k, v in self.kids.items()}
        return out

    def flat(self, prefix: PathKey = ()) -> dict[PathKey, Span]:
        out: dict[PathKey, Span] = {}
        stack: list[tuple[PathKey, _Tree]] = [(prefix, self)]
        while stack:
            path, node = stack.pop()
            if node.span is not None:
                out[path] = node.span
            stack.extend(((*path, k), kid) for k, kid in node.kids.items())
        return out


@dataclass(eq=False)
class Entry:
    """A layer being merged, with the spans of everything inside it."""

    item: Any
    spans: _Tree
    keys: _Tree
    deleted: bool = False
    # layers inserted right before and right after this one, in their order
    before: list[Entry] = field(default_factory=list)
    after: list[Entry] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        if isinstance(self.item, dict) and len(self.item) == 1:
            (fields,) = self.item.values()
            if isinstance(fields, dict) and isinstance(fields.get("name"), str):
                return fields["name"]
        return None


class Layers:
    """A list of layers being merged, found by name through an index instead of a scan per
    change (a variant changing 1,000 layers of a 10,000-layer base made 10**7 comparisons).

    Deleting leaves the entry in place, marked, and inserting hangs the new entries on their
    anchor, so positions never shift and the index stays valid; `items()` lays the list out
    once at the end. The first live layer of a name is the one found, as in a scan.
    """

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.index: dict[str, list[int]] = {}  # name -> positions, ascending
        for i, entry in enumerate(entries):
            if entry.name is not None:
                self.index.setdefault(entry.name, []).append(i)
        self.inserted: dict[str, Entry] = {}
        self.ambiguous = False  # an inserted layer shares its name: fall back to the scan

    def find(self, name: str) -> Entry | None:
        if self.ambiguous:
            return next((e for e in self.items() if e.name == name), None)
        positions = self.index.get(name)
        while positions and self.entries[positions[0]].deleted:
            positions.pop(0)
        if positions:
            return self.entries[positions[0]]
        return self.inserted.get(name)

    def renamed(self, entry: Entry, old: str | None) -> None:
        """Keep the index right after a replacement or a change of `name:`."""
        if entry.name == old:
            return
        i = next(i for i in self.index.get(old or "", []) if self.entries[i] is entry)
        self.index[old or ""].remove(i)
        if entry.name is not None:
            bisect.insort(self.index.setdefault(entry.name, []), i)

    def insert(self, anchor: Entry, new: list[Entry], after: bool) -> None:
        for entry in new:
            if entry.name is None:
                continue
            if entry.name in self.inserted or self.index.get(entry.name):
                self.ambiguous = True
            self.inserted.setdefault(entry.name, entry)
        if after:
            anchor.after[:0] = new
        else:
            anchor.before += new

    def names(self) -> list[str]:
        return [e.name for e in self.items() if e.name]

    def items(self) -> list[Entry]:
        """The live entries in order, inserted ones around their anchors."""
        out: list[Entry] = []
        stack: list[Entry | tuple[Entry]] = list(reversed(self.entries))
        while stack:
            top = stack.pop()
            if isinstance(top, tuple):  # its `before` is laid out: now the entry itself
                out.append(top[0])
                stack.extend(reversed(top[0].after))
            elif not top.deleted:
                stack.append((top,))
                stack.extend(reversed(top.before))
        return out


class Merge:
    def __init__(self, base: Document, variant: Document) -> None:
        self.base = base
        self.var = variant
        self.data: dict[Hashable, Any] = {}
        self.spans = _Tree()
        self.keys = _Tree()
        # the documents' tables as trees, built once: every taking from them costs its path
        self.trees = {
            id(doc): (_Tree.of(doc.spans), _Tree.of(doc.key_spans)) for doc in (base, variant)
        }
        self.diags: list[Diagnostic] = []
        self.suggest = Suggestions()
        self.lists: dict[PathKey, Layers] = {}  # ("layers",) and ("blocks", B, "layers")

    def take(self, doc: Document, path: PathKey, value: Any) -> None:
        """Set `path` to `value` with the spans `doc` has for it (replacing older ones)."""
        parent: Any = self.data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
        spans, keys = self.trees[id(doc)]
        self.spans.put(path, spans.get(path).copy())
        self.keys.put(path, keys.get(path).copy())

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
                if key in var:  # not a mapping: validation reports it where it was written
                    self.take(self.var, (key,), _copy(changes))
                continue
            if not isinstance(self.data.get(key), dict):
                self.take(self.var, (key,), {})
            for name, value in changes.items():
                if value is None:
                    self.data[key].pop(name, None)
                    self.spans.drop((key, name))
                    self.keys.drop((key, name))
                else:
                    self.take(self.var, (key, name), _copy(value))
        if "layers" in var:
            self.take(self.var, ("layers",), _copy(var["layers"]))
        for key, value in var.items():  # keys a spec does not have: validation reports them
            known = key in (*REPLACED, *MERGED_MAPPINGS, *VARIANT_KEYS, "layers")
            if not known:
                self.take(self.var, (key,), _copy(value))
        self.lists[("layers",)] = Layers(self.entries(self.data.get("layers"), ("layers",)))
        blocks = self.data.get("blocks")
        for block, spec in (blocks if isinstance(blocks, dict) else {}).items():
            if isinstance(spec, dict) and isinstance(spec.get("layers"), list):
                prefix = ("blocks", block, "layers")
                self.lists[prefix] = Layers(self.entries(spec["layers"], prefix))
        self.apply()
        for prefix, layers in self.lists.items():
            # the list's own span goes with its old contents, as it always has
            self.spans.drop(prefix)
            self.keys.drop(prefix)
            items = []
            for i, entry in enumerate(layers.items()):
                items.append(entry.item)
                self.spans.put((*prefix, i), entry.spans)
                self.keys.put((*prefix, i), entry.keys)
            parent: Any = self.data
            for part in prefix[:-1]:
                parent = parent[part]
            parent[prefix[-1]] = items
        for key in VARIANT_KEYS:
            self.data.pop(key, None)
            self.spans.drop((key,))
            self.keys.drop((key,))
        sources = {**self.base.sources, self.var.file: self.var.text}
        return Document(
            self.var.file,
            self.var.text,
            self.data,
            self.spans.flat(),
            self.keys.flat(),
            sources=sources,
            chain=(self.var.file, *self.base.chain),
        )

    def entries(self, items: Any, prefix: PathKey) -> list[Entry]:
        if not isinstance(items, list):
            return []
        spans, keys = self.spans.get(prefix), self.keys.get(prefix)
        return [Entry(item, spans.get((i,)), keys.get((i,))) for i, item in enumerate(items)]

    def new_entry(self, item: Any, path: PathKey) -> Entry:
        spans, keys = self.trees[id(self.var)]
        return Entry(_copy(item), spans.get(path).copy(), keys.get(path).copy())

    # --- addressing layers by name -----------------------------------------------------------

    def find(self, target: Any, verb: str, path: PathKey) -> tuple[Layers, Entry] | None:
        where = self.var.span(path)
        if not isinstance(target, str) or not target:
            self.diags.append(error("invalid-value", f"`{verb}` names layers by name", where))
            return None
        block, _, name = target.rpartition(".")
        prefix = ("blocks", block, "layers") if block else ("layers",)
        layers = self.lists.get(prefix)
        if layers is None:
            blocks = [str(p[1]) for p in self.lists if len(p) == 3]
            self.diags.append(
                error(
                    "override-target",
                    f"`{verb}` names `{target}`, but the base has no block `{block}`",
                    where,
                    help=did_you_mean(block, blocks),
                )
            )
            return None
        entry = layers.find(name)
        if entry is not None:
            return layers, entry
        scope = f"block `{block}`" if block else "the layers"
        self.diags.append(
            error(
                "override-target",
                f"`{verb}` names `{target}`, but no layer of {scope} of `{self.base.file}` "
                f"is named `{name}`",
                where,
                help=self.suggest(name, layers.names, len(layers.entries))
                or "only layers with a `name:` can be changed",
            )
        )
        return None

    def apply(self) -> None:
        var = self.var.data
        for i, target in enumerate(var.get("delete") or []):
            found = self.find(target, "delete", ("delete", i))
            if found:
                found[1].deleted = True
        for target, item in (var.get("replace") or {}).items():
            found = self.find(target, "replace", ("replace", target))
            if found:
                layers, entry = found
                old = entry.name
                new = _named(self.new_entry(item, ("replace", target)), target.rpartition(".")[2])
                entry.item, entry.spans, entry.keys = new.item, new.spans, new.keys
                layers.renamed(entry, old)
        for target, changes in (var.get("modify") or {}).items():
            found = self.find(target, "modify", ("modify", target))
            if found and isinstance(changes, dict):
                layers, entry = found
                old = entry.name
                self.modify(entry, changes, ("modify", target))
                layers.renamed(entry, old)
        for i, insert in enumerate(var.get("insert") or []):
            if not isinstance(insert, dict):
                continue
            anchor = insert.get("after", insert.get("before"))
            side = "after" if "after" in insert else "before"
            found = self.find(anchor, f"insert {side}", ("insert", i, side))
            if found:
                layers, entry = found
                new = [
                    self.new_entry(item, ("insert", i, "layers", k))
                    for k, item in enumerate(insert.get("layers") or [])
                ]
                layers.insert(entry, new, after=side == "after")
        for k, item in enumerate(var.get("append") or []):
            self.lists[("layers",)].entries.append(self.new_entry(item, ("append", k)))

    def modify(self, entry: Entry, changes: dict, path: PathKey) -> None:
        (op,) = entry.item
        fields = entry.item[op]
        spans, keys = self.trees[id(self.var)]
        for attr, value in changes.items():
            entry.spans.drop((op, attr))
            entry.keys.drop((op, attr))
            if value is None:  # `~` removes the field: `expect: ~`
                fields.pop(attr, None)
                continue
            fields[attr] = _copy(value)
            entry.spans.put((op, attr), spans.get((*path, attr)).copy())
            key = keys.get((*path, attr)).span
            if key is not None:
                entry.keys.put((op, attr), _Tree(key))


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
            # what was written under `op` (its span included) now lies under `op.primary`
            moved = entry.spans.kids.pop(op, None)
            if moved is not None:
                entry.spans.put((op, primary), moved)
    return entry


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _display(variant_display: str, ref: str) -> str:
    if ref.startswith(BUNDLED_PREFIX):  # diagnostics in a bundled base name it as written
        return BUNDLED_PREFIX + os.path.normpath(ref[len(BUNDLED_PREFIX) :]).replace(os.sep, "/")
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
    text: str | None = None,
) -> tuple[Document | None, list[Diagnostic]]:
    """Load a spec and, through `extends:`, its bases, merged into one Document.

    `check` validates each variant's edits (`modify`, `insert` ...) as written, before they
    are applied; the rest of a variant is merged as written, whatever it holds (an unknown key
    too), so that the merged spec is validated once, its diagnostics pointing into the file
    that holds each value. Raises `LoadError` for the file itself; problems with its base
    are diagnostics. Bases must lie inside `root` (by default `project_root` of the spec).
    `text`: the spec's text, read elsewhere (standard input), as if it were at `path`.
    """
    doc = load_file(path, display) if text is None else load_text(text, display)
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
    base_path, root = locate_base(path, ref, root)
    try:
        # a spec read from standard input stands for a file that need not exist
        here, target = path.resolve(strict=text is None), base_path.resolve()
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
    if target in seen:
        files = " -> ".join(f"`{p.name}`" for p in (*seen, target))
        return None, [error("extends-cycle", f"specs extend each other in a cycle: {files}", span)]
    if len(seen) > MAX_CHAIN:  # no cycle: a chain longer than a variant needs
        return None, [
            error(
                "extends-cycle",
                f"a chain of more than {MAX_CHAIN} specs, each extending the next, reaches "
                f"`{target.name}`; the limit is {MAX_CHAIN}",
                span,
                help="extend a base nearer the end of the chain, with the changes of the "
                "specs in between written into the variant",
            )
        ]
    base_display = _display(display, ref)
    if not inside(target, root):
        return None, [
            error(
                "missing-base",
                f"`extends` names `{ref}`, which is outside the project folder "
                f"`{root.name or root}`",
                span,
                help="`yarch:` names a spec of yarch's library (`yarch:googlenet.yaml`, "
                "`yarch:zoo/resnet50.yaml`)"
                if ref.startswith(BUNDLED_PREFIX)
                else "a spec may extend only specs in its own project: its git repository, "
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


def locate_base(path: Path, ref: str, root: Path | None = None) -> tuple[Path, Path]:
    """Where `extends: ref` in the spec at `path` points, and the folder its bases must lie
    in: `ref` relative to the spec's folder, inside its project (`root`, by default
    `project_root` of the spec), or `yarch:googlenet.yaml`, a spec of the library yarch ships,
    whose bases stay inside the library. `lint`, `lint --variants` and the language server
    all find a base here."""
    if ref.startswith(BUNDLED_PREFIX):
        from . import data_path

        library = data_path("specs").resolve()
        return library / ref[len(BUNDLED_PREFIX) :], library
    return path.parent / ref, root or project_root(path)


def extends_of(text: str, display: str = "<string>") -> tuple[str, Span] | None:
    """The base a spec's text names in `extends:`, read as YAML (block or flow style), and
    where the name is written; None: no `extends:`, or text that does not load."""
    if "extends" not in text:  # most specs: no parse
        return None
    try:
        doc = load_text(text, display)
    except LoadError:
        return None
    ref = doc.data.get("extends") if isinstance(doc.data, dict) else None
    span = doc.span(("extends",))
    if not isinstance(ref, str) or not ref.strip() or span is None:
        return None
    return ref, span


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
