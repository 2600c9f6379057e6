"""Resource limits before allocation: specs that would take minutes or gigabytes to resolve or
build are refused from their counts, within a second and a few MB."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from compiler import lint_text
from compiler.limits import MAX_LAYERS

from .conftest import ROOT, measured

BLOCKS = "".join(f"  B{i}:\n    layers: [B{i - 1}, B{i - 1}]\n" for i in range(1, 31))

HUGE = {
    # (spec, the code, the line it points at)
    "repeat 10**9": ("input: [3, 8, 8]\nlayers:\n  - relu: {repeat: 1000000000}\n", 3),
    "nested repeats": (
        "input: [3, 8, 8]\nblocks:\n  R:\n    layers:\n      - relu: {repeat: 1000}\n"
        "layers:\n  - R: {repeat: 1000}\n",
        7,
    ),
    # a repeat written as an expression is only known when it expands: its first copy tells
    "repeat from a parameter": (
        "input: [3, 8, 8]\nparams: {n: 1000}\nblocks:\n  R:\n    layers:\n"
        "      - relu: {repeat: 1000}\nlayers:\n  - R: {repeat: $n}\n",
        2,  # the diagnostic points at the value to change: the parameter's
    ),
    "blocks doubling 30 times": (
        "input: [3, 8, 8]\nblocks:\n  B0:\n    layers: [relu]\n" + BLOCKS + "layers: [B30]\n",
        65,
    ),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_expansions_are_refused_before_expanding(name):
    text, line = HUGE[name]
    result, seconds, peak = measured(lambda: lint_text(text, "huge.yaml"))
    codes = [(d.code, d.span.line if d.span else None) for d in result.diagnostics if d.is_error]
    assert codes == [("too-many-layers", line)], result.diagnostics
    assert f"the limit is {MAX_LAYERS:,}" in result.diagnostics[0].message
    assert seconds < 1 and peak < 8 * 2**20, (seconds, peak)


def test_a_spec_at_the_limit_still_resolves_and_one_more_layer_is_refused():
    rest = MAX_LAYERS - 100_000
    text = (
        f"input: [3, 8, 8]\nlayers:\n  - relu: {{repeat: 100000}}\n  - relu: {{repeat: {rest}}}\n"
    )
    result = lint_text(text)
    assert not result.errors and len(result.graph.order) == MAX_LAYERS + 1  # and the input
    over = lint_text(text.replace(f"repeat: {rest}", f"repeat: {rest + 1}"))
    assert [d.code for d in over.diagnostics] == ["too-many-layers"]


SPEC_1E12 = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 1000000000000, kernel: 3}\n"


def test_lint_warns_when_a_model_is_over_the_budget():
    result = lint_text(SPEC_1E12, "wide.yaml")
    (d,) = result.diagnostics
    assert d.code == "over-budget" and not d.is_error and d.span.line == 3
    assert "28,000,000,000,000 parameters (101.9 TiB) exceed the 2,000,000,000 allowed" in (
        d.message
    )


def test_build_refuses_a_model_over_the_budget_before_allocating():
    pytest.importorskip("torch")
    import compiler

    spec = {"input": [3, 8, 8], "layers": [{"conv": {"out": 10**12, "kernel": 3}}]}

    def attempt():
        with pytest.raises(compiler.SpecError, match="exceed the 2,000,000,000 allowed"):
            compiler.build(spec)

    compiler.build({"input": [1], "layers": [{"linear": 1}]})  # torch imported, outside timing
    _, seconds, peak = measured(attempt)
    assert seconds < 1 and peak < 8 * 2**20, (seconds, peak)


def test_build_budget_is_an_argument():
    pytest.importorskip("torch")
    import compiler

    spec = {"input": [3, 32, 32], "layers": ["flatten", {"linear": 1000}]}  # 3,073,000 params
    with pytest.raises(compiler.SpecError, match=r"3,073,000 parameters .* exceed the 1,000,000"):
        compiler.build(spec, max_params=1_000_000)
    with pytest.raises(compiler.SpecError, match="layer outputs of one sample take"):
        compiler.build(spec, max_activation_bytes=1024)
    model = compiler.build(spec, max_params=4_000_000)
    assert sum(p.numel() for p in model.parameters()) == 3_073_000


def test_cli_refuses_a_huge_repeat_quickly(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE["repeat 10**9"][0])
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "compiler", "lint", "--format", "concise", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 1 and "error[too-many-layers]" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert time.perf_counter() - started < 10  # a whole process, imports included
