"""`yarch export SPEC --onnx FILE`: the built model as an ONNX file, checked.

The model is `compiler.build`'s, in eval mode, with the weights of `--weights` (a state_dict
saved with `torch.save`) or its initial ones. Its input is named `input` and its outputs as the
spec names them (`logits`); training-only outputs are not exported (they are None in eval
mode). The file is written by torch's TorchScript-based exporter (`torch.onnx.export(...,
dynamo=False)`: it needs only the `onnx` package, where the newer exporter also needs
`onnxscript`) at a stated opset, with the batch dimension dynamic on request, through a
temporary file (`files.write_atomic`). Then `onnx.checker` checks it and, when onnxruntime is
installed, onnxruntime runs it on a random input and its outputs are compared with torch's.

Needs the `torch` and `onnx` extras: `pip install 'yarch[torch,onnx]'`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Result

DEFAULT_OPSET = 17
OPSETS = (13, 21)  # the opsets offered (the exporter writes up to 21; 13 has every op used here)
TOLERANCE = 1e-5  # onnxruntime's outputs against torch's, relative to the largest magnitude


class ExportError(Exception):
    """Why the model could not be exported or checked; the message says what to do."""


@dataclass
class Exported:
    """What `export_onnx` wrote and found."""

    path: Path
    opset: int
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    difference: float | None = None  # onnxruntime against torch, relative; None: not run
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        def shapes(named: dict[str, list[int | str]]) -> str:
            return ", ".join(f"{n} [{', '.join(map(str, s))}]" for n, s in named.items())

        line = (
            f"wrote {self.path} (ONNX opset {self.opset}; input {shapes(self.inputs)}; "
            f"output {shapes(self.outputs)})"
        )
        if self.difference is not None:
            line += f"; onnxruntime agrees with torch within {self.difference:.1e}"
        return "\n".join([line, *self.notes])


def _needed(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".")[0]:
            raise
        extra = "torch" if module == "torch" else "onnx"
        raise ExportError(f"`yarch export` needs {module}: pip install 'yarch[{extra}]'") from None


def export_onnx(
    spec: str | Path,
    path: str | Path,
    *,
    params: dict[str, Any] | None = None,
    scale: str | None = None,
    weights: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Exported:
    """Build `spec` and write it to `path` as ONNX; raises `SpecError` for a spec with errors
    and `ExportError` for anything else that stops it (missing packages, a weights file that
    does not fit, a check that fails)."""
    from .pipeline import lint_file

    result = lint_file(spec, params, scale=scale)
    return export_linted(result, path, weights=weights, opset=opset, dynamic_batch=dynamic_batch)


def export_linted(
    result: Result,
    path: str | Path,
    *,
    weights: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Exported:
    """`export_onnx` of a spec already linted (`lint_file`'s result)."""
    torch = _needed("torch")
    onnx = _needed("onnx")
    from .torchbuild import build_linted

    model = build_linted(result)  # SpecError for a spec with errors
    graph = result.graph
    assert graph is not None
    graph_outputs = [name for name in graph.outputs if name not in graph.train_only]
    shape = list(graph.input_shape)
    if weights is not None:
        _load_weights(torch, model, Path(weights))
    model.eval()
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    names = {"input": ["batch" if dynamic_batch else 2, *shape]}
    axes = {name: {0: "batch"} for name in ["input", *graph_outputs]} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        try:
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                input_names=["input"],
                output_names=list(graph_outputs),
                opset_version=opset,
                dynamic_axes=axes,
            )
        except Exception as exc:  # the exporter's own errors have no common type
            raise ExportError(f"torch could not export the model: {exc}") from None
    data = buffer.getvalue()
    proto = onnx.load_model_from_string(data)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, onnx.shape_inference's errors
        raise ExportError(f"onnx.checker refused the exported model: {exc}") from None
    outputs = {
        o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        for o in proto.graph.output
    }
    from .files import write_atomic

    target = Path(path)
    write_atomic(target, data)
    exported = Exported(target, opset, names, outputs)
    exported.difference = _compare_with_onnxruntime(torch, model, data, example, exported)
    return exported


def _load_weights(torch: Any, model: Any, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"--weights: `{path}` does not exist") from None
    except Exception as exc:  # not a torch file, or one that needs code to load
        raise ExportError(
            f"--weights: `{path}` is not a state_dict torch can load: {exc}"
        ) from None
    if not isinstance(state, dict):
        raise ExportError(f"--weights: `{path}` holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ExportError(
            f"--weights: `{path}` does not fit the model: {' '.join(first[:3])[:500]}"
        ) from None


def _compare_with_onnxruntime(
    torch: Any, model: Any, data: bytes, example: Any, result: Exported
) -> float | None:
    try:
        import onnxruntime
    except ModuleNotFoundError:
        result.notes.append("note: onnxruntime is not installed, so the file was not run")
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": example.numpy()})
    with torch.no_grad():
        expected = model(example)
    expected = [
        t for t in (expected if isinstance(expected, tuple) else [expected]) if t is not None
    ]
    worst = 0.0
    for mine, theirs in zip(expected, got, strict=True):
        scale = max(1.0, float(mine.abs().max()))
        worst = max(worst, float((mine - torch.from_numpy(theirs)).abs().max()) / scale)
    if worst > TOLERANCE:
        raise ExportError(
            f"onnxruntime's outputs differ from torch's by {worst:.2e} (relative), more than "
            f"{TOLERANCE:.0e}; the file was written to {result.path} for inspection"
        )
    return worst
