"""Names in generated code, checked and sanitised in one place.

Every name a spec gives becomes, somewhere, a Python identifier in generated code (a layer is a
submodule attribute, a block parameter a constructor argument, an output a named-tuple field, a
block type a class name) or an id in a diagram. `problem()` holds the rules that every one of
them follows: plain ASCII letters, digits and underscores, not starting with a digit or an
underscore, not a Python keyword, at most `MAX_NAME` characters. Non-ASCII letters are refused
rather than accepted, because Python reads identifiers after NFKC normalisation: `ﬁlter` (with
the `ﬁ` ligature) is the name `filter` to Python, and two spellings of one name must not pass
as two names. The positions add their own rules (`ops/base.py` for layers; `blocks.py` for
block types and block parameters); what is left to do here is turning block types into class
names (`class_names`, the one rule that resolve's warning and codegen read) and keeping every
generated name distinct from the others and from the names the generated file uses itself
(`Namespace`, the one way a fresh name is made).
"""

from __future__ import annotations

import builtins
import difflib
import keyword
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator

# Names are at most this long, so that a generated line holding two of them stays within the
# 100-column limit: `name = self.name(` under `if self.training:` is 2 * 32 + 21 columns
MAX_NAME = 32
BUILTINS = frozenset(dir(builtins))
# What a generated file names itself: its imports, `self`, `super()` in constructors, the
# typing names of its named tuple.
CODE_NAMES = frozenset({"torch", "nn", "F", "NamedTuple", "Tensor", "self", "super"})
# Variables pycodestyle (ruff E741) calls ambiguous: `l`, `O` and `I` look like `1` and `0`.
AMBIGUOUS = frozenset({"l", "O", "I"})
_SHADOWED = BUILTINS | CODE_NAMES
_HIDDEN = _SHADOWED | AMBIGUOUS
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def shown(name: str, limit: int = 60) -> str:
    """A name for a message: invisible characters escaped (`a\\u202eb`), long ones cut."""
    text = name.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem(name: str) -> str | None:
    """Why `name` cannot name anything in a spec (`"is a Python keyword"`), or None.

    The reason reads after "`name` cannot be used as a name: it ...".
    """
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters ({len(name):,})"
    if not name.isascii():
        normal = unicodedata.normalize("NFKC", name)
        if normal != name and normal.isidentifier():
            return f"is not plain ASCII: Python reads it as `{shown(normal)}`"
        return "is not plain ASCII letters, digits and underscores"
    if name.startswith("_"):
        return "starts with an underscore"
    if not _PLAIN.fullmatch(name):
        return "is not a plain name: letters, digits and underscores, not starting with a digit"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in AMBIGUOUS:
        return "is ambiguous in code: `l`, `O` and `I` look like `1` and `0`"
    return None


def shadows(name: str) -> str | None:
    """Why `name`, as a variable or an argument of generated code, would hide something the
    code needs (`self`, `nn`, `super`, a builtin), or None."""
    if name in CODE_NAMES:
        return f"is a name generated code uses itself (`{name}`)"
    if name in BUILTINS:
        return "is a Python builtin"
    return None


def class_name(text: str) -> str:
    """`inception` -> `Inception`, `conv_bn_relu` -> `ConvBnRelu`, `AuxHead` stays."""
    words = re.split(r"[^0-9A-Za-z]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not name.isidentifier() or keyword.iskeyword(name) or name in _SHADOWED | AMBIGUOUS:
        name = f"Block{name}"
    return name


class Namespace:
    """Fresh names in one namespace, as torch.fx's `_Namespace` (torch/fx/graph.py) names the
    values of a graph: each object gets one name, each name is given once, and a name already
    taken (or reserved) is numbered, counting on from the last number it was given so that the
    thousandth `relu` costs one try, not a thousand.

    One suffix style: the n-th name made from a candidate is `{candidate}_{n}` (`sum_2`,
    `fused_1x1_2`); in a namespace of class names the separator is empty (`ConvBn2`: PEP 8's
    CapWords, and ruff's N801, keep `_` out of class names). A plain candidate counts as the
    first; `numbered=True` numbers the first too (unnamed layers are `conv_1`, `conv_2`).
    Unlike fx, a candidate's own `_N` is not read as a count: a second name for the layer
    `relu_1` is `relu_1_2`, not `relu_2`, which names another layer.
    """

    def __init__(
        self,
        reserved: Iterable[str] = (),
        *,
        taken: Callable[[str], bool] | None = None,
        separator: str = "_",
    ) -> None:
        self._used: set[str] = set(reserved)
        # names taken outside the namespace (a graph's ids), asked rather than copied
        self._taken = taken
        self._count: dict[str, int] = {}
        self._names: dict[Hashable, str] = {}
        self.separator = separator

    def __contains__(self, name: str) -> bool:
        return name in self._used or (self._taken is not None and self._taken(name))

    def reserve(self, *names: str) -> None:
        """Names that are not to be given (the generated file's own, the model's class)."""
        self._used.update(names)

    def create_name(
        self, candidate: str, obj: Hashable | None = None, *, numbered: bool = False
    ) -> str:
        """`candidate`, or its next free numbered form; `obj`, if given, keeps its first name."""
        if obj is not None and obj in self._names:
            return self._names[obj]
        n = self._count.get(candidate, 0) + 1
        name = candidate if n == 1 and not numbered else f"{candidate}{self.separator}{n}"
        while name in self:
            n += 1
            name = f"{candidate}{self.separator}{n}"
        self._count[candidate] = n
        self._used.add(name)
        if obj is not None:
            self._names[obj] = name
        return name


def safe_identifier(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """`name` as an identifier of generated code that hides nothing: a name that is no plain
    identifier, a keyword, a builtin, one of `CODE_NAMES`, ambiguous or in `taken` gets a
    suffix (`self` -> `self_`, `sum` -> `sum_`, then `sum_2`...), anything but ASCII letters,
    digits and underscores becomes `_`. Lint refuses such names before codegen sees them; this
    is the last line of defence, for graphs built without lint."""
    base = name
    if not (name.isascii() and name.isidentifier() and not name.startswith("_")):
        base = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
    base = base[:MAX_NAME]
    if not base or base[0].isdigit():
        base = f"p{base}"
    names = Namespace(taken=lambda n: n in taken or n in _HIDDEN or keyword.iskeyword(n))
    if base not in names:
        return base
    # PEP 8's trailing underscore first (`class_`), then the namespace's numbering
    return f"{base}_" if f"{base}_" not in names else names.create_name(base)


# --- class names: one rule for resolve's warning and codegen's classes -----------------------


@dataclass(frozen=True)
class Collision:
    """A block type whose class name (`ConvBn`) something else has first."""

    block: str
    name: str  # the class the block would be
    owner: str  # what has the name: "the model's class", "block `conv_bn`'s class"
    given: str  # the class it is instead (`ConvBn2`)
    reserved: bool  # the owner is the model or a parameter (else an earlier block type)


@dataclass
class ClassNames:
    """The classes of generated code for a model and its block types, by `class_names`."""

    model: str
    outputs: str  # the model's named tuple of outputs
    blocks: dict[str, str]  # block type -> class
    collisions: list[Collision]
    namespace: Namespace  # every name above is taken: further classes are made here
    _claimed: set[str] = field(default_factory=set, repr=False)

    def for_block(self, block: str, variant: str = "") -> str:
        """The class for (a variant of) a block type's instances: the first plain one gets the
        block's own class, variants (`BottleneckDownsample`) and further ones (`ConvBn3`) the
        namespace's next free names."""
        if block not in self.blocks:  # a block type the names were not made for
            self.blocks[block] = self.namespace.create_name(class_name(block))
        base = self.blocks[block]
        if not variant and block not in self._claimed:
            self._claimed.add(block)
            return base
        return self.namespace.create_name(class_name(block) + variant)


def class_names(model_name: str, blocks: Mapping[str, Iterable[str]]) -> ClassNames:
    """The class of every block type (block type -> its parameters, in the spec's order).

    The model's class and its outputs class keep their names, and no class may be called
    like a block parameter (a constructor argument would hide it): a block type whose class
    is one of those, or an earlier block type's (`conv_bn` and `ConvBn` are both `ConvBn`),
    is numbered (`ConvBn2`), and the collision is returned for resolve to warn about.
    """
    model = class_name(model_name)
    outputs = f"{model}Outputs"
    owners = {model: "the model's class", outputs: "the model's outputs class"}
    for block, params in blocks.items():
        for p in params:
            owners.setdefault(p, f"a parameter of block `{block}`")
    reserved = set(owners)
    namespace = Namespace(CODE_NAMES | reserved, separator="")
    classes: dict[str, str] = {}
    collisions = []
    for block in blocks:
        cls = class_name(block)
        given = namespace.create_name(cls)
        if given != cls:
            owner = owners.get(cls, "a name generated code uses itself")
            collisions.append(Collision(block, cls, owner, given, cls in reserved))
        owners.setdefault(given, f"block `{block}`'s class")
        classes[block] = given
    return ClassNames(model, outputs, classes, collisions, namespace)


# --- names of layers, and suggestions for misspelt ones ----------------------------------

RESERVED_NAMES = frozenset({"input"})
# Attributes of torch's nn.Module (its public methods and `training`): a layer becomes a
# submodule attribute of that name, so these would shadow the module's own (listed here, not
# read from torch, because linting never imports torch).
_MODULE_ATTRS_TEXT = """
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad"""
MODULE_ATTRS = frozenset(_MODULE_ATTRS_TEXT.split())


def _name_problem(value: str) -> str | None:
    reason = problem(value)
    if reason is None and value in RESERVED_NAMES:
        return "is reserved for the network's input"
    if reason is None and value in MODULE_ATTRS:
        return "is an attribute of torch's nn.Module"
    return reason


def _check_name(value: str) -> str:
    reason = _name_problem(value)
    if reason:
        raise ValueError(f"`{shown(value)}` cannot be used as a name: it {reason}")
    return value


# A layer may also be named with hyphens between plain parts, as torchvision names RegNet's
# blocks (`trunk_output.block1.block1-0`): its state_dict key is then torchvision's. Such a
# name is a submodule attribute only (`getattr(self, "block1-0")`); the variable that holds
# its value in generated code gets an identifier made from it (`block1_0`).
_HYPHENATED = re.compile(r"[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_]+)+")


def layer_name_problem(value: str) -> str | None:
    """Why `value` cannot name a layer (read after "it"), or None."""
    if _HYPHENATED.fullmatch(value):
        return problem(value.replace("-", "_"))  # the length, and nothing else, applies
    return _name_problem(value)


def _check_layer_name(value: str) -> str:
    reason = layer_name_problem(value)
    if reason:
        raise ValueError(f"`{shown(value)}` cannot be used as a name: it {reason}")
    return value


def _check_ref(value: str) -> str:
    # a name, or the number of an unnamed layer of a `seq` (`from: ["0", "1"]`, as ASPP's
    # concatenation of the branches of an nn.ModuleList); dotted, a layer inside a named
    # block or seq (`backbone.4`, as torchvision's IntermediateLayerGetter reads a stage)
    if not all(
        layer_name_form(part) or (part.isascii() and part.isdigit()) for part in value.split(".")
    ):
        raise ValueError(f"`{shown(value)}` is not a layer name")
    return value


def layer_name_form(text: str) -> bool:
    """Whether `text` has the form of a layer name (`conv1`, `block1-0`); `LayerName`
    checks the rest (keywords, length, reserved names)."""
    return text.isascii() and (text.isidentifier() or _HYPHENATED.fullmatch(text) is not None)


def identifier(name: str) -> str:
    """A layer name as a Python identifier: `block1-0` -> `block1_0`, `backbone.4` ->
    `backbone_4`, `0` -> `x0`."""
    text = name.replace("-", "_").replace(".", "_")
    return text if text.isascii() and text.isidentifier() else f"x{text}"


Name = Annotated[str, AfterValidator(_check_name)]
LayerName = Annotated[str, AfterValidator(_check_layer_name)]
RefName = Annotated[str, AfterValidator(_check_ref)]


def closest(word: str, choices: Sequence[str], n: int = 3) -> list[str]:
    # a key of a spec's mapping may be a number (`blocks: {1: ...}`): compared as it is written
    return difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.6)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """`did you mean `a` or `b`?` for the choices closest to `word`, or None."""
    near = closest(word, choices)
    return ("did you mean " + " or ".join(f"`{n}`" for n in near) + "?") if near else None


class Suggestions:
    """`did_you_mean` for a run that may report many unknown names against many choices.

    One suggestion costs a comparison with every choice, so 100,000 undefined references
    among 100,000 names would cost 10**10 comparisons. A run gets a budget of comparisons:
    suggestions are made while it lasts (the first mistakes, the ones a person reads), then
    the callers' general help is shown instead.
    """

    def __init__(self, budget: int = 200_000) -> None:
        self.budget = budget

    def __call__(self, word: str, choices: Callable[[], Sequence[str]], count: int) -> str | None:
        """A suggestion among `choices()` (`count` of them, known before they are built), or
        None if there is none or the budget is spent."""
        if count > self.budget:
            return None
        self.budget -= count
        return did_you_mean(word, choices())
