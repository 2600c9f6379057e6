"""Stage 5b: `build(spec) -> torch.nn.Module`, from the shared lowering in `lower.py`.

Each container of the module tree becomes an nn.Module subclass (one class per block type and
forward code, shared by its instances) whose `forward` is the lowering's straight-line code,
compiled once. Pure chains (`seq`, repeats) become nn.Sequential. Only this module imports torch.
"""

from __future__ import annotations

import collections
import linecache
import typing
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch import nn

from .gcpause import no_cyclic_gc
from .init import init_lines
from .lint.rules import MAX_ACTIVATION_BYTES, MAX_PARAMS, budget_problems
from .loader import Document
from .lower import Container, lower, module_classes, render_forward
from .names import class_name
from .ops.base import BuildError, TorchParameter
from .pipeline import Result, SpecError, lint_document, lint_file

_OUTPUTS: dict[tuple, type] = {}
_CLASSES: dict[tuple[str, str, tuple[str, ...] | None], type[nn.Module]] = {}


def forward_source(c: Container) -> str:
    """`forward` as the shared lowering prints it ("" for an opened container: none)."""
    body = render_forward(c, "Outputs")
    head = f"def forward(self, {', '.join(['x', *c.params])}):"
    return "\n".join([head, *body]) + "\n" if body else ""


def _init(self: nn.Module) -> None:
    nn.Module.__init__(self)


def _module_class(name: str, source: str, outputs: type | None) -> type[nn.Module]:
    # the outputs' field names are part of the class: two specs may share the forward code
    key = (name, source, outputs._fields if outputs is not None else None)
    cls = _CLASSES.get(key)
    if cls is None:
        namespace: dict[str, Any] = {"torch": torch, "F": F, "Outputs": outputs}
        filename = f"<yarch {name}.forward {len(_CLASSES)}>"
        if source:
            # the source is kept where `inspect.getsource(model.forward)` and tracebacks look
            # (`linecache` keeps an entry whose modification time is None)
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)
        methods = {"forward": namespace["forward"]} if "forward" in namespace else {}
        doc = (
            f"`{name}`, a module that `compiler.build` made from a yarch spec. Its children "
            "are added by `build`, so the class takes no arguments; "
            "`inspect.getsource(type(model).forward)` shows its forward, and "
            "`yarch codegen SPEC` the whole model as code."
        )
        namespace_cls = {**methods, "__init__": _init, "__doc__": doc, "__module__": __name__}
        cls = type(name, (nn.Module,), namespace_cls)
        _CLASSES[key] = cls
    return cls


def _outputs_class(model: str, c: Container) -> type:
    """The named tuple a model of several outputs returns, typed as generated code types it
    (TorchScript reads the types: a training-only output is None in eval mode), and known to
    torch's pytree by a name of its own, so that `torch.export.save` can write a program that
    returns it (`torch.export.load` needs the same class registered: build the spec first)."""
    fields = [
        (name, torch.Tensor | None if train_only else torch.Tensor)
        for name, (_, train_only) in c.outputs.items()
    ]
    key = (model, tuple((name, str(hint)) for name, hint in fields))
    cls = _OUTPUTS.get(key)
    if cls is None:
        cls = typing.NamedTuple(f"{model}Outputs", fields)  # type: ignore[misc]
        cls.__module__ = __name__
        serialized = f"yarch.{model}Outputs." + ".".join(
            f"{name}{'?' if train_only else ''}" for name, (_, train_only) in c.outputs.items()
        )
        pytree._register_namedtuple(cls, serialized_type_name=serialized)
        _OUTPUTS[key] = cls
    return cls


def instantiate(c: Container, model_name: str) -> nn.Module:
    children: list[tuple[str, nn.Module | nn.Parameter]] = []
    for child in c.children:
        if isinstance(child, Container):
            children.append((child.attr, instantiate(child, model_name)))
        elif isinstance(child.call, TorchParameter):
            ((_, fill, _),) = child.call.kwargs
            children.append((child.attr, nn.Parameter(torch.full(child.call.args, fill))))
        elif child.call is not None:
            module_cls = getattr(nn, child.call.cls)
            kwargs = {k: v for k, v in child.call.shown_kwargs()}
            children.append((child.attr, module_cls(*child.call.args, **kwargs)))
    if c.sequential:
        return nn.Sequential(collections.OrderedDict(children))
    outputs = None
    if not c.path and len(c.outputs) > 1:
        outputs = _outputs_class(class_name(model_name), c)
    name = class_name(model_name if not c.path else c.block)
    module = _module_class(name, forward_source(c), outputs)()
    for attr, child_module in children:
        if isinstance(child_module, nn.Parameter):
            module.register_parameter(attr, child_module)
        else:
            module.add_module(attr, child_module)
    return module


def _initialize(module: nn.Module, graph: Any, root: Container) -> None:
    """The spec's `init:`, run as the lines generated code writes at the end of the model's
    constructor (`compiler/init.py`), so that both draw the same weights from one seed."""
    lines = init_lines(graph.init, graph.model_class, module_classes(root))
    if not lines:
        return
    source = "def initialize(self):\n" + "".join(f"    {line}\n" for line in lines)
    namespace: dict[str, Any] = {"nn": nn, "torch": torch}
    exec(compile(source, f"<yarch {graph.model_class} init>", "exec"), namespace)
    namespace["initialize"](module)


def available_memory() -> int | None:
    """Bytes of memory this process could still take: the kernel's estimate of what is
    available, bounded by the cgroup's limit (a container) when there is one; None if unknown."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            found.append(max(0, int(limit) - int(used)))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def default_max_params() -> int:
    """The parameter budget of `build` by default: half the available memory as float32
    weights (the other half for activations and the rest of the process), at most MAX_PARAMS."""
    memory = available_memory()
    return MAX_PARAMS if memory is None else min(MAX_PARAMS, memory // 2 // 4)


def build(
    path_or_spec: str | Path | dict,
    *,
    scale: str | None = None,
    max_params: int | None = None,
    max_activation_bytes: int = MAX_ACTIVATION_BYTES,
    **params: Any,
) -> nn.Module:
    """Compile a spec (a file path, or the spec as a mapping) into a torch module.

    Keyword arguments override the spec's parameters (`num_classes=10`); `scale` picks a row of
    its `scales` table. A spec with errors raises `SpecError`, whose message is the
    diagnostics as `yarch lint` prints them. So does a model over the budget, checked from the
    static shapes before anything is allocated: `max_params` parameters (by default as many
    as half the memory available now holds as float32, at most 2e9) and `max_activation_bytes`
    of layer outputs per sample (default 8 GiB); raise them to build bigger models. Running
    out of memory all the same raises `SpecError` too.
    """
    if isinstance(path_or_spec, dict):
        result = lint_document(Document("<spec>", "", path_or_spec), params, scale)
    else:
        result = lint_file(path_or_spec, params, scale=scale)
    return build_linted(result, max_params, max_activation_bytes)


def build_linted(
    result: Result,
    max_params: int | None = None,
    max_activation_bytes: int = MAX_ACTIVATION_BYTES,
) -> nn.Module:
    """`build` of a spec already linted (`lint_file`'s result): `SpecError` if it has errors
    or is over the budget."""
    if result.errors or result.graph is None:
        raise SpecError(result)
    if max_params is None:
        max_params = default_max_params()
    over = budget_problems(result.graph, max_params, max_activation_bytes)
    if over:
        reason = "; ".join(over) + " (raise max_params= or max_activation_bytes= to build it)"
        raise SpecError(result, reason)
    # lowering and construction allocate an object or more per layer and free none: the cyclic
    # collector's passes over them cost more than the work itself (a 200,000-layer repeat)
    with no_cyclic_gc():
        root = lower(result.graph)
        try:
            module = instantiate(root, result.graph.model_class)
        except BuildError as exc:
            raise SpecError(result, str(exc)) from None
        except (MemoryError, RuntimeError) as exc:
            # torch's allocator raises RuntimeError ("DefaultCPUAllocator: can't allocate memory")
            if isinstance(exc, RuntimeError) and "alloc" not in str(exc).lower():
                raise
            raise SpecError(
                result, f"not enough memory to allocate the model's weights ({type(exc).__name__})"
            ) from None
    _initialize(module, result.graph, root)
    # the resolved graph travels with the module, for `compiler.optimize`
    module.__dict__["yarch_graph"] = result.graph
    return module
