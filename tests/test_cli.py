"""The command-line contract: formats, fields, exit codes, folders, --strict and --set."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compiler import lint_file
from compiler.cli import cli

from .conftest import ROOT, SPECS


def test_library_specs_are_clean(run):
    specs = sorted(str(p.relative_to(ROOT)) for p in SPECS.glob("*.yaml"))
    result = run("lint", *specs)
    assert result.exit_code == 0, result.output
    assert "All checks passed" in result.output


def test_specs_folder_reports_the_posts(run):
    result = run("lint", "specs/")
    assert result.exit_code == 1
    assert "error[reshape-batch]" in result.output
    assert "--> specs/posts/googlenet_pytorch.yaml:44:14" in result.output


def test_json_fields(run):
    result = run("lint", "--format", "json", "specs/posts/")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["files"] == len(list((SPECS / "posts").glob("*.yaml")))
    assert payload["errors"] == 9 and payload["warnings"] == 1
    first = payload["diagnostics"][0]
    expected = {
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "help",
    }
    assert expected <= set(first)
    stride = next(d for d in payload["diagnostics"] if d["code"] == "invalid-value")
    assert (stride["file"], stride["line"], stride["column"]) == (
        "specs/posts/googlenet_pytorch.yaml",
        24,
        48,
    )
    assert (stride["end_line"], stride["end_column"]) == (24, 49)
    assert stride["message"] == "`stride` must be >= 1, got 0"


def test_concise_and_github(run):
    result = run("lint", "--format", "concise", "specs/posts/alexnet_text.yaml")
    lines = result.output.splitlines()
    assert lines[0].startswith("specs/posts/alexnet_text.yaml:18:54: warning[stride-remainder]")
    result = run("lint", "--format", "github", "specs/posts/alexnet_text.yaml")
    first = result.output.splitlines()[0]
    assert first.startswith("::warning file=specs/posts/alexnet_text.yaml,line=18,col=54,")
    assert "title=stride-remainder::" in first


def test_strict_makes_warnings_fail(tmp_path, run):
    spec = tmp_path / "w.yaml"
    spec.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, stride: 2}\n")
    assert run("lint", str(spec)).exit_code == 0
    assert run("lint", "--strict", str(spec)).exit_code == 1


def test_set_overrides_a_parameter(tmp_path, run):
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "input: [3, $size, $size]\nparams: {size: 32}\n"
        "layers:\n  - conv: {out: 8, kernel: 3, stride: 2, padding: 1}\n  - maxpool: {kernel: 16}\n"
    )
    assert run("lint", str(spec)).exit_code == 0
    result = run("lint", "--set", "size=16", str(spec))
    assert result.exit_code == 1
    assert "error[spatial-collapse]" in result.output
    assert "the smallest input that works is 3x31x31" in result.output
    result = run("lint", "--set", "sise=16", str(spec))
    assert "did you mean `size`?" in result.output


def test_folder_recursion_and_sorting(tmp_path, run):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yaml").write_text("input: [1, 4, 4]\nlayers: [relu]\n")
    (tmp_path / "a.yml").write_text("input: [1, 4, 4]\nlayers: [relu]\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    result = run("lint", "--format", "json", str(tmp_path))
    assert json.loads(result.output)["files"] == 2


def test_python_m_compiler_and_version(run):
    result = run("--version")
    assert result.exit_code == 0 and "0.1.0" in result.output


def test_summary_json_of_torchvision_googlenet(run):
    result = run("summary", "--format", "json", "specs/googlenet_torchvision.yaml")
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["total_macs"] == 1_498_376_192
    assert payload["total_params"] == 13_004_888


def test_codegen_prints_or_writes(tmp_path, run):
    result = run("codegen", "specs/posts/mnist_residual.yaml")
    assert result.exit_code == 0
    assert "class ResidualBlock(nn.Module):" in result.output
    target = tmp_path / "m.py"
    assert run("codegen", "specs/posts/mnist_residual.yaml", "-o", str(target)).exit_code == 0
    assert target.read_text() in result.output
    broken = tmp_path / "broken.py"
    assert run("codegen", "specs/posts/googlenet_pytorch.yaml", "-o", str(broken)).exit_code == 1
    assert not broken.exists()


def test_build_writes_code_and_diagram_and_is_repeatable(tmp_path, run):
    out = tmp_path / "gen"
    args = ("build", "specs/posts/mnist_inception.yaml", "specs/posts/alexnet_text.yaml")
    result = run(*args, "-o", str(out))
    assert result.exit_code == 1  # alexnet_text has errors: reported, not built
    assert "Total params: 97,298" in result.output  # the summary is printed
    assert "Not built, with errors: specs/posts/alexnet_text.yaml." in result.output
    assert sorted(p.name for p in out.iterdir()) == ["mnist_inception.py", "mnist_inception.svg"]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    run(*args, "-o", str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_scales_on_the_command_line(tmp_path, run):
    result = run("lint", "--all-scales", "--format", "json", "specs/mini_inception.yaml")
    assert result.exit_code == 0 and json.loads(result.output)["files"] == 1
    small = run("summary", "--format", "json", "--scale", "n", "specs/mini_inception.yaml")
    large = run("summary", "--format", "json", "--scale", "m", "specs/mini_inception.yaml")
    assert json.loads(small.output)["total_params"] < json.loads(large.output)["total_params"]
    result = run("lint", "--scale", "xl", "specs/mini_inception.yaml")
    assert result.exit_code == 1 and "error[unknown-scale]" in result.output
    # a row that breaks the network is found by --all-scales, with the scale named
    broken = tmp_path / "s.yaml"
    broken.write_text(
        "input: [3, 16, 16]\nscales:\n  ok: {width: 1.0}\n  tiny: {depth: 1.0, width: 0.01}\n"
        "layers:\n  - conv: {out: '${w(64)}', kernel: 3, padding: 1, expect: [64, 16, 16]}\n"
    )
    assert run("lint", str(broken)).exit_code == 0  # the first row
    result = run("lint", "--all-scales", str(broken))
    assert result.exit_code == 1 and "with scale `tiny`" in result.output


def test_schema_command(tmp_path, run):
    target = tmp_path / "spec.schema.json"
    assert run("schema", "-o", str(target)).exit_code == 0
    assert target.read_text() == (ROOT / "schema" / "spec.schema.json").read_text()


def test_a_folder_of_many_specs_is_linted_on_every_core_in_order(tmp_path, run):
    import shutil

    from compiler.cli import PARALLEL_FROM, find_specs

    for i in range(PARALLEL_FROM + 2):  # enough files to fork workers
        shutil.copytree(SPECS / "posts", tmp_path / f"copy{i:02d}")
    result = run("lint", "--format", "json", str(tmp_path))
    parallel = json.loads(result.output)["diagnostics"]
    serial = [
        (d.span.file, d.span.line, d.code)
        for path, display, _found in find_specs((str(tmp_path),))
        for d in lint_file(path, display=display).diagnostics
    ]
    assert [(d["file"], d["line"], d["code"]) for d in parallel] == serial
    assert len(serial) == 10 * (PARALLEL_FROM + 2)


def test_output_format_is_an_alias_of_format(tmp_path):
    # ruff and mypy spell it --output-format; lint, summary and diff accept both
    from click.testing import CliRunner

    from compiler.cli import cli

    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\ninput: [3, 8, 8]\nlayers:\n  - relu\n", encoding="utf-8")
    runner = CliRunner()
    for command in (["lint"], ["summary"], ["diff", str(spec)]):
        a = runner.invoke(cli, [*command, "--format", "json", str(spec)])
        b = runner.invoke(cli, [*command, "--output-format", "json", str(spec)])
        assert a.exit_code == b.exit_code == 0, (command, a.output, b.output)
        assert a.output == b.output and a.output.lstrip().startswith(("{", "["))


def test_lint_reads_standard_input(tmp_path):
    # an editor lints its unsaved buffer: `yarch lint - --stdin-filename path/of/the/file.yaml`
    from click.testing import CliRunner

    from compiler.cli import cli

    runner = CliRunner()
    bad = b"name: t\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 1, from: stemm}\n"
    named = str(tmp_path / "net.yaml")  # need not exist
    out = runner.invoke(
        cli, ["lint", "--format", "concise", "-", "--stdin-filename", named], input=bad
    )
    assert out.exit_code == 1
    assert f"{named}:4:37: error[undefined-reference]" in out.output
    out = runner.invoke(cli, ["lint", "--format", "concise", "-"], input=bad)
    assert "<stdin>:4:37: error[undefined-reference]" in out.output
    # `extends:` is relative to the file it stands for, inside that file's project
    (tmp_path / "base.yaml").write_bytes(bad.replace(b", from: stemm", b""))
    variant = b"extends: base.yaml\nname: v\n"
    out = runner.invoke(cli, ["lint", "-", "--stdin-filename", named], input=variant)
    assert out.exit_code == 0, out.output
    # checked as a file is: the encoding, the size
    out = runner.invoke(cli, ["lint", "-"], input=b"\xff\xfe")
    assert out.exit_code == 2 and "invalid-encoding" in out.output
    out = runner.invoke(cli, ["lint", "-"], input=b"#" * (3 * 1024 * 1024))
    assert out.exit_code == 1 and "the file is more than 2 MB" in out.output


def test_colour_follows_force_color_and_no_color(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from compiler.cli import cli

    spec = tmp_path / "t.yaml"
    # a value with a terminal escape: it stays escaped, colour or not
    spec.write_text(
        'name: t\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 1, from: "\\e]0;x\\a"}\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = runner.invoke(cli, ["lint", str(spec)]).output
    assert "\x1b[1;31merror[invalid-value]\x1b[0m" in coloured and "\x1b[1;34m -->" in coloured
    assert "\x1b]0;" not in coloured and "\\x1b]0;x\\x07" in coloured
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("NO_COLOR", "1")
    plain = runner.invoke(cli, ["lint", str(spec)]).output
    assert "\x1b[" not in plain and plain.startswith("error[")
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[" not in runner.invoke(cli, ["lint", str(spec)]).output  # not a TTY


@pytest.mark.parametrize(
    "words",
    [
        "yarch lint sp",
        "yarch summary sp",
        "yarch draw sp",
        "yarch codegen sp",
        "yarch build sp",
        "yarch diff a.yaml sp",
    ],
)
def test_spec_arguments_complete_as_paths(words):
    # click's bash protocol: the shell is told to complete a file name (its own completion,
    # which knows ~, quoting and folders), not offered nothing
    env = {"_YARCH_COMPLETE": "bash_complete", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - 1)
    out = CliRunner().invoke(cli, [], env=env, prog_name="yarch")
    assert out.output.splitlines() == ["file,sp"], out.output


def test_the_completion_script_is_what_the_readme_says():
    out = CliRunner().invoke(cli, [], env={"_YARCH_COMPLETE": "bash_source"}, prog_name="yarch")
    assert "complete -o nosort -F _yarch_completion yarch" in out.output
    readme = (ROOT / "README.md").read_text()
    for shell in ("bash", "zsh", "fish"):
        assert f"_YARCH_COMPLETE={shell}_source yarch" in readme
