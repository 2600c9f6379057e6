"""Stage 1: YAML text -> plain data, with a source span for every key and value.

PyYAML's `compose` keeps line and column on every node; we walk the node tree ourselves instead
of calling `safe_load`, so that duplicate keys become errors (PyYAML silently keeps the last one)
and every value can be found again by its path from the root (`("layers", 3, "conv", "stride")`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, Span, error

try:  # the C composer is several times faster and keeps the same marks
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

PathKey = tuple[Hashable, ...]

# The largest file yarch reads. Loading costs about 2 µs and 200 bytes per value (node) it
# holds, and a value can take as little as two bytes (`[0,0,0,...]`): at 2 MB the worst file
# lints in about 5 s and 0.5 GB. Real specs are far smaller: the lint benchmark's 100,000-layer
# spec (Inception modules and residual blocks, written out) is 0.7 MB, and one of 150,000 layers,
# the most a spec may expand to, about 1.1 MB.
MAX_BYTES = 2 * 1024 * 1024
# Aliases ("billion laughs") may not make a document bigger than the largest file can be
# written out: a node through an alias costs what a written one does.
MAX_NODES = MAX_BYTES // 2
MAX_DEPTH = 100

# YAML 1.1 (PyYAML) reads some plain scalars other than a person, or YAML 1.2, would
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_EXPONENT = re.compile(r"[-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+")
_OCTAL_12 = re.compile(r"0o[0-7]+")
_TRUE_FALSE = frozenset(("true", "false", "True", "False", "TRUE", "FALSE"))


_STR = "tag:yaml.org,2002:str"
# how the plain strings `_EXPONENT` and `_OCTAL_12` match begin
_NUMBER_START = frozenset("0123456789+-.")

SAFE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}"
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "binary")
)


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Document:
    """A loaded YAML file: its data and where every part of it was written."""

    file: str
    text: str
    data: Any
    spans: dict[PathKey, Span] = field(default_factory=dict)
    key_spans: dict[PathKey, Span] = field(default_factory=dict)
    # a variant merged with its bases: the text of every file, and the files from the variant
    # down to its last base
    sources: dict[str, str] = field(default_factory=dict)
    chain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.sources = self.sources or {self.file: self.text}
        self.chain = self.chain or (self.file,)

    def span(self, path: PathKey) -> Span | None:
        """Span of the value at `path`, or of its nearest ancestor that has one."""
        for i in range(len(path), -1, -1):
            s = self.spans.get(tuple(path[:i]))
            if s is not None:
                return s
        return None

    def key_span(self, path: PathKey) -> Span | None:
        return self.key_spans.get(tuple(path)) or self.span(path)


def _span(file: str, node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _point(file: str, line0: int, col0: int) -> Span:
    return Span(file, line0 + 1, col0 + 1, line0 + 1, col0 + 2)


def _yaml_error(file: str, text: str, exc: yaml.YAMLError) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if isinstance(exc, yaml.reader.ReaderError):
        # a control character or similar that YAML does not allow
        return error(
            "yaml-syntax",
            f"unacceptable character {exc.character!r} in the file",
            Span(file, 1, 1, 1, 2),
            help="remove control characters from the file",
        )
    lines = text.splitlines()
    context_mark = getattr(exc, "context_mark", None)
    if mark is not None and mark.line >= len(lines) and context_mark is not None:
        mark = context_mark  # an unclosed bracket: point at where it opened, not at the end
    span = _point(file, mark.line, mark.column) if mark is not None else Span(file, 1, 1, 1, 2)
    notes = (context,) if context else ()
    line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    message, help = _likely_mistake(problem, line, mark, context_mark)
    if "${" in line:
        help = 'inside `{...}` quote an expression: `out: "${width * 2}"`'
    return error("yaml-syntax", message, span, notes=notes, help=help)


def _likely_mistake(problem: str, line: str, mark: Any, opened: Any) -> tuple[str, str | None]:
    """PyYAML's words for a syntax error, and what the writer most likely did, as a message
    and a help line: a tab, an item indented unlike its list, a key without its colon, a
    bracket left open."""
    column = mark.column if mark is not None else 0
    if "cannot start any token" in problem and line[column : column + 1] == "\t":
        return (
            "a tab in the indentation: YAML indents with spaces only",
            "replace the tab with spaces (two per level, as the rest of the spec)",
        )
    if (
        "expected '-' indicator" in problem
        or "expected <block end>" in problem
        or ("mapping values are not allowed" in problem)
    ):
        return (
            f"invalid YAML: {problem} (this line is indented unlike the lines around it)",
            "items of one list start in the same column, and a layer's fields are indented "
            "under it: line this one up with the one before",
        )
    if "could not find expected ':'" in problem:
        return (
            "invalid YAML: a key without its `:`",
            "write `key: value` (a mapping's keys end with a colon, `layers:`)",
        )
    closer = {"']'": "[", "'}'": "{"}
    for end, start in closer.items():
        if f"expected ',' or {end}" in problem:
            where = (
                f" opened at line {opened.line + 1}, column {opened.column + 1}" if opened else ""
            )
            return (
                f"invalid YAML: a `{start}`{where} is not closed",
                f"close it with `{end[1]}`, or separate its items with commas",
            )
    return f"invalid YAML: {problem}", None


class _Builder:
    def __init__(self, file: str, shared: bool = True) -> None:
        self.file = file
        self.shared = shared  # some nodes are reached through aliases
        self.spans: dict[PathKey, Span] = {}
        self.key_spans: dict[PathKey, Span] = {}
        self.constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:  # most scalars: names, ops, expressions; their value is the text
            if not node.style and node.value[:1] in _NUMBER_START:
                self.check_yaml11(node)
            return node.value
        self.check_tag(node)
        if not node.style:  # plain, unquoted: where YAML 1.1 surprises happen
            self.check_yaml11(node)
        try:
            # the constructor's own (not `construct_object`, which remembers every node it
            # made a value of and so would keep the whole composed tree alive)
            return self.constructor.yaml_constructors[tag](self.constructor, node)
        except Exception:  # any constructor failure is the user's value, not our bug
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise LoadError(
                error(
                    "invalid-value", f"cannot read `{node.value}` as {tag}", _span(self.file, node)
                )
            ) from None

    def check_yaml11(self, node: yaml.ScalarNode) -> None:
        """Refuse plain values that YAML 1.1 reads differently from what they look like."""
        text, tag = node.value, node.tag.rsplit(":", 1)[-1]
        problem = fix = None
        if tag == "bool" and text not in _TRUE_FALSE:
            value = "true" if text.lower() in ("yes", "on", "y") else "false"
            problem = f"YAML 1.1 reads `{text}` as {value}"
            fix = f"write `{value}`, or quote it (`'{text}'`) if you mean the text"
        elif tag == "int" and _OCTAL.fullmatch(text):
            problem = f"YAML 1.1 reads `{text}` as {int(text.replace('_', ''), 8)} (octal)"
            fix = f"write `{int(text.replace('_', ''))}` without the leading zero, or quote it"
        elif tag in ("int", "float") and _SEXAGESIMAL.fullmatch(text):
            value = self.constructor.construct_object(node, deep=True)
            problem = f"YAML 1.1 reads `{text}` as {value} (base 60)"
            fix = f"quote it (`'{text}'`) if you mean the text"
        elif tag == "str" and (_EXPONENT.fullmatch(text) or _OCTAL_12.fullmatch(text)):
            problem = f"YAML 1.1 reads `{text}` as text, not a number"
            fix = "write the number in full (`1000`, `0.001`), or quote it if you mean the text"
        if problem:
            raise LoadError(
                error(
                    "ambiguous-yaml",
                    problem,
                    _span(self.file, node),
                    help=fix,
                    notes=("yarch reads specs with YAML 1.1 rules, as PyYAML does",),
                )
            )

    def check_tag(self, node: yaml.Node) -> None:
        if node.tag not in SAFE_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise LoadError(
                error(
                    "yaml-tag",
                    f"the tag `{tag}` is not allowed in a spec",
                    _span(self.file, node),
                    help="specs hold plain mappings, lists, numbers and text: remove the tag",
                )
            )

    def build(self, node: yaml.Node, path: PathKey, depth: int = 0) -> Any:
        # `_check_expansion` has bounded the size and depth and refused recursive aliases
        self.spans[path] = _span(self.file, node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.check_tag(node)
        return self.collection(node, path, depth)

    def collection(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        # without aliases each child leaves the composed tree once built: the tree (a node and
        # two marks per value) is freed as the data grows, so the two are never whole at once
        # (an aliased node is built once per place, so its children must stay)
        children = list(node.value) if self.shared else node.value
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for i, (key_node, value_node) in enumerate(children):
                children[i] = None
                if not isinstance(key_node, yaml.ScalarNode):
                    raise LoadError(
                        error(
                            "yaml-syntax",
                            "a mapping key must be a plain name",
                            _span(self.file, key_node),
                        )
                    )
                key = self.scalar(key_node)
                if not isinstance(key, Hashable):  # pragma: no cover - scalars are hashable
                    key = str(key)
                if key in out:
                    first = self.key_spans[(*path, key)]
                    raise LoadError(
                        error(
                            "duplicate-key",
                            f"key `{key}` appears twice in the same mapping",
                            _span(self.file, key_node),
                            label="second occurrence",
                            notes=(f"first written at line {first.line}, column {first.column}",),
                            help="YAML keeps only the last value: remove or rename one of them",
                        )
                    )
                self.key_spans[(*path, key)] = _span(self.file, key_node)
                out[key] = self.build(value_node, (*path, key), depth + 1)
            return out
        items = []
        for i, value_node in enumerate(children):
            children[i] = None
            items.append(self.build(value_node, (*path, i), depth + 1))
        return items


def _check_expansion(file: str, root: yaml.Node) -> None:
    """Refuse alias bombs and recursive aliases before anything is expanded.

    The composed tree shares aliased nodes, so its expanded size is computed once per node:
    "billion laughs" (a few hundred bytes that expand to 10**9 nodes) is refused in
    microseconds, at the innermost node whose expansion crosses the limit.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if key not in open_:
            if depth > MAX_DEPTH:
                raise LoadError(
                    error(
                        "yaml-too-deep",
                        f"the document nests deeper than {MAX_DEPTH} levels",
                        _span(file, node),
                    )
                )
            open_.add(key)
            stack.append((node, depth))
            for child in children:
                if id(child) in open_:
                    raise LoadError(
                        error(
                            "yaml-syntax",
                            "an alias refers to a node that contains it",
                            _span(file, child),
                            help="YAML aliases cannot be recursive",
                        )
                    )
                if id(child) not in sizes:
                    stack.append((child, depth + 1))
            continue
        open_.discard(key)
        total = 1 + sum(sizes[id(c)] for c in children)
        if total > MAX_NODES:
            raise LoadError(
                error(
                    "yaml-too-large",
                    f"this value expands to {total:,} nodes through aliases "
                    f"(the limit is {MAX_NODES:,})",
                    _span(file, node),
                    help="do not nest aliases inside aliases",
                )
            )
        sizes[key] = total


def _check_depth(file: str, text: str) -> bool:
    """Refuse deep nesting before composing: the parser keeps its own stack, but composing is
    recursive (PyYAML's C composer crashes the process at about 30,000 levels). True if the
    document has an alias (only then can it expand past its own size)."""
    depth = 0
    aliases = False
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                aliases = True
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise LoadError(
                        error(
                            "yaml-too-deep",
                            f"the document nests deeper than {MAX_DEPTH} levels",
                            _span(file, event),
                        )
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        # PyYAML 6.0.2 and later stop at their own flow nesting limit (1,000 levels), which
        # can come before our 101st level has been seen as an event
        if getattr(exc, "problem", None) == "exceeded maximum nesting depth":
            mark = exc.problem_mark
            raise LoadError(
                error(
                    "yaml-too-deep",
                    f"the document nests deeper than {MAX_DEPTH} levels",
                    _point(file, mark.line, mark.column) if mark else Span(file, 1, 1, 1, 2),
                )
            ) from None
        return True  # composing reports it, with the same position
    return aliases


def _too_large(file: str, size: int | None) -> LoadError:
    """`size` None: more than the limit, read from a stream that was not read to its end."""
    what = "more than 2 MB" if size is None else f"{size / 2**20:.1f} MB"
    return LoadError(
        error(
            "yaml-too-large",
            f"the file is {what}; a spec may be at most {MAX_BYTES // 2**20} MB",
            Span(file, 1, 1, 1, 2),
            help="a spec of 150,000 layers, the most a spec may have, is under 2 MB written "
            "out: is this the right file?",
        )
    )


def _decode(file: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise LoadError(
            error(
                "invalid-encoding",
                f"the file is not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
                Span(file, line, column, line, column + 1),
                help="save the file as UTF-8",
            )
        ) from None


def _compose(text: str, file: str) -> tuple[yaml.Node | None, bool]:
    """The composed document, and whether it has aliases."""
    aliases = _check_depth(file, text)
    try:
        return yaml.compose(text, Loader=_Loader), aliases
    except yaml.YAMLError as exc:
        raise LoadError(_yaml_error(file, text, exc)) from None
    except RecursionError:
        raise LoadError(
            error("yaml-too-deep", "the document nests too deeply to read", Span(file, 1, 1, 1, 1))
        ) from None


def load_value(text: str, file: str = "<command line>") -> Any:
    """One YAML value (a `--set` value), with the checks every value in a spec gets: no tags,
    no recursive aliases, bounded size and depth, no YAML 1.1 surprises."""
    if len(text) > MAX_BYTES:
        raise _too_large(file, len(text.encode("utf-8", "surrogatepass")))
    root, aliases = _compose(text, file)
    if root is None:
        return None
    if aliases:
        _check_expansion(file, root)
    return _Builder(file, shared=aliases).build(root, ())


def load_text(text: str, file: str = "<string>") -> Document:
    """Parse YAML text into a `Document`; raises `LoadError` with a positioned diagnostic."""
    if len(text) > MAX_BYTES:
        raise _too_large(file, len(text.encode("utf-8", "surrogatepass")))
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise LoadError(
            error(
                "empty-spec",
                "the spec is empty",
                Span(file, 1, 1, 1, 1),
                help="a spec needs at least `input:` and `layers:`",
            )
        )
    root, aliases = _compose(text, file)
    if root is None:
        raise LoadError(error("empty-spec", "the spec is empty", Span(file, 1, 1, 1, 1)))
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise LoadError(
            error(
                "not-a-mapping",
                f"the top level of a spec must be a mapping, found {kind}",
                _span(file, root),
                help="start the file with `input:` and `layers:` keys",
            )
        )
    if aliases:  # without one, every node is written out: the file's size bounds them
        _check_expansion(file, root)
    builder = _Builder(file, shared=aliases)
    try:
        data = builder.build(root, ())
    except RecursionError:
        raise LoadError(
            error("yaml-too-deep", "the document nests too deeply to read", Span(file, 1, 1, 1, 1))
        ) from None
    return Document(file, text, data, builder.spans, builder.key_spans)


def source_text(path: str | Path) -> str | None:
    """The text of a file for showing source lines, or None if it cannot be shown (missing,
    over the size limit, not UTF-8)."""
    try:
        return _read_bounded(path, str(path)).decode("utf-8-sig")
    except (OSError, ValueError, LoadError):  # UnicodeDecodeError is a ValueError
        return None


def _read_bounded(path: str | Path, name: str) -> bytes:
    """The bytes of a regular file; `LoadError` past `MAX_BYTES` (known from its size before
    reading) or for a named pipe, a device or a socket, which could block or never end: the
    file is opened without blocking and checked before anything is read from it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(mode):
            kind = "a named pipe" if stat.S_ISFIFO(mode) else "a device or a socket"
            raise LoadError(error("unreadable-file", f"`{name}` is {kind}, not a regular file"))
        size = os.fstat(fd).st_size
        if size > MAX_BYTES:
            raise _too_large(name, size)
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:  # it grew while being read
        raise _too_large(name, len(raw))
    return raw


def decode_input(raw: bytes, name: str) -> str:
    """Text read from a stream (`yarch lint -` reads standard input), checked as a file's is:
    its size and its encoding; raises `LoadError`."""
    if len(raw) > MAX_BYTES:
        raise _too_large(name, None)  # read up to one byte past the limit
    return _decode(name, raw)


def load_file(path: str | Path, display: str | None = None) -> Document:
    """Read and parse a spec file. `display` is the name used in diagnostics."""
    name = display or str(path)
    try:
        raw = _read_bounded(path, name)
    except IsADirectoryError:
        raise LoadError(error("unreadable-file", f"`{name}` is a folder, not a file")) from None
    except FileNotFoundError:
        raise LoadError(error("unreadable-file", f"`{name}` does not exist")) from None
    except ValueError:  # a NUL character in the path
        raise LoadError(error("unreadable-file", f"`{name}` is not a valid path")) from None
    except OSError as exc:
        raise LoadError(
            error("unreadable-file", f"cannot read `{name}`: {exc.strerror or exc}")
        ) from None
    return load_text(_decode(name, raw), name)
