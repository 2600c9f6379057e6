"""What an op is, and the registry that holds them.

An op bundles, in one class in one file: its pydantic arguments (`Args`), its shape rule
(`infer`), its parameter and MAC counts, and a one-line description. Later stages add their
pieces to the same class (torch lowering, code fragment, diagram style), so adding an op
touches one file. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..expr import MAX_MAGNITUDE
from ..names import LayerName, RefName, did_you_mean
from ..syntax import RawLayer, Shape, fmt_shape

# bounded as expression values are: a 400-digit `out:` would otherwise reach the summary's
# byte counts, which go through floats
PosInt = Annotated[int, Field(ge=1, le=MAX_MAGNITUDE, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_MAGNITUDE, strict=True)]


def _pair(value: Any) -> Any:
    """`3` -> `(3, 3)`; lists stay lists so pydantic checks their length and items."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if not isinstance(value, list | tuple):
        raise ValueError("must be a whole number or a pair of them, [height, width]")
    return value


PosPair = Annotated[
    tuple[PosInt, PosInt],
    BeforeValidator(_pair, json_schema_input_type=PosInt | tuple[PosInt, PosInt]),
]


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class NodeArgs(BaseModel):
    """Fields every layer accepts, whatever its op."""

    # `defer_build`: an op's validator is built the first time a layer of that op is validated,
    # so a lint process pays only for the ops its spec uses (about 1 ms each)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)

    name: LayerName | None = Field(
        None,
        description="The layer's name, for `from:`, `outputs:` and the state_dict keys "
        "(`conv1` gives `conv1.weight`); a plain identifier, or parts joined by hyphens "
        "(`block1-0`). Default: the op and a number (`conv_2`), or 0, 1, 2 ... in a `seq`.",
    )
    from_: (
        Annotated[list[RefName], BeforeValidator(_listify, json_schema_input_type=str | list[str])]
        | None
    ) = Field(
        None,
        alias="from",
        description="The layer's input, or a list of inputs (`from: [conv1, input]`): layer "
        "names, `input`, a dotted name inside a block or `seq` (`backbone.4`). Default: the "
        "layer before, or the scope's `input` for the first layer.",
    )
    expect: list[PosInt] | None = Field(
        None,
        min_length=1,
        max_length=4,
        description="The shape you expect the layer to output, batch left out "
        "(`[64, 112, 112]`, `[1000]`): checked against the inferred shape (`shape-mismatch`) "
        "and trusted by the layers after it. With `repeat`, the last copy's shape.",
    )
    repeat: Annotated[int, Field(ge=1, le=100_000, strict=True)] = Field(
        1,
        description="Makes N copies in sequence, each reading the one before, as a group named "
        "`name.0` ... `name.N-1`; in their fields `i` is the copy's index and `n` the count "
        '(`repeat: "${layers[1]}"`). Default: one layer, no group.',
    )
    first: dict[str, Any] | None = Field(
        None,
        description="With `repeat`: fields that differ in the first copy, written over the "
        "layer's own (`first: {stride: 2}`), as torchvision's `_make_layer` strides only the "
        "first block of a stage.",
    )
    names: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description="With `repeat`: the copies' names, a text whose `${...}` parts are "
        'evaluated for each copy with `i` its index (`names: "denselayer${i + 1}"`). '
        "Default: `0` ... `N-1`.",
    )
    if_: Annotated[bool, Field(strict=True)] = Field(
        True,
        alias="if",
        description="False removes the layer: references to it then mean its input "
        '(`if: "${stride != 1}"`); a removed layer with several inputs stands for its first. '
        "Default: true.",
    )


COMMON_FIELDS = ("name", "from", "expect", "repeat", "first", "names", "if")


class Context(Protocol):
    """What an op's shape rule may ask of shape inference."""

    def error(
        self,
        code: str,
        message: str,
        field: str | tuple | None = None,
        *,
        label: str | None = None,
        notes: Sequence[str] = (),
        help: str | None = None,
    ) -> None: ...

    def warning(
        self,
        code: str,
        message: str,
        field: str | tuple | None = None,
        *,
        label: str | None = None,
        notes: Sequence[str] = (),
        help: str | None = None,
    ) -> None: ...

    @property
    def name(self) -> str: ...

    def source(self, i: int) -> str:
        """Display name of the node feeding input `i`."""
        ...

    def explain(self, i: int) -> str | None:
        """How input `i`'s channel count came about (`"192 + 208 + 48 + 64"`), if known."""
        ...

    def set_explain(self, text: str) -> None: ...

    def producer(self, i: int) -> Any:
        """The first node upstream of input `i` that is not a pass-through (relu, dropout)."""
        ...

    def display(self, node_id: str) -> str: ...

    def inputs_of(self, node_id: str) -> list[Shape | None]: ...


@dataclass(frozen=True)
class TorchCall:
    """A torch.nn module constructor, as data: `Conv2d(192, 64, kernel_size=1)`.

    Both back ends use it: `build` instantiates it, generated code prints it.
    """

    cls: str
    args: tuple[Any, ...] = ()
    # (name, value, torch's default); a keyword equal to its default is left out when printed
    kwargs: tuple[tuple[str, Any, Any], ...] = ()
    # the torch parameter name of each of `args` (`in_channels`): generated code names a
    # block's constructor parameters after them
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.names) != len(self.args):  # a programming error: codegen needs every name
            raise ValueError(f"{self.cls}: {len(self.args)} positional args, names {self.names}")

    def shown_kwargs(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v, default in self.kwargs if v != default]

    def render(self) -> str:
        return self.construct(
            [repr(a) for a in self.args], [(k, repr(v)) for k, v in self.shown_kwargs()]
        )

    def construct(self, args: list[str], kwargs: list[tuple[str, str]]) -> str:
        """The constructor call, from the source text of its arguments (generated code
        passes a block's parameters: `nn.Conv2d(in_channels, 64, kernel_size=1)`)."""
        parts = [*args, *(f"{k}={v}" for k, v in kwargs)]
        return f"nn.{self.cls}({', '.join(parts)})"


@dataclass(frozen=True)
class TorchParameter(TorchCall):
    """A bare learned tensor instead of a module: `nn.Parameter(torch.full((96, 1, 1), 1e-06))`,
    registered on the container under the layer's name, so that its state_dict key is the
    layer's name itself, as torch code that keeps a tensor outside any module writes it
    (ConvNeXt's `layer_scale`). `args` are its shape, `kwargs` its `fill_value`."""

    cls: str = "Parameter"

    def construct(self, args: list[str], kwargs: list[tuple[str, str]]) -> str:
        shape = ", ".join(args) + ("," if len(args) == 1 else "")
        fill = ", ".join(v for _, v in kwargs)
        return f"nn.Parameter(torch.full(({shape}), {fill}))"


def square(sizes: tuple[int, ...]) -> int | tuple[int, ...]:
    """`(3, 3)` -> `3`, `(3, 3, 3)` -> `3`, as hand-written torch code writes it."""
    return sizes[0] if len(set(sizes)) == 1 else sizes


REQUIRED = object()  # the "default" of a keyword argument that is always written


def keywords(**items: tuple[Any, Any]) -> tuple[tuple[str, Any, Any], ...]:
    """Keyword arguments as `name=(value, default)`; `REQUIRED` for no default."""
    return tuple((k, v, default) for k, (v, default) in items.items())


class BuildError(Exception):
    """A valid spec that the torch lowering cannot express."""


class Op:
    """Base class of every op. Subclasses are registered with `@register`."""

    name: ClassVar[str]
    Args: ClassVar[type[NodeArgs]] = NodeArgs
    # the field a shorthand value fills: `- dropout: 0.4`, `- inception: [64, [96, 128], ...]`
    primary: ClassVar[str | None] = None
    kind: ClassVar[str] = "other"
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # fields that name another value the op reads (`upsample: {like: input}`): each becomes
    # an input after those of `from:` (or the layer before)
    ref_fields: ClassVar[tuple[str, ...]] = ()
    composite: ClassVar[bool] = False  # expands into other layers instead of inferring
    # a composite's docstring on the class generated code writes for its instances
    code_doc: ClassVar[str | None] = None
    passthrough: ClassVar[bool] = False  # keeps its input's shape and meaning (relu, dropout)
    elementwise: ClassVar[bool] = False  # takes a tensor of any shape and keeps it (relu)
    # Inplace activations, as torchvision writes them (`nn.ReLU(inplace=True)`): `inplace`
    # ops may overwrite their input (their module takes `inplace=True` and their backward
    # reads only their result); `fresh_output` ops make a new tensor that their own backward
    # does not read (a conv's output, not a view nor a sigmoid's). Lowering makes an
    # `inplace` op inplace where its one input is a `fresh_output` op's value that nothing
    # else reads and that is not an output of the network (`lower._inplace`).
    inplace: ClassVar[bool] = False
    fresh_output: ClassVar[bool] = False
    # A small spec that uses the op, for the docs and the registry's tests (`tests/test_ops.py`
    # lints, lowers and builds it): an input shape and layers, the op's last. None: the op
    # written bare on a 3x8x8 input.
    example: ClassVar[tuple[tuple[int, ...], tuple[str, ...]] | None] = None

    @classmethod
    def example_spec(cls) -> str:
        """`example` as the text of a spec."""
        shape, layers = cls.example or ((3, 8, 8), (cls.name,))
        rows = "".join(f"  - {layer}\n" for layer in layers)
        return f"name: {cls.name}_example\ninput: {list(shape)}\nlayers:\n{rows}"

    @classmethod
    def infer(cls, args: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        raise NotImplementedError

    @classmethod
    def count_params(cls, args: Any, inputs: list[Shape], out: Shape) -> int:
        return 0

    @classmethod
    def count_macs(cls, args: Any, inputs: list[Shape], out: Shape) -> int:
        return 0

    @classmethod
    def describe(cls, args: Any) -> str:
        return cls.name

    @classmethod
    def describe_at(cls, args: Any, inputs: list[Shape]) -> str:
        """`describe` for a node whose input shapes are known (empty where they are not): an op
        whose window follows its input's rank writes one size per axis (`conv 3x3x3, 64`)."""
        return cls.describe(args)

    @classmethod
    def buffers(cls, args: Any, inputs: list[Shape]) -> dict[str, tuple[int, str]]:
        """The module's buffers (state that is not a parameter): state_dict name -> (number
        of elements, dtype), for memory summaries."""
        return {}

    @classmethod
    def check_in(cls, declared: int, x: Shape, ctx: Context) -> None:
        """Report a declared `in:` that is not what input `x` gives, for an op with an `in:`
        field. Inference calls it, and so does a layer that failed validation on another field
        and whose `expect:` stands in for its shape (its channels are checked all the same)."""

    @classmethod
    def hint(cls, args: Any, inputs: list[Shape], expected: Shape) -> str | None:
        """A fix that would produce `expected`, for shape-mismatch diagnostics."""
        return None

    @classmethod
    def expand(cls, args: Any, layer: RawLayer) -> list[RawLayer]:
        raise NotImplementedError

    @classmethod
    def expanded_size(cls, fields: Any) -> tuple[int, int]:
        """(layers, block instances) one layer of this op, as written (`fields` unvalidated),
        expands to: the size guard counts a spec from these before expanding anything."""
        return 1, 0

    @classmethod
    def declared_in(cls, args: Any) -> int | None:
        """A composite's declared input channels, checked at its input."""
        return None

    @classmethod
    def instance_params(cls, args: Any) -> dict[str, Any]:
        """A composite's parameters as generated code names them (`ch3x3: (96, 128)`)."""
        return {}

    # --- torch lowering (data only: nothing here imports torch) ---------------------------

    @classmethod
    def torch_module(cls, args: Any, inputs: list[Shape]) -> TorchCall | None:
        """The nn.Module this op lowers to; None for ops written as expressions."""
        return None

    @classmethod
    def torch_expr(cls, args: Any, inputs: list[str], shapes: list[Shape]) -> str:
        """The forward expression of an op without a module (`torch.cat([a, b], 1)`)."""
        raise NotImplementedError(cls.name)

    @classmethod
    def torch_apply(cls, args: Any, module: str, x: str, shapes: list[Shape]) -> str:
        """How forward applies the module of `torch_module` (`module` is `self.conv1`) to the
        input `x`: a call, unless the op runs its module on a view of the input (a layer norm
        over the channels of a map) or its module is a `TorchParameter` (a learned scale)."""
        return f"{module}({x})"

    @classmethod
    def torch_pad(cls, args: Any, inputs: list[Shape]) -> tuple[tuple[int, ...], float] | None:
        """Asymmetric padding to apply before the module (`padding: same` with a stride)."""
        return None


class ShapeKeeping(Op):
    """An op whose output has its input's shape and meaning (an activation, a norm, a scale):
    layers after it see what came before it (`passthrough`)."""

    passthrough = True

    @classmethod
    def infer(cls, args: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        return inputs[0]


class InputOp(Op):
    """The network's input; not registered, so a spec cannot write it as a layer."""

    name = "input"
    kind = "input"
    min_inputs = 0
    max_inputs = 0


class BrokenOp(Op):
    """A layer that failed validation but declared its shape; it infers nothing itself."""

    name = "invalid"
    max_inputs = None

    @classmethod
    def infer(cls, args: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        return None


OPS: dict[str, type[Op]] = {}

# What other frameworks call our ops, for the help line of unknown-op.
ALIASES = {
    "conv2d": "conv",
    "convolution": "conv",
    "batchnorm": "bn",
    "batchnorm2d": "bn",
    "batch_norm": "bn",
    "batchnormalization": "bn",
    "dense": "linear",
    "fc": "linear",
    "fully_connected": "linear",
    "maxpool2d": "maxpool",
    "max_pool": "maxpool",
    "avgpool2d": "avgpool",
    "avg_pool": "avgpool",
    "averagepooling2d": "avgpool",
    "adaptiveavgpool2d": "adaptive_avgpool",
    "globalaveragepooling2d": "adaptive_avgpool",
    "global_avgpool": "adaptive_avgpool",
    "localresponsenorm": "lrn",
    "cat": "concat",
    "concatenate": "concat",
    "view": "reshape",
    "sequential": "seq",
}


def register(cls: type[Op]) -> type[Op]:
    if cls.name in OPS:  # pragma: no cover - a programming error
        raise ValueError(f"op `{cls.name}` registered twice")
    OPS[cls.name] = cls
    return cls


def suggest_op(word: str, extra: Sequence[str] = ()) -> str | None:
    key = word.lower().replace("-", "_")
    if key in ALIASES:
        return f"`{word}` is called `{ALIASES[key]}` in a spec"
    names = sorted({*OPS, *extra})
    return did_you_mean(word, names) or did_you_mean(key, names)


def field_names(args_model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in args_model.model_fields.items()]


def channel_note(ctx: Context, i: int, channels: int) -> str:
    """`inception5a` outputs 736 = 256 + 320 + 32 + 128 (or just the count)."""
    explain = ctx.explain(i)
    if explain and explain != str(channels):
        return f"`{ctx.source(i)}` outputs {channels} = {explain}"
    return f"`{ctx.source(i)}` outputs {channels} channels"


def require_map(ctx: Context, x: Shape, hint: str | None = None) -> bool:
    """Report `rank-mismatch` unless `x` is a CxHxW map."""
    if len(x) == 3:
        return True
    ctx.error(
        "rank-mismatch",
        f"`{ctx.name}` needs a CxHxW map but `{ctx.source(0)}` gives {fmt_shape(x)}",
        help=hint,
    )
    return False
