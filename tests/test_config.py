"""Project configuration (`[tool.yarch]` in pyproject.toml, yarch.toml): found from the spec
upwards up to the project root, include/exclude for folder lints, strict, and a severity per
code; mistakes in it are exit code 2 with the file and key named (compiler/config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import cli
from compiler.config import ConfigError, find_config

from .conftest import ROOT

WARNS = (ROOT / "tests/fixtures/rules/stride-remainder/fail.yaml").read_text()
CLEAN = (ROOT / "tests/fixtures/rules/stride-remainder/pass.yaml").read_text()


def lint(*args: str):
    return CliRunner().invoke(cli, ["lint", *args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder (a git repository's root, as far as yarch looks) with one spec that
    has a stride-remainder warning."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "specs").mkdir()
    (root / "specs" / "net.yaml").write_text(WARNS)
    return root


def configure(folder: Path, text: str, name: str = "pyproject.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_without_configuration_the_warning_passes(project):
    out = lint(str(project / "specs"))
    assert out.exit_code == 0 and "warning[stride-remainder]" in out.output


def test_a_warning_raised_to_an_error_fails_and_says_why(project):
    configure(project, '[tool.yarch.severity]\nstride-remainder = "error"\n')
    out = lint(str(project / "specs"))
    assert out.exit_code == 1, out.output
    assert "error[stride-remainder]" in out.output
    assert 'an error here: `stride-remainder = "error"` in pyproject.toml' in out.output
    data = json.loads(lint("--format", "json", str(project / "specs")).output)
    assert (data["errors"], data["warnings"]) == (1, 0)
    assert data["diagnostics"][0]["severity"] == "error"


def test_an_ignored_code_is_not_reported(project):
    configure(project, '[tool.yarch.severity]\nstride-remainder = "ignore"\n')
    out = lint("--strict", str(project / "specs"))
    assert out.exit_code == 0 and "stride-remainder" not in out.output


def test_strict_in_the_configuration_is_strict(project):
    configure(project, "[tool.yarch]\nstrict = true\n")
    assert lint(str(project / "specs")).exit_code == 1
    assert lint("--isolated", str(project / "specs")).exit_code == 0


def test_include_and_exclude_choose_what_a_folder_lint_finds(project):
    (project / "specs" / "old").mkdir()
    (project / "specs" / "old" / "broken.yaml").write_text("layers: [{conv: {}}]\n")
    (project / "specs" / "next.arch.yml").write_text(CLEAN)
    assert lint(str(project / "specs")).exit_code == 1  # old/broken.yaml is found
    configure(project, '[tool.yarch]\nexclude = ["specs/old/*"]\n')
    out = lint("--format", "concise", str(project / "specs"))
    assert out.exit_code == 0 and "broken" not in out.output
    assert "2 files" in out.output  # net.yaml and next.arch.yml
    configure(project, '[tool.yarch]\ninclude = ["*.arch.yml"]\n')
    out = lint("--format", "concise", str(project / "specs"))
    assert out.exit_code == 0 and "1 file" in out.output and "stride" not in out.output
    # a file named on the command line is linted whatever the globs say
    out = lint(str(project / "specs" / "old" / "broken.yaml"))
    assert out.exit_code == 1


def test_the_nearest_configuration_wins_and_files_are_not_merged(project):
    configure(project, '[tool.yarch.severity]\nstride-remainder = "ignore"\n')
    configure(project / "specs", 'severity = {stride-remainder = "error"}\n', "yarch.toml")
    assert find_config(project / "specs" / "net.yaml").path.name == "yarch.toml"
    assert lint(str(project / "specs")).exit_code == 1
    # .yarch.toml before yarch.toml before pyproject.toml in one folder
    configure(project / "specs", "strict = false\n", ".yarch.toml")
    assert find_config(project / "specs").path.name == ".yarch.toml"
    assert lint(str(project / "specs")).exit_code == 0  # its severity table is empty


def test_a_pyproject_without_the_table_is_passed_over(project):
    configure(project / "specs", "[project]\nname = 'x'\n")
    configure(project, '[tool.yarch.severity]\nstride-remainder = "error"\n')
    assert find_config(project / "specs" / "net.yaml").path == project / "pyproject.toml"


def test_nothing_above_the_project_root_is_read(project):
    configure(project.parent, '[tool.yarch.severity]\nstride-remainder = "error"\n')
    assert find_config(project / "specs") is None
    assert lint(str(project / "specs")).exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[tool.yarch]\nseverty = {}\n",
            "`tool.yarch.severty` is not a setting; did you mean `severity`?",
        ),
        (
            '[tool.yarch.severity]\nstride-remaindr = "error"\n',
            "no diagnostic code `stride-remaindr`; did you mean `stride-remainder`?",
        ),
        (
            '[tool.yarch.severity]\nconcat-mismatch = "warning"\n',
            "`concat-mismatch` is an error, and an error cannot be made a warning",
        ),
        (
            '[tool.yarch.severity]\nstride-remainder = "fatal"\n',
            "`tool.yarch.severity.stride-remainder`",
        ),
        ("[tool.yarch]\nstrict = 'yes'\n", "`tool.yarch.strict`"),
        ("[tool.yarch]\nexclude = 'old'\n", "`tool.yarch.exclude`"),
        ("[tool.yarch\n", "not valid TOML"),
        ("tool = {yarch = 3}\n", "`tool.yarch` must be a table"),
    ],
)
def test_a_mistake_in_the_configuration_is_exit_code_2_naming_it(project, text, message):
    configure(project, text)
    out = lint(str(project / "specs"))
    assert out.exit_code == 2, out.output
    assert message in out.output and "pyproject.toml" in out.output
    assert "Traceback" not in out.output
    with pytest.raises(ConfigError):
        find_config(project / "specs")


def test_a_yarch_toml_names_keys_without_the_tool_prefix(project):
    configure(project, "strikt = true\n", "yarch.toml")
    out = lint(str(project / "specs"))
    assert out.exit_code == 2 and "yarch.toml: `strikt` is not a setting" in out.output


def test_standard_input_takes_the_configuration_of_its_file_name(project, monkeypatch):
    configure(project, '[tool.yarch.severity]\nstride-remainder = "error"\n')
    runner = CliRunner()
    name = str(project / "specs" / "net.yaml")
    out = runner.invoke(cli, ["lint", "-", "--stdin-filename", name], input=WARNS)
    assert out.exit_code == 1 and "error[stride-remainder]" in out.output
