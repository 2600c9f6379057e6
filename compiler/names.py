"""Names in generated code, sanitised in one place.

Layer names are checked when a spec is validated (`ops/base.py`: identifiers that are not
Python keywords, do not start with an underscore and do not shadow nn.Module attributes); what
is left to do here is turning block types into class names and keeping them distinct.
"""

from __future__ import annotations

import builtins
import keyword
import re

_SHADOWED = frozenset(dir(builtins))


def class_name(text: str) -> str:
    """`inception` -> `Inception`, `conv_bn_relu` -> `ConvBnRelu`, `AuxHead` stays."""
    words = re.split(r"[^0-9A-Za-z]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not name or not name.isidentifier() or keyword.iskeyword(name) or name in _SHADOWED:
        name = f"Block{name}"
    return name


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name2`, `name3` ... if it is taken; the result is added to `taken`."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    taken.add(candidate)
    return candidate
