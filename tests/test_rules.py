"""One failing and one passing fixture per diagnostic code, under `tests/fixtures/rules/<code>/`.

In `fail.yaml`, every line where a diagnostic is expected ends with a YAML comment naming it:
`# error: <code>` or `# warning: <code>` (several on one line: `# error: a, b`). The diagnostics
`lint_file` reports, as (code, severity, line of the span's start), must be exactly the marked
ones. `pass.yaml` is the smallest correction of `fail.yaml` and must lint with no diagnostics.
Markers are read from the raw bytes decoded with `errors="replace"`, so the `invalid-encoding`
fixture (which holds a byte that is not UTF-8) can carry one too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.codes import WITH_FIXTURES

FIXTURES = Path(__file__).parent / "fixtures" / "rules"

# Every diagnostic code with a fixture pair: the registry's, but for the few it says are tested
# elsewhere (tests/test_codes.py checks those)
CODES = list(WITH_FIXTURES)

Triple = tuple[str, str, int]  # (code, severity, line)

MARKER = re.compile(r"#\s*(error|warning):\s*([a-z][a-z0-9-]*(?:\s*,\s*[a-z][a-z0-9-]*)*)\s*$")


def markers(path: Path) -> set[Triple]:
    """The (code, severity, line) triples marked in a fixture."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    out: set[Triple] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            severity, codes = match.groups()
            out |= {(code.strip(), severity, number) for code in codes.split(",")}
    return out


def reported(path: Path) -> set[Triple]:
    result = lint_file(path)
    out: set[Triple] = set()
    for d in result.diagnostics:
        assert d.span is not None, f"{path}: `{d.code}` has no position: {d.message}"
        out.add((d.code, d.severity.value, d.span.line))
    return out


def show(triples: set[Triple]) -> str:
    return (
        ", ".join(
            f"{line}: {sev}[{code}]"
            for code, sev, line in sorted(triples, key=lambda t: (t[2], t[0]))
        )
        or "nothing"
    )


def test_every_code_has_fixtures() -> None:
    assert len(CODES) == len(set(CODES)), "the registry lists a code twice"
    dirs = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert dirs == set(CODES), (
        "fixture folders of no registered code (or of one marked `no_fixture`): "
        f"{sorted(dirs - set(CODES))}; "
        f"registered codes without a fixture folder: {sorted(set(CODES) - dirs)}"
    )
    for code in CODES:
        for kind in ("fail", "pass"):
            assert (FIXTURES / code / f"{kind}.yaml").is_file(), f"{code}/{kind}.yaml is missing"


@pytest.mark.parametrize("code", CODES)
def test_fail_fixture(code: str) -> None:
    path = FIXTURES / code / "fail.yaml"
    want = markers(path)
    assert any(c == code for c, _, _ in want), f"{path} marks no `{code}`"
    assert {c for c, _, _ in want} <= set(CODES), f"{path} marks a code with no fixtures"
    got = reported(path)
    assert got == want, (
        f"{path}\n  marked:   {show(want)}\n  reported: {show(got)}\n"
        f"  missing:  {show(want - got)}\n  extra:    {show(got - want)}"
    )


@pytest.mark.parametrize("code", CODES)
def test_pass_fixture(code: str) -> None:
    path = FIXTURES / code / "pass.yaml"
    assert not markers(path), f"{path} has diagnostic markers; a pass fixture must lint clean"
    result = lint_file(path)
    assert not result.diagnostics, "\n".join(
        f"{path}:{d.span.line if d.span else '?'}: {d.severity.value}[{d.code}] {d.message}"
        for d in result.diagnostics
    )


def test_an_average_pool_padded_same_is_caught_where_torch_cannot_build_it(tmp_path) -> None:
    """Keras averages `same` padding over the image pixels only; PyTorch's pools cannot, so
    build refuses it: lint says so first, and lets through a `same` that pads nothing."""
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [3, 9, 9]\nlayers:\n  - avgpool: {kernel: 2, padding: same}\n")
    (d,) = lint_file(spec).diagnostics
    assert (d.code, d.span.line, d.span.column) == ("pool-padding", 3, 35)
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - avgpool: {kernel: 2, padding: same}\n")
    assert lint_file(spec).diagnostics == []
