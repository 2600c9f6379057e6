"""`yarch export SPEC --onnx FILE` (issue 17, item 3; compiler/export.py): every library spec
exports, passes `onnx.checker` and runs in onnxruntime within 1e-5 of torch, with the spec's
input and output names and the opset asked for; `--dynamic-batch`, `--weights` and the ways it
refuses.

The models over `FAST_PARAMS` parameters (VGG, AlexNet, ZFNet: 17 s and 3.5 GB each for VGG-16)
are exported in the slow profile only: `make test-zoo` (`YARCH_ZOO=all`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import lint_file
from compiler.cli import cli
from compiler.summary import summarize

from .conftest import SPECS, buildable_library

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from compiler.export import TOLERANCE, ExportError, export_onnx  # noqa: E402

FAST_PARAMS = 50_000_000
ALL = os.environ.get("YARCH_ZOO") == "all"
LIBRARY = buildable_library()


def _run(session_path: Path, x) -> list:
    session = onnxruntime.InferenceSession(str(session_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_every_library_spec_exports_checked(path, tmp_path):
    result = lint_file(path)
    if summarize(result.graph).total_params > FAST_PARAMS and not ALL:
        pytest.skip(f"{path.stem}: over {FAST_PARAMS:,} parameters, in `make test-zoo` only")
    out = tmp_path / "model.onnx"
    done = export_onnx(path, out)
    assert done.difference is not None and done.difference <= TOLERANCE
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    graph = result.graph
    eval_outputs = [n for n in graph.outputs if n not in graph.train_only]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == eval_outputs
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17


def test_dynamic_batch_and_another_opset(tmp_path):
    path = SPECS / "googlenet_torchvision.yaml"
    out = tmp_path / "g.onnx"
    done = export_onnx(path, out, dynamic_batch=True, opset=13)
    assert done.inputs["input"][0] == "batch" and done.outputs["logits"][0] == "batch"
    assert {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""] == 13
    x = torch.randn(5, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    (got,) = _run(out, x)  # exported at a batch of 2, run at 5
    assert got.shape == (5, 1000)


def test_weights_are_loaded_before_export(tmp_path):
    from compiler import build

    path = SPECS / "posts" / "mnist_residual.yaml"
    model = build(path)
    generator = torch.Generator().manual_seed(2)
    # trained weights, as far as the export can tell: every float moved (batch norm's
    # running variances stay positive)
    trained = {
        k: v * (1 + 0.5 * torch.randn(v.shape, generator=generator)).abs()
        if v.is_floating_point()
        else v
        for k, v in model.state_dict().items()
    }
    torch.save(trained, tmp_path / "w.pt")
    model.load_state_dict(trained)
    out = tmp_path / "m.onnx"
    export_onnx(path, out, weights=tmp_path / "w.pt")
    x = torch.randn(2, *lint_file(path).graph.input_shape, generator=generator)
    with torch.no_grad():
        expected = model.eval()(x)
    (got,) = _run(out, x)
    scale = float(expected.abs().max())
    assert float((torch.from_numpy(got) - expected).abs().max()) <= 1e-5 * max(1.0, scale)
    # and they are not the initial weights: a fresh build gives another output
    with torch.no_grad():
        assert not torch.allclose(build(path).eval()(x), expected)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d / "w.pt").write_text("not torch"), "is not a state_dict torch can load"),
        (lambda d: torch.save({"fc.weight": torch.zeros(1)}, d / "w.pt"), "does not fit the model"),
        (lambda d: torch.save([1, 2], d / "w.pt"), "holds a list, not a state_dict"),
    ],
)
def test_weights_that_do_not_fit_are_exit_code_2(tmp_path, make, words):
    make(tmp_path)
    out = tmp_path / "m.onnx"
    runner = CliRunner()
    args = ["export", str(SPECS / "posts" / "mnist_residual.yaml"), "--onnx", str(out)]
    result = runner.invoke(cli, [*args, "--weights", str(tmp_path / "w.pt")])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_the_command_line_says_what_it_wrote(tmp_path):
    out = tmp_path / "r.onnx"
    result = CliRunner().invoke(
        cli, ["export", str(SPECS / "resnet18.yaml"), "--onnx", str(out), "--set", "num_classes=7"]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (ONNX opset 17; input input [2, 3, 224, 224]; output out [2, 7])" in (
        result.output
    )
    assert "onnxruntime agrees with torch within" in result.output


def test_a_spec_with_errors_writes_nothing(tmp_path):
    out = tmp_path / "k.onnx"
    spec = SPECS / "posts" / "inception_keras.yaml"
    result = CliRunner().invoke(cli, ["export", str(spec), "--onnx", str(out)])
    assert result.exit_code == 1 and "error[" in result.output and not out.exists()


def test_without_onnx_it_says_which_extra(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.delitem(__import__("sys").modules, "onnx", raising=False)
    with pytest.raises(ExportError, match=r"needs onnx: pip install 'yarch\[onnx\]'"):
        export_onnx(SPECS / "resnet18.yaml", tmp_path / "x.onnx")
