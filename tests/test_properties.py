"""Property-based tests (hypothesis), with the strategies of `tests/strategies.py`.

- A random valid spec lints with no diagnostics at all, its inferred output shapes are the ones
  the generator computed on its own, `compiler.build` compiles it, a forward pass gives exactly
  those shapes, the summary counts the module's parameters, and the generated code, given the
  built module's state_dict, computes exactly the same outputs.
- A mutated spec (a library spec or a generated one, broken in one to three ways) never makes
  `lint_file` or `lint_text` raise; when it still lints clean, `compiler.build` raises nothing but
  `SpecError` and the module runs (on the meta device: shapes only) with the inferred shapes;
  the command line answers with exit code 0, 1 or 2 and never a traceback.

Profiles: `ci` (the default: derandomized, so CI is deterministic, no example database, no
shrinking) runs 2,050 examples; `fuzz` (`YARCH_FUZZ=1` or `HYPOTHESIS_PROFILE=fuzz`, `make fuzz`)
runs 25 times as many (`YARCH_FUZZ_SCALE=N` for N times), random, shrinks what fails and keeps it
in `.hypothesis/`. The number of examples each test ran is printed at the end of the session.

Bugs these tests found keep their failing example as a regression test at the end of this
file (an open one would be pinned there by an `xfail(strict=True)` test, and recognised by the
property tests until fixed; none is open).
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import Phase, event, given, note, settings
from hypothesis import strategies as st

from compiler import lint_text
from compiler.cli import cli
from compiler.pipeline import lint_file

from .strategies import LIBRARY, SPECS, Generated, Mutant, mutants, valid_specs

# --- profiles and example counts ----------------------------------------------------------------

settings.register_profile(
    "ci",
    deadline=None,  # a shared CI machine: timing is not what these tests are about
    derandomize=True,  # the same examples on every run
    database=None,  # nothing written to .hypothesis/
    print_blob=True,
    # no shrinking: a failing example of a whole network can take hypothesis its full five
    # minutes to shrink; CI reports the example as found (its spec is in the failure's notes),
    # and `make fuzz` or the printed blob shrinks it on a developer's machine
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
settings.register_profile("fuzz", deadline=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "fuzz" if os.environ.get("YARCH_FUZZ", "") not in ("", "0") else "ci"
)
# examples per test in the ci profile; `fuzz` multiplies them by SCALE (2,050 -> 51,250), or
# by YARCH_FUZZ_SCALE
SCALE = int(os.environ.get("YARCH_FUZZ_SCALE", "25")) if PROFILE == "fuzz" else 1
COUNTS = {
    "valid": 300,
    "optimize": 100,
    "mutant_lint": 1250,
    "cli": 150,
    "generated_mutant": 250,
}
RAN: collections.Counter[str] = collections.Counter()
# a forward pass on the meta device costs about 0.5 ms a layer (PyTorch's Python meta kernels):
# only for clean mutants of the smaller specs (AlexNet, VGG, ResNet-18, the posts' nets, the
# generated ones); in the fuzz profile the GoogLeNets and ResNet-50 alone would add 6 minutes
META_FORWARD_NODES = 80


def profile(test: str, **kwargs: Any) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples=COUNTS[test] * SCALE, **kwargs)


class _ExampleReport:
    """Prints how many examples each test ran, after pytest's own summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not RAN:
            return
        tr = terminalreporter
        tr.write_sep("-", f"hypothesis examples run (profile {PROFILE})")
        for name, n in sorted(RAN.items()):
            tr.write_line(f"{n:>8,}  {name}")
        tr.write_line(f"{sum(RAN.values()):>8,}  in total")


@pytest.fixture(scope="module", autouse=True)
def _report_examples(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("yarch-hypothesis-examples"):
        manager.register(_ExampleReport(), "yarch-hypothesis-examples")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    """The networks are tiny: torch's intra-op threads cost far more than they save (a forward
    pass takes 50 ms with two threads on a busy 2-core machine, 3 ms with one)."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@pytest.fixture(scope="module")
def library_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """specs/ copied, so that a mutant can sit next to the files it `extends:`."""
    root = tmp_path_factory.mktemp("library") / "specs"
    shutil.copytree(SPECS, root)
    return root


# --- helpers ------------------------------------------------------------------------------------


def _render(result: Any) -> str:
    return "\n".join(f"{d.code}: {d.message}" for d in result.diagnostics)


def _outputs(out: Any) -> tuple:
    return tuple(out) if isinstance(out, tuple) else (out,)


def _load_generated(source: str, class_name: str) -> type:
    namespace: dict[str, Any] = {"__name__": "yarch_generated"}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace[class_name]


def _place(m: Mutant, root: Path) -> Path:
    """Write the mutant into the copy of the library; returns the file to lint."""
    for rel, data in m.files().items():
        (root / rel).write_bytes(data)
    return root / m.entry


def _unplace(m: Mutant, root: Path) -> None:
    for rel in m.files():
        (root / rel).unlink(missing_ok=True)


def _check_diagnostics(result: Any) -> None:
    for d in result.diagnostics:
        assert d.code and d.message, d
        assert d.severity is not None
        assert d.span is None or (d.span.line >= 1 and d.span.column >= 1), d


# --- valid specs --------------------------------------------------------------------------------


# PyTorch's own note on a `same`-padded conv with an even kernel, not a problem
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@profile("valid")
@given(gen=valid_specs())
def test_valid_spec_lints_clean_builds_runs_and_generates_equal_code(
    gen: Generated, workdir: Path
) -> None:
    torch = pytest.importorskip("torch")
    import compiler
    from compiler.codegen import codegen_file
    from compiler.summary import summarize

    RAN["valid specs: lint, build, forward, codegen"] += 1
    note(gen.text)
    result = lint_text(gen.text, "gen.yaml")
    assert result.diagnostics == [], _render(result)
    graph = result.graph
    assert graph is not None
    static = {name: graph.node(node_id).shape for name, node_id in graph.outputs.items()}
    assert static == gen.outputs  # yarch's shape inference agrees with the generator's
    assert set(graph.train_only) == gen.train_only

    path = workdir / "gen.yaml"
    path.write_text(gen.text, encoding="utf-8")
    torch.manual_seed(0)
    model = compiler.build(path).eval()
    assert summarize(graph).total_params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, *gen.input_shape)
    with torch.no_grad():
        outs = _outputs(model(x))
    assert len(outs) == len(static)
    for (name, shape), y in zip(static.items(), outs, strict=True):
        if name in gen.train_only:
            assert y is None, name  # computed in train() mode only
        else:
            assert tuple(y.shape) == (2, *shape), name
            assert torch.isfinite(y).all(), name  # small nets, random weights: no inf, no nan

    source = codegen_file(result, "gen.yaml")
    generated = _load_generated(source, graph.model_class)()
    built_state = model.state_dict()
    assert [(k, tuple(v.shape)) for k, v in generated.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in built_state.items()
    ]
    generated.load_state_dict(built_state, strict=True)
    with torch.no_grad():
        again = _outputs(generated.eval()(x))
    for name, a, b in zip(static, outs, again, strict=True):
        assert (a is None and b is None) or torch.equal(a, b), name

    if gen.train_only:  # the training-only outputs, in train() mode
        model.train()
        with torch.no_grad():
            outs = _outputs(model(x))
        for (name, shape), y in zip(static.items(), outs, strict=True):
            assert tuple(y.shape) == (2, *shape), name


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@profile("optimize")
@given(gen=valid_specs())
def test_optimized_model_computes_the_same(gen: Generated, workdir: Path) -> None:
    """`compiler.optimize(model, "inference")` (dropout removed, batch norm folded, channels
    last) gives the plain model's outputs, with random batch-norm statistics."""
    torch = pytest.importorskip("torch")
    import compiler

    RAN["valid specs: optimize"] += 1
    note(gen.text)
    path = workdir / "opt.yaml"
    path.write_text(gen.text, encoding="utf-8")
    torch.manual_seed(1)
    model = compiler.build(path)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    model.eval()
    fast = compiler.optimize(model, "inference")
    x = torch.randn(2, *gen.input_shape)
    with torch.no_grad():
        want, got = _outputs(model(x)), _outputs(fast(x))
    for a, b in zip(want, got, strict=True):
        if a is None:
            assert b is None
            continue
        tol = 1e-4 * max(1.0, a.abs().max().item())
        assert torch.allclose(a, b, rtol=1e-4, atol=tol), (a - b).abs().max()


# --- mutants ------------------------------------------------------------------------------------


def _build_on_meta(path: Path, result: Any) -> None:
    """`compiler.build` of a spec that linted clean: SpecError or a module; on the meta device
    (no memory, no arithmetic), a forward pass gives the inferred shapes."""
    torch = pytest.importorskip("torch")
    import compiler

    graph = result.graph
    sizes = [math.prod(n.shape) for n in graph.nodes() if n.shape]
    params = sum(n.params for n in graph.nodes())
    if max(sizes, default=0) > 2**40 or params > 2**40:
        event("clean mutant: too large to build")
        return
    with torch.device("meta"):
        try:
            model = compiler.build(path)
        except compiler.SpecError:
            event("clean mutant: SpecError from build")
            return
    if len(graph.order) > META_FORWARD_NODES:
        event("clean mutant: built (too many layers to run on meta)")
        return
    model.eval()
    x = torch.empty(2, *graph.input_shape, device="meta")
    with torch.no_grad():
        outs = _outputs(model(x))
    for (name, node_id), y in zip(graph.outputs.items(), outs, strict=True):
        if name in graph.train_only:
            assert y is None, name
        else:
            assert tuple(y.shape) == (2, *graph.node(node_id).shape), name
    event("clean mutant: built and ran")


def _lint_mutant(m: Mutant, library_copy: Path) -> None:
    note(f"{m.source}: {m.ops}\n{m.data!r}")
    event(f"mutant of {m.source}")
    for op in m.ops:
        event(f"mutation: {op}")
    path = _place(m, library_copy)
    try:
        result = lint_file(path, display="mutant.yaml")  # any exception fails the test
        _check_diagnostics(result)
        text = m.text
        if m.variant is None and text is not None and "extends" not in text:
            # a file and its text lint alike
            same = lint_text(text, "mutant.yaml")
            _check_diagnostics(same)
            assert [(d.code, d.message, d.span) for d in same.diagnostics] == [
                (d.code, d.message, d.span) for d in result.diagnostics
            ]
        if result.errors or result.graph is None:
            event("mutant has errors")
            return
        _build_on_meta(path, result)
    finally:
        _unplace(m, library_copy)


@profile("mutant_lint")
@given(m=mutants(generated=0))
def test_mutated_library_spec_never_crashes(m: Mutant, library_copy: Path) -> None:
    RAN["library mutants: lint (+ build when clean)"] += 1
    _lint_mutant(m, library_copy)


@profile("generated_mutant")
@given(m=mutants(generated=1))
def test_mutated_generated_spec_never_crashes(m: Mutant, library_copy: Path) -> None:
    RAN["generated mutants: lint (+ build when clean)"] += 1
    _lint_mutant(m, library_copy)


COMMANDS = st.sampled_from(
    [
        ["lint", "--format", "text"],
        ["lint", "--format", "json"],
        ["lint", "--format", "concise", "--strict"],
        ["lint", "--format", "github"],
        ["summary"],
        ["summary", "--format", "json"],
        ["summary", "--format", "markdown", "--depth", "0"],
        ["codegen"],
        ["draw", "--format", "dot"],
        ["diff"],
    ]
)


@profile("cli")
@given(m=mutants(), command=COMMANDS)
def test_cli_on_mutants_never_shows_a_traceback(
    m: Mutant, command: list[str], library_copy: Path, workdir: Path
) -> None:
    RAN["mutants through the CLI"] += 1
    note(f"{m.source}: {m.ops}\n{m.data!r}")
    path = _place(m, library_copy)
    args = [*command, str(path)]
    if command[0] == "draw":
        args += ["-o", str(workdir / "mutant.dot")]
    if command[0] == "diff":  # against the spec it came from
        original = library_copy / m.source if m.source in LIBRARY else path
        args = ["diff", str(original), str(path)]
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        _unplace(m, library_copy)
    event(f"yarch {command[0]}: exit {result.exit_code}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    if command[:3] == ["lint", "--format", "json"]:
        report = json.loads(result.stdout)
        assert report["errors"] == sum(d["severity"] == "error" for d in report["diagnostics"])
        assert (report["errors"] > 0) == (result.exit_code != 0)


# --- bugs found by these tests: regression tests (xfail(strict=True) while one is open) --------


@pytest.mark.parametrize(
    "layers",
    [
        ["flatten", {"linear": 10}, {"softmax": 2}],  # a vector has one dimension
        [{"flatten": 2}, {"softmax": 3}],  # a 3x64 matrix has two
    ],
    ids=["vector-dim2", "matrix-dim3"],
)
def test_softmax_dim_beyond_the_rank_is_an_error(layers: list[Any], workdir: Path) -> None:
    """Found by the mutants: `softmax: {dim: d}` was not checked against its input's rank; the
    spec linted clean, then forward raised IndexError (compiler/ops/activation.py)."""
    torch = pytest.importorskip("torch")
    import yaml

    text = yaml.safe_dump({"input": [3, 8, 8], "layers": layers}, sort_keys=False)
    result = lint_text(text, "softmax.yaml")
    assert [d.code for d in result.diagnostics] == ["rank-mismatch"]
    span = result.diagnostics[0].span  # at the dim as written
    assert span is not None
    line = text.splitlines()[span.line - 1]
    assert line[span.column - 1 : span.end_column - 1] == str(layers[-1]["softmax"])
    # and PyTorch does fail on it
    softmax = torch.nn.Softmax(dim=layers[-1]["softmax"])
    x = torch.randn(2, 10) if len(layers) == 3 else torch.randn(2, 3, 64)
    with pytest.raises(IndexError):
        softmax(x)


@pytest.mark.parametrize(
    "pool",
    [
        {"kernel": 3, "stride": 1, "dilation": 2, "padding": 2},
        {"kernel": 2, "stride": 1, "dilation": 3, "padding": 2},
    ],
    ids=["k3-d2-p2", "k2-d3-p2"],
)
def test_pool_padding_beyond_half_the_kernel(pool: dict[str, int], workdir: Path) -> None:
    torch = pytest.importorskip("torch")
    import yaml

    text = yaml.safe_dump({"input": [1, 8, 8], "layers": [{"maxpool": pool}]}, sort_keys=False)
    result = lint_text(text, "pool.yaml")
    assert [d.code for d in result.diagnostics] == ["pool-padding"]
    # which PyTorch does reject
    with pytest.raises(RuntimeError, match="pad should be smaller than or equal to half"):
        torch.nn.functional.max_pool2d(
            torch.randn(2, 1, 8, 8), pool["kernel"], 1, pool["padding"], pool["dilation"]
        )


def test_optimize_folds_two_batch_norms(workdir: Path) -> None:
    """Found by test_optimized_model_computes_the_same: conv -> bn -> bn folds twice into the
    conv, and the second fold started again from the original conv weights (compiler/passes.py,
    _fold_weights), losing the first batch norm."""
    torch = pytest.importorskip("torch")
    import compiler

    path = workdir / "two_bn.yaml"
    path.write_text("input: [2, 5, 5]\nlayers:\n  - conv: {out: 2, kernel: 1}\n  - bn\n  - bn\n")
    torch.manual_seed(0)
    model = compiler.build(path)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(2, 2, 5, 5)
    with torch.no_grad():
        assert torch.allclose(model(x), compiler.optimize(model, "inference")(x), atol=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        "input: [3, 8, 8]\nlayers:\n  - seq: [[relu]]\n",
        "input: [3, 8, 8]\nlayers:\n  - seq: {layers: [conv: {out: 4, kernel: 1}, [1, 2]]}\n",
    ],
    ids=["seq-primary", "seq-layers"],
)
def test_list_as_a_layer_of_a_seq_is_an_error(text: str) -> None:
    """Found by the library mutants: a list written as a layer of a `seq` made lint raise
    TypeError (unhashable type) in check_size (compiler/limits.py)."""
    result = lint_text(text, "seq.yaml")
    assert [d.code for d in result.diagnostics] == ["invalid-layer"]


@pytest.mark.parametrize("block", ["user", "seq"])
def test_unreachable_block_instance_builds(block: str, workdir: Path) -> None:
    """Found by the library mutants: a block instance that reaches no output (only the
    `unreachable-node` warning) made compiler.build and codegen raise KeyError in
    compiler/lower.py (_forward of a container none of whose nodes is live)."""
    pytest.importorskip("torch")
    import compiler

    text = {
        "user": "input: [3, 8, 8]\n"
        "blocks:\n  B:\n    layers: [conv: {out: 4, kernel: 1}, relu]\n"
        "layers:\n  - conv: {name: c, out: 4, kernel: 1}\n  - B: {name: b, from: c}\n"
        "  - relu: {from: c}\n",
        "seq": "input: [3, 8, 8]\n"
        "layers:\n  - conv: {name: c, out: 4, kernel: 1}\n"
        "  - seq: {name: b, from: c, layers: [relu]}\n  - relu: {from: c}\n",
    }[block]
    result = lint_text(text, "dead.yaml")
    assert [d.code for d in result.diagnostics] == ["unreachable-node"]
    path = workdir / "dead.yaml"
    path.write_text(text)
    compiler.build(path)


@pytest.mark.parametrize("shape", [[256], [1, 256], [2, 128]], ids=str)
def test_reshape_with_a_number_for_the_batch(shape: list[int], workdir: Path) -> None:
    """Found by the mutants: a reshape whose first (batch) dimension is a number passed lint
    when that number times the rest equalled one sample's values, and its inferred shape
    dropped the number (compiler/ops/linear.py, Reshape.infer); the module then ran only on a
    batch of that size."""
    torch = pytest.importorskip("torch")
    import yaml

    text = yaml.safe_dump({"input": [1, 16, 16], "layers": [{"reshape": shape}]})
    result = lint_text(text, "reshape.yaml")
    assert [d.code for d in result.diagnostics] == ["reshape-batch"]
    assert f"fixes the batch size at {shape[0]}" in result.diagnostics[0].message
    with pytest.raises(RuntimeError):  # PyTorch on a batch of 2
        torch.randn(2, 1, 16, 16).reshape(*shape)


@pytest.mark.parametrize("blocks", ["x", "[1]"])
def test_variant_of_a_base_with_broken_blocks(blocks: str, workdir: Path) -> None:
    """Found by the library mutants: a variant of a base whose `blocks:` is not a mapping made
    lint raise AttributeError in Merge.run (compiler/variants.py)."""
    folder = workdir / f"broken_blocks_{len(blocks)}"
    folder.mkdir(exist_ok=True)
    (folder / "base.yaml").write_text(f"input: [3, 8, 8]\nblocks: {blocks}\nlayers: [relu]\n")
    (folder / "variant.yaml").write_text("extends: base.yaml\nname: variant\n")
    assert lint_file(folder / "base.yaml").errors
    result = lint_file(folder / "variant.yaml")
    assert "invalid-value" in [d.code for d in result.diagnostics]


@pytest.mark.parametrize("padding", ["same", 1])
def test_maxpool_window_reads_only_padding(padding: Any, workdir: Path) -> None:
    """Found by the valid-spec generator: a dilated `maxpool` could place a window on padding
    only (kernel 2, dilation 2 on a 1x1 map reads the positions -1 and +1), whose output is
    -inf, and lint said nothing (compiler/ops/pool.py)."""
    import yaml

    pool = {"kernel": 2, "stride": 1, "padding": padding, "dilation": 2}
    text = yaml.safe_dump({"input": [1, 1, 1], "layers": [{"maxpool": pool}]}, sort_keys=False)
    result = lint_text(text, "window.yaml")
    assert [d.code for d in result.diagnostics] == ["pool-padding"]
    assert "reading padding only" in result.diagnostics[0].message


def test_blind_pool_windows_are_exactly_those_pytorch_fills_with_minus_infinity() -> None:
    """`Window.blind` against PyTorch's max pool over every small case: sizes 1-11, kernels
    1-5, strides 1-3, dilations 1-4, every padding PyTorch takes, ceil mode, and `same`."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from compiler.ops.spatial import Window

    checked = blind_cases = 0
    for size, k, s, d in itertools.product(range(1, 12), range(1, 6), range(1, 4), range(1, 5)):
        paddings = [(p, c) for p in range(k // 2 + 1) for c in (False, True)] + [("same", False)]
        for p, ceil in paddings:
            win = Window((k, k), (s, s), p if p == "same" else (p, p), (d, d), ceil)
            if win.out_size(size, 0) <= 0:
                continue
            x = torch.randn(1, 1, size)
            if p == "same":
                left, right, _, _ = win.same_pads((size, size))
                y = F.max_pool1d(F.pad(x, (left, right), value=float("-inf")), k, s, 0, d)
            else:
                y = F.max_pool1d(x, k, s, p, d, ceil_mode=ceil)
            assert y.shape[-1] == win.out_size(size, 0)
            expected = torch.nonzero(torch.isinf(y[0, 0])).flatten().tolist()
            assert win.blind(size, 0) == expected, (size, k, s, p, d, ceil)
            checked += 1
            blind_cases += bool(expected)
    assert checked > 2000 and blind_cases > 50
