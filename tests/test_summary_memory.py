"""The summary's memory figures, computed statically, against what torch allocates.

For each spec: parameter and buffer bytes per layer, per block and in total against the built
module's tensors; the activation bytes of every layer against the output tensors a forward pass
on one sample produces (forward hooks on the module named as the node). `concat`, `add` and
`reshape` are expressions in `forward`, not modules: their outputs are read where they arrive,
as the output of the block they end or the input of the module that reads them, so every node
is checked. Nothing is timed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import networkx as nx
import pytest

from compiler import lint_file
from compiler.graph import ArchGraph
from compiler.summary import BLOCK, Summary, summarize

from .conftest import SPECS

torch = pytest.importorskip("torch")

SPEC_NAMES = (
    "googlenet.yaml",
    "googlenet_torchvision.yaml",
    "resnet18.yaml",
    "posts/mnist_inception.yaml",
)
# ops whose torch output shares its input's storage: views, and dropout in eval mode (which
# returns its input); the summary counts each layer's output as a tensor of its own
ALIASING_IN_EVAL = frozenset({"flatten", "reshape", "dropout"})
# specs whose eager forward peaks where the estimate does (the stem: input, the first conv's
# output and the activation that reads it), so the two agree exactly
EAGER_PEAK_IS_THE_ESTIMATE = frozenset({"googlenet_torchvision.yaml", "resnet18.yaml"})


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.fixture(scope="module", params=SPEC_NAMES)
def case(request) -> tuple[str, ArchGraph, Summary, torch.nn.Module]:
    from compiler import build  # imports torch

    path = SPECS / request.param
    result = lint_file(path)
    assert result.errors == 0 and result.graph is not None
    torch.manual_seed(0)
    return request.param, result.graph, summarize(result.graph), build(path)


def needed(graph: ArchGraph, *, train: bool) -> set[str]:
    """The nodes a forward pass runs: every output's ancestors (eval: training-only left out)."""
    out: set[str] = set()
    for name, node_id in graph.outputs.items():
        if train or name not in graph.train_only:
            out |= nx.ancestors(graph.to_networkx(), node_id) | {node_id}
    return out - {ArchGraph.INPUT}


def capture(graph: ArchGraph, model, train: bool, batch: int = 1, dtype=None) -> dict[str, object]:
    """Every node's output tensor from one forward pass of `batch` samples (of the model's
    dtype, float32 unless `dtype`), by node id."""
    modules = dict(model.named_modules())
    seen: dict[str, object] = {}
    handles = []

    def keep(node_id: str, pick: Callable):
        def hook(module, args, *out):
            seen[node_id] = pick(args, *out)

        return hook

    for node_id in graph.order:
        if node_id == ArchGraph.INPUT:
            continue
        if node_id in modules:
            hook = keep(node_id, lambda args, out: out)
            handles.append(modules[node_id].register_forward_hook(hook))
            continue
        # a functional op: the output of the block it ends, or else the input of a module
        # that reads nothing else
        inst = next((i for i in graph.instances.values() if i.output == node_id), None)
        if inst is not None and inst.id in modules:
            hook = keep(node_id, lambda args, out: out)
            handles.append(modules[inst.id].register_forward_hook(hook))
            continue
        reader = next(
            s for s in graph.graph.successors(node_id) if graph.node(s).inputs == [node_id]
        )
        hook = keep(node_id, lambda args: args[0])
        handles.append(modules[reader].register_forward_pre_hook(hook))
    model.train(train)
    with torch.no_grad():
        model(torch.randn(batch, *graph.input_shape, dtype=dtype))
    for handle in handles:
        handle.remove()
    return seen


def test_param_and_buffer_bytes(case):
    _, _, summary, model = case
    assert summary.total_param_bytes == nbytes(model.parameters())
    assert summary.total_buffer_bytes == nbytes(model.buffers())
    modules = dict(model.named_modules())
    functional = [r for r in summary.rows if r.name not in modules]
    assert {r.kind for r in functional} <= {"concat", "add", "reshape"}
    assert all(r.param_bytes == r.buffer_bytes == 0 for r in functional)
    for row in summary.rows:
        if row.name in modules:  # a layer, or a block instance with all its members
            module = modules[row.name]
            assert row.param_bytes == nbytes(module.parameters()), row.name
            assert row.buffer_bytes == nbytes(module.buffers()), row.name


def test_activation_bytes_of_every_layer(case):
    _, graph, summary, model = case
    # training mode runs every layer, the training-only heads included
    outputs = capture(graph, model, train=True)
    nodes = [r for r in summary.rows if r.kind != BLOCK]
    assert set(outputs) == {r.name for r in nodes} == needed(graph, train=True)
    for row in nodes:
        out = outputs[row.name]
        assert tuple(out.shape) == (1, *row.output_shape), row.name
        assert row.activation_bytes == nbytes([out]), row.name
    for row in summary.rows:  # a block's figure is the sum of its members' outputs
        if row.kind == BLOCK:
            members = [out for n, out in outputs.items() if n.startswith(row.name + ".")]
            assert row.activation_bytes == nbytes(members), row.name
    assert summary.train_activation_bytes == nbytes(outputs.values())


def test_activation_totals_against_the_eval_forward(case):
    _, graph, summary, model = case
    outputs = capture(graph, model, train=False)
    # the eval forward leaves the training-only heads out, as the eval total does
    assert set(outputs) == needed(graph, train=False)
    assert summary.total_activation_bytes == nbytes(outputs.values())
    # what torch allocates for those outputs: views, eval dropout and inplace activations
    # (`lower._inplace`) share their input's storage, so the distinct storages hold the total
    # less those layers' outputs
    from compiler.lower import _inplace

    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in outputs.values()
    }
    aliasing = sum(
        r.activation_bytes
        for r in summary.rows
        if r.name in outputs and (r.kind in ALIASING_IN_EVAL or _inplace(graph, graph.node(r.name)))
    )
    assert aliasing > 0
    assert sum(storages.values()) == summary.total_activation_bytes - aliasing


class LiveTensors:
    """The most bytes of tensors alive at once, looked at after each aten op of a forward pass.

    A `TorchDispatchMode` (torch's own `torch.utils.flop_counter.FlopCounterMode` is one; the
    class itself lives in a private module) sees every op's outputs; a storage counts while any
    tensor on it is alive. Parameters and buffers are left out; the operators' internal
    workspaces, which never become tensors, are not seen.
    """

    def __init__(self, model) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        owner = self
        self.weights = {
            t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]
        }
        self.holders: dict[int, set[int]] = {}
        self.sizes: dict[int, int] = {}
        self.peak = 0

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in out if isinstance(out, tuple | list) else (out,):
                    if isinstance(t, torch.Tensor):
                        owner.track(t)
                owner.peak = max(owner.peak, sum(owner.sizes[p] for p in owner.holders))
                return out

        self.mode = Mode()

    def _release(self, ptr: int, key: int) -> None:
        holders = self.holders.get(ptr)
        if holders is not None:
            holders.discard(key)
            if not holders:
                del self.holders[ptr]

    def track(self, tensor) -> None:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self.weights or id(tensor) in self.holders.get(ptr, ()):
            return
        self.holders.setdefault(ptr, set()).add(id(tensor))
        self.sizes[ptr] = storage.nbytes()
        weakref.finalize(tensor, self._release, ptr, id(tensor))


def test_peak_against_the_live_tensors_of_an_eager_forward(case):
    spec, graph, summary, model = case
    live = LiveTensors(model.eval())
    x = torch.randn(1, *graph.input_shape)
    with torch.no_grad(), live.mode:
        live.track(x)
        model(x)
    # eager PyTorch holds at least as much as the estimate, which frees each tensor after its
    # last reader: the generated forward keeps its local variables until it returns, and some
    # ops make temporaries (LRN)
    assert summary.peak_activation_bytes <= live.peak
    if spec in EAGER_PEAK_IS_THE_ESTIMATE:
        assert summary.peak_activation_bytes == live.peak


# --- training memory (issue 16): one optimizer step against the estimate -----------------------

SMALL_SPECS = ("posts/mnist_inception.yaml", "posts/mnist_residual.yaml")
OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.01),
    "sgd-momentum": lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-3),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-3),
}


def state_tensors(optimizer) -> list:
    return [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]


@pytest.mark.parametrize("spec", SMALL_SPECS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_gradients_and_optimizer_state_after_one_step(spec, name):
    from compiler import build

    path = SPECS / spec
    graph = lint_file(path).graph
    # float64 for one optimizer, so that the dtype is checked against torch too
    dtype = "float64" if name == "adam" else "float32"
    summary = summarize(graph, batch=2, dtype=dtype, optimizer=name)
    torch.manual_seed(0)
    model = build(path).to(getattr(torch, dtype)).train()
    optimizer = OPTIMIZERS[name](model.parameters())
    x = torch.randn(2, *graph.input_shape, dtype=getattr(torch, dtype))
    assert summary.input_bytes == nbytes([x])
    out = model(x)
    loss = sum(o.sum() for o in out.values()) if isinstance(out, dict) else out.sum()
    loss.backward()
    optimizer.step()
    params = list(model.parameters())
    assert summary.total_param_bytes == nbytes(params)
    assert summary.gradient_bytes == nbytes(p.grad for p in params)
    state = state_tensors(optimizer)
    if name in ("adam", "adamw"):
        # Adam keeps a scalar float32 `step` per parameter tensor besides its two moments:
        # 4 bytes a tensor, which the estimate leaves out (the Summary docstring says so)
        steps = [t for t in state if t.dim() == 0]
        assert len(steps) == len(params) and all(t.dtype == torch.float32 for t in steps)
        assert summary.optimizer_state_bytes == nbytes(state) - 4 * len(params)
    else:
        assert summary.optimizer_state_bytes == nbytes(state)
    assert summary.optimizer_state_bytes > 0 or name == "sgd"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_buffers_and_params_after_a_cast(dtype):
    """`module.to(dtype)` casts the parameters and batch norm's running statistics, and
    leaves `num_batches_tracked` an int64: as `--dtype` counts them."""
    from compiler import build

    path = SPECS / "resnet18.yaml"
    summary = summarize(lint_file(path).graph, dtype=dtype)
    model = build(path).to(getattr(torch, dtype))
    assert summary.total_param_bytes == nbytes(model.parameters())
    assert summary.total_buffer_bytes == nbytes(model.buffers())
    assert {b.dtype for b in model.buffers()} == {getattr(torch, dtype), torch.int64}
    modules = dict(model.named_modules())
    for row in summary.rows:
        if row.name in modules:
            assert row.buffer_bytes == nbytes(modules[row.name].buffers()), row.name


@pytest.mark.parametrize("spec", SMALL_SPECS)
def test_forward_backward_size_is_the_training_forward_outputs_of_the_batch(spec):
    from compiler import build

    path = SPECS / spec
    graph = lint_file(path).graph
    summary = summarize(graph, batch=3, dtype="float64")
    model = build(path).to(torch.float64)
    outputs = capture(graph, model, train=True, batch=3, dtype=torch.float64)
    assert summary.forward_backward_bytes == nbytes(outputs.values())
    assert summary.forward_backward_bytes == 3 * 2 * summarize(graph).train_activation_bytes
