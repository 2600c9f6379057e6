"""The reference networks in specs/: clean, with their sources' exact parameter figures."""

from __future__ import annotations

import networkx as nx
import pytest

from compiler import lint_file

from .conftest import SPECS

# spec -> (total parameters, a word its header comment must name as its source)
LIBRARY = {
    "googlenet_torchvision.yaml": (13_004_888, "torchvision/models/googlenet.py"),
    "alexnet.yaml": (61_100_840, "torchvision/models/alexnet.py"),
    "zfnet.yaml": (62_357_608, "Zeiler & Fergus"),
    "vgg11.yaml": (132_863_336, "torchvision/models/vgg.py"),
    "vgg13.yaml": (133_047_848, "torchvision/models/vgg.py"),
    "vgg16.yaml": (138_357_544, "torchvision/models/vgg.py"),
    "vgg19.yaml": (143_667_240, "torchvision/models/vgg.py"),
    "resnet18.yaml": (11_689_512, "torchvision/models/resnet.py"),
    "resnet34.yaml": (21_797_672, "torchvision/models/resnet.py"),
    "resnet50.yaml": (25_557_032, "torchvision/models/resnet.py"),
}


def _graph(name):
    result = lint_file(SPECS / name)
    assert result.diagnostics == []
    return result.graph


def _main_path(graph, output):
    node = graph.outputs[output]
    return {node} | nx.ancestors(graph.to_networkx(), node)


def _weighted(graph):
    """Ids of the nodes that hold parameters, in graph order: the state_dict's prefixes."""
    return [i for i in graph.order if graph.node(i).params]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_clean_with_exact_parameters(name):
    g = _graph(name)
    assert sum(n.params for n in g.nodes()) == LIBRARY[name][0]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_header_names_source_and_figure(name):
    lines = (SPECS / name).read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    text = " ".join(header)
    assert header, "the spec starts with a comment naming its source"
    assert LIBRARY[name][1] in text
    assert f"{LIBRARY[name][0]:,}" in text


def test_googlenet_torchvision_main_path():
    g = _graph("googlenet_torchvision.yaml")
    main = _main_path(g, "logits")
    assert sum(g.node(n).params for n in main) == 6_624_904
    assert sum(g.node(n).macs for n in main) == 1_498_376_192  # 1,497,352,192 conv + 1,024,000 fc
    assert g.outputs == {"logits": "fc", "aux1": "aux1.fc2", "aux2": "aux2.fc2"}


def test_googlenet_torchvision_names_and_order():
    g = _graph("googlenet_torchvision.yaml")
    ids = _weighted(g)
    assert ids[:6] == ["conv1.conv", "conv1.bn", "conv2.conv", "conv2.bn", "conv3.conv", "conv3.bn"]
    assert {"inception3a.branch2.1.conv", "inception3a.branch3.1.conv"} <= set(ids)
    assert "inception5b.branch4.1.bn" in ids
    assert g.node("inception3a.branch3.1.conv").args.kernel == (3, 3)  # torchvision's 3x3
    assert g.node("inception3a.branch2.0.bn").args.eps == 0.001
    # torchvision registers the aux heads before avgpool/dropout/fc
    assert ids[-9:] == [
        *("aux1.conv.conv", "aux1.conv.bn", "aux1.fc1", "aux1.fc2"),
        *("aux2.conv.conv", "aux2.conv.bn", "aux2.fc1", "aux2.fc2"),
        "fc",
    ]
    assert len(ids) == 3 * 2 + 9 * 6 * 2 + 2 * 4 + 1


def test_googlenet_torchvision_branch1_is_torchvisions():
    g = _graph("googlenet_torchvision.yaml")
    assert "inception3a.branch1.conv" in _weighted(g)


def test_zfnet_sizes():
    g = _graph("zfnet.yaml")
    sizes = {
        "conv1": (96, 110, 110),
        "pool1": (96, 55, 55),
        "conv2": (256, 26, 26),
        "pool2": (256, 13, 13),
        "conv5": (256, 13, 13),
        "pool5": (256, 6, 6),
        "fc8": (1000,),
    }
    assert {n: g.node(n).shape for n in sizes} == sizes


def test_alexnet_and_vgg_number_like_sequential():
    g = _graph("alexnet.yaml")
    assert _weighted(g) == [
        *(f"features.{i}" for i in (0, 3, 6, 8, 10)),
        *(f"classifier.{i}" for i in (1, 4, 6)),
    ]
    g = _graph("vgg16.yaml")
    assert _weighted(g) == [
        *(f"features.{i}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
        *(f"classifier.{i}" for i in (0, 3, 6)),
    ]
    assert g.node("avgpool").shape == (512, 7, 7)


@pytest.mark.parametrize(
    ("name", "blocks", "last"),
    [
        ("resnet18.yaml", (2, 2, 2, 2), "bn2"),
        ("resnet34.yaml", (3, 4, 6, 3), "bn2"),
        ("resnet50.yaml", (3, 4, 6, 3), "bn3"),
    ],
)
def test_resnet_names(name, blocks, last):
    g = _graph(name)
    ids = _weighted(g)
    assert ids[:2] == ["conv1", "bn1"] and ids[-1] == "fc"
    for stage, n in enumerate(blocks, start=1):
        assert f"layer{stage}.{n - 1}.{last}" in ids
        assert f"layer{stage}.{n}.conv1" not in ids
        has_down = stage > 1 or last == "bn3"  # Bottleneck widens layer1 to 256
        assert (f"layer{stage}.0.downsample.0" in ids) is has_down
        assert f"layer{stage}.1.downsample.0" not in ids
    if last == "bn3":  # the stride is on the bottleneck's 3x3 conv
        assert g.node("layer2.0.conv2").args.stride == (2, 2)
        assert g.node("layer2.0.conv1").args.stride == (1, 1)
