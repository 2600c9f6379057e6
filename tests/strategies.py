"""Hypothesis strategies for yarch specs.

`valid_specs()` draws small random networks that must lint clean (no errors, no warnings), build,
run and generate code: chains of convolutions (kernels, pairs, strides, padding numbers, pairs,
`same` and `valid`, dilation, groups), max and average pooling (ceil mode, dilation, padding),
batch norm, activations, dropout, LRN, `seq`, `repeat` with `first:`, disabled layers (`if:`),
Inception modules (every way of writing their channels), branches merged by `add` and `concat`
(also across several layers, DenseNet-style), user blocks (ResNet basic and bottleneck blocks
with a conditional projection shortcut, identity residuals, Inception-like blocks, depthwise
separable convs, blocks made of blocks), ConvNeXt blocks (group and layer norms, `permute`,
linear layers on the last dimension, layer scale, stochastic depth), parameters and `${...}`
expressions, `expect:` and declared `in:` sizes, and a head (adaptive pooling, flatten, reshape
or `mean`, linear layers), sometimes with extra and training-only outputs. The shapes are
computed here, independently of `compiler/`, with PyTorch's formulas; every example carries the
output shapes it should have.

`mutants()` draws a spec of the library (every file under `specs/`, variants included) or a
generated one, and breaks it: a number changed, a key deleted, duplicated or renamed, a value
swapped for another type, a list reordered, lines swapped, duplicated or deleted, the file cut
short at a byte, random unicode or YAML syntax inserted. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from compiler.ops import OPS

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter: ten times faster
SPECS = Path(__file__).resolve().parent.parent / "specs"

Shape = tuple[int, ...]

MAX_CHANNELS = 64
LAYER_MACS = 2_000_000  # multiply-accumulates of one conv for one sample, at most
# every elementwise op but dropout (drawn on its own), from the registry: a new one is fuzzed
ACTIVATIONS = tuple(name for name, op in OPS.items() if op.elementwise and name != "dropout")


# --- shape arithmetic, as PyTorch computes it ---------------------------------------------------


def window_out(n: int, k: int, s: int, p: int | str, d: int = 1, ceil: bool = False) -> int:
    """Output size of a sliding window along one axis (conv or pool)."""
    ke = d * (k - 1) + 1
    if p == "same":
        return -(-n // s)
    assert isinstance(p, int)
    if ceil:
        out = -(-(n + 2 * p - ke) // s) + 1
        if (out - 1) * s >= n + p:  # the last window must start inside the input
            out -= 1
        return out
    return (n + 2 * p - ke) // s + 1


def sees_input(n: int, k: int, s: int, p: int | str, d: int, ceil: bool) -> bool:
    """Every window has a tap on an input pixel, not only on padding (a dilated max pool's
    blind window outputs -inf: yarch's `pool-padding` error)."""
    out = window_out(n, k, s, p, d, ceil)
    left = max((out - 1) * s + d * (k - 1) + 1 - n, 0) // 2 if p == "same" else p
    assert isinstance(left, int)
    return all(any(0 <= o * s - left + j * d < n for j in range(k)) for o in range(out))


def axis_ok(n: int, k: int, s: int, p: int | str, d: int, ceil: bool, pool: bool) -> bool:
    """The window fits, leaves at least one pixel and reads every pixel of the input (a stride
    that leaves pixels unread at the end gets yarch's `stride-remainder` warning); a pool's
    windows each read a pixel."""
    ke = d * (k - 1) + 1
    if pool and window_out(n, k, s, p, d, ceil) >= 1 and not sees_input(n, k, s, p, d, ceil):
        return False
    if p == "same":
        return True
    assert isinstance(p, int)
    if pool and 2 * p > k:
        # PyTorch's pools, and yarch's `pool-padding` rule, take padding up to half the kernel,
        # dilation left out (test_properties.py::test_pool_padding_beyond_half_the_kernel)
        return False
    if window_out(n, k, s, p, d, ceil) < 1:
        return False
    return ceil or ke < s or (n + 2 * p - ke) % s <= p


def pair(v: tuple[int, int]) -> int | list[int]:
    return v[0] if v[0] == v[1] else [v[0], v[1]]


# --- layers and specs ---------------------------------------------------------------------------


@dataclass
class Layer:
    op: str
    fields: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    primary: str | None = None  # written `op: value` when it is the only field
    short: bool = False

    def render(self) -> Any:
        fields = dict(self.fields)
        if self.name is not None:
            fields = {"name": self.name, **fields}
        if not fields:
            return self.op
        if self.short and self.primary is not None and list(fields) == [self.primary]:
            return {self.op: fields[self.primary]}
        return {self.op: fields}


@dataclass
class Generated:
    text: str
    data: dict[str, Any]
    input_shape: Shape
    outputs: dict[str, Shape]  # output name -> shape (batch left out), in declaration order
    train_only: set[str]


class Scope:
    """The layers of the network or of a block, with the shape that flows out of the last one
    and the earlier tensors a later layer may read (`from:`)."""

    def __init__(self, shape: Shape, names: set[str] | None = None) -> None:
        self.layers: list[Layer] = []
        self.shape = shape
        self.names: set[str] = names if names is not None else set()
        self.history: list[tuple[Layer | None, Shape]] = [(None, shape)]  # None: `input`

    def fresh(self, stem: str) -> str:
        i = 1
        while f"{stem}{i}" in self.names:
            i += 1
        self.names.add(f"{stem}{i}")
        return f"{stem}{i}"

    def ref(self, layer: Layer | None) -> str:
        """The name of a layer, naming it if it has none; `input` for None."""
        if layer is None:
            return "input"
        if layer.name is None:
            layer.name = self.fresh(re.sub(r"[^a-z]", "", layer.op.lower())[:4] or "l")
        return layer.name

    def current(self) -> Layer | None:
        return self.history[-1][0]

    def add(self, layer: Layer, shape: Shape, remember: bool = True) -> Layer:
        self.layers.append(layer)
        self.shape = shape
        if remember:
            self.history.append((layer, shape))
        return layer


class Gen:
    """One drawing session: the spec's parameters, blocks and compute budget."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.params: dict[str, Any] = {}
        self.blocks: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, list[str]] = {}  # template -> block names defined from it

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, max(lo, hi)))

    def bool(self, p: float = 0.5) -> bool:
        # weighted coin: False shrinks first
        return self.draw(st.integers(0, 99)) < round(p * 100)

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(list(options)))

    def number(self, v: int) -> Any:
        """`v` as written in a spec: a literal mostly, sometimes a parameter or an expression."""
        if not self.bool(0.15):
            return v
        width = self.params.get("width")
        forms = [f"${{{v}}}", f"${{max({v}, 1)}}", f"${{{v + 3} - 3}}", f"${{int({v})}}"]
        if v % 2 == 0:
            forms.append(f"${{{v // 2} * 2}}")
        if width and v == width:
            forms.append("$width")
        if width and v % width == 0:
            forms.append(f"${{width * {v // width}}}")
        if width and v >= width:
            forms.append(f"${{width + {v - width}}}")
        return self.pick(forms)

    def channels_cap(self, cin: int, groups: int, kernel: tuple[int, int], out_hw: tuple) -> int:
        per_out = (cin // groups) * kernel[0] * kernel[1] * out_hw[0] * out_hw[1]
        return max(1, min(MAX_CHANNELS, LAYER_MACS // max(per_out, 1)))


# --- spatial windows ----------------------------------------------------------------------------

KERNELS = [(1, 1), (3, 3), (2, 2), (5, 5), (1, 3), (3, 1), (7, 7), (4, 4), (1, 5), (5, 1), (2, 3)]


def draw_conv_window(g: Gen, hw: tuple[int, int], stride_max: int = 3) -> dict[str, Any]:
    """kernel, stride, padding and dilation of a conv that is valid on `hw` (1x1 at worst)."""
    for _ in range(4):
        kernel = g.pick(KERNELS)
        dil = (1, 1) if not g.bool(0.15) else g.pick([(2, 2), (1, 2), (2, 1), (3, 3)])
        stride = (1, 1) if not g.bool(0.35) else g.pick([(2, 2), (3, 3), (1, 2), (2, 1)])
        if max(stride) > stride_max:
            continue
        if g.bool(0.12):
            return {"kernel": kernel, "stride": stride, "padding": "same", "dilation": dil}
        pads = []
        for a in (0, 1):
            ke = dil[a] * (kernel[a] - 1) + 1
            ok = [
                p
                for p in range(0, ke // 2 + 2)
                if axis_ok(hw[a], kernel[a], stride[a], p, dil[a], False, False)
            ]
            if not ok:
                break
            pads.append(g.pick(ok))
        else:
            return {"kernel": kernel, "stride": stride, "padding": tuple(pads), "dilation": dil}
    return {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}


def draw_pool_window(g: Gen, hw: tuple[int, int], op: str) -> dict[str, Any] | None:
    for _ in range(4):
        kernel = g.pick([(2, 2), (3, 3), (1, 1), (4, 4), (2, 3), (5, 5)])
        stride = None if g.bool(0.5) else g.pick([(1, 1), (2, 2), (3, 3), (1, 2)])
        s = stride or kernel
        dil = (1, 1)
        if op == "maxpool" and g.bool(0.15):
            dil = g.pick([(2, 2), (1, 2)])
        ceil = g.bool(0.3)
        if (
            op == "maxpool"
            and g.bool(0.08)
            and all(axis_ok(hw[a], kernel[a], s[a], "same", dil[a], False, True) for a in (0, 1))
        ):
            return {"kernel": kernel, "stride": stride, "padding": "same", "dilation": dil}
        pads = []
        for a in (0, 1):
            ok = [
                p
                for p in range(0, kernel[a] // 2 + 1)
                if axis_ok(hw[a], kernel[a], s[a], p, dil[a], ceil, True)
            ]
            if not ok:
                break
            pads.append(g.pick(ok))
        else:
            return {
                "kernel": kernel,
                "stride": stride,
                "padding": tuple(pads),
                "dilation": dil,
                "ceil_mode": ceil,
            }
    return None


def window_hw(hw: tuple[int, int], win: dict[str, Any]) -> tuple[int, int]:
    s = win["stride"] or win["kernel"]
    out = []
    for a in (0, 1):
        p = win["padding"] if win["padding"] == "same" else win["padding"][a]
        out.append(
            window_out(hw[a], win["kernel"][a], s[a], p, win["dilation"][a], win.get("ceil_mode"))
        )
    return out[0], out[1]


def write_window(g: Gen, win: dict[str, Any], fields: dict[str, Any], pool: bool = False) -> None:
    fields["kernel"] = pair(win["kernel"])
    # a pool's stride defaults to its kernel, a conv's to 1
    if win["stride"] is not None and (pool or win["stride"] != (1, 1) or g.bool(0.2)):
        fields["stride"] = pair(win["stride"])
    pad = win["padding"]
    if pad == "same":
        fields["padding"] = "same"
    elif pad != (0, 0):
        fields["padding"] = pair(pad)
    elif g.bool(0.1):
        fields["padding"] = g.pick(["valid", 0, [0, 0]])
    if win["dilation"] != (1, 1):
        fields["dilation"] = pair(win["dilation"])
    if win.get("ceil_mode"):
        fields["ceil_mode"] = True


# --- layers -------------------------------------------------------------------------------------


def maybe_expect(g: Gen, layer: Layer, shape: Shape) -> None:
    if g.bool(0.15):
        layer.fields["expect"] = list(shape)


def conv(g: Gen, s: Scope, stride_max: int = 3) -> bool:
    c, h, w = s.shape
    win = draw_conv_window(g, (h, w), stride_max)
    oh, ow = window_hw((h, w), win)
    divisors = [d for d in range(2, c + 1) if c % d == 0]
    groups = g.pick(divisors) if divisors and g.bool(0.2) else 1
    cap = g.channels_cap(c, groups, win["kernel"], (oh, ow))
    if cap < groups:
        groups = 1
    out = groups * g.int(1, cap // groups)
    fields: dict[str, Any] = {"out": g.number(out)}
    if g.bool(0.2):
        fields["in"] = g.number(c)
    write_window(g, win, fields)
    if groups != 1:
        fields["groups"] = groups
    if g.bool(0.3):
        fields["bias"] = g.bool()
    layer = Layer("conv", fields)
    shape = (out, oh, ow)
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    if g.bool(0.4):
        bn(g, s)
    if g.bool(0.6):
        act(g, s)
    return True


def conv_transpose(g: Gen, s: Scope) -> bool:
    """A transposed conv that upsamples a small map (a U-Net's decoder)."""
    c, h, w = s.shape
    if max(h, w) > 32:
        return False
    k, stride, pad = g.pick([1, 2, 3, 4]), g.pick([1, 2]), g.int(0, 1)
    out_pad = g.int(0, stride - 1)
    size = [(n - 1) * stride - 2 * pad + (k - 1) + out_pad + 1 for n in (h, w)]
    if min(size) < 1:
        return False
    out = g.int(1, max(1, min(MAX_CHANNELS, LAYER_MACS // max(c * k * k * h * w, 1))))
    fields: dict[str, Any] = {"out": g.number(out), "kernel": k}
    if stride != 1:
        fields["stride"] = stride
    if pad:
        fields["padding"] = pad
    if out_pad:
        fields["output_padding"] = out_pad
    if g.bool(0.2):
        fields["in"] = g.number(c)
    layer = Layer("conv_transpose", fields)
    shape = (out, size[0], size[1])
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def upsample(g: Gen, s: Scope) -> bool:
    """An upsample of a small map: by a factor, to a size, or to an earlier map's size (a
    segmentation head's `like: input`)."""
    c, h, w = s.shape
    if max(h, w) > 24:
        return False
    mode = g.pick(["nearest", "bilinear"])
    fields: dict[str, Any] = {} if mode == "nearest" else {"mode": mode}
    if mode == "bilinear" and g.bool(0.3):
        fields["align_corners"] = True
    kind = g.pick(["scale", "size", "like"])
    if kind == "like":
        earlier, shape = g.pick([(layer, sh) for layer, sh in s.history if len(sh) == 3])
        fields["like"] = s.ref(earlier)
        size = shape[1:]
    elif kind == "size":
        size = (g.int(1, 32), g.int(1, 32))
        fields["size"] = pair(size)
    else:
        factor = g.pick([2, 3])
        fields["scale"] = factor
        size = (h * factor, w * factor)
    layer = Layer("upsample", fields, primary="scale", short=g.bool(0.5))
    shape = (c, size[0], size[1])
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def pool(g: Gen, s: Scope) -> bool:
    c, h, w = s.shape
    op = g.pick(["maxpool", "avgpool"])
    win = draw_pool_window(g, (h, w), op)
    if win is None:
        return False
    fields: dict[str, Any] = {}
    write_window(g, win, fields, pool=True)
    if op == "avgpool" and g.bool(0.2):
        fields["count_include_pad"] = g.bool()
    shape = (c, *window_hw((h, w), win))
    layer = Layer(op, fields, primary="kernel", short=g.bool())
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def bn(g: Gen, s: Scope) -> bool:
    fields: dict[str, Any] = {}
    if g.bool(0.2):
        fields["in"] = g.number(s.shape[0])
    if g.bool(0.15):
        fields["eps"] = g.pick([1e-3, 0.001, 1e-5, 2.0e-5])
    if g.bool(0.15):
        fields["momentum"] = g.pick([0.1, 0.01, 0, 1])
    if g.bool(0.1):
        fields["affine"] = False
    s.add(Layer("bn", fields), s.shape)
    return True


def act(g: Gen, s: Scope, map_only: bool = True) -> bool:
    op = g.pick((*ACTIVATIONS, "dropout", "lrn") if map_only else (*ACTIVATIONS, "dropout"))
    fields: dict[str, Any] = {}
    primary = None
    if op == "leaky_relu" and g.bool():
        primary, fields["negative_slope"] = "negative_slope", g.pick([0.1, 0.2, 0, 1])
    elif op == "dropout" and g.bool(0.7):
        primary, fields["p"] = "p", g.pick([0.5, 0.2, 0, 0.999])
    elif op == "lrn":
        if g.bool(0.7):
            primary, fields["size"] = "size", g.int(1, 7)
        if g.bool(0.3):
            fields["alpha"], fields["beta"], fields["k"] = 1e-4, 0.75, 2.0
    if g.bool(0.05):
        fields["repeat"] = g.int(1, 3)
    s.add(Layer(op, fields, primary=primary, short=g.bool(0.7)), s.shape)
    return True


def disabled(g: Gen, s: Scope) -> bool:
    """A layer with `if: false` (or a false expression): removed, whatever it would do."""
    op = g.pick(["conv", "maxpool", "linear", "relu"])
    fields: dict[str, Any] = {
        "conv": {"out": g.int(1, 99), "kernel": g.int(1, 99)},
        "maxpool": {"kernel": g.int(1, 99)},
        "linear": {"out": g.int(1, 9)},
        "relu": {},
    }[op]
    fields["if"] = g.pick([False, "${1 > 2}", "${not True}"])
    s.add(Layer(op, fields), s.shape, remember=False)
    return True


def repeated_conv(g: Gen, s: Scope) -> bool:
    """`conv: {..., repeat: N}`, sometimes `first: {stride: 2}` or a wider first copy."""
    c, h, w = s.shape
    k = g.pick([1, 3, 5])
    n = g.int(2, 3)
    out = g.int(1, min(MAX_CHANNELS, g.channels_cap(max(c, MAX_CHANNELS), 1, (k, k), (h, w))))
    fields: dict[str, Any] = {"out": g.number(out), "kernel": k}
    if k > 1:
        fields["padding"] = k // 2
    fields["repeat"] = n
    hw = (h, w)
    if g.bool(0.4) and min(h, w) >= 2:
        fields["first"] = {"stride": 2}
        hw = (window_out(h, k, 2, k // 2), window_out(w, k, 2, k // 2))
    shape = (out, *hw)
    layer = Layer("conv", fields)
    s.add(layer, shape)
    return True


def seq(g: Gen, s: Scope) -> bool:
    inner = Scope(s.shape, s.names)
    for _ in range(g.int(1, 3)):
        g.pick([conv, conv, pool, act, bn])(g, inner)
    fields: dict[str, Any] = {"layers": [layer.render() for layer in inner.layers]}
    if g.bool(0.2):
        fields["in"] = s.shape[0]
    layer = Layer("seq", fields, primary="layers", short=g.bool())
    s.add(layer, inner.shape)
    return True


def inception(g: Gen, s: Scope) -> bool:
    c, h, w = s.shape
    budget = MAX_CHANNELS
    c1 = g.int(1, 16)
    c3 = (g.int(1, 16), g.int(1, 16))
    c5 = (g.int(1, 8), g.int(1, 16))
    pp = g.int(1, budget - c1 - c3[1] - c5[1]) if budget - c1 - c3[1] - c5[1] >= 1 else 1
    channels = [c1, list(c3), list(c5), pp]
    form = g.int(0, 2)
    fields: dict[str, Any] = {}
    if form == 0:
        fields["channels"] = channels
    elif form == 1:
        fields.update(c1=c1, c3=list(c3), c5=list(c5), pool_proj=pp)
    else:  # the tuple, with one part written as its own field (it wins)
        fields["channels"] = [c1 + 1, list(c3), list(c5), pp]
        fields["c1"] = c1
    if g.bool(0.2):
        fields["in"] = g.number(c)
    if g.bool(0.3):
        fields["bn"] = True
        if g.bool(0.3):
            fields["bn_eps"] = 0.001
    if g.bool(0.3):
        fields["c5_kernel"] = g.pick([3, 5])
    if g.bool(0.3):
        fields["pool"] = g.pick(["max", "avg"])
    if g.bool(0.2):
        fields["pool_ceil"] = g.bool()
    if g.bool(0.15):
        fields["relu"] = g.bool()
    if g.bool(0.15):
        fields["bias"] = g.bool()
    layer = Layer("inception", fields, primary="channels", short=g.bool())
    shape = (c1 + c3[1] + c5[1] + pp, h, w)
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def branches(g: Gen, s: Scope) -> bool:
    """Two to four branches read the current tensor (`from:`) and meet in `concat` or `add`."""
    c, h, w = s.shape
    src = s.current()
    merge = g.pick(["concat", "add"])
    width = g.int(1, 16) if merge == "add" else 0
    target: tuple[int, int] | None = None
    ends: list[Layer | None] = []
    layers: list[Layer] = []
    total = 0
    for i in range(g.int(2, 4)):
        # the first branch may be the input itself (a shortcut)
        if i == 0 and (merge == "concat" or width == c) and g.bool(0.3):
            ends.append(src)
            target = (h, w)
            total += c
            continue
        sub = Scope(s.shape, s.names)
        for _ in range(3):
            win = draw_conv_window(g, (h, w))
            if target is None or window_hw((h, w), win) == target:
                break
        else:
            win = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
            if target != (h, w):
                return False  # nothing is added to `s` before the end
        oh, ow = window_hw((h, w), win)
        target = (oh, ow)
        if merge == "concat" and (oh, ow) == (h, w) and g.bool(0.2):
            first = Layer(g.pick(["maxpool", "avgpool"]), {"kernel": 3, "stride": 1, "padding": 1})
            out = c
        else:
            cap = g.channels_cap(c, 1, win["kernel"], (oh, ow))
            out = width if merge == "add" else g.int(1, min(cap, 16))
            fields: dict[str, Any] = {"out": out}
            write_window(g, win, fields)
            first = Layer("conv", fields)
        sub.add(first, (out, oh, ow))
        first.fields["from"] = s.ref(src)
        if g.bool(0.5):
            act(g, sub)
        if g.bool(0.3):
            bn(g, sub)
        layers += sub.layers
        ends.append(sub.layers[-1])
        total += out
    if merge == "concat" and total > MAX_CHANNELS:
        return False
    assert target is not None
    s.layers += layers
    refs = [s.ref(e) for e in ends]
    if merge == "concat":
        fields = {"from": refs}
        if g.bool(0.2):
            fields["dim"] = 1
        layer = Layer("concat", fields, primary="from", short=g.bool(0.7))
        shape = (total, *target)
    else:
        layer = Layer("add", {"from": refs}, primary="from", short=g.bool(0.7))
        shape = (width, *target)
    maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def dense(g: Gen, s: Scope) -> bool:
    """A merge with an earlier tensor of the same size (DenseNet's concat, a long shortcut)."""
    c, h, w = s.shape
    same_hw = [(layer, shape) for layer, shape in s.history[:-1] if shape[1:] == (h, w)]
    if not same_hw:
        return False
    layer, shape = g.pick(same_hw)
    if shape == s.shape and g.bool():
        merged = Layer("add", {"from": [s.ref(layer), s.ref(s.current())]}, primary="from")
        s.add(merged, s.shape)
        return True
    if shape[0] + c > MAX_CHANNELS:
        return False
    refs = [s.ref(layer), s.ref(s.current())]
    if g.bool():
        refs.reverse()
    s.add(Layer("concat", {"from": refs}, primary="from", short=True), (shape[0] + c, h, w))
    return True


def gate(g: Gen, s: Scope) -> bool:
    """A gate multiplied into the map (`mul`, broadcast as torch does): squeeze-excitation's
    Cx1x1 from the pooled map, or a 1xHxW spatial gate from a 1x1 conv."""
    c, h, w = s.shape
    src = s.current()
    sub = Scope(s.shape, s.names)
    if g.bool():
        pooled = Layer("adaptive_avgpool", {"output": 1, "from": s.ref(src)})
        sub.add(pooled, (c, 1, 1))
        squeeze = g.int(1, max(1, c // 2))
        sub.add(Layer("conv", {"out": squeeze, "kernel": 1}), (squeeze, 1, 1))
        sub.add(Layer("relu"), (squeeze, 1, 1))
        sub.add(Layer("conv", {"out": c, "kernel": 1}), (c, 1, 1))
        shape: Shape = (c, 1, 1)
    else:
        sub.add(Layer("conv", {"out": 1, "kernel": 1, "from": s.ref(src)}), (1, h, w))
        shape = (1, h, w)
    sub.add(Layer(g.pick(["sigmoid", "hardsigmoid"])), shape)
    s.layers += sub.layers
    refs = [s.ref(sub.layers[-1]), s.ref(src)]
    if g.bool():
        refs.reverse()
    s.add(Layer("mul", {"from": refs}, primary="from", short=g.bool(0.7)), s.shape)
    return True


def torch_chunks(size: int, chunks: int) -> list[int]:
    """torch.chunk's part sizes: ceil(size / chunks) each until the size runs out."""
    step = -(-size // chunks)
    sizes = []
    while sum(sizes) < size:
        sizes.append(min(step, size - sum(sizes)))
    return sizes


def shuffle_unit(g: Gen, s: Scope) -> bool:
    """ShuffleNet's unit, loosely: the channels split by `chunk` (into fewer parts than asked
    for where torch's rounding up uses them all) or `split` (into parts of given sizes), some
    parts through a 1x1 conv, the parts concatenated again and `channel_shuffle`d."""
    c, h, w = s.shape
    if c < 2:
        return False
    src = s.current()
    chunks = g.int(2, min(c, 5))
    sizes = torch_chunks(c, chunks)
    by_sizes = g.bool()  # `split` into parts of sizes drawn at random, not `chunk`
    if by_sizes:
        cuts = sorted({g.int(1, c - 1) for _ in range(chunks - 1)})
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, c], strict=True)]
    sub = Scope(s.shape, s.names)
    ends: list[Layer] = []
    total = 0
    for part, size in enumerate(sizes):
        if by_sizes:
            layer = Layer("split", {"sizes": sizes, "part": part, "from": s.ref(src)})
        else:
            layer = Layer("chunk", {"chunks": chunks, "part": part, "from": s.ref(src)})
        ends.append(sub.add(layer, (size, h, w)))
        width = size
        if g.bool(0.4):
            width = g.int(1, min(16, g.channels_cap(size, 1, (1, 1), (h, w))))
            ends[-1] = sub.add(Layer("conv", {"out": width, "kernel": 1}), (width, h, w))
        total += width
    if total > MAX_CHANNELS:
        return False  # nothing is added to `s` before the end
    s.layers += sub.layers
    refs = [s.ref(e) for e in ends]
    if g.bool():
        refs.reverse()
    s.add(Layer("concat", {"from": refs}, primary="from", short=True), (total, h, w))
    groups = g.pick([d for d in range(1, total + 1) if total % d == 0])
    layer = Layer("channel_shuffle", {"groups": groups}, primary="groups", short=g.bool())
    maybe_expect(g, layer, (total, h, w))
    s.add(layer, (total, h, w))
    return True


def cn_block(g: Gen, s: Scope) -> bool:
    """ConvNeXt's block, inline: a depthwise conv, the channels moved last (`permute`) for a
    layer norm and two linear layers on the last dimension, moved back, a layer scale and
    stochastic depth, added to the block's input; sometimes a group or layer norm first."""
    c, h, w = s.shape
    if g.bool(0.4):
        if g.bool():
            groups = g.pick([d for d in range(1, c + 1) if c % d == 0])
            s.add(
                Layer("group_norm", {"groups": groups}, primary="groups", short=g.bool()), s.shape
            )
        else:
            s.add(Layer("layer_norm", {"eps": 1e-6} if g.bool() else {}), s.shape)
    src = s.current()
    k = g.pick([k for k in (1, 3, 7) if c * k * k * h * w <= LAYER_MACS] or [1])
    s.add(Layer("conv", {"out": c, "kernel": k, "padding": k // 2, "groups": c}), s.shape)
    s.add(Layer("permute", {"dims": [0, 2, 3, 1]}, primary="dims", short=g.bool(0.7)), (h, w, c))
    s.add(Layer("layer_norm", {"over": "last"}, primary="over", short=g.bool()), (h, w, c))
    hidden = g.int(1, max(1, min(16, LAYER_MACS // (h * w * c))))
    s.add(Layer("linear", {"out": hidden, "over": "last"}), (h, w, hidden))
    act(g, s, map_only=False)
    fields: dict[str, Any] = {"out": c, "over": "last"}
    if g.bool(0.3):
        fields["in"] = hidden
    s.add(Layer("linear", fields), (h, w, c))
    s.add(Layer("permute", {"dims": [0, 3, 1, 2]}, primary="dims", short=g.bool(0.7)), (c, h, w))
    if g.bool(0.7):
        init = g.pick([1e-6, 0.5, 1])
        s.add(Layer("layer_scale", {"init": init}, primary="init", short=g.bool()), s.shape)
    if g.bool(0.7):
        fields = {"p": g.pick([0, 0.1, 0.5])}
        if g.bool(0.2):
            fields["mode"] = g.pick(["row", "batch"])
        s.add(Layer("stochastic_depth", fields, primary="p", short=g.bool()), s.shape)
    s.add(Layer("add", {"from": [s.ref(s.current()), s.ref(src)]}, primary="from"), s.shape)
    return True


# --- user blocks --------------------------------------------------------------------------------


def _act_layer(g: Gen, name: str | None = None) -> Any:
    op = g.pick(["relu", "relu6", "silu", "gelu", "leaky_relu"])
    return {op: {"name": name}} if name else op


def block_basic(g: Gen) -> tuple[dict[str, Any], str]:
    """ResNet's BasicBlock: the projection shortcut exists only when the shape changes."""
    k, d = g.pick([(3, 1), (3, 2), (1, 1), (5, 1)])
    pad: Any = "same" if g.bool(0.2) else d * (k - 1) // 2
    use_bn = g.bool(0.7)
    conv1 = {"name": "conv1", "in": "$inplanes", "out": "$planes", "kernel": k}
    conv1.update({"stride": "$stride", "padding": pad, "bias": not use_bn})
    if d != 1:
        conv1["dilation"] = d
    layers: list[Any] = [{"conv": conv1}]
    if use_bn:
        layers.append({"bn": {"name": "bn1"}})
    layers.append(_act_layer(g, "relu"))
    layers.append({"conv": {"name": "conv2", "out": "$planes", "kernel": 3, "padding": 1}})
    last = "conv2"
    if use_bn:
        layers.append({"bn": {"name": "bn2"}})
        last = "bn2"
    short = [{"conv": {"out": "$planes", "kernel": 1, "stride": "$stride", "bias": False}}]
    if use_bn:
        short.append("bn")
    layers.append(
        {
            "seq": {
                "name": "downsample",
                "from": "input",
                "if": "${stride != 1 or inplanes != planes}",
                "layers": short,
            }
        }
    )
    layers.append({"add": [last, "downsample"] if g.bool() else ["downsample", last]})
    layers.append("relu")
    block = {"params": {"inplanes": None, "planes": None, "stride": 1}, "layers": layers}
    if g.bool(0.2):
        block["doc"] = "two convs and a shortcut"
    return block, "basic"


def block_bottleneck(g: Gen) -> tuple[dict[str, Any], str]:
    layers: list[Any] = [
        {"conv": {"name": "conv1", "out": "$planes", "kernel": 1, "bias": False}},
        {"bn": {"name": "bn1"}},
        "relu",
        {
            "conv": {
                "name": "conv2",
                "out": "$planes",
                "kernel": 3,
                "stride": "$stride",
                "padding": 1,
                "bias": False,
            }
        },
        {"bn": {"name": "bn2"}},
        "relu",
        {"conv": {"name": "conv3", "out": "${planes * expansion}", "kernel": 1, "bias": False}},
        {"bn": {"name": "bn3"}},
        {
            "seq": {
                "name": "downsample",
                "from": "input",
                "if": "${stride != 1 or inplanes != planes * expansion}",
                "layers": [
                    {"conv": {"out": "${planes * expansion}", "kernel": 1, "stride": "$stride"}},
                    "bn",
                ],
            }
        },
        {"add": ["bn3", "downsample"]},
        "relu",
    ]
    params = {"inplanes": None, "planes": None, "stride": 1, "expansion": 4}
    return {"params": params, "layers": layers}, "bottleneck"


def block_identity(g: Gen) -> tuple[dict[str, Any], str]:
    k = g.pick([3, 1, 5])
    layers = [
        {"conv": {"name": "conv1", "in": "$channels", "out": "$channels", "kernel": k}},
        _act_layer(g),
        {"conv": {"name": "conv2", "out": "$channels", "kernel": 3, "padding": 1}},
        {"add": ["input", "conv2"]},
        _act_layer(g),
    ]
    if k > 1:
        layers[0]["conv"]["padding"] = k // 2
    return {"params": {"channels": None}, "layers": layers}, "identity"


def block_mixed(g: Gen) -> tuple[dict[str, Any], str]:
    """Inception-like, written by hand: branches from `input`, a concat, `output:`."""
    pool_op = g.pick(["maxpool", "avgpool"])
    layers: list[Any] = [
        {"conv": {"name": "b1", "out": "$c1", "kernel": 1}},
        {"conv": {"name": "b2a", "from": "input", "out": "${max(c3 // 2, 1)}", "kernel": 1}},
        {"conv": {"name": "b2b", "out": "$c3", "kernel": 3, "padding": 1}},
        {pool_op: {"name": "b3", "from": "input", "kernel": 3, "stride": 1, "padding": 1}},
        {"concat": {"name": "cat", "from": ["b1", "b2b", "b3"]}},
    ]
    block: dict[str, Any] = {"params": {"c1": None, "c3": 8}, "layers": layers}
    if g.bool(0.3):
        block["output"] = "cat"
    return block, "mixed"


def block_separable(g: Gen) -> tuple[dict[str, Any], str]:
    layers = [
        {
            "conv": {
                "name": "dw",
                "in": "$c",
                "out": "$c",
                "kernel": 3,
                "stride": "$stride",
                "padding": 1,
                "groups": "$c",
                "bias": False,
            }
        },
        "bn",
        "relu6",
        {"conv": {"name": "pw", "out": "$out", "kernel": 1, "bias": False}},
        "bn",
    ]
    return {"params": {"c": None, "out": None, "stride": 1}, "layers": layers}, "separable"


def define(g: Gen, template: Any) -> str:
    """The name of a block made from `template`: a new one, or one defined before."""
    made = g.templates.get(template.__name__, [])
    if made and g.bool(0.5):
        return g.pick(made)
    block, stem = template(g)
    name = f"{stem.capitalize()}{len(g.blocks) + 1}"
    g.blocks[name] = block
    g.templates.setdefault(template.__name__, []).append(name)
    return name


def user_block(g: Gen, s: Scope) -> bool:
    c, h, w = s.shape
    template = g.pick(
        [block_basic, block_identity, block_mixed, block_bottleneck, block_separable, "stage"]
    )
    if template == "stage":
        return stage(g, s)
    if template is block_mixed and c + 2 > MAX_CHANNELS:
        return False
    name = define(g, template)
    stride = g.pick([1, 2]) if template in (block_basic, block_bottleneck, block_separable) else 1
    hw = (h, w) if stride == 1 else ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
    repeat = g.int(2, 3) if template is not block_mixed and g.bool(0.3) else 1
    args: dict[str, Any]  # the instance's arguments
    first: dict[str, Any] = {}  # those of the first copy, when repeated
    if template in (block_basic, block_bottleneck):
        expansion = 4 if template is block_basic else g.pick([4, 1, 2])
        planes = g.int(1, MAX_CHANNELS // expansion)
        out = planes if template is block_basic else planes * expansion
        args = {"inplanes": c, "planes": planes, "stride": stride}
        if template is block_bottleneck and expansion != 4:
            args["expansion"] = expansion
        if repeat > 1:  # as torchvision's _make_layer: the first copy strides and widens
            args["inplanes"] = out
            first = {"inplanes": c, "stride": stride}
            del args["stride"]
    elif template is block_identity:
        args, out = {"channels": c}, c
    elif template is block_mixed:
        c1 = g.int(1, min(16, MAX_CHANNELS - c - 1))
        c3 = g.int(1, min(16, MAX_CHANNELS - c - c1))
        args = {"c1": c1} if c3 == 8 and g.bool() else {"c1": c1, "c3": c3}
        out = c1 + c3 + c
    else:  # separable: every copy after the first reads `out` channels
        out = g.int(1, 32)
        args = {"c": c, "out": out, "stride": stride}
        if repeat > 1:
            args["c"] = out
            first = {"c": c, "stride": stride}
            del args["stride"]
    fields: dict[str, Any] = {k: g.number(v) for k, v in args.items()}
    if g.bool(0.15):
        # `in:` is checked on every copy: with a repeat, only the first reads `c` channels
        (first if repeat > 1 else fields)["in"] = c
    if repeat > 1:
        fields["repeat"] = g.number(repeat)
        if first:
            fields["first"] = first
    layer = Layer(name, fields, name=s.fresh("blk"))
    shape = (out, *hw)
    if repeat == 1:
        maybe_expect(g, layer, shape)
    s.add(layer, shape)
    return True


def stage(g: Gen, s: Scope) -> bool:
    """A block made of blocks: `Stage{c, n}` repeats an identity residual block `n` times."""
    made = g.templates.get("stage", [])
    if made and g.bool():
        name = g.pick(made)
    else:
        inner = define(g, block_identity)  # only now: a block defined and not used is a warning
        name = f"Stage{len(g.blocks) + 1}"
        g.blocks[name] = {
            "params": {"c": None, "n": 1},
            "layers": [
                {inner: {"name": "units", "channels": "$c", "repeat": "$n"}},
                {"bn": {"name": "norm"}},
            ],
        }
        g.templates.setdefault("stage", []).append(name)
    fields: dict[str, Any] = {"c": g.number(s.shape[0])}
    if g.bool():
        fields["n"] = g.int(1, 2)
    s.add(Layer(name, fields, name=s.fresh("stage")), s.shape)
    return True


# --- heads --------------------------------------------------------------------------------------


def head(g: Gen, s: Scope) -> None:
    """Map -> features -> classifier, or nothing (the network outputs a map)."""
    c, h, w = s.shape
    kind = g.pick(["adaptive", "flatten", "reshape", "mean", "none"])
    if kind == "flatten" and c * h * w > 4096:
        kind = "adaptive"
    if kind == "none":
        return
    if kind == "mean":  # a global average pool, as ConvNeXt-style heads write it
        dims = g.pick([[2, 3], [-2, -1], [3, 2]])
        s.add(Layer("mean", {"dims": dims}, primary="dims", short=g.bool()), (c,))
        h = w = 1
    if kind == "adaptive":
        op = g.pick(["adaptive_avgpool", "adaptive_maxpool"])
        out = g.pick([(1, 1), (1, 1), (2, 2), (1, 2)])
        fields: dict[str, Any] = {"output": pair(out)} if out != (1, 1) or g.bool() else {}
        s.add(Layer(op, fields, primary="output", short=g.bool()), (c, *out))
        c, h, w = s.shape
    features = c * h * w
    if kind == "mean":
        pass
    elif kind == "reshape":
        shape = g.pick([["N", -1], ["N", features], [-1, features]])
        s.add(Layer("reshape", {"shape": shape}, primary="shape", short=g.bool(0.7)), (features,))
    else:
        s.add(Layer("flatten", {}), (features,))
    if g.bool(0.2):
        s.add(Layer("bn", {}), (features,))
    if g.bool(0.3):
        s.add(Layer("dropout", {"p": 0.5}, primary="p", short=True), (features,))
    if g.bool(0.3):
        hidden = g.int(1, 32)
        s.add(Layer("linear", {"out": hidden}, primary="out", short=True), (hidden,))
        act(g, s, map_only=False)
    out = g.params.get("num_classes") or g.int(1, 12)
    fields = {"out": "$num_classes" if "num_classes" in g.params else out}
    if g.bool(0.3):
        fields["in"] = s.shape[0]
    if g.bool(0.2):
        fields["bias"] = g.bool()
    s.add(Layer("linear", fields, primary="out", short=g.bool()), (out,))
    if g.bool(0.1):
        op = g.pick(["softmax", "log_softmax"])
        s.add(Layer(op, {"dim": 1} if g.bool() else {}), (out,))


def aux_head(g: Gen, s: Scope, src: Layer | None, shape: Shape) -> tuple[Layer, Shape]:
    """A training-only classifier reading an earlier tensor, as GoogLeNet's."""
    c = shape[0]
    fields: dict[str, Any] = {"from": s.ref(src), "output": 1}
    pool = Layer("adaptive_avgpool", fields)
    s.add(pool, (c, 1, 1), remember=False)
    s.add(Layer("flatten"), (c,), remember=False)
    out = g.int(1, 8)
    fc = Layer("linear", {"out": out}, name=s.fresh("auxfc"))
    s.add(fc, (out,), remember=False)
    return fc, (out,)


# --- the spec -----------------------------------------------------------------------------------

BODY = [conv, conv, conv, pool, pool, bn, act, inception, branches, user_block, user_block]
BODY += [seq, dense, gate, shuffle_unit, cn_block]
RARE = [repeated_conv, disabled, conv_transpose, upsample]


@st.composite
def valid_specs(draw: Any) -> Generated:
    g = Gen(draw)
    if g.bool(0.5):
        g.params["num_classes"] = g.int(1, 20)
    if g.bool(0.3):
        g.params["width"] = g.pick([4, 8, 16])
    shape: Shape = (g.int(1, 4), g.int(16, 48), g.int(16, 48))
    if g.bool(0.2):
        shape = (shape[0], shape[1], shape[1])
    s = Scope(shape)
    for _ in range(g.int(1, 6)):
        step = g.pick(BODY + RARE if g.bool(0.1) else BODY)
        for _attempt in range(3):
            if step(g, s):
                break
            step = conv
    taps = [(layer, sh) for layer, sh in s.history[1:] if len(sh) == 3]
    main_map = s.current()
    map_shape = s.shape
    head(g, s)
    outputs: dict[str, Shape] = {}
    train_only: set[str] = set()
    spec_outputs: dict[str, Any] = {}
    if g.bool(0.25):
        last = s.current()
        outputs["logits"] = s.shape
        spec_outputs["logits"] = s.ref(last)
        if last is not main_map and g.bool():
            outputs["features"] = map_shape
            spec_outputs["features"] = s.ref(main_map)
        if taps and g.bool():
            src, src_shape = g.pick(taps)
            fc, fc_shape = aux_head(g, s, src, src_shape)
            outputs["aux"] = fc_shape
            spec_outputs["aux"] = {"from": s.ref(fc), "train_only": True}
            train_only.add("aux")
    else:
        outputs["out"] = s.shape

    data: dict[str, Any] = {}
    if g.bool(0.7):
        data["name"] = g.pick(["gen", "net", "tiny_net", "Model2"])
    if g.bool(0.1):
        data["source"] = "tests/strategies.py"
    data["input"] = list(shape)
    if g.params:
        data["params"] = dict(g.params)
    if g.blocks:
        data["blocks"] = g.blocks
    data["layers"] = [layer.render() for layer in s.layers]
    if spec_outputs:
        data["outputs"] = spec_outputs
    flow = g.pick([None, False])
    text = "# generated by tests/strategies.py\n" + yaml.dump(
        data,
        Dumper=DUMPER,
        sort_keys=False,
        default_flow_style=flow,
        width=100,
        allow_unicode=True,
    )
    return Generated(text, data, shape, outputs, train_only)


# --- mutants ------------------------------------------------------------------------------------


def library() -> dict[str, str]:
    """Every spec under specs/, by path relative to it."""
    return {
        str(p.relative_to(SPECS)): p.read_text(encoding="utf-8")
        for p in sorted(SPECS.rglob("*.yaml"))
    }


LIBRARY = library()


EXTENDS = re.compile(r"^extends: *(\S+)", re.M)
# base file -> the library's variants that extend it
VARIANTS: dict[str, list[str]] = {}
for _rel, _text in LIBRARY.items():
    for _m in EXTENDS.finditer(_text):
        _base = os.path.normpath(os.path.join(os.path.dirname(_rel), _m.group(1)))
        VARIANTS.setdefault(_base, []).append(_rel)


@dataclass
class Mutant:
    """A broken spec, to be written into a copy of specs/ (`files()`, relative to it)."""

    source: str  # the library file it came from, or "<generated>"
    data: bytes  # the mutated file (not always valid UTF-8)
    ops: list[str]
    variant: str | None = None  # the mutated file is this variant's base; lint the variant

    @property
    def text(self) -> str | None:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def entry(self) -> str:
        """The file to lint: next to the source, so that relative `extends:` still work."""
        if self.variant is not None:
            return os.path.join(os.path.dirname(self.variant), "mutant_variant.yaml")
        folder = os.path.dirname(self.source) if self.source in LIBRARY else ""
        return os.path.join(folder, "mutant.yaml")

    def files(self) -> dict[str, bytes]:
        if self.variant is None:
            return {self.entry: self.data}
        base = os.path.join(os.path.dirname(self.source), "mutant_base.yaml")
        rel = os.path.relpath(base, os.path.dirname(self.variant) or ".")
        variant = EXTENDS.sub(f"extends: {rel}", LIBRARY[self.variant])
        return {base: self.data, self.entry: variant.encode()}


NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, -2, 7, 64, 1000, 2**31, 2**63, 10**30, 0.5, -0.0, 1e308]),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
)
YAML_JUNK = [
    "&a",
    "*a",
    "!!python/object/apply:os.system ['true']",
    "!!str",
    "!!binary",
    "? ",
    "{",
    "}",
    "[",
    "]",
    "- ",
    ": ",
    "|",
    ">-",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "\t",
    '"',
    "'",
    "#",
    "@",
    "`",
    "$",
    "${",
    "${x}",
    "${1/0}",
    "${10 ** 10 ** 10}",
    "~",
    "null",
    ".inf",
    ".nan",
    "0x1F",
    "1e3",
    "0o17",
    "1_000",
    "<<: *a",
    "<<: {a: 1}",
    "\ufeff",
    "\x00",
    "\u2028",
    "\x85",
    "\r",
    "\r\n",
    "  ",
    ",",
    "yes",
    "2001-12-14",
]
KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w.]*):( |$)", re.M)
FLOW_ENTRY = re.compile(r"(?<=[{,] )([A-Za-z_]\w*): ([^,{}\[\]]+)(?=[,}])")
NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?![\w.])")
WORD = re.compile(r"(?<![\w$])[A-Za-z_]\w*")


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every location inside parsed YAML: dict keys and list indices, leaves and subtrees."""
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in [*_strings(k), *_strings(v)]]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def _new_value(draw: Any, old: Any, strings: list[str]) -> Any:
    kind = draw(
        st.sampled_from(
            [
                "number",
                "near",
                "string",
                "ref",
                "list",
                "dict",
                "null",
                "bool",
                "expression",
                "pair",
            ]
        )
    )
    if kind == "number":
        return draw(NUMBERS)
    if kind == "near" and isinstance(old, int) and not isinstance(old, bool):
        return draw(st.sampled_from([old + 1, old - 1, old * 2, old // 2, -old, 0]))
    if kind == "string":
        return draw(st.sampled_from(["", "x", "3", "same", "valid", "N", "max", "input"]))
    if kind == "ref" and strings:
        return draw(st.sampled_from(strings))
    if kind == "list":
        return draw(st.sampled_from([[], [old], [old, old], [1, 2, 3], [[1, 2]]]))
    if kind == "dict":
        return draw(st.sampled_from([{}, {"x": old}, {"relu": None}, {"conv": {"out": 3}}]))
    if kind == "null":
        return None
    if kind == "bool":
        return draw(st.booleans())
    if kind == "expression":
        return draw(
            st.sampled_from(
                ["$undefined", "${1/0}", "${2 ** 70}", "$num_classes", "${num_classes * 2}", "${"]
            )
        )
    if kind == "pair":
        return draw(st.sampled_from([[1, 2], [0, 0], [3], [2, 2, 2], ["same", 1]]))
    return draw(NUMBERS)


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> tuple[Any, list[tuple], list[str]] | None:
    """Parsed YAML with its locations and strings (cached: the library's texts come back)."""
    try:
        data = yaml.load(text, Loader=LOADER)
        if not isinstance(data, dict | list):
            return None
        return data, _leaves(data), sorted(set(_strings(data)))[:200]
    except (yaml.YAMLError, RecursionError):  # `&a [*a]` is a list that contains itself
        return None


def _mutate_data(draw: Any, parsed: tuple[Any, list[tuple], list[str]]) -> tuple[Any, str]:
    """One structural change to parsed YAML; returns the new data and what was done."""
    data, locations, strings = parsed
    data = _copy(data)  # the cached original stays as it was
    op = draw(
        st.sampled_from(
            ["value", "delete", "rename", "list", "copy", "value", "ref", "number", "delete"]
        )
    )
    if not locations:
        return {"layers": data}, "wrap"
    path = draw(st.sampled_from(locations))
    parent = _get(data, path[:-1])
    key = path[-1]
    old = parent[key]
    if op == "number":
        numeric = [p for p in locations if isinstance(_get(data, p), int | float)]
        if numeric:
            path = draw(st.sampled_from(numeric))
            parent, key = _get(data, path[:-1]), path[-1]
            old = parent[key]
        parent[key] = _new_value(draw, old, strings)
    elif op == "value":
        parent[key] = _new_value(draw, old, strings)
    elif op == "ref":
        parent[key] = draw(st.sampled_from(strings)) if strings else None
    elif op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        keys = [k for k in strings if k not in parent] or ["x"]
        new = draw(st.sampled_from([*keys, f"{key}s", key.upper() if isinstance(key, str) else 1]))
        items = [(new if k == key else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    elif op == "list" and isinstance(parent, list) and parent:
        how = draw(st.sampled_from(["swap", "duplicate", "reverse", "shuffle"]))
        if how == "swap":
            j = draw(st.integers(0, len(parent) - 1))
            parent[key], parent[j] = parent[j], parent[key]
        elif how == "duplicate":
            parent.insert(key, _copy(old))
        elif how == "reverse":
            parent.reverse()
        else:
            parent[:] = draw(st.permutations(parent))
    else:  # copy a subtree somewhere else
        other = draw(st.sampled_from(locations))
        parent[key] = _copy(_get(data, other))
    return data, f"data-{op}"


def _copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


def _mutate_text(draw: Any, text: str) -> tuple[str, str]:
    op = draw(
        st.sampled_from(
            [
                "number",
                "duplicate-key",
                "swap-lines",
                "duplicate-line",
                "delete-line",
                "unicode",
                "junk",
                "word",
                "indent",
                "delete-key",
                "number",
                "duplicate-key",
            ]
        )
    )
    lines = text.splitlines(keepends=True)
    if op == "number":
        spots = list(NUMBER.finditer(text))
        if spots:
            m = draw(st.sampled_from(spots))
            new = draw(NUMBERS)
            text = text[: m.start()] + str(new) + text[m.end() :]
    elif op == "duplicate-key":
        flow = list(FLOW_ENTRY.finditer(text))
        block = list(KEY_LINE.finditer(text))
        if flow and (not block or draw(st.booleans())):
            m = draw(st.sampled_from(flow))
            value = draw(st.sampled_from([m.group(2), "1", "[]"]))
            text = text[: m.end()] + f", {m.group(1)}: {value}" + text[m.end() :]
        elif block:
            m = draw(st.sampled_from(block))
            start = text.rfind("\n", 0, m.start() + 1) + 1
            end = text.find("\n", m.end())
            end = len(text) if end < 0 else end + 1
            line = text[start:end]
            if not line.endswith("\n"):
                line += "\n"
            text = text[:end] + line + text[end:]
    elif op == "delete-key":
        flow = list(FLOW_ENTRY.finditer(text))
        if flow:
            m = draw(st.sampled_from(flow))
            text = text[: m.start()] + text[m.end() :].removeprefix(", ")
    elif op in ("swap-lines", "duplicate-line", "delete-line", "indent") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        if op == "swap-lines":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "duplicate-line":
            lines.insert(i, lines[i])
        elif op == "delete-line":
            del lines[i]
        else:
            lines[i] = draw(st.sampled_from(["  ", " ", "    "])) + lines[i]
            if draw(st.booleans()):
                lines[i] = lines[i][3:]
        text = "".join(lines)
    elif op in ("unicode", "junk"):
        at = draw(st.integers(0, len(text)))
        if op == "unicode":
            insert = draw(st.text(min_size=1, max_size=8))
        else:
            insert = draw(st.sampled_from(YAML_JUNK))
        text = text[:at] + insert + text[at:]
    elif op == "word":
        words = list(WORD.finditer(text))
        if words:
            m = draw(st.sampled_from(words))
            pool = sorted({w.group() for w in words})
            new = draw(st.sampled_from([*pool[:300], "input", "conv2d", "N", "x" * 300]))
            text = text[: m.start()] + new + text[m.end() :]
    return text, f"text-{op}"


@st.composite
def mutants(draw: Any, generated: float = 0.2) -> Mutant:
    """A spec of the library, or with probability `generated` a freshly generated valid one,
    with one to three mistakes."""
    if generated >= 1 or (generated > 0 and draw(st.integers(0, 99)) < generated * 100):
        source, text = "<generated>", draw(valid_specs()).text
    else:
        source = draw(st.sampled_from(sorted(LIBRARY)))
        text = LIBRARY[source]
    variant = None
    if source in VARIANTS and draw(st.booleans()):
        variant = draw(st.sampled_from(VARIANTS[source]))  # break the base, lint the variant
    ops: list[str] = []
    data: bytes | None = None
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["text", "data", "truncate", "text", "data"]))
        if kind == "truncate":
            raw = text.encode("utf-8")
            cut = draw(st.integers(0, len(raw)))
            data = raw[:cut]
            ops.append("truncate")
            break  # possibly in the middle of a character: no more text to mutate
        if kind == "data":
            parsed = _parse(text)
            if parsed is not None:
                data_out, op = _mutate_data(draw, parsed)
                style = draw(st.sampled_from([None, False, True]))
                try:
                    text = yaml.dump(
                        data_out,
                        Dumper=DUMPER,
                        sort_keys=False,
                        default_flow_style=style,
                        allow_unicode=True,
                    )
                    ops.append(op)
                    continue
                except yaml.YAMLError:
                    pass
        text, op = _mutate_text(draw, text)
        ops.append(op)
    if data is None:
        data = text.encode("utf-8", errors="surrogatepass")
    return Mutant(source, data, ops, variant)
