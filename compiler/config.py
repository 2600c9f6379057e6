"""Project configuration for `yarch lint`: `[tool.yarch]` in `pyproject.toml`, or the same
keys at the top of `yarch.toml` or `.yarch.toml`.

    [tool.yarch]
    include = ["*.yaml", "*.yml"]   # what a folder lint picks up (globs)
    exclude = ["specs/old/*"]       # added to --exclude
    strict = true                   # warnings fail the lint, as --strict

    [tool.yarch.severity]
    stride-remainder = "error"      # a warning that fails the lint here
    unused-param = "ignore"         # not reported

As ruff does, the configuration of a spec is the first file found from the spec's folder
upwards, and no file above the project root (`files.project_root`: the git repository) is
read; in one folder `.yarch.toml` comes before `yarch.toml`, which comes before a
`pyproject.toml` with a `[tool.yarch]` table (one without the table is passed over). Files
are not merged. A glob is matched against a path relative to the configuration's folder, and
against every single name in it (`old`, `*_wip.yaml`), as --exclude is. A file named on the
command line is linted whatever `include` and `exclude` say.

A warning's severity may be raised to `error` or set to `ignore`; an error's may not be
lowered, for a spec with an error cannot be built. The configuration is read with the standard
library's `tomllib` and checked with pydantic; a mistake in it (a misspelt key or code, a bad
value) is a `ConfigError`, which the command line reports with exit code 2.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .codes import CODES, ERROR, WARNING
from .diagnostics import Diagnostic
from .files import matches_glob, project_root
from .names import did_you_mean

CONFIG_FILES = (".yarch.toml", "yarch.toml", "pyproject.toml")  # in one folder, in this order
SEVERITIES = ("error", "warning", "ignore")
MAX_CONFIG_BYTES = 1 << 20


class ConfigError(Exception):
    """A configuration file yarch cannot use; the message names the file and the key."""


class Settings(BaseModel):
    """The keys of `[tool.yarch]`."""

    model_config = ConfigDict(extra="forbid", strict=True)  # TOML has booleans: "yes" is a mistake

    include: list[str] = Field(
        default_factory=lambda: ["*.yaml", "*.yml"],
        description="Globs of the files a folder lint picks up.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Globs of files and folders a folder lint skips."
    )
    strict: bool = Field(default=False, description="Warnings fail the lint, as --strict.")
    severity: dict[str, Literal["error", "warning", "ignore"]] = Field(
        default_factory=dict, description="A severity for a diagnostic code."
    )


@dataclass(frozen=True)
class Config:
    """A configuration file's settings, and where it is."""

    path: Path
    settings: Settings

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def label(self) -> str:
        """`pyproject.toml` or `yarch.toml`, as messages name where a setting comes from."""
        return self.path.name

    def matches(self, path: Path, patterns: list[str]) -> bool:
        """Whether `path` matches a glob: against its path relative to the configuration's
        folder, or any one name in it."""
        try:
            relative = PurePath(path.resolve().relative_to(self.folder))
        except ValueError:
            relative = PurePath(path.name)
        return matches_glob(relative, patterns)

    def included(self, path: Path) -> bool:
        """Whether a folder lint picks up `path` (found in a folder, not named)."""
        s = self.settings
        return self.matches(path, s.include) and not self.matches(path, s.exclude)

    def apply(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """The diagnostics with the configured severities: ignored codes dropped, warnings
        raised to errors with a note saying where."""
        out = []
        for d in diagnostics:
            wanted = self.settings.severity.get(d.code)
            if wanted == "ignore":
                continue
            if wanted == "error" and not d.is_error:
                d = d.raised_to_error(f'an error here: `{d.code} = "error"` in {self.label}')
            out.append(d)
        return out


def _table(path: Path) -> dict | None:
    """The yarch table of a configuration file, or None for a `pyproject.toml` without one."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES:,} bytes, not a configuration file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if path.name != "pyproject.toml":
        return data
    tool = data.get("tool")
    table = tool.get("yarch") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `tool.yarch` must be a table, `[tool.yarch]`")
    return table


def _where(path: Path, key: str) -> str:
    prefix = "tool.yarch." if path.name == "pyproject.toml" else ""
    return f"{path}: `{prefix}{key}`"


def parse(path: Path, table: dict) -> Config:
    """The settings of one configuration file's table, checked."""
    fields = list(Settings.model_fields)
    for key in table:
        if key not in Settings.model_fields:
            hint = did_you_mean(str(key), fields)
            raise ConfigError(
                f"{_where(path, str(key))} is not a setting"
                + (f"; {hint}" if hint else f" (the settings are {', '.join(fields)})")
            )
    try:
        settings = Settings.model_validate(table)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        got = first.get("input")
        shown = f", not {json.dumps(got)[:60]}" if isinstance(got, str | int | float | list) else ""
        raise ConfigError(f"{_where(path, key)}: {first['msg'].lower()}{shown}") from None
    for code, wanted in settings.severity.items():
        entry = CODES.get(code)
        where = _where(path, f"severity.{code}")
        if entry is None:
            hint = did_you_mean(code, sorted(CODES))
            raise ConfigError(
                f"{where}: no diagnostic code `{code}`" + (f"; {hint}" if hint else "")
            )
        if entry.severity == ERROR and wanted != "error":
            raise ConfigError(
                f"{where}: `{code}` is an error, and an error cannot be made a {wanted}: "
                "a spec with an error cannot be built"
            )
        assert entry.severity in (ERROR, WARNING)
    return Config(path, settings)


def find_config(start: str | Path) -> Config | None:
    """The configuration of a spec or folder: the first file found from its folder upwards,
    up to the project root; None when there is none."""
    here = Path(start).resolve()
    if not here.is_dir():
        here = here.parent
    root = project_root(here)
    for folder in (here, *here.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file():
                table = _table(candidate)
                if table is not None:
                    return parse(candidate, table)
        if folder == root:
            return None
    return None


class Configs:
    """`find_config`, remembered per folder: a folder lint asks once per file."""

    def __init__(self, isolated: bool = False) -> None:
        self.isolated = isolated
        self._found: dict[Path, Config | None] = {}

    def of(self, path: str | Path) -> Config | None:
        if self.isolated:
            return None
        folder = Path(path).resolve()
        if not folder.is_dir():
            folder = folder.parent
        if folder not in self._found:
            self._found[folder] = find_config(folder)
        return self._found[folder]
