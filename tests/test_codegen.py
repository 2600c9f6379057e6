"""Generated code: equivalent to `compiler.build` (same state_dict, identical outputs), clean
under ruff, byte-identical across runs, free of absolute paths, reading as written by hand."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from pydantic import ValidationError

from compiler import lint_file
from compiler.codegen import codegen_file
from compiler.ops.base import OPS, Op, TorchCall

from .conftest import ROOT, SPECS

CLEAN = sorted(
    p for p in [*SPECS.glob("*.yaml"), *(SPECS / "posts").glob("*.yaml")] if not lint_file(p).errors
)


def _generate(path) -> str:
    return codegen_file(lint_file(path), str(path.relative_to(ROOT)))


def _load(source: str, tmp_path, name: str):
    file = tmp_path / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(f"generated_{name}", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name)
def test_generated_module_equals_build(path, tmp_path):
    torch = pytest.importorskip("torch")
    from compiler import torchbuild

    graph = lint_file(path).graph
    source = _generate(path)
    module = _load(source, tmp_path, graph.name)
    assert "compiler" not in source and "yarch import" not in source
    cls = getattr(module, torchbuild.class_name(graph.name))
    torch.manual_seed(0)
    generated = cls()
    built = torchbuild.build(path)
    got = [(k, tuple(v.shape)) for k, v in generated.state_dict().items()]
    assert got == [(k, tuple(v.shape)) for k, v in built.state_dict().items()]
    generated.load_state_dict(built.state_dict(), strict=True)
    generated.eval()
    built.eval()
    x = torch.randn(1, *graph.input_shape)
    with torch.no_grad():
        a, b = generated(x), built(x)
    if isinstance(a, tuple):
        assert a._fields == b._fields
        for name, u, v in zip(a._fields, a, b, strict=True):
            assert (u is None and v is None) or torch.equal(u, v), name
    else:
        assert torch.equal(a, b)


def test_generated_code_passes_ruff(tmp_path):
    for path in CLEAN:
        (tmp_path / f"{path.stem}.py").write_text(_generate(path))
    config = str(ROOT / "pyproject.toml")
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", "--config", config, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [*ruff, "format", "--check", "--config", config, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_same_bytes_every_run_and_no_absolute_paths():
    path = SPECS / "googlenet.yaml"
    first, second = _generate(path), _generate(path)
    assert first == second
    assert str(ROOT) not in first


def test_reads_as_hand_written():
    source = _generate(SPECS / "googlenet.yaml")
    assert "class Inception(nn.Module):" in source
    assert source.count("class Inception(") == 1  # one class, reused
    assert "self.inception4a = Inception(480, 192, (96, 208), (16, 48), 64)" in source
    assert "nn.Conv2d(ch3x3[0], ch3x3[1], kernel_size=3, padding=1)" in source
    assert "        # N x 832 x 7 x 7\n" in source
    assert "self.aux1 = AuxHead(512)" in source
    source = _generate(SPECS / "resnet50.yaml")
    assert "self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)" in source
    assert "class BottleneckDownsample(nn.Module):" in source


# --- per-op facts: the names of positional arguments --------------------------------------------


def _lowers_to_a_module(op) -> bool:
    return op.torch_module.__func__ is not Op.torch_module.__func__


def test_every_module_op_names_its_positional_arguments():
    # a block's constructor parameters are named after them (`conv_out_channels`); an op
    # without them would be generated with numbered names, or hard-coded values
    calls: dict[str, list[TorchCall]] = {}
    files = sorted([*SPECS.rglob("*.yaml"), *(ROOT / "tests" / "fixtures").rglob("*.yaml")])
    for path in files:
        graph = lint_file(path).graph
        for node_id in graph.order if graph is not None else ():
            node = graph.node(node_id)
            shapes = node.input_shapes
            if _lowers_to_a_module(node.op) and shapes and None not in shapes:
                calls.setdefault(node.op.name, []).append(node.op.torch_module(node.args, shapes))
    for name, op in OPS.items():
        if _lowers_to_a_module(op) and name not in calls:  # no spec uses it: its defaults
            try:
                args = op.Args.model_validate({})
            except ValidationError:
                pytest.fail(f"`{name}` is used by no spec or fixture and has required fields")
            calls[name] = [op.torch_module(args, [(4, 8, 8)])]
    assert set(calls) == {name for name, op in OPS.items() if _lowers_to_a_module(op)}
    for name, found in calls.items():
        for call in found:
            assert len(call.names) == len(call.args), (name, call)
            assert all(n.isidentifier() for n in call.names), (name, call)
    assert calls["conv"][0].names == ("in_channels", "out_channels")


def test_a_positional_argument_without_a_name_is_refused():
    with pytest.raises(ValueError, match="Conv2d"):
        TorchCall("Conv2d", (3, 64))


def test_composite_docstrings_come_from_the_op():
    source = _generate(SPECS / "googlenet.yaml")
    assert f'class Inception(nn.Module):\n    """{OPS["inception"].code_doc}"""\n' in source
