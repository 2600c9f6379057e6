"""The wheel works where yarch is installed from it: no checkout, and no torch.

The wheel is built as `python -m build` builds it (an sdist, then the wheel from the unpacked
sdist, so MANIFEST.in is checked too), installed into a fresh venv with the dependencies that
constraints.txt pins and without torch, and the commands run from a folder outside the
repository on the specs the wheel carries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import ROOT, SPECS

# `make lock` points this at the pins it is trying out
CONSTRAINTS = Path(os.environ.get("YARCH_CONSTRAINTS", ROOT / "constraints.txt"))
MISSING_TORCH = "compiler.build needs PyTorch: pip install 'yarch[torch]'"
GOOGLENET_PARAMS = "13,378,280"  # README's spec library table


@dataclass
class Installed:
    wheel: Path
    bin: Path  # the fresh venv's scripts
    work: Path  # an empty folder outside the repository

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=cwd or self.work,
            capture_output=True,
            text=True,
            timeout=120,  # only to catch hangs
            env={**os.environ, "PYTHONPATH": ""},
            check=False,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run("python", "-c", code)


def _check(*cmd: str | Path) -> None:
    out = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, f"{cmd}\n{out.stdout}\n{out.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    # from a copy of the source tree: the checkout's yarch.egg-info (left by `pip install -e`)
    # lists files setuptools would then ship whatever pyproject.toml and MANIFEST.in say
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = tmp / "tree"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # not a deleted file still in the index
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp)!r}))"
    sdist = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    with tarfile.open(tmp / sdist) as tar:
        tar.extractall(tmp / "sdist", filter="data")
    (source,) = (tmp / "sdist").iterdir()
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    _check(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", source)
    (wheel,) = (tmp / "dist").glob("*.whl")
    venv = tmp / "venv"
    _check(sys.executable, "-m", "venv", "--without-pip", venv)
    # this venv's pip installs into the fresh one: no pip of its own to set up
    _check(*pip, "--python", venv / "bin" / "python", "install", "-c", CONSTRAINTS, wheel)
    work = tmp / "work"
    work.mkdir()
    return Installed(wheel, venv / "bin", work)


def test_wheel_carries_template_schema_and_specs(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    bundled = {f"compiler/data/specs/{p.relative_to(SPECS).as_posix()}" for p in SPECS.rglob("*")}
    bundled = {n for n in bundled if n.endswith(".yaml")}
    assert len(bundled) > 10
    expected = {"compiler/templates/model.py.j2", "compiler/data/schema/spec.schema.json"}
    assert expected | bundled <= names, sorted((expected | bundled) - names)


def test_installed_without_torch_outside_the_checkout(installed: Installed) -> None:
    probe = installed.python(
        "import importlib.util, compiler\n"
        "print(importlib.util.find_spec('torch') is None)\n"
        "print(compiler.__file__)\n"
        "print(compiler.data_path('specs'))\n"
    )
    assert probe.returncode == 0, probe.stderr
    no_torch, module, specs = probe.stdout.splitlines()
    assert no_torch == "True"
    assert ROOT not in Path(module).parents  # the wheel's copy, not the checkout
    assert Path(specs) == Path(module).parent / "data" / "specs"
    assert sorted(p.relative_to(specs) for p in Path(specs).rglob("*.yaml")) == sorted(
        p.relative_to(SPECS) for p in SPECS.rglob("*.yaml")
    )
    schema = installed.python(
        "import compiler; print((compiler.data_path('schema') / 'spec.schema.json').read_text())"
    )
    assert json.loads(schema.stdout) == json.loads((ROOT / "schema/spec.schema.json").read_text())


def bundled_spec(installed: Installed, name: str) -> str:
    out = installed.python(f"import compiler; print(compiler.data_path('specs') / {name!r})")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_commands_on_a_bundled_spec(installed: Installed) -> None:
    spec = bundled_spec(installed, "googlenet.yaml")
    lint = installed.run("yarch", "lint", spec)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    summary = installed.run("yarch", "summary", spec)
    assert summary.returncode == 0, summary.stderr
    assert GOOGLENET_PARAMS in summary.stdout
    codegen = installed.run("yarch", "codegen", spec)  # needs the template
    assert codegen.returncode == 0, codegen.stderr
    assert "class GoogLeNet(nn.Module)" in codegen.stdout
    compile(codegen.stdout, "googlenet.py", "exec")
    draw = installed.run("yarch", "draw", spec, "--format", "dot", "-o", "googlenet.dot")
    assert draw.returncode == 0, draw.stderr
    assert (installed.work / "googlenet.dot").read_text().startswith("digraph")
    for out in (lint, summary, codegen, draw):
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr


def test_variant_copied_from_the_package(installed: Installed) -> None:
    # `extends:` may not leave the project folder; copied into the working folder, the library
    # lints and its variant finds its base
    copy = installed.work / "library"
    installed.python(
        f"import shutil, compiler; shutil.copytree(compiler.data_path('specs'), {str(copy)!r})"
    )
    lint = installed.run("yarch", "lint", "variants/googlenet_keras5x5.yaml", cwd=copy)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # and where the wheel put it: specs/yarch.toml makes the library one project
    bundled = installed.python(
        "import compiler; print(compiler.data_path('specs') / 'variants' / 'googlenet_keras5x5"
        ".yaml')"
    )
    in_place = installed.run("yarch", "lint", bundled.stdout.strip())
    assert in_place.returncode == 0, in_place.stdout + in_place.stderr
    posts = installed.run("yarch", "lint", "posts/", cwd=copy)
    assert posts.returncode == 1  # the posts' mistakes, as README's table lists them
    assert "shape-mismatch" in posts.stdout + posts.stderr


def test_a_spec_anywhere_extends_a_bundled_one(installed: Installed) -> None:
    (installed.work / "mine.yaml").write_text(
        "extends: yarch:googlenet.yaml\nname: mine\nparams: {num_classes: 10}\n"
    )
    lint = installed.run("yarch", "lint", "mine.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    summary = installed.run("yarch", "summary", "mine.yaml", "--format", "json")
    assert json.loads(summary.stdout)["outputs"]["logits"] == [10]


def test_build_without_torch_names_the_extra(installed: Installed) -> None:
    spec = bundled_spec(installed, "mini_inception.yaml")
    out = installed.python(f"import compiler; compiler.build({spec!r})")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == f"compiler.MissingTorchError: {MISSING_TORCH}"
    assert "During handling" not in out.stderr  # not chained to the bare ModuleNotFoundError
    # the lint path, codegen included, is what a torch-less install is for
    caught = installed.python(
        "import compiler\n"
        f"try:\n    compiler.build({spec!r})\n"
        "except ImportError as exc:\n    print(exc.name, exc)\n"
        f"print(compiler.lint_file({spec!r}).errors)\n"
    )
    assert caught.stdout.splitlines() == [f"torch {MISSING_TORCH}", "0"], caught.stderr


def test_yarch_build_needs_no_torch(installed: Installed) -> None:
    # `yarch build` writes code and diagrams; only `compiler.build` makes modules
    spec = bundled_spec(installed, "mini_inception.yaml")
    out = installed.run("yarch", "build", spec, "-o", "generated")
    assert out.returncode == (0 if shutil.which("dot") else 2), out.stdout + out.stderr
    compile((installed.work / "generated/mini_inception.py").read_text(), "m.py", "exec")


# In the checkout's venv, with torch blocked as if it were not installed
NO_TORCH = """
import sys
sys.modules["torch"] = None
import compiler
from compiler import *  # every name in __all__ resolves without torch
for call in (lambda: build("specs/mini_inception.yaml"), lambda: compiler.optimize(None)):
    try:
        call()
    except compiler.MissingTorchError as exc:
        print(exc.name, exc)
print(compiler.SpecError.__mro__[1].__name__)  # defined without torch: it can be caught
"""


def test_torch_names_without_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.splitlines() == [
        f"torch {MISSING_TORCH}",
        "torch compiler.optimize needs PyTorch: pip install 'yarch[torch]'",
        "ValueError",
    ], out.stderr


def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(n): v for n, _, v in (x.partition("==") for x in lines if x)}


def test_lock_pins_every_dependency() -> None:
    # a dependency added to pyproject.toml without `make lock` would be resolved anew on
    # every fresh machine: the very drift the lock is for
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pinned = pins(CONSTRAINTS)
    assert all(pinned.values()), "every line of the lock pins with =="
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in {CONSTRAINTS.name}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (req, pinned[name])
    assert not [n for n in pinned if n.startswith(("nvidia-", "triton", "cuda-"))]


def test_venv_has_the_locked_versions() -> None:
    # what `make setup` installed is what the lock says (a local label such as +cpu aside)
    drift = {}
    for name, version in pins(CONSTRAINTS).items():
        try:
            installed = Version(Version(metadata.version(name)).public)
        except metadata.PackageNotFoundError:
            continue  # a dependency of another platform
        if installed != Version(version):
            drift[name] = (str(installed), version)
    assert not drift, f"installed, pinned: {drift}; run `make setup`"


def test_lsp_without_pygls_names_the_extra(installed: Installed) -> None:
    # the wheel is installed without extras: `yarch lsp` says what to install, no traceback
    out = installed.run("yarch", "lsp")
    assert out.returncode == 2
    assert "pip install 'yarch[lsp]'" in out.stderr and "Traceback" not in out.stderr
