"""Mutation score of yarch's channel checks (issue 8, part 6).

For every spec that declares channel counts (the blog posts' transcriptions in `specs/posts/`,
and every other spec in `specs/` that declares `in:`), change each channel number in turn (the
`in` and `out` of conv, linear and bn layers, each number of an Inception `channels` tuple or of
`c1`/`c3`/`c5`/`pool_proj`, the `in` of a block instance, a block argument or a parameter that
one of those refers to as `$name`, the first entry of every `expect:` list, and the channels of
`input:`) and ask two
independent judges about the mutant:

- the oracle, which never uses yarch's linter: a literal PyTorch transcription of the mutated
  spec (read with PyYAML's safe loader) that honours every declared number (`nn.Conv2d(in, out,
  ...)` with the declared `in`, `nn.Linear(in, ...)`, torchvision's Inception with its declared
  `in`), run forward on the meta device. The mutant *breaks the network* if torch raises where
  the original did not, or if an `expect:` entry that was true (compared with the shapes torch
  computes) is now false. Otherwise the mutant is *benign*: a different network that works.
- lint (`compiler.pipeline.lint_text`): the mutant is *caught at the line* if lint reports an
  error that the unmutated spec does not have (same code, place and message) whose span, or one
  of whose related spans, is on the mutated line; *caught elsewhere* if the new errors are all
  on other lines; *missed* if there is none.

The score is caught at the line / broken. The originals already contain the posts' mistakes;
they are the baseline, not errors of the mutants. Where the unmutated transcription makes torch
raise, the oracle repairs that one layer so that the mutants after it can still be judged: seed
000's `stride: 0` becomes 1, and the text's AlexNet, whose padding mistakes give its first
classifier 12544 features, not its declared 9216, gets the features it receives (the mutants of
that repaired `in:` are not judged). Lint always sees the spec as written. Specs the oracle does
not transcribe (`repeat:`, `${...}`, `extends:`) are skipped, with the reason.

    .venv/bin/python scripts/mutation_score.py                 # the table
    .venv/bin/python scripts/mutation_score.py --json out.json # and the mutants, as JSON
    .venv/bin/python scripts/mutation_score.py specs/posts/mnist_inception.yaml -v

`tests/test_mutation.py` runs it and requires every broken mutant to be caught at its line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from compiler.diagnostics import Diagnostic  # noqa: E402
from compiler.loader import load_text  # noqa: E402
from compiler.ops import OPS  # noqa: E402
from compiler.ops.base import COMMON_FIELDS  # noqa: E402
from compiler.pipeline import lint_text  # noqa: E402

MUTATIONS = ("+1", "*2")  # what each channel number becomes; `--mutations +1,-1,*2`
INCEPTION_PARTS = ("c1", "c3", "c5", "pool_proj")
META = "meta"
# What the oracle needs to know of yarch's ops it reads from their definitions (not from the
# linter): which field a single value fills (`- dropout: 0.4`), which layers declare channel
# counts (`in:`, and `out:` where they make them), which keep any tensor's shape (the oracle
# does not run those: on the meta device each goes through a Python decomposition, which
# would triple the run time), and the fields every layer accepts.
PRIMARY = {name: op.primary for name, op in OPS.items() if op.primary}
CHANNEL_OPS = tuple(
    name for name, op in OPS.items() if "in_" in op.Args.model_fields and not op.composite
)
ELEMENTWISE = tuple(name for name, op in OPS.items() if op.elementwise)
COMMON = (*COMMON_FIELDS, "in")


def read_yaml(text: str) -> Any:
    """The oracle's own reading of a spec: PyYAML's safe loader (libyaml's when built in)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# --- the channel numbers of a spec ------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One channel number as written: its path in the YAML data and what it is."""

    path: tuple[Any, ...]
    what: str  # `conv.out`, `inception.channels`, `expect`, `AuxOutput.in_channels`, ...
    value: int


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _layer(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and len(item) == 1:
        ((op, body),) = item.items()
        return str(op), body
    return None


def _ref(v: Any) -> str | None:
    """`$name` -> `name`."""
    if isinstance(v, str) and v.startswith("$") and not v.startswith("${"):
        return v[1:]
    return None


def _channel_values(op: str, body: Any, blocks: dict, channel_params: dict) -> Iterator:
    """(location inside the layer, value) of every channel number a layer writes."""
    if op in CHANNEL_OPS:
        if isinstance(body, dict):
            for key in ("in", "out"):
                if key in body:
                    yield (key,), body[key], f"{op}.{key}"
        elif op == "linear" and body is not None:
            yield (), body, "linear.out"
    elif op == "inception":
        fields = body if isinstance(body, dict) else {"channels": body}
        at = ("channels",) if isinstance(body, dict) else ()  # `- inception: [64, ...]`
        channels = fields.get("channels")
        if isinstance(channels, list):
            for i, c in enumerate(channels):
                if isinstance(c, list):
                    for j, cc in enumerate(c):
                        yield (*at, i, j), cc, "inception.channels"
                else:
                    yield (*at, i), c, "inception.channels"
        for key in INCEPTION_PARTS:
            v = fields.get(key)
            if isinstance(v, list):
                for j, cc in enumerate(v):
                    yield (key, j), cc, f"inception.{key}"
            elif key in fields:
                yield (key,), v, f"inception.{key}"
        if "in" in fields:
            yield ("in",), fields["in"], "inception.in"
    elif op in blocks and isinstance(body, dict):
        if "in" in body:
            yield ("in",), body["in"], f"{op}.in"
        for key, v in body.items():
            if key in channel_params.get(op, ()):
                yield (key,), v, f"{op}.{key}"
    if op == "seq" and isinstance(body, dict) and "in" in body:
        yield ("in",), body["in"], "seq.in"
    if isinstance(body, dict) and isinstance(body.get("expect"), list) and body["expect"]:
        yield ("expect", 0), body["expect"][0], "expect"


def _walk(layers: Any, path: tuple, blocks: dict, channel_params: dict) -> Iterator:
    """(layer path, op, body) of every layer in a list, `seq` bodies included."""
    if not isinstance(layers, list):
        return
    for i, item in enumerate(layers):
        parsed = _layer(item)
        if parsed is None:
            continue
        op, body = parsed
        yield (*path, i), op, body
        if op == "seq":
            inner = body.get("layers") if isinstance(body, dict) else body
            inner_path = (*path, i, "seq", "layers") if isinstance(body, dict) else (*path, i, op)
            yield from _walk(inner, inner_path, blocks, channel_params)


def _channel_params(data: dict) -> tuple[dict[str, set[str]], set[str]]:
    """The block parameters and top-level parameters that channel numbers refer to."""
    blocks = data.get("blocks") or {}
    per_block: dict[str, set[str]] = {b: set() for b in blocks}
    top: set[str] = set()
    for _ in range(len(blocks) + 1):  # a block argument may pass a parameter on: to a fixpoint
        for scope, layers in [(None, data.get("layers"))] + [
            (b, (spec or {}).get("layers")) for b, spec in blocks.items()
        ]:
            own = set((blocks.get(scope) or {}).get("params") or {}) if scope else set()
            for _path, op, body in _walk(layers, (), blocks, per_block):
                for _loc, v, _what in _channel_values(op, body, blocks, per_block):
                    name = _ref(v)
                    if name is None:
                        continue
                    if scope is not None and name in own:
                        per_block[scope].add(name)
                    else:
                        top.add(name)
    return per_block, top


def channel_sites(data: dict) -> list[Site]:
    """Every literal channel number of a spec, in the order written."""
    blocks = data.get("blocks") or {}
    per_block, top = _channel_params(data)
    sites = []
    shape = data.get("input")
    if isinstance(shape, list) and len(shape) == 3 and _is_int(shape[0]):
        sites.append(Site(("input", 0), "input", shape[0]))
    params = data.get("params") or {}
    for name, v in params.items():
        if name in top and _is_int(v):
            sites.append(Site(("params", name), f"params.{name}", v))
    scopes = [(("layers",), data.get("layers"))]
    for b, spec in blocks.items():
        spec = spec or {}
        for p, v in (spec.get("params") or {}).items():
            if p in per_block[b] and _is_int(v):
                sites.append(Site(("blocks", b, "params", p), f"{b}.{p}", v))
        scopes.append((("blocks", b, "layers"), spec.get("layers")))
    for prefix, layers in scopes:
        for lpath, op, body in _walk(layers, prefix, blocks, per_block):
            for loc, v, what in _channel_values(op, body, blocks, per_block):
                if _is_int(v) and v >= 1:
                    sites.append(Site((*lpath, op, *loc), what, v))
    return sites


def declares_channels(data: Any) -> bool:
    """Whether a spec declares input channels (`in:`) anywhere."""
    if isinstance(data, dict):
        return "in" in data or any(declares_channels(v) for v in data.values())
    if isinstance(data, list):
        return any(declares_channels(v) for v in data)
    return False


# --- mutants ----------------------------------------------------------------------------------


@dataclass
class Mutant:
    site: Site
    new: int
    line: int
    column: int
    text: str = field(repr=False)


def apply(value: int, mutation: str) -> int | None:
    if mutation == "+1":
        return value + 1
    if mutation == "-1":
        return value - 1 if value > 1 else None
    if mutation == "*2":
        return value * 2
    raise ValueError(f"unknown mutation {mutation!r}")


def mutants(text: str, file: str, mutations: Sequence[str] = MUTATIONS) -> list[Mutant]:
    """The spec's text with one channel number changed, for every number and mutation."""
    doc = load_text(text, file)
    lines = text.splitlines(keepends=True)
    out = []
    for site in channel_sites(doc.data):
        span = doc.spans[site.path]
        assert span.line == span.end_line, site
        line = lines[span.line - 1]
        written = line[span.column - 1 : span.end_column - 1]
        assert written == str(site.value), (site, written)
        seen = set()
        for m in mutations:
            new = apply(site.value, m)
            if new is None or new in seen:
                continue
            seen.add(new)
            changed = line[: span.column - 1] + str(new) + line[span.end_column - 1 :]
            mutated = "".join([*lines[: span.line - 1], changed, *lines[span.line :]])
            out.append(Mutant(site, new, span.line, span.column, mutated))
    return out


# --- the oracle: a literal PyTorch transcription ------------------------------------------------


class Unsupported(Exception):
    """The spec uses a feature the oracle does not transcribe."""


class TorchFailure(Exception):
    """Torch raised while building or running one layer."""

    def __init__(self, where: tuple, exc: BaseException) -> None:
        super().__init__(f"{'/'.join(map(str, where))}: {type(exc).__name__}: {exc}")
        self.where = where  # the layer's path in the spec's data (or in a block instance)
        self.op: str | None = None
        self.fields: dict = {}
        self.shape: tuple = ()  # what the layer received, batch included


@dataclass
class Verdict:
    failure: TorchFailure | None = None  # torch's error, where it raised
    violations: dict[tuple, str] = field(default_factory=dict)  # (layer, dim) -> description


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, list | tuple):
        return int(v[0]), int(v[1])
    return int(v), int(v)


class Oracle:
    """Build and run a spec as hand-written PyTorch would, honouring every declared number.

    Supports what the bundled specs use: conv, bn, lrn, max/avg/adaptive pooling, the
    activations, dropout, flatten, linear, reshape, softmax, concat, add, permute, mean, layer
    and group norm, layer scale, stochastic depth, seq, inception and user blocks with `$name`
    parameters. Expressions, `repeat`, `first`, `if`, `scales` and `extends` raise
    `Unsupported`.
    """

    BATCH = 2

    def __init__(self, data: dict, repairs: frozenset[tuple[str, tuple]] = frozenset()) -> None:
        import torch  # the oracle is the one part of this script that needs torch

        self.torch = torch
        self.data = data
        self.blocks = data.get("blocks") or {}
        self.params = data.get("params") or {}
        self.repairs = repairs
        self.verdict = Verdict()
        for key in ("extends", "scales"):
            if key in data:
                raise Unsupported(f"`{key}:` (the oracle transcribes self-contained specs)")

    def run(self) -> Verdict:
        torch = self.torch
        shape = self.data["input"]
        # modules and tensors are made on the meta device explicitly: a `torch.device("meta")`
        # context would route every op through Python decompositions, ten times slower
        with torch.no_grad():
            x = torch.empty(self.BATCH, *shape, device="meta")
            try:
                self.layers(self.data["layers"], x, {}, ("layers",))
            except TorchFailure as exc:
                self.verdict.failure = exc
        return self.verdict

    # substitution of `$name`

    def subst(self, value: Any, env: dict) -> Any:
        if isinstance(value, str) and value.startswith("${"):
            raise Unsupported(f"the expression {value!r}")
        name = _ref(value)
        if name is not None:
            if name in env:
                return env[name]
            if name in self.params:
                return self.params[name]
            raise Unsupported(f"the undefined parameter {value!r}")
        if isinstance(value, list):
            return [self.subst(v, env) for v in value]
        return value

    # layers

    def layers(self, items: list, x: Any, env: dict, path: tuple, output: str | None = None):
        names = {"input": x}
        prev = x
        for i, item in enumerate(items):
            parsed = _layer(item)
            if parsed is None:
                raise Unsupported(f"the layer {item!r}")
            op, body = parsed
            lpath = (*path, i)
            if body is None:
                fields: dict = {}
            elif isinstance(body, dict):
                fields = dict(body)
            elif op in PRIMARY:
                fields = {PRIMARY[op]: body}
            else:
                raise Unsupported(f"`{op}` written with a single value")
            for key in ("repeat", "first", "if"):
                if key in fields:
                    raise Unsupported(f"`{key}:`")
            fields = {
                k: (v if k in ("layers", "name") else self.subst(v, env)) for k, v in fields.items()
            }
            source = fields.get("from")
            if source is None:
                ins = [prev]
            else:
                refs = [source] if isinstance(source, str) else source
                ins = [names[r] for r in refs]
            if "like" in fields:  # a value whose size the layer takes: its second input
                ins.append(names[fields["like"]])
            try:
                out = self.layer(op, fields, ins, env, lpath, isinstance(body, dict))
            except TorchFailure as exc:
                if exc.where == lpath and exc.op is None:
                    exc.op, exc.fields, exc.shape = op, fields, tuple(ins[0].shape)
                raise
            expect = fields.get("expect")
            if expect is not None:
                self.check(expect, out, lpath)
            if "name" in fields:
                names[fields["name"]] = out
            prev = out
        return names[output] if output else prev

    def check(self, expect: list, out: Any, path: tuple) -> None:
        real = tuple(out.shape[1:])
        for dim in range(max(len(expect), len(real))):
            want = expect[dim] if dim < len(expect) else None
            got = real[dim] if dim < len(real) else None
            if want != got:
                self.verdict.violations[(path, dim)] = f"expect {list(expect)}, torch gives {real}"

    def call(self, path: tuple, fn: Any) -> Any:
        try:
            return fn()
        except (Unsupported, KeyError):
            raise
        except Exception as exc:  # torch's own error: the network is broken here
            raise TorchFailure(path, exc) from None

    def layer(
        self, op: str, f: dict, ins: list, env: dict, path: tuple, mapping: bool = True
    ) -> Any:
        x = ins[0]
        if op in self.blocks:
            return self.block(op, f, x, env, path)
        if op == "seq":
            if "in" in f:
                self.declared(f["in"], x, path)
            return self.layers(f["layers"], x, env, (*path, "seq", *(("layers",) * mapping)))
        if op in ELEMENTWISE:
            return x
        transcribe = getattr(self, f"op_{op}", None)
        if transcribe is None:
            raise Unsupported(f"the op `{op}`")
        return self.call(path, lambda: transcribe(f, ins, path))

    # Each op as PyTorch computes it, from the spec's own numbers: `op_<name>(fields, inputs,
    # path)`. `tests/test_ops.py` checks that every registered op has one, or is elementwise
    # (above), or is `seq` (a list of layers).

    def op_inception(self, f: dict, ins: list, path: tuple) -> Any:
        return self.inception(f, ins[0])

    def op_conv(self, f: dict, ins: list, path: tuple) -> Any:
        return self.conv(f, ins[0], path)

    def op_conv_transpose(self, f: dict, ins: list, path: tuple) -> Any:
        """nn.ConvTranspose2d(in, out, kernel, ...)(x), its constructor's checks included."""
        x, groups = ins[0], f.get("groups", 1)
        cin, out = self.declared_in(f, x.shape[1], path), f["out"]
        if cin % groups or out % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        weight = self.empty(cin, out // groups, *_pair(f["kernel"]))
        return self.F.conv_transpose2d(
            x,
            weight,
            self.bias(f, out),
            stride=_pair(f.get("stride", 1)),
            padding=_pair(f.get("padding", 0)),
            output_padding=_pair(f.get("output_padding", 0)),
            groups=groups,
            dilation=_pair(f.get("dilation", 1)),
        )

    def op_bn(self, f: dict, ins: list, path: tuple) -> Any:
        return self.bn(ins[0], self.declared_in(f, ins[0].shape[1], path))

    def op_lrn(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.local_response_norm(ins[0], f.get("size", 5))

    def op_maxpool(self, f: dict, ins: list, path: tuple) -> Any:
        return self.pool("maxpool", f, ins[0])

    def op_avgpool(self, f: dict, ins: list, path: tuple) -> Any:
        return self.pool("avgpool", f, ins[0])

    def op_adaptive_avgpool(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.adaptive_avg_pool2d(ins[0], _pair(f["output"]))

    def op_adaptive_maxpool(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.adaptive_max_pool2d(ins[0], _pair(f["output"]))

    def op_softmax(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.softmax(ins[0], f.get("dim", 1))

    def op_log_softmax(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.log_softmax(ins[0], f.get("dim", 1))

    def op_flatten(self, f: dict, ins: list, path: tuple) -> Any:
        return self.torch.flatten(ins[0], f.get("start_dim", 1))

    def op_linear(self, f: dict, ins: list, path: tuple) -> Any:
        # nn.Linear(in, out): on the last dimension, as PyTorch does (a map that was never
        # flattened is multiplied along its width)
        x = ins[0]
        weight = self.empty(f["out"], self.declared_in(f, x.shape[-1], path))
        return self.F.linear(x, weight, self.bias(f, f["out"]))

    def op_reshape(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0].reshape(*[ins[0].shape[0] if d == "N" else d for d in f["shape"]])

    def op_upsample(self, f: dict, ins: list, path: tuple) -> Any:
        mode = f.get("mode", "nearest")
        kw: dict = {} if mode == "nearest" else {"align_corners": f.get("align_corners", False)}
        if "like" in f:
            kw["size"] = tuple(ins[1].shape[2:])
        elif "size" in f:
            kw["size"] = _pair(f["size"])
        else:
            scale = f["scale"]
            kw["scale_factor"] = tuple(scale) if isinstance(scale, list) else (scale, scale)
        return self.F.interpolate(ins[0], mode=mode, **kw)

    def op_concat(self, f: dict, ins: list, path: tuple) -> Any:
        return self.torch.cat(ins, f.get("dim", 1))

    def op_add(self, f: dict, ins: list, path: tuple) -> Any:
        return sum(ins[1:], ins[0])

    def op_mul(self, f: dict, ins: list, path: tuple) -> Any:
        out = ins[0]
        for x in ins[1:]:
            out = out * x
        return out

    def op_chunk(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0].chunk(f["chunks"], f.get("dim", 1))[f["part"]]

    def op_split(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0].split(list(f["sizes"]), f.get("dim", 1))[f["part"]]

    def op_channel_shuffle(self, f: dict, ins: list, path: tuple) -> Any:
        return self.F.channel_shuffle(ins[0], f["groups"])

    def op_permute(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0].permute(*f["dims"])

    def op_mean(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0].mean(tuple(f["dims"]), keepdim=f.get("keepdim", False))

    def op_stochastic_depth(self, f: dict, ins: list, path: tuple) -> Any:
        return ins[0]  # the identity in eval mode

    def op_layer_scale(self, f: dict, ins: list, path: tuple) -> Any:
        x = ins[0]  # nn.Parameter(torch.full((C, 1, 1), init)) * x
        return self.empty(x.shape[1], *(1,) * (x.dim() - 2)) * x

    def op_layer_norm(self, f: dict, ins: list, path: tuple) -> Any:
        """nn.LayerNorm on the last dimension, or between permutes on the channels."""
        x = ins[0]
        if f.get("over", "channels") == "last" or x.dim() == 2:
            return self.F.layer_norm(x, (x.shape[-1],), self.empty(x.shape[-1]))
        there = x.movedim(1, -1)
        return self.F.layer_norm(there, (x.shape[1],), self.empty(x.shape[1])).movedim(-1, 1)

    def op_group_norm(self, f: dict, ins: list, path: tuple) -> Any:
        """nn.GroupNorm(groups, C)(x); its constructor's check included."""
        x, groups = ins[0], f["groups"]
        if x.shape[1] % groups:
            raise ValueError("num_channels must be divisible by num_groups")
        return self.F.group_norm(x, groups, self.empty(x.shape[1]))

    @property
    def F(self) -> Any:
        """torch.nn.functional, as PyTorch code names it."""
        return self.torch.nn.functional

    # The modules as their functions, with weights of the declared sizes: what nn.Conv2d,
    # nn.BatchNorm2d and nn.Linear compute, without their initialisation (the slow part).

    def declared_in(self, f: dict, received: int, path: tuple) -> int:
        """The declared `in:` (what it receives when undeclared, or repaired)."""
        return received if ("in", path) in self.repairs else f.get("in", received)

    def empty(self, *shape: int) -> Any:
        return self.torch.empty(*shape, device=META)

    def bias(self, f: dict, out: int, default: bool = True) -> Any:
        return self.empty(out) if f.get("bias", default) else None

    def bn(self, x: Any, channels: int) -> Any:
        """nn.BatchNorm2d(channels) (BatchNorm1d on features), in eval mode."""
        stats = self.empty(channels), self.empty(channels)
        return self.torch.nn.functional.batch_norm(x, *stats, *stats, training=False)

    def conv2d(
        self, x: Any, cin: int, out: int, kernel: tuple, bias: Any, groups: int = 1, **kw: Any
    ) -> Any:
        """nn.Conv2d(cin, out, kernel, ...)(x); its constructor's checks included."""
        if cin % groups or out % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        weight = self.empty(out, cin // groups, *kernel)
        return self.torch.nn.functional.conv2d(x, weight, bias, groups=groups, **kw)

    def declared(self, declared: int, x: Any, path: tuple) -> None:
        """A block's declared `in:`, the in_channels its hand-written constructor would take."""
        if x.dim() < 2 or x.shape[1] != declared:
            raise TorchFailure(
                path, ValueError(f"declared in: {declared}, receives {tuple(x.shape[1:])}")
            )

    def block(self, op: str, f: dict, x: Any, env: dict, path: tuple) -> Any:
        spec = self.blocks[op] or {}
        if "in" in f:
            self.declared(f["in"], x, path)
        params = dict(spec.get("params") or {})
        params.update({k: v for k, v in f.items() if k not in COMMON})
        inner = {k: self.subst(v, env) for k, v in params.items()}
        return self.layers(spec["layers"], x, inner, (*path, op), spec.get("output"))

    def same(self, x: Any, kernel: tuple, stride: tuple, dilation: tuple = (1, 1)) -> Any:
        """Keras' `same`: ceil(size / stride), the odd pixel of padding at the end."""
        pads = []
        for axis in (1, 0):
            size = x.shape[2 + axis]
            out = math.ceil(size / stride[axis])
            eff = dilation[axis] * (kernel[axis] - 1) + 1
            total = max((out - 1) * stride[axis] + eff - size, 0)
            pads += [total // 2, total - total // 2]
        return self.torch.nn.functional.pad(x, pads)

    def conv(self, f: dict, x: Any, path: tuple) -> Any:
        kernel, stride = _pair(f["kernel"]), _pair(f.get("stride", 1))
        dilation = _pair(f.get("dilation", 1))
        if ("stride", path) in self.repairs:
            stride = (max(stride[0], 1), max(stride[1], 1))
        padding: Any = f.get("padding", 0)
        if padding == "valid":
            padding = 0
        if padding == "same" and stride != (1, 1):
            x, padding = self.same(x, kernel, stride, dilation), 0
        return self.conv2d(
            x,
            self.declared_in(f, x.shape[1], path),
            f["out"],
            kernel,
            self.bias(f, f["out"]),
            f.get("groups", 1),
            stride=stride,
            padding=padding if padding == "same" else _pair(padding),
            dilation=dilation,
        )

    def pool(self, op: str, f: dict, x: Any) -> Any:
        F = self.torch.nn.functional
        kernel = _pair(f["kernel"])
        stride = _pair(f.get("stride", f["kernel"]))
        padding: Any = f.get("padding", 0)
        if padding == "valid":
            padding = 0
        if padding == "same":
            x, padding = self.same(x, kernel, stride, _pair(f.get("dilation", 1))), 0
        if op == "maxpool":
            return F.max_pool2d(
                x,
                kernel,
                stride,
                _pair(padding),
                dilation=_pair(f.get("dilation", 1)),
                ceil_mode=f.get("ceil_mode", False),
            )
        return F.avg_pool2d(
            x,
            kernel,
            stride,
            _pair(padding),
            ceil_mode=f.get("ceil_mode", False),
            count_include_pad=f.get("count_include_pad", True),
        )

    def inception(self, f: dict, x: Any) -> Any:
        """torchvision's `Inception(in_channels, ch1x1, ch3x3red, ch3x3, ...)`."""
        F = self.torch.nn.functional
        channels = f.get("channels") or [None, [None, None], [None, None], None]
        c1 = f.get("c1", channels[0])
        c3 = f.get("c3", channels[1])
        c5 = f.get("c5", channels[2])
        pp = f.get("pool_proj", channels[3])
        cin = f.get("in", x.shape[1])  # Keras infers it; torch code declares it
        bn = f.get("bn", False)

        def unit(y: Any, i: int, o: int, k: int) -> Any:
            """Conv2d(i, o, k, padding=k // 2) [-> BatchNorm2d(o)] -> ReLU (shape kept)."""
            y = self.conv2d(y, i, o, (k, k), self.bias(f, o, not bn), padding=k // 2)
            return self.bn(y, o) if bn else y

        k5 = f.get("c5_kernel", 5)
        pool = F.max_pool2d if f.get("pool", "max") == "max" else F.avg_pool2d
        pooled = pool(x, 3, 1, 1, ceil_mode=f.get("pool_ceil", False))
        branches = [
            unit(x, cin, c1, 1),
            unit(unit(x, cin, c3[0], 1), c3[0], c3[1], 3),
            unit(unit(x, cin, c5[0], 1), c5[0], c5[1], k5),
            unit(pooled, cin, pp, 1),
        ]
        return self.torch.cat(branches, 1)


def judge(data: dict, repairs: frozenset[tuple[str, tuple]] = frozenset()) -> Verdict:
    return Oracle(data, repairs).run()


def repair(failure: TorchFailure) -> tuple[tuple[str, tuple], str] | None:
    """How the oracle gets past a mistake of the unmutated spec, so that the mutants after it
    can still be judged: a zero stride becomes 1, a declared `in:` that the layer's input
    contradicts becomes what it receives. None for anything else."""
    f, op = failure.fields, failure.op
    if op == "conv" and 0 in _pair(f.get("stride", 1)):
        return ("stride", failure.where), "stride 1"
    if op in CHANNEL_OPS and "in" in f and failure.shape:
        received = failure.shape[-1] if op == "linear" else failure.shape[1]
        if f["in"] != received:
            return ("in", failure.where), f"in: {received}"
    return None


# --- scoring ----------------------------------------------------------------------------------


def _key(d: Diagnostic) -> tuple:
    s = d.span
    where = (s.file, s.line, s.column) if s is not None else None
    return (d.code, d.severity.value, where, d.message)


def _lines(d: Diagnostic, file: str) -> set[int]:
    spans = [d.span, *(s for s, _label in getattr(d, "related", ()))]
    return {s.line for s in spans if s is not None and s.file == file}


@dataclass
class Outcome:
    line: int
    column: int
    what: str
    old: int
    new: int
    broken: bool
    reason: str | None  # why the oracle calls it broken
    caught: str  # "line", "elsewhere" or "missed"
    new_errors: list[str]


@dataclass
class SpecScore:
    spec: str
    skipped: str | None = None
    repaired: list[str] = field(default_factory=list)
    masked: int = 0  # mutants of a field the oracle repaired: not judged
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, **match: Any) -> int:
        return sum(all(getattr(o, k) == v for k, v in match.items()) for o in self.outcomes)

    @property
    def row(self) -> dict[str, int]:
        broken = self.count(broken=True)
        return {
            "mutants": len(self.outcomes),
            "broken": broken,
            "caught_at_line": self.count(broken=True, caught="line"),
            "caught_elsewhere": self.count(broken=True, caught="elsewhere"),
            "missed": self.count(broken=True, caught="missed"),
            "benign": len(self.outcomes) - broken,
            "benign_flagged": self.count(broken=False, caught="line")
            + self.count(broken=False, caught="elsewhere"),
        }


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def score_spec(path: Path, mutations: Sequence[str] = MUTATIONS) -> SpecScore:
    started = time.perf_counter()
    file = _rel(path)
    text = path.read_text(encoding="utf-8")
    result = SpecScore(file)
    data = read_yaml(text)
    repairs: frozenset[tuple[str, tuple]] = frozenset()
    try:
        original = judge(data)
        while original.failure is not None and len(repairs) < 8:
            fix = repair(original.failure)
            if fix is None or fix[0] in repairs:
                break
            repairs |= {fix[0]}
            result.repaired.append(f"{original.failure}; the oracle uses {fix[1]} there")
            original = judge(data, repairs)
    except Unsupported as exc:
        result.skipped = f"not transcribed: {exc}"
        return result
    if original.failure is not None:
        result.skipped = f"the unmutated spec fails in torch: {original.failure}"
        return result
    # a repaired `in:` is not what the oracle builds, so its mutants cannot be judged
    masked = {(*where, "in") for kind, where in repairs if kind == "in"}
    baseline = {_key(d) for d in lint_text(text, file).diagnostics}  # linted once per spec
    for m in mutants(text, file, mutations):
        if (*m.site.path[:-2], m.site.path[-1]) in masked:
            result.masked += 1
            continue
        verdict = judge(read_yaml(m.text), repairs)
        reason = str(verdict.failure) if verdict.failure else None
        if reason is None:
            new = sorted(set(verdict.violations) - set(original.violations), key=str)
            if new:
                reason = f"{'/'.join(map(str, new[0][0]))}: {verdict.violations[new[0]]}"
        errors = [
            d for d in lint_text(m.text, file).diagnostics if d.is_error and _key(d) not in baseline
        ]
        caught = (
            "missed"
            if not errors
            else "line"
            if any(m.line in _lines(d, file) for d in errors)
            else "elsewhere"
        )
        result.outcomes.append(
            Outcome(
                m.line,
                m.column,
                m.site.what,
                m.site.value,
                m.new,
                reason is not None,
                reason,
                caught,
                [f"{d.span.line if d.span else '?'}: [{d.code}] {d.message}" for d in errors],
            )
        )
    result.seconds = time.perf_counter() - started
    return result


def spec_paths(root: Path = ROOT / "specs") -> list[Path]:
    """The posts, then every other spec that declares `in:`."""
    posts = sorted((root / "posts").glob("*.yaml"))
    others = []
    for path in sorted(root.rglob("*.yaml")):
        if path in posts:
            continue
        if declares_channels(read_yaml(path.read_text(encoding="utf-8"))):
            others.append(path)
    return [*posts, *others]


def run(paths: Sequence[Path], mutations: Sequence[str] = MUTATIONS) -> list[SpecScore]:
    return [score_spec(p, mutations) for p in paths]


HEADERS = ("spec", "mutants", "broken", "at line", "elsewhere", "missed", "benign", "flagged")


def table(scores: Sequence[SpecScore]) -> str:
    rows = []
    total = dict.fromkeys(HEADERS[1:], 0)
    for s in scores:
        if s.skipped:
            continue
        r = list(s.row.values())
        rows.append([s.spec, *map(str, r)])
        for k, v in zip(HEADERS[1:], r, strict=True):
            total[k] += v
    rows.append(["total", *map(str, total.values())])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [fmt(HEADERS), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows[:-1]]
    lines += [fmt(["-" * w for w in widths]), fmt(rows[-1])]
    broken, at = total["broken"], total["at line"]
    pct = f"{100 * at / broken:.1f}%" if broken else "n/a"
    lines.append("")
    lines.append(f"score: {at}/{broken} broken mutants caught at the line of the change ({pct})")
    for s in scores:
        if s.skipped:
            lines.append(f"skipped {s.spec}: {s.skipped}")
        for r in s.repaired:
            lines.append(f"repaired in the oracle, {s.spec}: {r}")
        if s.masked:
            lines.append(f"not judged, {s.spec}: {s.masked} mutants of the repaired `in:`")
    return "\n".join(lines)


def details(scores: Sequence[SpecScore], verbose: bool) -> str:
    out = []
    for s in scores:
        for o in s.outcomes:
            if not verbose and not (o.broken and o.caught != "line"):
                continue
            status = ("broken" if o.broken else "benign") + f", {o.caught}"
            out.append(f"{s.spec}:{o.line}:{o.column} {o.what} {o.old} -> {o.new}: {status}")
            if o.reason:
                out.append(f"    oracle: {o.reason}")
            for e in o.new_errors:
                out.append(f"    lint: {e}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", type=Path, help="default: posts and `in:` specs")
    parser.add_argument("--json", metavar="FILE", help="write every mutant as JSON ('-': stdout)")
    parser.add_argument(
        "--mutations", default=",".join(MUTATIONS), help="comma-separated: +1, -1, *2"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every mutant")
    args = parser.parse_args(argv)
    mutations = args.mutations.split(",")
    for m in mutations:
        apply(1, m)  # fail early on an unknown one
    scores = run(args.specs or spec_paths(), mutations)
    print(table(scores))
    listing = details(scores, args.verbose)
    if listing:
        print("\n" + listing)
    if args.json:
        payload = {
            "mutations": mutations,
            "specs": [{**asdict(s), "row": s.row} for s in scores],
        }
        text = json.dumps(payload, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    missed = sum(s.row["broken"] - s.row["caught_at_line"] for s in scores if not s.skipped)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
