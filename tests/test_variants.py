"""Variants (`extends:` with named changes) and scales."""

from __future__ import annotations

import os
import shutil

from compiler import lint_file
from compiler.summary import summarize

from .conftest import SPECS

KERAS = SPECS / "variants" / "googlenet_keras5x5.yaml"


def _variant(tmp_path, text: str, base=SPECS / "googlenet.yaml", name="v.yaml"):
    """A variant in `tmp_path`, which holds a copy of specs/: `extends:` may not leave the
    folder it is linted in (outside a git repository)."""
    copy = tmp_path / "specs"
    if not copy.exists():
        shutil.copytree(SPECS, copy)
    if base.is_relative_to(SPECS):
        base = copy / base.relative_to(SPECS)
    path = tmp_path / name
    rel = os.path.relpath(base, tmp_path)
    path.write_text(f"extends: {rel}\n{text}")
    return path


def test_keras_variant_is_a_few_lines_and_lints_clean():
    result = lint_file(KERAS)
    assert result.diagnostics == []
    lines = [ln for ln in KERAS.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) <= 12
    g = result.graph
    assert g.node(g.instances["inception5a"].output).shape == (736, 7, 7)
    assert g.node(g.instances["inception5b"].output).shape == (944, 7, 7)
    assert g.node("classifier").shape == (10,)
    assert g.node("aux1.fc2").shape == (10,)
    assert summarize(g).total_params == 10_088_062


def test_a_broken_tuple_points_into_the_variant(tmp_path):
    path = _variant(tmp_path, "modify:\n  inception5a: {c5: [32, 32, 1]}\n")
    (d,) = lint_file(path).diagnostics
    assert (d.code, d.span.file, d.span.line) == ("invalid-value", str(path), 3)


def test_an_inherited_mistake_points_into_the_base_with_the_chain(tmp_path):
    path = _variant(tmp_path, "modify:\n  inception5a: {c5: [32, 32], expect: ~}\n")
    diags = lint_file(path, display="v.yaml").diagnostics
    (d,) = [d for d in diags if d.code == "channel-mismatch"]
    base = (SPECS / "googlenet.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(base, 1) if "name: inception5b" in text)
    assert d.span.file.endswith("specs/googlenet.yaml") and d.span.line == line
    assert any(n.startswith("inherited: `v.yaml` extends `") for n in d.notes)


def test_chains_cycles_and_missing_bases(tmp_path):
    middle = _variant(tmp_path, "params: {num_classes: 10}\n", base=KERAS, name="middle.yaml")
    top = _variant(tmp_path, "name: top\nparams: {num_classes: 7}\n", base=middle)
    result = lint_file(top)
    assert result.diagnostics == []
    assert result.graph.node("classifier").shape == (7,)  # the nearest variant wins
    assert result.graph.node("inception5a.branch3.2").args.out == 32  # from two files down
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert [d.code for d in lint_file(tmp_path / "a.yaml").diagnostics] == ["extends-cycle"]
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    (d,) = lint_file(tmp_path / "c.yaml").diagnostics
    assert d.code == "missing-base" and d.span.line == 1


def test_changes_by_name(tmp_path):
    path = _variant(
        tmp_path,
        """
delete: [norm1, norm2]
replace:
  pool5: {adaptive_avgpool: 1}
insert:
  - after: conv1
    layers: [{bn: {name: conv1_bn}}]
modify:
  AuxHead.fc1: {out: 512}
  AuxHead.fc2: {in: 512}
outputs:
  aux2: ~
  probs: probs
append:
  - softmax: {name: probs, from: classifier}
""",
    )
    result = lint_file(path)
    assert [d.code for d in result.diagnostics] == ["unreachable-node"]  # aux2, now unused
    g = result.graph
    assert "norm1" not in g.graph and "conv1_bn" in g.graph
    assert g.node("conv1_bn").inputs == ["conv1"]
    assert g.node("pool5").op.name == "adaptive_avgpool"  # the name is kept
    assert g.node("aux1.fc1").args.out == 512
    assert set(g.outputs) == {"logits", "aux1", "probs"}


def test_unknown_targets_and_misspelt_keys(tmp_path):
    path = _variant(tmp_path, "modify:\n  inception5x: {c5: [32, 32]}\n")
    (d,) = lint_file(path).diagnostics
    assert d.code == "override-target" and "`inception5a`" in d.help
    path = _variant(tmp_path, "modfy:\n  inception5a: {c5: [32, 32]}\n")
    (d,) = lint_file(path).diagnostics
    assert (d.code, d.span.line, d.help) == ("unknown-field", 2, "did you mean `modify`?")


def test_a_chain_is_validated_once_after_merging(tmp_path, monkeypatch):
    # each variant's edits are checked as written; the spec as a whole once, merged, with
    # its mistakes still pointing into the file that holds them
    from compiler import schema

    middle = _variant(tmp_path, "params: {num_classes: 10}\n", base=KERAS, name="middle.yaml")
    top = _variant(tmp_path, "name: top\nparams: {num_classes: 7}\n", base=middle)
    calls = []
    real = schema.Spec.model_validate.__func__

    def counting(cls, *args, **kwargs):
        calls.append(cls)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(schema.Spec, "model_validate", classmethod(counting))
    assert lint_file(top).diagnostics == []
    assert len(calls) == 1
    bad = _variant(tmp_path, "input: [3, 224]\nlayerz: []\n", base=middle, name="bad.yaml")
    diags = lint_file(bad).diagnostics
    assert {(d.code, d.span.file, d.span.line) for d in diags} >= {("unknown-field", str(bad), 3)}


def test_scales():
    path = SPECS / "mini_inception.yaml"
    widths = {}
    for scale in ("n", "s", "m"):
        result = lint_file(path, scale=scale)
        assert result.diagnostics == []
        widths[scale] = result.graph.node("stem").shape[0]
    assert widths == {"n": 16, "s": 32, "m": 64}
    assert lint_file(path).graph.scale == "n"  # the first row by default
    (d,) = lint_file(path, scale="xl").diagnostics
    assert d.code == "unknown-scale" and "`n`, `s`, `m`" in d.help


def test_scale_functions_round_and_cap(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "input: [3, 8, 8]\nscales:\n  a: {width: 0.3, max_channels: 100}\n"
        "layers:\n  - conv:\n      out: ${w(1000)}\n      kernel: 1\n"
        "  - conv:\n      out: ${w(10)}\n      kernel: 1\n"
    )
    g = lint_file(spec).graph
    assert g.node("conv_1").shape[0] == 32  # min(1000, 100) * 0.3 = 30, up to a multiple of 8
    assert g.node("conv_2").shape[0] == 8  # 3 -> 8


def test_a_spec_anywhere_extends_a_bundled_spec(tmp_path):
    from compiler import lint_file

    spec = tmp_path / "g10.yaml"  # outside the repository
    spec.write_text("extends: yarch:googlenet.yaml\nname: g10\nparams: {num_classes: 10}\n")
    result = lint_file(spec)
    assert result.diagnostics == []
    assert result.graph.node(result.graph.outputs["logits"]).shape == (10,)
    # a mistake in the edit is reported in the bundled base, named as it was written
    spec.write_text(
        "extends: yarch:googlenet.yaml\nname: g\nmodify: {inception5a: {c5: [32, 33]}}\n"
    )
    (d,) = lint_file(spec).diagnostics
    assert d.code == "shape-mismatch" and d.span.file == "yarch:googlenet.yaml"
    # and nothing outside the library is reached through it
    spec.write_text("extends: yarch:../pyproject.toml\nname: x\n")
    (d,) = lint_file(spec).diagnostics
    assert d.code == "missing-base" and "outside the project folder" in d.message


def test_a_block_named_by_a_number_in_the_base_is_compared_as_written(tmp_path):
    # found by the fuzzer: did-you-mean compared `Bloc` with the number 1 (TypeError)
    (tmp_path / "base.yaml").write_text(
        "input: [3, 8, 8]\nblocks:\n  1:\n    layers: [relu]\nlayers: [relu]\n"
    )
    (tmp_path / "v.yaml").write_text("extends: base.yaml\nmodify:\n  Bloc.relu_1: {name: r}\n")
    result = lint_file(tmp_path / "v.yaml")
    assert "override-target" in [d.code for d in result.diagnostics]
