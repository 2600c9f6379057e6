"""`yarch lint --variants`: a change to a base is checked in the specs that extend it (issue 18,
item 4: the pre-commit hook lints the staged files, and a base's rename broke a variant that
was not staged)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import cli

BASE = (
    "name: base\ninput: [3, 8, 8]\nlayers:\n  - conv: {name: stem, out: 4, kernel: 3}\n  - relu\n"
)
VARIANT = "extends: base.yaml\nname: variant\nmodify:\n  stem: {out: 8}\n"
DEEPER = "extends: variant.yaml\nname: deeper\nappend:\n  - relu\n"


def _project(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "base.yaml").write_text(BASE)
    (specs / "variant.yaml").write_text(VARIANT)
    (specs / "deeper.yaml").write_text(DEEPER)
    (specs / "other.yaml").write_text("name: other\ninput: [3, 8, 8]\nlayers:\n  - relu\n")
    return specs


def test_a_renamed_layer_of_a_base_is_caught_in_its_variants(tmp_path, monkeypatch):
    specs = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["lint", "--variants", "specs/base.yaml"]).exit_code == 0
    # the base's layer is renamed; only the base is "staged"
    (specs / "base.yaml").write_text(BASE.replace("name: stem", "name: conv1"))
    alone = runner.invoke(cli, ["lint", "specs/base.yaml"])
    assert alone.exit_code == 0  # the base alone is fine: what the hook saw before
    out = runner.invoke(cli, ["lint", "--variants", "--format", "concise", "specs/base.yaml"])
    assert out.exit_code == 1, out.output
    # the variant's `modify: stem`, found through it and through the variant of the variant
    assert out.output.count("specs/variant.yaml:4:9: error[override-target]") == 2, out.output
    assert "Found 2 errors and 0 warnings in 2 of 3 files." in out.output
    assert "other.yaml" not in out.output


def test_the_pre_commit_hook_lints_variants():
    hooks = (Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "entry: yarch lint --format concise --variants" in hooks


def test_a_variant_is_found_whatever_its_extends_looks_like(tmp_path, monkeypatch):
    """Read as lint reads it: flow style, quoted, a path through a subfolder."""
    specs = _project(tmp_path)
    (specs / "nets").mkdir()
    (specs / "nets" / "flow.yaml").write_text(
        '{extends: "../base.yaml", name: flow, modify: {stem: {out: 2}}}\n'
    )
    (specs / "commented.yaml").write_text("# extends: base.yaml\nname: x\ninput: [3, 8, 8]\n")
    monkeypatch.chdir(tmp_path)
    (specs / "base.yaml").write_text(BASE.replace("name: stem", "name: conv1"))
    out = CliRunner().invoke(cli, ["lint", "--variants", "--format", "concise", "specs/base.yaml"])
    assert out.exit_code == 1
    assert "specs/nets/flow.yaml:1:" in out.output, out.output
    assert "commented.yaml" not in out.output
    assert "in 3 of 4 files" in out.output, out.output
