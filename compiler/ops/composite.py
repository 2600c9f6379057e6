"""Ops that expand into other layers: `seq` (a named sequence) and the Inception module.

A composite becomes a block instance: a scope whose layers are resolved like a user block's,
so Inception's branches are ordinary convs and pools that the rest of yarch already knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..diagnostics import Span
from ..syntax import Loc, RawLayer
from .base import NodeArgs, Op, PosInt, register

Bool = Annotated[bool, Field(strict=True)]
PosIntPair = tuple[PosInt, PosInt]


class SeqArgs(NodeArgs):
    layers: list[Any] = Field(
        min_length=1,
        description="The layers, in sequence, as in a spec's `layers:` (`seq: [conv, bn, "
        "relu]`): each reads the one before, the first the seq's input; unnamed ones are "
        "numbered 0, 1, 2 as in nn.Sequential.",
    )
    in_: PosInt | None = Field(
        None,
        alias="in",
        description="The input channels (or features) the seq declares, checked against "
        "what it receives; optional, as they are inferred anyway.",
    )


@register
class Seq(Op):
    """layers in sequence under one name; unnamed children are numbered from 0"""

    name = "seq"
    example = ((3, 8, 8), ("seq: [{conv: {out: 4, kernel: 3, padding: 1}}, bn, relu]",))
    Args = SeqArgs
    primary = "layers"
    kind = "block"
    composite = True

    @classmethod
    def expand(cls, a: SeqArgs, layer: RawLayer) -> list[Any]:
        # the resolver normalises these items with the spans under ("layers", i)
        return list(a.layers)

    @classmethod
    def declared_in(cls, a: SeqArgs) -> int | None:
        return a.in_


@dataclass(frozen=True)
class At:
    """A value inside generated layers, with the span it was written at."""

    value: Any
    span: Span | None


def unwrap(obj: Any, loc: Loc = ()) -> tuple[Any, dict[Loc, Span]]:
    """Strip `At` wrappers, returning plain data and the span of every wrapped location."""
    spans: dict[Loc, Span] = {}
    if isinstance(obj, At):
        plain, inner = unwrap(obj.value, loc)
        if obj.span is not None:
            spans[loc] = obj.span
        spans.update(inner)
        return plain, spans
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out[k], sub = unwrap(v, (*loc, k))
            spans.update(sub)
        return out, spans
    if isinstance(obj, list):
        items = []
        for i, v in enumerate(obj):
            plain, sub = unwrap(v, (*loc, i))
            items.append(plain)
            spans.update(sub)
        return items, spans
    return obj, spans


class InceptionArgs(NodeArgs):
    channels: tuple[PosInt, PosIntPair, PosIntPair, PosInt] | None = Field(
        None,
        description="The four branches' output channels as the papers write them, "
        "`[c1, [c3_reduce, c3], [c5_reduce, c5], pool_proj]` (`[64, [96, 128], [16, 32], 32]`); "
        "or give `c1`, `c3`, `c5` and `pool_proj` instead.",
    )
    c1: PosInt | None = Field(
        None,
        description="The 1x1 branch's output channels (torchvision's `ch1x1`); overrides "
        "`channels`' first entry.",
    )
    c3: PosIntPair | None = Field(
        None,
        description="The 3x3 branch's channels, `[reduce, out]`: its 1x1 reduction, then its "
        "3x3 conv (torchvision's `ch3x3red`, `ch3x3`); overrides `channels`' second entry.",
    )
    c5: PosIntPair | None = Field(
        None,
        description="The 5x5 branch's channels, `[reduce, out]`: its 1x1 reduction, then its "
        "5x5 (or `c5_kernel`) conv (torchvision's `ch5x5red`, `ch5x5`); overrides `channels`' "
        "third entry.",
    )
    pool_proj: PosInt | None = Field(
        None,
        description="The pool branch's output channels: the 1x1 conv after its 3x3 pool; "
        "overrides `channels`' last entry.",
    )
    in_: PosInt | None = Field(
        None,
        alias="in",
        description="The input channels the module declares, checked against what it "
        "receives; optional, as they are inferred anyway.",
    )
    bn: Bool = Field(
        False,
        description="Conv -> BatchNorm -> ReLU in every branch, as torchvision's GoogLeNet "
        "(BasicConv2d); default false: conv -> ReLU, as the paper.",
    )
    bn_eps: Annotated[float, Field(gt=0)] = Field(
        1e-5,
        description="The batch norms' `eps`, with `bn: true` (torchvision uses 0.001). "
        "Default: 1e-5, nn.BatchNorm2d's.",
    )
    c5_kernel: Literal[3, 5] = Field(
        5,
        description="The kernel of the 5x5 branch's second conv: 5 as the paper, 3 as "
        "torchvision (pytorch/vision#906). Default: 5.",
    )
    pool: Literal["max", "avg"] = Field(
        "max",
        description="The pool branch's 3x3 pool (stride 1, padding 1): `max` or `avg`. "
        "Default: max.",
    )
    pool_ceil: Bool = Field(
        False,
        description="`ceil_mode` of the pool branch's pool, as torchvision's GoogLeNet sets "
        "it. Default: false.",
    )
    relu: Bool = Field(
        True,
        description="A ReLU after every conv of the branches (after its batch norm with "
        "`bn: true`). Default: true.",
    )
    bias: Bool | None = Field(
        None,
        description="Whether the branches' convs have a bias, as nn.Conv2d's `bias`. "
        "Default: no bias with `bn: true`, a bias without.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> InceptionArgs:
        parts = (self.c1, self.c3, self.c5, self.pool_proj)
        if self.channels is None and None in parts:
            missing = [
                n for n, v in zip(("c1", "c3", "c5", "pool_proj"), parts, strict=True) if v is None
            ]
            raise ValueError(
                "inception needs its channels: `[c1, [c3_reduce, c3], [c5_reduce, c5], "
                f"pool_proj]` or the fields c1, c3, c5 and pool_proj (missing {', '.join(missing)})"
            )
        return self

    def tuple4(self) -> tuple[int, tuple[int, int], tuple[int, int], int]:
        if self.channels is None:
            return (self.c1, self.c3, self.c5, self.pool_proj)  # type: ignore[return-value]
        c1, c3, c5, pp = self.channels
        return (
            self.c1 or c1,
            self.c3 or c3,
            self.c5 or c5,
            self.pool_proj or pp,
        )


def _single(layers: list[Any]) -> list[Any]:
    if len(layers) == 1 and isinstance(layers[0], dict) and "seq" in layers[0]:
        return layers[0]["seq"]["layers"]
    return layers


@register
class Inception(Op):
    """GoogLeNet's Inception module (Szegedy et al. 2014, Figure 2b)."""

    name = "inception"
    example = ((8, 8, 8), ("inception: {in: 8, channels: [4, [4, 8], [2, 4], 4]}",))
    Args = InceptionArgs
    primary = "channels"
    kind = "block"
    composite = True
    code_doc = "Inception module (Szegedy et al. 2015, Figure 2b): four branches, concatenated."

    @classmethod
    def declared_in(cls, a: InceptionArgs) -> int | None:
        return a.in_

    @classmethod
    def instance_params(cls, a: InceptionArgs) -> dict[str, Any]:
        c1, c3, c5, pp = a.tuple4()  # torchvision's names, with the paper's pairs
        return {"ch1x1": c1, "ch3x3": tuple(c3), "ch5x5": tuple(c5), "pool_proj": pp}

    @classmethod
    def expanded_size(cls, fields: Any) -> tuple[int, int]:
        f = fields if isinstance(fields, dict) else {}
        bn, relu = f.get("bn") is True, f.get("relu") is not False
        unit = 1 + bn + relu  # conv, its batch norm, its relu
        # six units, the pool and the concat; the module, its four branches and, with batch
        # norm, each unit of the two-unit branches in a `seq` of its own (a one-unit branch is
        # its unit)
        return 6 * unit + 2, 1 + 4 + (5 if bn else 0)

    @classmethod
    def expand(cls, a: InceptionArgs, layer: RawLayer) -> list[RawLayer]:
        def at(value: Any, *locs: Loc) -> At:
            for loc in locs:
                if loc in layer.spans:
                    return At(value, layer.spans[loc])
            return At(value, layer.span)

        c1, c3, c5, pp = a.tuple4()
        bias = (not a.bn) if a.bias is None else a.bias

        def unit(out: At, kernel: int) -> list[Any]:
            conv = {"out": out, "kernel": kernel, "padding": kernel // 2, "bias": bias}
            if a.bn:
                layers: list[Any] = [
                    {"conv": {"name": "conv", **conv}},
                    {"bn": {"name": "bn", "eps": a.bn_eps}},
                ]
                if a.relu:
                    layers.append({"relu": {"name": "relu"}})
                return [{"seq": {"layers": layers}}]
            return [{"conv": conv}, *(["relu"] if a.relu else [])]

        k5 = a.c5_kernel
        pool = {"kernel": 3, "stride": 1, "padding": 1, "ceil_mode": a.pool_ceil}
        branches = {
            # a branch of one unit is that unit itself: torchvision's `branch1.conv`
            "branch1": _single(unit(at(c1, ("c1",), ("channels", 0)), 1)),
            "branch2": [
                *unit(at(c3[0], ("c3", 0), ("channels", 1, 0)), 1),
                *unit(at(c3[1], ("c3", 1), ("channels", 1, 1)), 3),
            ],
            "branch3": [
                *unit(at(c5[0], ("c5", 0), ("channels", 2, 0)), 1),
                *unit(at(c5[1], ("c5", 1), ("channels", 2, 1)), k5),
            ],
            "branch4": [
                {f"{a.pool}pool": pool},
                *unit(at(pp, ("pool_proj",), ("channels", 3)), 1),
            ],
        }
        out = []
        for name, layers in branches.items():
            fields, spans = unwrap({"name": name, "from": "input", "layers": layers})
            out.append(RawLayer("seq", fields, layer.span, spans))
        out.append(RawLayer("concat", {"name": "concat", "from": list(branches)}, layer.span))
        return out
