"""Generated code: equivalent to `compiler.build` (same state_dict, identical outputs), clean
under ruff, byte-identical across runs, free of absolute paths, reading as written by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from compiler import codegen, lint_file
from compiler.cli import cli
from compiler.codegen import codegen_file
from compiler.ops.base import OPS, TorchCall

from .conftest import ROOT, SPECS, load_module

CLEAN = sorted(
    p for p in [*SPECS.glob("*.yaml"), *(SPECS / "posts").glob("*.yaml")] if not lint_file(p).errors
)


def _generate(path) -> str:
    return codegen_file(lint_file(path), str(path.relative_to(ROOT)))


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name)
def test_generated_module_equals_build(path, tmp_path):
    torch = pytest.importorskip("torch")
    from compiler import torchbuild

    graph = lint_file(path).graph
    source = _generate(path)
    module = load_module(source, tmp_path, graph.name)
    assert "compiler" not in source and "yarch import" not in source
    cls = getattr(module, graph.model_class)
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
    # the zoo's too: its repeats of named copies and long block docs tested the class names
    # and docstrings that ruff format would otherwise push past the line length
    for path in [*CLEAN, *sorted((SPECS / "zoo").glob("*.yaml"))]:
        folder = tmp_path / path.parent.name
        folder.mkdir(exist_ok=True)
        (folder / f"{path.stem}.py").write_text(_generate(path))
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
    # spec parameters are the model's keyword arguments, passed on to the blocks that read them
    assert "class GoogLeNet(nn.Module):" in source
    assert "    def __init__(self, num_classes: int = 1000) -> None:" in source
    assert "    def __init__(self, in_channels: int, num_classes: int) -> None:" in source
    assert "self.aux1 = AuxHead(512, num_classes)" in source
    assert "self.classifier = nn.Linear(1024, num_classes)" in source
    source = _generate(SPECS / "resnet50.yaml")
    # one class for every Bottleneck: its parameters with their defaults, the spec's
    # expressions, and the downsample an `if:` leaves out as a constructor branch
    assert source.count("class Bottleneck") == 1
    assert "    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:" in source
    assert "self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)" in source
    assert "        if stride != 1 or inplanes != planes * 4:\n" in source
    assert "            self.downsample = None\n" in source
    assert "        if self.downsample is not None:\n" in source
    assert "BottleneckDownsample" not in source
    # the model takes the spec's parameters; a repeat counted by one is a loop
    assert (
        "def __init__(self, num_classes: int = 1000, layers: tuple[int, ...] = (3, 4, 6, 3))"
        in source
    )
    assert "*[Bottleneck(256, 64) for _ in range(1, layers[0])]" in source
    assert "self.layer2 = nn.Sequential(\n            Bottleneck(256, 128, stride=2)," in source
    assert "self.fc = nn.Linear(2048, num_classes)" in source


# --- per-op facts: the names of positional arguments --------------------------------------------


# every op's example names its positional arguments: tests/test_ops.py


def test_a_positional_argument_without_a_name_is_refused():
    with pytest.raises(ValueError, match="Conv2d"):
        TorchCall("Conv2d", (3, 64))


def test_composite_docstrings_come_from_the_op():
    source = _generate(SPECS / "googlenet.yaml")
    assert f'class Inception(nn.Module):\n    """{OPS["inception"].code_doc}"""\n' in source


# --- the formatter ------------------------------------------------------------------------------


def test_the_layout_is_ruffs(monkeypatch):
    # the template writes one statement a line; ruff breaks what is too long
    unformatted = []
    real = codegen.ruff_format
    monkeypatch.setattr(codegen, "ruff_format", lambda text, name: unformatted.append(text) or text)
    _generate(SPECS / "googlenet.yaml")
    (text,) = unformatted
    assert "def __init__(self, in_channels: int, ch1x1: int, ch3x3: tuple[int, int]," in text
    assert max(len(line) for line in text.splitlines()) > 100
    formatted = real(text, "googlenet.py")
    assert formatted == (ROOT / "generated" / "googlenet.py").read_text()
    assert max(len(line) for line in formatted.splitlines()) <= 100


def test_no_ruff_configuration_changes_the_bytes(tmp_path, monkeypatch):
    # ruff would read this file for text on stdin (quotes, line length); codegen passes --isolated
    (tmp_path / "ruff.toml").write_text('line-length = 40\n[format]\nquote-style = "single"\n')
    monkeypatch.chdir(tmp_path)
    assert _generate(SPECS / "googlenet.yaml") == (ROOT / "generated" / "googlenet.py").read_text()


FAKE_RUFF = {  # what `ruff` does, and the end of yarch's one line about it
    "failing": (
        "echo 'error: it broke' >&2; exit 3",
        "`ruff format` exited with code 3: error: it broke",
    ),
    "hanging": ("exec sleep 10", "`ruff format` took more than 0.5 s"),
}


@pytest.mark.parametrize("how", ["not-installed", "no-binary", *FAKE_RUFF])
def test_a_formatter_that_fails_is_one_line_and_exit_code_2(how, tmp_path, monkeypatch):
    import ruff

    if how == "not-installed":
        monkeypatch.setitem(sys.modules, "ruff", None)
        message = "the `ruff` package is not installed"
    elif how == "no-binary":

        def missing() -> str:
            raise FileNotFoundError("Could not find the ruff binary in:\n - /nowhere\n")

        monkeypatch.setattr(ruff, "find_ruff_bin", missing)
        message = "Could not find the ruff binary in: - /nowhere"
    else:
        script, message = FAKE_RUFF[how]
        fake = tmp_path / "ruff"
        fake.write_text(f"#!/bin/sh\n{script}\n")
        fake.chmod(0o755)
        monkeypatch.setattr(ruff, "find_ruff_bin", lambda: str(fake))
    monkeypatch.setattr(codegen, "FORMAT_TIMEOUT", 0.5)
    with pytest.raises(codegen.FormatError):
        _generate(SPECS / "mini_inception.yaml")
    monkeypatch.chdir(ROOT)
    spec = "specs/mini_inception.yaml"
    code, folder = tmp_path / "m.py", tmp_path / "gen"
    for args in (["codegen", spec, "-o", str(code)], ["build", spec, "-o", str(folder)]):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"yarch: cannot format the generated code: {message}\n"
        assert "Traceback" not in result.output
    assert not code.exists() and not list(folder.glob("*.py"))


def test_a_docstring_one_character_too_long_is_two_lines():
    # ruff format would join `"""text` and `"""` into one line past the limit
    text = "x" * 40 + " " + "y" * 50  # 91 characters: 4 + 3 + 91 + 3 = 101 columns
    lines = codegen.docstring(text, codegen.INDENT)
    assert lines == [f'"""{"x" * 40}', "y" * 50, '"""']
    assert codegen.docstring("short", codegen.INDENT) == ['"""short"""']


def test_the_class_field_names_the_model_class(tmp_path):
    from compiler import lint_text

    text = (
        "name: tiny\nclass: TinyNet\ninput: [3, 8, 8]\nlayers:\n"
        "  - conv: {name: c, out: 4, kernel: 3}\n  - relu: {name: r}\n"
        "outputs: {feat: c, act: r}\n"
    )
    result = lint_text(text, "tiny.yaml")
    assert not result.diagnostics and result.graph.model_class == "TinyNet"
    source = codegen_file(result, "tiny.yaml")
    assert "class TinyNet(nn.Module):" in source and "class TinyNetOutputs(NamedTuple):" in source
    torch = pytest.importorskip("torch")
    import compiler

    (tmp_path / "tiny.yaml").write_text(text)
    model = compiler.build(tmp_path / "tiny.yaml")
    assert type(model).__name__ == "TinyNet"
    assert type(model.eval()(torch.zeros(1, 3, 8, 8))).__name__ == "TinyNetOutputs"
    # without it, the class is made from the name
    assert lint_text(text.replace("class: TinyNet\n", "")).graph.model_class == "Tiny"


@pytest.mark.parametrize("value", ["tiny_net", "3Net", "Tiny-Net", "'None'"])
def test_a_class_that_is_not_a_class_name_is_refused(value):
    from compiler import lint_text

    text = f"name: tiny\nclass: {value}\ninput: [3, 8, 8]\nlayers: [relu]\n"
    (d,) = lint_text(text).diagnostics
    assert d.is_error and d.span.line == 2 and "is not a class name" in d.message
