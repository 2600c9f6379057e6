"""Weight initialisation a spec states (`init:`), as code.

`init: none` keeps PyTorch's defaults; `init: kaiming` is He et al.'s normal initialisation
for the convs (fan-out, ReLU gain) with the norms at weight 1 and bias 0, as torchvision's
ResNet does it; `init: torchvision` is the scheme torchvision's class of the spec's `class:`
runs at the end of its constructor (torchvision/models/*.py, 0.28), copied statement by
statement. Generated code writes these lines at the end of the model's constructor, and
`build` runs the same lines on the module it made, so both draw the same weights from the
same seed. Pure Python: no torch import here.
"""

from __future__ import annotations

SCHEMES = ("none", "kaiming", "torchvision")

_NORMS_1_0 = [
    "nn.init.constant_(m.weight, 1)",
    "nn.init.constant_(m.bias, 0)",
]
_NORMS_ONES = ["nn.init.ones_(m.weight)", "nn.init.zeros_(m.bias)"]

# (the module classes, statements on `m`) in the order torchvision tests them; `{conv}` is
# the model's conv classes (`nn.Conv2d`), `{norm}` its batch norm classes
Rule = tuple[str, list[str]]

_KAIMING: list[Rule] = [
    ("{conv}", ['nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")']),
    ("{norm}, nn.GroupNorm", _NORMS_1_0),
]

TORCHVISION: dict[str, list[Rule]] = {
    "ResNet": _KAIMING,
    "VGG": [
        (
            "{conv}",
            [
                'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
                "if m.bias is not None:",
                "    nn.init.constant_(m.bias, 0)",
            ],
        ),
        ("{norm}", _NORMS_1_0),
        ("nn.Linear", ["nn.init.normal_(m.weight, 0, 0.01)", "nn.init.constant_(m.bias, 0)"]),
    ],
    "GoogLeNet": [
        ("{conv}, nn.Linear", ["nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)"]),
        ("{norm}", _NORMS_1_0),
    ],
    "DenseNet": [
        ("{conv}", ["nn.init.kaiming_normal_(m.weight)"]),
        ("{norm}", _NORMS_1_0),
        ("nn.Linear", ["nn.init.constant_(m.bias, 0)"]),
    ],
    "MobileNetV2": [
        (
            "{conv}",
            [
                'nn.init.kaiming_normal_(m.weight, mode="fan_out")',
                "if m.bias is not None:",
                "    nn.init.zeros_(m.bias)",
            ],
        ),
        ("{norm}, nn.GroupNorm", _NORMS_ONES),
        ("nn.Linear", ["nn.init.normal_(m.weight, 0, 0.01)", "nn.init.zeros_(m.bias)"]),
    ],
    "MNASNet": [
        (
            "{conv}",
            [
                'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
                "if m.bias is not None:",
                "    nn.init.zeros_(m.bias)",
            ],
        ),
        ("{norm}", _NORMS_ONES),
        (
            "nn.Linear",
            [
                'nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")',
                "nn.init.zeros_(m.bias)",
            ],
        ),
    ],
    "ConvNeXt": [
        (
            "{conv}, nn.Linear",
            [
                "nn.init.trunc_normal_(m.weight, std=0.02)",
                "if m.bias is not None:",
                "    nn.init.zeros_(m.bias)",
            ],
        ),
    ],
}
TORCHVISION["MobileNetV3"] = TORCHVISION["MobileNetV2"]


def problem(scheme: str, model_class: str) -> str | None:
    """Why `init: scheme` cannot be used by a model of class `model_class`."""
    if scheme == "torchvision" and model_class not in TORCHVISION:
        known = ", ".join(f"`{c}`" for c in sorted(TORCHVISION))
        return (
            f"`init: torchvision` copies the initialisation of torchvision's class of the "
            f"spec's `class:`, and yarch knows it for {known}, not `{model_class}`"
        )
    return None


def init_lines(scheme: str, model_class: str, module_classes: set[str]) -> list[str]:
    """The statements, after the model's children, that initialise its weights (`self` is
    the model); none for `none`. `module_classes`: the torch classes the model has."""
    if scheme == "none":
        return []
    rules = _KAIMING if scheme == "kaiming" else TORCHVISION[model_class]
    convs = sorted(c for c in module_classes if c in ("Conv1d", "Conv2d", "Conv3d"))
    norms = sorted(c for c in module_classes if c in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"))
    lines = ["for m in self.modules():"]
    first = True
    for classes, body in rules:
        names = []
        for part in classes.split(", "):
            if part == "{conv}":
                names += [f"nn.{c}" for c in convs]
            elif part == "{norm}":
                names += [f"nn.{c}" for c in norms]
            elif part.removeprefix("nn.") in module_classes:
                names.append(part)
        if not names:
            continue
        test = names[0] if len(names) == 1 else f"({', '.join(names)})"
        lines.append(f"    {'if' if first else 'elif'} isinstance(m, {test}):")
        lines += [f"        {line}" for line in body]
        first = False
    return lines if not first else []
