"""The registry of diagnostic codes: every code yarch can report, with its severity and what it
catches, in one place.

The README's table of codes is rendered from it (`make generate`, which runs
`python -m compiler.codes README.md`), the tests' list of codes with fixtures and the check of
`tests/fixtures/rules/` derive from it, and so do the codes shape inference names the sources
of (`RECEIVED`) and the codes that mean exit code 2 (`UNREADABLE`). A `Diagnostic` made with a
code that is not here, or at another severity, raises `UnregisteredCode`: a bug in yarch, which
`pipeline.lint_safely` reports as `internal-error` rather than a traceback.

A leaf module (it imports nothing from `compiler`; `diagnostics` imports it), cheap to import:
the lint path loads it on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# The values of `diagnostics.Severity` (a StrEnum, so they compare equal); the enum is not
# imported here because `diagnostics` imports this module.
Level = Literal["error", "warning"]
ERROR: Final = "error"
WARNING: Final = "warning"


class UnregisteredCode(Exception):
    """A diagnostic made with a code the registry does not have, or at a severity the registry
    does not give it: a bug in yarch, never the user's mistake. Deliberately not a ValueError,
    which a pydantic validator would turn into the user's `invalid-value`."""


@dataclass(frozen=True, slots=True)
class Code:
    code: str  # kebab-case, stable: scripts and editors match on it
    # what every emitting site reports it at; no code is reported at two severities today (the
    # static test in tests/test_codes.py checks the `error(...)`/`warning(...)` sites)
    severity: Level
    summary: str  # what it catches: the row of the README's table
    # about what a layer receives: shape inference names where the count was made, as related
    # spans (`shapes.RECEIVED`)
    received: bool = False
    # the input could not be read at all, or yarch failed on it: exit code 2, not 1
    # (`pipeline.UNREADABLE`)
    unreadable: bool = False
    # why it has no fixture pair in tests/fixtures/rules/<code>/, and the test file that covers
    # it instead; empty for every code that has one
    no_fixture: str = ""
    tested_in: str = ""
    # built at run time rather than written as a literal at its site, so the static test of
    # tests/test_codes.py cannot see it emitted (none is, today)
    dynamic: bool = False


# In the order of the README's table: roughly the pipeline's
_REGISTRY = (
    # reading the file
    Code(
        "unreadable-file",
        ERROR,
        "the path is missing, a folder, a named pipe or a device (exit code 2)",
        unreadable=True,
        no_fixture="it is about a path, not a file's content",
        tested_in="tests/test_robustness.py",
    ),
    Code(
        "internal-error",
        ERROR,
        "yarch itself failed on this file (a bug: please report it with the spec); the files "
        "after it are still linted (exit code 2)",
        unreadable=True,
        no_fixture="no spec should cause it",
        tested_in="tests/test_trust.py",
    ),
    Code("invalid-encoding", ERROR, "the file is not UTF-8 (exit code 2)", unreadable=True),
    # loading the YAML
    Code("empty-spec", ERROR, "nothing but comments and blank lines"),
    Code("yaml-syntax", ERROR, "the YAML does not parse"),
    Code(
        "duplicate-key", ERROR, "a key written twice in one mapping (YAML would keep only the last)"
    ),
    Code("not-a-mapping", ERROR, "the top level is a list or a single value"),
    Code(
        "yaml-tag",
        ERROR,
        "a YAML tag such as `!!python/object/apply:os.system`: refused, nothing is constructed",
    ),
    Code(
        "yaml-too-large",
        ERROR,
        'aliases that expand to more than 1,048,576 nodes ("billion laughs"), refused before '
        "expanding; a file over 2 MB, refused before reading",
    ),
    Code(
        "yaml-too-deep",
        ERROR,
        "nesting deeper than 100 levels, refused before the document is composed",
    ),
    Code(
        "too-many-layers",
        ERROR,
        "repeats or nested blocks that multiply out past 150,000 layers or 40,000 block "
        "instances (`seq`s and repeat groups included), refused from the counts before "
        "expanding; blocks, `seq`s and Inception modules nested more than 16 deep",
    ),
    Code(
        "ambiguous-yaml",
        ERROR,
        "a plain value YAML 1.1 reads otherwise than it looks: `no`/`on` (booleans), `010` (8), "
        "`12:30` (750), `1e3` (text); write `false`, `10`, or quote it",
    ),
    # the spec's fields and layers
    Code("unknown-field", ERROR, "a field the op or section does not have; names the closest ones"),
    Code("missing-field", ERROR, "a required field is absent (`conv` without `out`)"),
    Code(
        "invalid-value",
        ERROR,
        "a value of the wrong type or out of range (stride >= 1, padding >= 0, 0 <= dropout < "
        "1, ...); a name that is not a plain ASCII identifier of at most 32 characters, is a "
        "keyword or `l`/`O`/`I`, or starts with `_`",
    ),
    Code("invalid-layer", ERROR, "a layer that is not one op with its fields"),
    Code(
        "unknown-op",
        ERROR,
        "an op that is neither built in nor a block; names the closest (`conv2d` is `conv`)",
    ),
    # blocks, parameters, names and references
    Code(
        "invalid-block",
        ERROR,
        "a block named like a built-in op, a Python keyword or builtin, a name generated code "
        "uses (`self`, `nn`, `torch`, `F`, `super`), or not a plain ASCII identifier of at most "
        "32 characters (`ﬁlter` is `filter` to Python); a block parameter named like a layer "
        "field, a builtin or such a name",
    ),
    Code(
        "name-collision",
        WARNING,
        "two block types that are one class in generated code (`conv_bn` and `ConvBn` are both "
        "`ConvBn`), or a block named like the model's class or a block parameter: codegen "
        "numbers the second class (`ConvBn2`)",
    ),
    Code("recursive-block", ERROR, "a block that contains itself"),
    Code("unused-block", WARNING, "a block defined but never used"),
    Code("undefined-parameter", ERROR, "`$name` (or `--set name=`) that is not a parameter"),
    Code(
        "invalid-expression",
        ERROR,
        "`${...}` that is not a valid expression or cannot be evaluated",
    ),
    Code("duplicate-name", ERROR, "two layers with one name in the same scope"),
    Code("undefined-reference", ERROR, "`from:` or `outputs:` names no layer"),
    Code("cyclic-reference", ERROR, "layers that feed each other in a cycle"),
    Code(
        "wrong-inputs",
        ERROR,
        "an op given too few or too many inputs; a layer with several inputs given `repeat:` "
        "(each copy after the first reads only the copy before it)",
    ),
    Code(
        "hwc-input",
        WARNING,
        "an input written height, width, channels (`[224, 224, 3]`, as Keras does), where yarch "
        "reads [channels, height, width]",
    ),
    Code(
        "dropped-input",
        ERROR,
        "a layer of several inputs removed by `if:` stands for its first input, and another "
        "of its inputs is then read by nothing",
    ),
    Code(
        "invalid-suppression",
        WARNING,
        "a `# yarch: ignore[...]` comment that names no code, an unknown code, an error's "
        "(errors cannot be ignored) or one not reported on its line",
    ),
    # graph lint rules
    Code("unreachable-node", WARNING, "a layer whose result reaches no output"),
    Code(
        "over-budget",
        WARNING,
        "more than 2e9 parameters or 8 GiB of layer outputs per sample: `compiler.build` "
        "refuses it before allocating unless given `max_params=` / `max_activation_bytes=`",
    ),
    # shapes
    Code(
        "channel-mismatch",
        ERROR,
        "declared `in:` channels disagree with the inferred ones; the note says where they come "
        "from (`512 = 192 + 208 + 48 + 64`)",
        received=True,
    ),
    Code(
        "feature-mismatch",
        ERROR,
        "a `linear` whose declared `in:` disagrees with the features it receives",
        received=True,
    ),
    Code(
        "flatten-mismatch",
        ERROR,
        "a flatten whose features disagree with the `linear` after it (`12544 = 256 x 7 x 7`)",
        received=True,
    ),
    Code("unflattened-linear", ERROR, "a classifier applied to a map that was never flattened"),
    Code(
        "rank-mismatch",
        ERROR,
        "a conv, pool or norm applied to a vector; a softmax over a dimension its input lacks",
    ),
    Code(
        "invalid-groups",
        ERROR,
        "conv, group norm or channel_shuffle groups that do not divide its channels",
    ),
    Code(
        "empty-chunk",
        ERROR,
        "a `chunk` part that torch.chunk does not make (part 3 of 4 chunks of 6 channels: "
        "2 + 2 + 2)",
    ),
    Code(
        "split-mismatch",
        ERROR,
        "a `split` whose sizes do not add up to the dimension it splits",
    ),
    Code(
        "invalid-dims",
        ERROR,
        "a `permute` that is no order of its input's dimensions or moves the batch; a `mean` "
        "over dimensions its input lacks or over the batch",
    ),
    Code("concat-mismatch", ERROR, "concat inputs with different spatial sizes (or ranks)"),
    Code("add-mismatch", ERROR, "add inputs with different shapes", received=True),
    Code(
        "mul-mismatch",
        ERROR,
        "mul inputs whose shapes do not broadcast (a gate of 64 channels on a 128-channel map)",
        received=True,
    ),
    Code(
        "spatial-collapse",
        ERROR,
        "a map reduced to zero or below; says the smallest input that works",
    ),
    Code(
        "pool-padding",
        ERROR,
        "pooling padding larger than half the kernel (PyTorch rejects it); a dilated max pool "
        "window that reads padding only (-inf); an average pool's `padding: same` that pads "
        "(Keras's average over image pixels, which PyTorch cannot build)",
    ),
    Code(
        "stride-remainder",
        WARNING,
        "a stride that does not tile its input: real pixels are never read",
    ),
    Code(
        "reshape-batch",
        ERROR,
        "a reshape that folds positions into the batch (`x.view(-1, 1024)` on a 7x7 map) or "
        "fixes the batch size (`[1, 256]`)",
    ),
    Code("reshape-invalid", ERROR, "a reshape that cannot hold the values it is given"),
    Code("shape-mismatch", ERROR, "an `expect:` shape that disagrees with the inferred one"),
    # variants and scales
    Code("missing-base", ERROR, "`extends:` names a file that does not exist"),
    Code(
        "extends-cycle",
        ERROR,
        "specs that extend each other in a cycle, or a chain of more than 32 `extends`",
    ),
    Code(
        "override-target",
        ERROR,
        "`modify`, `replace`, `delete` or `insert` names a layer the base does not have; names "
        "the closest",
    ),
    Code(
        "unknown-scale",
        ERROR,
        "`--scale` names a row the spec's `scales` table does not have",
        no_fixture="it comes from the command line",
        tested_in="tests/test_variants.py",
    ),
)

CODES: Final[dict[str, Code]] = {c.code: c for c in _REGISTRY}
assert len(CODES) == len(_REGISTRY), "a code is registered twice"

RECEIVED: Final = frozenset(c.code for c in _REGISTRY if c.received)
UNREADABLE: Final = frozenset(c.code for c in _REGISTRY if c.unreadable)
WITH_FIXTURES: Final = tuple(c.code for c in _REGISTRY if not c.no_fixture)


def check(code: str, severity: str) -> None:
    """Raise `UnregisteredCode` unless `code` is registered at `severity`."""
    entry = CODES.get(code)
    if entry is None:
        raise UnregisteredCode(f"diagnostic code `{code}` is not registered in compiler/codes.py")
    if severity != entry.severity:
        raise UnregisteredCode(
            f"diagnostic code `{code}` is registered as {entry.severity}, not {severity}"
        )


# --- the README's section --------------------------------------------------------------------

BEGIN = "<!-- codes: generated from compiler/codes.py by `make generate`; do not edit -->"
END = "<!-- end of codes -->"


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def render() -> str:
    """The README's section between the markers: which codes have fixtures, and the table."""
    import textwrap  # only `make generate` and the tests render

    untested = [f"`{c.code}` ({c.no_fixture}: `{c.tested_in}`)" for c in _REGISTRY if c.no_fixture]
    intro = "Every code has a failing and a passing fixture in `tests/fixtures/rules/<code>/`" + (
        f", except {_series(untested)}." if untested else "."
    )
    lines = [
        textwrap.fill(intro, 100, break_long_words=False, break_on_hyphens=False),
        "",
        "| code | severity | what it catches |",
        "| --- | --- | --- |",
        *(f"| `{c.code}` | {c.severity} | {c.summary} |" for c in _REGISTRY),
    ]
    return "\n".join(lines)
