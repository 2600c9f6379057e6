"""A structural fuzzer: hostile specs through `lint_file` and every renderer.

Each case is built from its own seed by a plain `random.Random(seed)`, so a failure is
reproduced by its seed alone (`--replay SEED`). A case is a library spec (specs/, the posts,
the variants, the rule fixtures) or a small generated one, changed by one to four mutations:
odd values, hostile `${...}` expressions, renamed, deleted and duplicated keys, swapped ops,
layers and lists repeated thousands of times, huge `repeat:` counts, `if:` everywhere, and the
variant machinery (`extends:`, `scales`, `modify`/`replace`/`delete`/`insert`/`append`).

A case runs as the command line would run it: `lint_file`, then the four diagnostic formats;
`draw.to_dot` when there is a graph; summaries (every format, with and without a depth),
codegen and a diff against the unmutated spec when the spec has no errors: about twenty
commands. Outcomes: `ok`, `internal-error` (any exception out of the compiler), `timeout` (one
command over 10 s of wall time, or the whole case over 60 s, when the worker is killed and
replaced), `over-memory` (a MemoryError under an address-space limit of 1 GB above the worker's
own size) and `crashed` (the worker died otherwise). Each case starts in an empty folder, so
that it never reads what an earlier case wrote.

The 10 s bound is per command because a case is not something a person runs: on a spec of
80,000 layers (the limit is 150,000) each command takes 0.5 to 5 s, and the twenty of them
together 10 to 35 s. The report gives both: the slowest command and the slowest whole case.

    python scripts/fuzz.py --cases 20000 --seed 1 [--workers 2] [--save-failures DIR]
    python scripts/fuzz.py --replay SEED
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/fuzz.py` from anywhere
    sys.path.insert(0, str(ROOT))

from compiler import draw  # noqa: E402
from compiler.codegen import codegen_file  # noqa: E402
from compiler.diagnostics import (  # noqa: E402
    SourceCache,
    render_concise,
    render_github,
    render_json,
    render_text,
)
from compiler.diff import diff_graphs, render_diff  # noqa: E402
from compiler.ops import OPS  # noqa: E402
from compiler.pipeline import Result, lint_file  # noqa: E402
from compiler.summary import FORMATS as SUMMARY_FORMATS  # noqa: E402
from compiler.summary import render, summarize  # noqa: E402

COMMAND_LIMIT = 10.0  # seconds of wall time for one command of a case (a stage)
TIME_LIMIT = 60.0  # seconds of wall time for a whole case: past it the worker is killed
MEMORY_LIMIT = 1 << 30  # bytes of address space above the worker's size after its imports
MAX_SHOWN = 200  # as the command line
OUTCOMES = ("ok", "internal-error", "timeout", "over-memory", "crashed")
CASE = "case.yaml"
BASE = "base.yaml"

# --- the corpus ------------------------------------------------------------------------------


@dataclass
class Seedling:
    """A library spec as data; a variant's base comes along, loaded from where it lies."""

    label: str
    data: Any
    base: Any = None


def _corpus() -> list[Seedling]:
    files = [
        *sorted(ROOT.glob("specs/*.yaml")),
        *sorted(ROOT.glob("specs/posts/*.yaml")),
        *sorted(ROOT.glob("specs/variants/*.yaml")),
        *sorted(ROOT.glob("tests/fixtures/**/*.yaml")),
    ]
    out = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, ValueError):
            continue  # the fixtures of YAML errors: nothing structural to mutate
        if not isinstance(data, dict) or written_size(data) >= 200_000:
            continue  # an alias bomb (yaml-too-large) is not a spec to change
        base = None
        ref = data.get("extends")
        if isinstance(ref, str) and (path.parent / ref).is_file() and ref != path.name:
            with contextlib.suppress(yaml.YAMLError):
                base = yaml.safe_load((path.parent / ref).read_text(encoding="utf-8"))
            data = {**data, "extends": BASE}
        out.append(Seedling(str(path.relative_to(ROOT)), data, base))
    return out


# --- YAML out, with duplicated keys and with or without aliases ------------------------------

_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Dup:
    """A mapping written with a key twice (PyYAML's dumper cannot write one from a dict)."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs


class Dumper(_Dumper):  # type: ignore[misc, valid-type]
    def ignore_aliases(self, data: Any) -> bool:
        return True


class AliasDumper(_Dumper):  # type: ignore[misc, valid-type]
    """Shares repeated objects through anchors: a layer repeated 5,000 times is one anchor, and
    so is a long string (PyYAML writes every string out in full at every use)."""

    def ignore_aliases(self, data: Any) -> bool:
        if isinstance(data, str) and len(data) >= 1000:
            return False
        return bool(super().ignore_aliases(data))


def _represent_dup(dumper: Any, value: Dup) -> yaml.Node:
    pairs = [(dumper.represent_data(k), dumper.represent_data(v)) for k, v in value.pairs]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=None)


for _d in (Dumper, AliasDumper):
    _d.add_representer(Dup, _represent_dup)


def written_size(data: Any, limit: int = 200_000) -> int:
    """Nodes the YAML would have without anchors: shared lists count at every use (a list of
    5,000 layers repeated 5,000 times is 25 million), a string one per 64 characters, a cycle
    as `limit`."""
    memo: dict[int, int] = {}
    busy: set[int] = set()

    def size(x: Any) -> int:
        if isinstance(x, Dup):
            x = dict(x.pairs)
        if isinstance(x, str):
            return 1 + len(x) // 64  # a long string written 5,000 times is 500 MB of text
        if not isinstance(x, dict | list):
            return 1
        if id(x) in memo:
            return memo[id(x)]
        if id(x) in busy:
            return limit
        busy.add(id(x))
        total = 1
        for child in x.values() if isinstance(x, dict) else x:
            total += size(child)
            if total >= limit:
                break
        busy.discard(id(x))
        memo[id(x)] = min(total, limit)
        return memo[id(x)]

    return size(data)


def dump(data: Any, rng: random.Random) -> str:
    dumper = AliasDumper if rng.random() < 0.15 else Dumper
    if dumper is Dumper and written_size(data) >= 200_000:
        dumper = AliasDumper  # the text without anchors would be far larger than a spec can be
    flow = rng.choice([None, None, False, True])
    return yaml.dump(
        data,
        Dumper=dumper,
        sort_keys=False,
        allow_unicode=rng.random() < 0.7,
        default_flow_style=flow,
        width=rng.choice([80, 4096]),
    )


CORPUS = _corpus()

# --- values and expressions ------------------------------------------------------------------

OP_NAMES = sorted(OPS)
FIELDS = sorted({f.rstrip("_") for op in OPS.values() for f in op.Args.model_fields})
TOP_KEYS = ["name", "input", "layers", "blocks", "params", "outputs", "scales", "source"]
VARIANT_KEYS = ["extends", "modify", "replace", "delete", "insert", "append"]
KEYS = sorted({*FIELDS, *TOP_KEYS, *VARIANT_KEYS, "in", "from", "if", "doc", "output"})

STRINGS = [
    "",
    " ",
    "\t",
    "\r\n",
    "~",
    "null",
    "yes",
    "0x10",
    "1e999",
    "-.inf",
    "\x00",
    "a\x00b",
    "\x1b[31mred\x1b[0m\x07",
    "\x1b]0;title\x07\x1b[2J",
    "\u202eevil\u202c",
    "e\u0301\u200b\ufeff",
    "日本語",
    "🙂" * 10,
    "ﬁlter",
    "$",
    "$$x",
    "${}",
    "${",
    "`tick`",
    "a.b.c",
    ".",
    "..",
    "%s%n%x",
    "{name}",
    "<b>&amp;</b>",
    '"quoted"',
    "\\",
    "line\nbreak",
    "input",
    "layers",
    "__class__",
    "None",
    "True",
]


def long_string(rng: random.Random) -> str:
    unit = rng.choice(["x", "ab", "é", "🙂", "\x1b[1m", "\x00", "-"])
    return unit * rng.choice([300, 1000, 10_000, 100_000])


def hostile_expr(rng: random.Random, names: list[str]) -> str:
    name = rng.choice(names) if names else "nope"
    k = rng.choice([10, 50, 100, 200, 1000])
    n = rng.choice([10, 100, 999, 1000, 1001, 5000])
    body = rng.choice(
        [
            "(" * k + "1" + ")" * k,
            "+".join(["1"] * n),
            "*".join(["2"] * n),
            " and ".join(["1"] * n),
            "<".join(["1"] * n),
            "-" * n + "1",
            "not " * n + "1",
            "[" * k + "1" + "]" * k,
            "'a'*10**9",
            "'a'*10**10",
            "[0]*10**10",
            "[1]*10**9",
            "'%999999999d' % 1",
            "'%s' % 1",
            "'a' * -1",
            "10**400",
            "2**64**64",
            "9**9**9",
            "1e999",
            "-1e999",
            "1e999 - 1e999",
            "int(1e999)",
            "round(1e999)",
            "ceil(1e999)",
            "floor(-1e999)",
            "int(1e999 - 1e999)",
            "round(1.5, 10**9)",
            "round(1e300, -400)",
            "min()",
            "max([])",
            "int('9' * 5000)",
            "int('x')",
            "1/0",
            "1//0",
            "1 % 0",
            "0 ** -1",
            "0.0 ** -1",
            "2 ** 0.5",
            "(-8) ** 63",
            "1e308 * 10",
            f"{name}",
            f"{name}[0]",
            f"{name}[10**20]",
            f"{name} * 10**9",
            f"{name} + {name}",
            f"{name} if {name} else {name}",
            "undefined_name",
            "layers",
            "layers[0]",
            "__import__('os')",
            "().__class__",
            "lambda: 1",
            "[i for i in range(10**9)]",
            "{}",
            "'a' < 1",
            "w(10**400)",
            "d(10**400)",
            "w(1e999)",
            "d(-1)",
            "w('x')",
            "1 if 1 else",
            "a.b",
            "x[",
            "",
        ]
    )
    if rng.random() < 0.15:
        return "$" + rng.choice([name, "undefined_name", "layers", "1x", ""])
    return "${" + body + "}"


def odd_value(rng: random.Random, names: list[str], depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.3:
        return hostile_expr(rng, names)
    if roll < 0.45:
        return rng.choice(STRINGS) if rng.random() < 0.8 else long_string(rng)
    if roll < 0.6 and depth < 3:
        return rng.choice(
            [
                [],
                {},
                [odd_value(rng, names, depth + 1)],
                {odd_scalar(rng): odd_value(rng, names, depth + 1)},
                [[[1]]],
                {"a": {"b": {"c": 1}}},
                [1] * rng.choice([3, 100, 5000]),
                [rng.choice(names) if names else "x"],
            ]
        )
    return odd_scalar(rng)


def odd_scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            10**400,
            -(10**400),
            2**63,
            2**64 + 1,
            10**15 + 1,
            -1,
            0,
            1,
            -0.0,
            0.5,
            1.5,
            1e-300,
            1e300,
            math.inf,
            -math.inf,
            math.nan,
            None,
            True,
            False,
            "",
            "x",
        ]
    )


# --- walking and changing data ---------------------------------------------------------------


def slots(data: Any, limit: int = 4000) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside `data`, breadth first, at most `limit`."""
    out: list[tuple[Any, Any]] = []
    queue = [data]
    seen = set()
    while queue and len(out) < limit:
        item = queue.pop(0)
        if id(item) in seen or not isinstance(item, dict | list):
            continue  # a Dup is written as it is
        seen.add(id(item))
        keys = list(item) if isinstance(item, dict) else range(len(item))
        for key in keys:
            out.append((item, key))
            child = item[key]
            if isinstance(child, dict | list):
                queue.append(child)
    return out


def containers(data: Any, kind: type) -> list[Any]:
    found = [data] if isinstance(data, kind) else []
    found += [c[k] for c, k in slots(data) if isinstance(c[k], kind)]
    return found


def layer_lists(data: Any) -> list[list]:
    """The lists of layers: top-level, blocks', seqs' and inserted ones."""
    out = []
    for c, k in slots(data):
        if k in ("layers", "append") and isinstance(c[k], list):
            out.append(c[k])
    return out


def layer_items(data: Any) -> list[tuple[list, int]]:
    return [(lst, i) for lst in layer_lists(data) for i in range(len(lst))]


def param_names(data: Any) -> list[str]:
    names = []
    for d in containers(data, dict):
        params = d.get("params")
        if isinstance(params, dict):
            names += [str(k) for k in params]
    return names


def block_names(data: Any) -> list[str]:
    blocks = data.get("blocks") if isinstance(data, dict) else None
    return [str(k) for k in blocks] if isinstance(blocks, dict) else []


def layer_names(data: Any) -> list[str]:
    names = []
    for lst in layer_lists(data):
        for item in lst:
            if isinstance(item, dict) and len(item) == 1:
                (fields,) = item.values()
                if isinstance(fields, dict) and isinstance(fields.get("name"), str):
                    names.append(fields["name"])
    return names


@dataclass
class Case:
    seed: int
    label: str
    data: Any
    base: Any = None
    original: Any = None
    original_base: Any = None
    overrides: dict[str, Any] = field(default_factory=dict)
    scale: str | None = None
    raw: str | None = None  # text mutations: the file as written, instead of dumping `data`
    mutations: list[str] = field(default_factory=list)


def _target(case: Case, rng: random.Random) -> Any:
    if case.base is not None and rng.random() < 0.25:
        return case.base
    return case.data


def m_odd_value(case: Case, rng: random.Random, work: Path) -> None:
    data = _target(case, rng)
    spots = slots(data)
    if spots:
        c, k = rng.choice(spots)
        c[k] = odd_value(rng, param_names(case.data))


def m_odd_field(case: Case, rng: random.Random, work: Path) -> None:
    """An odd value in a layer's field, written or new: most checks live there."""
    items = layer_items(_target(case, rng))
    if not items:
        return m_odd_value(case, rng, work)
    lst, i = rng.choice(items)
    item = lst[i]
    names = param_names(case.data)
    if isinstance(item, dict) and len(item) == 1:
        ((op, fields),) = item.items()
        if not isinstance(fields, dict):
            fields = {OPS[op].primary: fields} if op in OPS and OPS[op].primary else {}
            item[op] = fields
        fields[rng.choice([*fields, *FIELDS, "in", "from", "if"])] = odd_value(rng, names)
    else:
        lst[i] = {str(item): {rng.choice(FIELDS): odd_value(rng, names)}}


def m_expression(case: Case, rng: random.Random, work: Path) -> None:
    data = _target(case, rng)
    spots = [(c, k) for c, k in slots(data) if not isinstance(c[k], dict | list)]
    names = param_names(case.data)
    if rng.random() < 0.5 and isinstance(data, dict):
        params = data.setdefault("params", {})
        if isinstance(params, dict):
            key = rng.choice([*names, "p", "layers"]) if names else "p"
            params[key] = hostile_expr(rng, names)
            names.append(key)
    if spots:
        c, k = rng.choice(spots)
        c[k] = hostile_expr(rng, names)


def m_rename_key(case: Case, rng: random.Random, work: Path) -> None:
    dicts = [d for d in containers(_target(case, rng), dict) if d]
    if not dicts:
        return
    d = rng.choice(dicts)
    old = rng.choice(list(d))
    new = rng.choice([*KEYS, *OP_NAMES, *block_names(case.data), "x", "", 1, None, True])
    value = d.pop(old)
    d[new] = value


def m_delete_key(case: Case, rng: random.Random, work: Path) -> None:
    data = _target(case, rng)
    if isinstance(data, dict) and data and rng.random() < 0.3:
        data.pop(rng.choice(list(data)))
        return
    dicts = [d for d in containers(data, dict) if d]
    if dicts:
        d = rng.choice(dicts)
        d.pop(rng.choice(list(d)))


def m_delete_item(case: Case, rng: random.Random, work: Path) -> None:
    lists = [lst for lst in containers(_target(case, rng), list) if lst]
    if lists:
        lst = rng.choice(lists)
        del lst[rng.randrange(len(lst))]


def m_duplicate_key(case: Case, rng: random.Random, work: Path) -> None:
    spots = [(c, k) for c, k in slots(case.data) if isinstance(c[k], dict) and c[k]]
    if isinstance(case.data, dict) and case.data and (not spots or rng.random() < 0.3):
        pairs = list(case.data.items())
        pairs.insert(rng.randrange(len(pairs) + 1), rng.choice(pairs))
        case.data = Dup(pairs)
        return
    if spots:
        c, k = rng.choice(spots)
        pairs = list(c[k].items())
        key = rng.choice(pairs)[0]
        pairs.append((key, odd_value(rng, []) if rng.random() < 0.5 else c[k][key]))
        c[k] = Dup(pairs)


def m_op_swap(case: Case, rng: random.Random, work: Path) -> None:
    items = layer_items(_target(case, rng))
    if not items:
        return
    lst, i = rng.choice(items)
    item = lst[i]
    new = rng.choice([*OP_NAMES, *block_names(case.data), "Conv", "conv2d", "", "seq"])
    if isinstance(item, dict) and len(item) == 1:
        ((_, fields),) = item.items()
        lst[i] = {new: fields}
    else:
        lst[i] = new


def m_multiply(case: Case, rng: random.Random, work: Path) -> None:
    lists = layer_lists(_target(case, rng)) or [lst for lst in containers(case.data, list) if lst]
    lists = [lst for lst in lists if lst]
    if not lists:
        return
    lst = rng.choice(lists)
    # thousands of copies of a big layer (an inception module) is a legal spec that takes
    # seconds to lint and draw: one multiplication in ten, so that they do not eat the run
    if rng.random() < 0.1:
        n = rng.choice([1000, 3000, 5000])
    else:
        n = rng.choice([2, 3, 10, 50, 100, 200])
    if rng.random() < 0.5:
        item = lst[rng.randrange(len(lst))]
        at = rng.randrange(len(lst) + 1)
        lst[at:at] = [item] * n
    else:
        copy = list(lst)
        lst[:] = copy * max(1, n // max(1, len(copy)))


def m_repeat(case: Case, rng: random.Random, work: Path) -> None:
    items = layer_items(_target(case, rng))
    if not items:
        return
    lst, i = rng.choice(items)
    item = lst[i]
    count = rng.choice(
        [10**6, 10**9, 10**400, 2**31, 2**63, -1, 0, 1.5, math.inf, "${10**9}", "${d(10**9)}"]
        + [rng.choice([2, 10, 100, 200])] * 3
        + [rng.choice([1000, 5000, 20_000, 100_000, 250_000, 250_001])] * (rng.random() < 0.1)
    )
    if isinstance(item, dict) and len(item) == 1:
        ((op, fields),) = item.items()
        if not isinstance(fields, dict):
            fields = {OPS[op].primary: fields} if op in OPS and OPS[op].primary else {}
        fields = {**fields, "repeat": count}
        if rng.random() < 0.3:
            fields["first"] = odd_value(rng, []) if rng.random() < 0.5 else {"stride": 2}
        lst[i] = {op: fields}
    else:
        lst[i] = {str(item): {"repeat": count}}


def m_if(case: Case, rng: random.Random, work: Path) -> None:
    dicts = [d for d in containers(_target(case, rng), dict)]
    names = param_names(case.data)
    for d in rng.sample(dicts, min(len(dicts), rng.choice([1, 3, 10, 1000]))):
        d["if"] = rng.choice(
            [False, True, 0, None, "${1 == 1}", "${0}", hostile_expr(rng, names), "$nope", [], {}]
        )


def m_extends(case: Case, rng: random.Random, work: Path) -> None:
    if not isinstance(case.data, dict):
        return
    roll = rng.random()
    if roll < 0.4:
        other = rng.choice(CORPUS)
        case.base = copy.deepcopy(other.base if other.base is not None else other.data)
        if isinstance(case.base, dict) and "extends" in case.base and rng.random() < 0.7:
            case.base.pop("extends")
        ref: Any = BASE
    else:
        ref = rng.choice(
            [
                CASE,
                "./" + CASE,
                "missing.yaml",
                str(work / BASE),
                "/etc/hostname",
                "base\x00.yaml",
                "\x00",
                "x" * 300 + ".yaml",
                "x" * 300,
                "a/" * 100 + "b.yaml",
                "../" * 40 + "etc/passwd",
                "~/base.yaml",
                ".",
                "..",
                "",
                " ",
                "🙂.yaml",
                "base.yaml\n",
                odd_scalar(rng),
                [BASE],
                {"file": BASE},
            ]
        )
        if rng.random() < 0.5:
            case.base = copy.deepcopy(rng.choice(CORPUS).data)
    case.data["extends"] = ref
    if rng.random() < 0.5:
        for key in ("input", "layers"):
            case.data.pop(key, None)
    if rng.random() < 0.4:
        m_variant_ops(case, rng, work)


def _layer_target(case: Case, rng: random.Random) -> Any:
    names = layer_names(case.base) if case.base is not None else []
    blocks = block_names(case.base) if case.base is not None else []
    good = [*names, *(f"{b}.{n}" for b in blocks for n in layer_names(case.base["blocks"][b]))]
    if good and rng.random() < 0.6:
        return rng.choice(good)
    return rng.choice(
        ["", ".", "..", "a.b.c", "nope", "Block.", ".x", "x" * 300, "\x00", "🙂", "layers"]
        + [odd_scalar(rng)]
        + [f"{b}.nope" for b in blocks]
    )


def m_variant_ops(case: Case, rng: random.Random, work: Path) -> None:
    if not isinstance(case.data, dict):
        return
    names = param_names(case.data)

    def layer() -> Any:
        if rng.random() < 0.6:
            return rng.choice(SMALL_LAYERS)(rng, 0, [])
        return odd_value(rng, names)

    verb = rng.choice(["modify", "replace", "delete", "insert", "append"])
    if rng.random() < 0.15:
        case.data[verb] = odd_value(rng, names)
        return
    entries = rng.choice([1, 1, 2, 5, 100])
    if verb == "modify":
        case.data[verb] = {
            _key(_layer_target(case, rng)): (
                {rng.choice([*FIELDS, "in", "from"]): odd_value(rng, names)}
                if rng.random() < 0.8
                else odd_value(rng, names)
            )
            for _ in range(entries)
        }
    elif verb == "replace":
        case.data[verb] = {_key(_layer_target(case, rng)): layer() for _ in range(entries)}
    elif verb == "delete":
        case.data[verb] = [_layer_target(case, rng) for _ in range(entries)]
    elif verb == "insert":
        case.data[verb] = [
            {
                rng.choice(["after", "before", "at", "after"]): _layer_target(case, rng),
                "layers": [layer() for _ in range(rng.choice([1, 2]))]
                if rng.random() < 0.8
                else odd_value(rng, names),
            }
            for _ in range(entries)
        ]
    else:
        case.data[verb] = [layer() for _ in range(entries)]


def _key(value: Any) -> Any:
    """A mapping key must be hashable: lists and dicts become their text."""
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def m_scales(case: Case, rng: random.Random, work: Path) -> None:
    if not isinstance(case.data, dict):
        return
    names = param_names(case.data)

    def row() -> Any:
        if rng.random() < 0.2:
            return odd_value(rng, names)
        out: dict[Any, Any] = {}
        for key in rng.sample(["width", "depth", "max_channels", "divisor", "w", "d"], 3):
            out[key] = rng.choice([odd_scalar(rng), 0.25, 1, 8, hostile_expr(rng, names)])
        if names and rng.random() < 0.4:
            out[rng.choice(names)] = odd_value(rng, names)
        if rng.random() < 0.2:
            out[rng.choice(["nope", "input", "layers"])] = 1
        return out

    table = {_key(rng.choice(["n", "s", "m", "", "x" * 300, 0, "w"])): row() for _ in range(3)}
    case.data["scales"] = table
    roll = rng.random()
    if roll < 0.3:
        case.scale = rng.choice(list(map(str, table)))
    elif roll < 0.4:
        case.scale = rng.choice(["nope", "", "\x00", "x" * 300])
    spots = [(c, k) for c, k in slots(case.data) if isinstance(c[k], int | str)]
    for c, k in rng.sample(spots, min(len(spots), 3)):
        c[k] = rng.choice(["${w(" + str(c[k]) + ")}", "${d(" + str(c[k]) + ")}", "${w(d(2))}"])


def m_overrides(case: Case, rng: random.Random, work: Path) -> None:
    names = [*param_names(case.data), "nope"]
    for _ in range(rng.choice([1, 2])):
        case.overrides[rng.choice(names)] = odd_value(rng, names)


def m_text(case: Case, rng: random.Random, work: Path) -> None:
    """Changes to the file's text that no data could produce."""
    text = dump(case.data, rng)
    lines = text.splitlines(keepends=True) or [""]
    roll = rng.random()
    i = rng.randrange(len(lines))
    if roll < 0.2:
        lines.insert(i, lines[i])  # a duplicated line: often a duplicated key
        text = "".join(lines)
    elif roll < 0.35:
        text = text[: rng.randrange(len(text) + 1)]
    elif roll < 0.5:
        bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
            f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        text = "params:\n" + "".join("  " + line for line in bomb.splitlines(True)) + text
    elif roll < 0.6:
        text = "\ufeff" + text.replace("\n", rng.choice(["\r\n", "\r", "\n\n"]))
    elif roll < 0.7:
        lines.insert(i, rng.choice(["\t- x\n", "!!python/object:os.system x\n", "? [a]\n: 1\n"]))
        text = "".join(lines)
    elif roll < 0.8:
        depth = rng.choice([50, 99, 100, 101, 500, 5000])
        text += "deep: " + "[" * depth + "]" * depth + "\n"
    elif roll < 0.9:
        text += "---\n" + text
    else:
        pos = rng.randrange(len(text) + 1)
        text = text[:pos] + rng.choice(["\x00", "\x1b", "\x85", "\u2028", "\ud800"]) + text[pos:]
    case.raw = text


MUTATIONS = [
    (m_odd_value, 10),
    (m_odd_field, 14),
    (m_expression, 10),
    (m_rename_key, 6),
    (m_delete_key, 6),
    (m_delete_item, 3),
    (m_duplicate_key, 3),
    (m_op_swap, 6),
    (m_multiply, 4),
    (m_repeat, 4),
    (m_if, 4),
    (m_extends, 6),
    (m_variant_ops, 4),
    (m_scales, 4),
    (m_overrides, 3),
]


# --- small generated specs -------------------------------------------------------------------


def _conv(rng: random.Random, i: int, names: list[str]) -> Any:
    return {
        "conv": {
            "name": f"c{i}",
            "out": rng.choice([4, 8, 16]),
            "kernel": rng.choice([1, 3]),
            "padding": rng.choice([0, 1]),
        }
    }


def _merge(rng: random.Random, i: int, names: list[str]) -> Any:
    if len(names) < 2:
        return "relu"
    pair = rng.sample(names, 2)
    return {"add": pair} if rng.random() < 0.5 else {"concat": {"from": pair, "name": f"m{i}"}}


SMALL_LAYERS = [
    _conv,
    _conv,
    lambda rng, i, names: rng.choice(["relu", "bn", "gelu", "identity", "sigmoid"]),
    lambda rng, i, names: {"maxpool": {"kernel": 2, "stride": 2}},
    lambda rng, i, names: {"avgpool": rng.choice([2, 3])},
    lambda rng, i, names: {"dropout": 0.5},
    lambda rng, i, names: {"lrn": {"size": 5}},
    lambda rng, i, names: {"leaky_relu": 0.1},
    lambda rng, i, names: {"inception": {"c1": 4, "c3": [4, 8], "c5": [2, 4], "pool_proj": 4}},
    lambda rng, i, names: {"seq": {"name": f"s{i}", "layers": [_conv(rng, i, names), "relu"]}},
    lambda rng, i, names: {"Block": {"name": f"b{i}", "width": "$width", "repeat": 2}},
    _merge,
]


def small_spec(rng: random.Random) -> dict[str, Any]:
    layers: list[Any] = []
    names: list[str] = []
    for i in range(rng.randint(1, 8)):
        layer = rng.choice(SMALL_LAYERS)(rng, i, names)
        layers.append(layer)
        if isinstance(layer, dict):
            (fields,) = layer.values()
            if isinstance(fields, dict) and "name" in fields:
                names.append(fields["name"])
    if rng.random() < 0.7:
        layers += [{"adaptive_avgpool": 1}, "flatten", {"linear": {"out": "$classes"}}]
    if rng.random() < 0.2:
        layers.append({"softmax": 1})
    spec: dict[str, Any] = {
        "name": f"small{rng.randrange(100)}",
        "input": [rng.choice([1, 3, 8]), rng.choice([8, 16, 32]), rng.choice([8, 16, 32])],
        "params": {"classes": 10, "width": 8, "depths": [1, 2]},
        "blocks": {
            "Block": {
                "params": {"width": None, "stride": 1},
                "layers": [
                    {"conv": {"out": "$width", "kernel": 3, "padding": 1, "stride": "$stride"}},
                    "relu",
                    {"conv": {"out": "${width * 2}", "kernel": 1, "if": "${stride != 1}"}},
                ],
            }
        },
        "layers": layers,
    }
    if rng.random() < 0.3:
        spec["outputs"] = {"logits": {"from": names[-1] if names else "input"}}
    return spec


def generate(seed: int, work: Path) -> Case:
    """The case of a seed: the same seed gives the same files."""
    rng = random.Random(seed)
    if rng.random() < 0.35 or not CORPUS:
        data = small_spec(rng)
        case = Case(seed, "generated", data, original=copy.deepcopy(data))
    else:
        seedling = rng.choice(CORPUS)
        case = Case(
            seed,
            seedling.label,
            copy.deepcopy(seedling.data),
            copy.deepcopy(seedling.base),
            seedling.data,
            seedling.base,
        )
    fns, weights = zip(*MUTATIONS, strict=True)
    for fn in rng.choices(fns, weights, k=rng.randint(1, 4)):
        fn(case, rng, work)
        case.mutations.append(fn.__name__[2:])
    if rng.random() < 0.08:
        m_text(case, rng, work)
        case.mutations.append("text")
    return case


def case_files(case: Case, rng: random.Random) -> dict[str, str]:
    files = {CASE: case.raw if case.raw is not None else dump(case.data, rng)}
    if case.base is not None:
        files[BASE] = dump(case.base, rng)
    return files


def write_files(files: dict[str, str], folder: Path) -> None:
    for name in (CASE, BASE):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    for name, text in files.items():
        # a lone surrogate cannot be UTF-8: it is written as the bytes it would be (invalid)
        (folder / name).write_bytes(text.encode("utf-8", "surrogatepass"))


# --- running one case ------------------------------------------------------------------------


def _clean(result: Result) -> bool:
    return result.graph is not None and result.errors == 0 and not result.unreadable


_ORIGINALS: dict[str, Result] = {}  # in a worker: the library specs' own lint results


class Stages(list):
    """`stage[0] = name` as `exercise` writes it, timing each command: how far a case got, and
    the slowest command it ran (the fuzzer's own `generate` is not one)."""

    def __init__(self, first: str = "generate") -> None:
        super().__init__([first])
        self.started = time.perf_counter()
        self.slowest = ("", 0.0)

    def __setitem__(self, index: Any, name: Any) -> None:
        now = time.perf_counter()
        if self[0] != "generate" and now - self.started > self.slowest[1]:
            self.slowest = (self[0], now - self.started)
        self.started = now
        super().__setitem__(index, name)

    def finish(self) -> None:
        self[0] = "done"


def exercise(case: Case, folder: Path, stage: list[str]) -> None:
    """Everything the command line does with a spec, as it does it. `stage` says how far."""
    rng = random.Random(case.seed ^ 0x5EED)
    write_files(case_files(case, rng), folder)
    stage[0] = "lint_file"
    result = lint_file(folder / CASE, case.overrides or None, CASE, case.scale)
    diags = result.diagnostics
    stage[0] = "render_text"
    render_text(diags, SourceCache.of(result.sources), MAX_SHOWN)
    stage[0] = "render_concise"
    render_concise(diags)
    stage[0] = "render_json"
    render_json(diags, 1)
    stage[0] = "render_github"
    render_github(diags)
    if result.graph is not None and result.spec is not None and not result.unreadable:
        stage[0] = "to_dot(TB)"  # `yarch draw` draws a spec with errors too
        caption = draw.caption_of(result.spec)
        draw.to_dot(result.graph, diags, None, "TB", caption)
        depth = rng.choice([0, 1, 2])
        stage[0] = f"to_dot(LR, depth={depth}, no fold)"
        draw.to_dot(result.graph, diags, depth, "LR", caption, False)
    if not _clean(result):
        return
    stage[0] = "summarize"
    summary = summarize(result.graph)
    for fmt in SUMMARY_FORMATS:
        for depth in (None, rng.choice([0, 1, 2])):
            stage[0] = f"summary.render({fmt}, depth={depth})"
            render(summary, fmt, depth)
    stage[0] = "codegen_file"
    codegen_file(result, CASE)
    if rng.random() < 0.3:
        stage[0] = "codegen_file(optimize=inference)"
        codegen_file(result, CASE, "inference")
    stage[0] = "lint_file(original)"
    before = _ORIGINALS.get(case.label)
    if before is None:
        original = Case(
            case.seed, case.label, copy.deepcopy(case.original), copy.deepcopy(case.original_base)
        )
        (folder / "original").mkdir(exist_ok=True)
        write_files(case_files(original, rng), folder / "original")
        before = lint_file(folder / "original" / CASE, None, "original.yaml")
        if case.label != "generated":  # a library spec's original is the same every time
            _ORIGINALS[case.label] = before
    if not _clean(before):
        return
    for a, b in ((before, result), (result, before)):
        stage[0] = "diff_graphs"
        diff = diff_graphs(a.graph, b.graph, "original.yaml", CASE)
        for fmt in ("text", "json"):
            stage[0] = f"render_diff({fmt})"
            render_diff(diff, fmt)


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
        return True
    except OSError:
        return False


def _frame(tb: Any, within: str | None = None) -> str:
    frames = traceback.extract_tb(tb)
    if within is not None:
        frames = [f for f in frames if within in f.filename] or frames
    if not frames:
        return "?"
    f = frames[-1]
    name = f.filename
    with contextlib.suppress(ValueError):
        name = str(Path(f.filename).relative_to(ROOT))
    return f"{name}:{f.lineno} in {f.name}"


def _empty(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def run_case(seed: int, work: Path) -> dict[str, Any]:
    _empty(work)
    stage = Stages()
    peak = _reset_peak()
    rss0 = _status().get("VmRSS", 0)
    start = time.perf_counter()
    cpu = time.process_time()
    record: dict[str, Any] = {"seed": seed, "outcome": "ok"}
    try:
        case = generate(seed, work)
        record["label"] = case.label
        record["mutations"] = case.mutations
        exercise(case, work, stage)
    except MemoryError as exc:
        record.update(_failure(exc, stage[0]), outcome="over-memory")
    except RecursionError as exc:  # its message and frames are long: keep the ends
        record.update(_failure(exc, stage[0]))
    except Exception as exc:
        record.update(_failure(exc, stage[0]))
    record["seconds"] = time.perf_counter() - start
    record["cpu"] = time.process_time() - cpu
    if record["outcome"] == "ok":
        stage.finish()
    record["command"], record["command_seconds"] = stage.slowest
    if record["outcome"] == "ok" and stage.slowest[1] > COMMAND_LIMIT:
        record.update(
            outcome="timeout",
            stage=stage.slowest[0],
            error=f"{stage.slowest[0]} took {stage.slowest[1]:.1f} s",
        )
    record["rss"] = max(0, _status().get("VmHWM", 0) - rss0) if peak else 0
    return record


def _failure(exc: BaseException, stage: str) -> dict[str, Any]:
    message = str(exc)
    return {
        "outcome": "internal-error",
        "stage": stage,
        "error": f"{type(exc).__name__}: {message[:300]}",
        "type": type(exc).__name__,
        "where": _frame(exc.__traceback__, "/compiler/"),
        "last": _frame(exc.__traceback__),
    }


# --- the worker pool -------------------------------------------------------------------------


def limit_memory() -> None:
    """At most MEMORY_LIMIT bytes of address space more than this process has now."""
    size = _status().get("VmSize", 0)
    if size:
        resource.setrlimit(resource.RLIMIT_AS, (size + MEMORY_LIMIT, size + MEMORY_LIMIT))


def _worker(conn: Connection, work: str) -> None:
    folder = Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    limit_memory()
    while True:
        try:
            seed = conn.recv()
        except EOFError:
            return
        if seed is None:
            return
        record = run_case(seed, folder)
        conn.send(record)
        if record["outcome"] == "over-memory":
            return  # a fresh worker rather than one whose heap may be in pieces


class Pool:
    def __init__(self, workers: int, tmp: Path) -> None:
        self.ctx = mp.get_context("fork")
        self.tmp = tmp
        self.slots: list[tuple[Any, Connection] | None] = [None] * workers
        self.started = 0

    def start(self, i: int) -> tuple[Any, Connection]:
        parent, child = self.ctx.Pipe()
        self.started += 1
        proc = self.ctx.Process(
            target=_worker, args=(child, str(self.tmp / f"w{i}-{self.started}")), daemon=True
        )
        proc.start()
        child.close()
        self.slots[i] = (proc, parent)
        return proc, parent

    def stop(self) -> None:
        for slot in self.slots:
            if slot is None:
                continue
            proc, conn = slot
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
            proc.join(1)
            if proc.is_alive():
                proc.kill()
                proc.join()


def run(
    seeds: list[int],
    workers: int,
    on_record: Any = None,
    time_limit: float = TIME_LIMIT,
) -> list[dict[str, Any]]:
    """Every seed's case in the pool; one record per case, in the order they finished."""
    records: list[dict[str, Any]] = []
    todo = list(reversed(seeds))
    with tempfile.TemporaryDirectory(prefix="yarch-fuzz-") as tmp:
        pool = Pool(max(1, workers), Path(tmp))
        busy: dict[int, tuple[int, float]] = {}  # slot -> (seed, started)
        try:

            def give(i: int) -> None:
                if not todo:
                    return
                slot = pool.slots[i] or pool.start(i)
                seed = todo.pop()
                try:
                    slot[1].send(seed)
                except (BrokenPipeError, OSError):
                    slot = pool.start(i)
                    slot[1].send(seed)
                busy[i] = (seed, time.monotonic())

            def finish(record: dict[str, Any]) -> None:
                records.append(record)
                if on_record is not None:
                    on_record(record)

            for i in range(len(pool.slots)):
                give(i)
            while busy:
                now = time.monotonic()
                deadline = min(started for _, started in busy.values()) + time_limit
                conns = {pool.slots[i][1]: i for i in busy}  # type: ignore[index]
                ready = wait(list(conns), timeout=max(0.0, deadline - now))
                for conn in ready:
                    i = conns[conn]  # type: ignore[index]
                    seed, started = busy.pop(i)
                    try:
                        record = conn.recv()  # type: ignore[union-attr]
                    except (EOFError, OSError):
                        proc = pool.slots[i][0]  # type: ignore[index]
                        proc.join(1)
                        code = proc.exitcode
                        record = {
                            "seed": seed,
                            "outcome": "crashed",
                            "seconds": time.monotonic() - started,
                            "rss": 0,
                            "error": f"worker exited with {code}",
                            "type": "WorkerDied",
                            "where": f"exit code {code}",
                            "stage": "?",
                        }
                        pool.slots[i] = None
                    else:
                        if record["outcome"] == "over-memory":
                            pool.slots[i][0].join(5)  # type: ignore[index]
                            pool.slots[i] = None
                    finish(record)
                    give(i)
                now = time.monotonic()
                for i, (seed, started) in list(busy.items()):
                    if now - started >= time_limit:
                        proc, conn = pool.slots[i]  # type: ignore[misc]
                        proc.kill()
                        proc.join()
                        conn.close()
                        pool.slots[i] = None
                        del busy[i]
                        finish(
                            {
                                "seed": seed,
                                "outcome": "timeout",
                                "seconds": now - started,
                                "rss": 0,
                            }
                        )
                        give(i)
        finally:
            pool.stop()
    return records


# --- the command line ------------------------------------------------------------------------


def case_seeds(seed: int, cases: int) -> list[int]:
    """Seeds of a run: disjoint between runs of different --seed (up to 10**9 cases each)."""
    return [seed * 1_000_000_000 + i for i in range(cases)]


def report(records: list[dict[str, Any]], elapsed: float, out: Any = sys.stdout) -> int:
    counts = Counter(r["outcome"] for r in records)
    failures = [r for r in records if r["outcome"] != "ok"]
    print(f"cases run: {len(records)}", file=out)
    for outcome in OUTCOMES:
        print(f"  {outcome}: {counts.get(outcome, 0)}", file=out)
    if records:
        slow = max(records, key=lambda r: r["seconds"])
        command = max(records, key=lambda r: r.get("command_seconds", 0.0))
        big = max(records, key=lambda r: r.get("rss", 0))
        over = sum(r["seconds"] > COMMAND_LIMIT for r in records)
        print(
            f"slowest command: {command.get('command_seconds', 0.0):.2f} s "
            f"({command.get('command') or '?'}, seed {command['seed']})",
            file=out,
        )
        print(f"slowest case: {slow['seconds']:.2f} s (seed {slow['seed']})", file=out)
        print(f"cases over {COMMAND_LIMIT:g} s in all: {over}", file=out)
        print(f"largest memory: {big.get('rss', 0) / 2**20:.1f} MiB (seed {big['seed']})", file=out)
        print(f"throughput: {len(records) / elapsed:.1f} cases/s ({elapsed:.1f} s)", file=out)
        cpu = sum(r.get("cpu", r["seconds"]) for r in records)
        print(f"processor time: {1000 * cpu / len(records):.1f} ms a case", file=out)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in failures:
        groups.setdefault((r["outcome"], r.get("type"), r.get("where")), []).append(r)
    if groups:
        print(f"\n{len(failures)} failures, {len(groups)} distinct:", file=out)
    for (outcome, _, where), rs in sorted(groups.items(), key=lambda g: -len(g[1])):
        seeds = sorted(r["seed"] for r in rs)
        first = next(r for r in rs if r["seed"] == seeds[0])
        print(f"- {outcome} x{len(rs)}: {first.get('error', '')[:160]}", file=out)
        if where:
            print(f"    at {where} (stage {first.get('stage')})", file=out)
        if first.get("last") and first["last"] != where:
            print(f"    last frame {first['last']}", file=out)
        print(
            f"    seeds: {' '.join(map(str, seeds[:5]))}{' ...' if len(rs) > 5 else ''}", file=out
        )
    return 1 if failures else 0


def save_failures(records: list[dict[str, Any]], folder: Path) -> None:
    for r in records:
        if r["outcome"] == "ok":
            continue
        where = folder / str(r["seed"])
        where.mkdir(parents=True, exist_ok=True)
        case = generate(r["seed"], where)
        write_files(case_files(case, random.Random(case.seed ^ 0x5EED)), where)
        info = {**r, "overrides": repr(case.overrides), "scale": case.scale}
        (where / "record.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def replay(seed: int) -> int:
    """One case in this process, with the whole traceback: no time limit, the memory limit."""
    with tempfile.TemporaryDirectory(prefix="yarch-replay-") as tmp:
        folder = Path(tmp)
        case = generate(seed, folder)
        files = case_files(case, random.Random(case.seed ^ 0x5EED))
        print(f"seed {seed}: {case.label}, mutations {', '.join(case.mutations)}")
        if case.overrides or case.scale:
            print(f"overrides {case.overrides!r}, scale {case.scale!r}")
        for name, text in files.items():
            shown = text if len(text) < 3000 else text[:3000] + f"\n... ({len(text)} characters)"
            print(f"--- {name}\n{shown}")
        stage = Stages()
        limit_memory()
        start = time.perf_counter()
        try:
            exercise(case, folder, stage)
        except Exception:
            traceback.print_exc()
            print(f"failed in stage {stage[0]} after {time.perf_counter() - start:.2f} s")
            return 1
        stage.finish()
        name, seconds = stage.slowest
        print(f"ok in {time.perf_counter() - start:.2f} s; slowest command {name}: {seconds:.2f} s")
        return 0 if seconds <= COMMAND_LIMIT else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None, help="[default: random]")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--save-failures", type=Path, default=None, metavar="DIR")
    parser.add_argument("--replay", type=int, default=None, metavar="SEED")
    parser.add_argument("--progress", type=int, default=0, metavar="N", help="report every N")
    args = parser.parse_args(argv)
    if args.replay is not None:
        return replay(args.replay)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"fuzz: {args.cases} cases from seed {seed} on {args.workers} workers", flush=True)
    start = time.monotonic()
    done = [0]

    def progress(record: dict[str, Any]) -> None:
        done[0] += 1
        if record["outcome"] != "ok":
            print(
                f"seed {record['seed']}: {record['outcome']} {record.get('error', '')}"
                f"{' at ' + record['where'] if record.get('where') else ''}",
                flush=True,
            )
        if args.progress and done[0] % args.progress == 0:
            rate = done[0] / (time.monotonic() - start)
            print(f"... {done[0]} cases, {rate:.1f} cases/s", flush=True)

    records = run(case_seeds(seed, args.cases), args.workers, progress)
    code = report(records, time.monotonic() - start)
    if args.save_failures is not None:
        save_failures(records, args.save_failures)
    return code


if __name__ == "__main__":
    sys.exit(main())
