"""Files: `extends` may not leave the project (absolute paths, `..` above the repository,
symbolic links out of it or in a cycle), and unwritable outputs are clear errors that leave
the previous file intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from compiler import lint_file

from .conftest import ROOT, SPECS


@pytest.fixture
def repo(tmp_path):
    """A git checkout (a `.git` folder marks its root) with googlenet in specs/, and a secret
    next to it, outside."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "specs").mkdir()
    shutil.copy(SPECS / "googlenet.yaml", root / "specs" / "googlenet.yaml")
    shutil.copy(SPECS / "googlenet.yaml", tmp_path / "secret.yaml")
    return root


def _lint(path):
    return [
        (d.code, d.span.line if d.span else None, d.message) for d in lint_file(path).diagnostics
    ]


def test_extends_inside_the_repository_works(repo):
    (repo / "specs" / "sub").mkdir()
    variant = repo / "specs" / "sub" / "v.yaml"
    variant.write_text("extends: ../googlenet.yaml\nparams: {num_classes: 7}\n")
    assert _lint(variant) == []


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("../../secret.yaml", "`extends` names `../../secret.yaml`, which is outside the project"),
        ("/etc/passwd", "`extends` names `/etc/passwd`, an absolute path"),
        ("~/secret.yaml", "`extends` names `~/secret.yaml`, an absolute path"),
    ],
)
def test_extends_may_not_leave_the_repository(repo, ref, message):
    variant = repo / "specs" / "v.yaml"
    variant.write_text(f"extends: {ref}\n")
    ((code, line, text),) = _lint(variant)
    assert (code, line) == ("missing-base", 1) and text.startswith(message)


def test_a_symbolic_link_out_of_the_repository_is_followed_and_refused(repo):
    (repo / "specs" / "link.yaml").symlink_to(repo.parent / "secret.yaml")
    variant = repo / "specs" / "v.yaml"
    variant.write_text("extends: link.yaml\n")
    ((code, _, text),) = _lint(variant)
    assert code == "missing-base" and "outside the project folder `repo`" in text


def test_a_symbolic_link_cycle_is_an_error(repo):
    specs = repo / "specs"
    (specs / "loop1").symlink_to("loop2")
    (specs / "loop2").symlink_to("loop1")
    variant = specs / "v.yaml"
    variant.write_text("extends: loop1\n")
    ((code, _, text),) = _lint(variant)
    assert code == "extends-cycle" and "symbolic link cycle" in text


def test_variants_extending_each_other_through_links_are_a_cycle(repo):
    specs = repo / "specs"
    (specs / "a.yaml").write_text("extends: b_link.yaml\n")
    (specs / "b.yaml").write_text("extends: a_link.yaml\n")
    (specs / "a_link.yaml").symlink_to("a.yaml")
    (specs / "b_link.yaml").symlink_to("b.yaml")
    ((code, _, _),) = _lint(specs / "a.yaml")
    assert code == "extends-cycle"


def _yarch(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("command", ["codegen", "draw", "schema"])
@pytest.mark.parametrize("parent", ["missing", "a file"])
def test_an_unwritable_output_is_a_clear_error(tmp_path, command, parent):
    # root may write anywhere, so "unwritable" here is a folder that does not exist, or a
    # file where a folder should be
    (tmp_path / "a file").write_text("")
    target = tmp_path / parent / "out.txt"
    args = [command, "-o", str(target)] + ([] if command == "schema" else ["specs/googlenet.yaml"])
    if command == "draw":
        args += ["--format", "dot"]
    out = _yarch(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cannot write" in out.stderr and "Traceback" not in out.stderr
    assert not target.exists()


@pytest.mark.parametrize("command", ["codegen", "draw", "schema"])
def test_a_folder_given_as_the_output_file_is_a_clear_error(tmp_path, command):
    args = [command, "-o", str(tmp_path)] + (
        [] if command == "schema" else ["specs/googlenet.yaml"]
    )
    out = _yarch(*args)
    assert out.returncode == 2 and "is a directory" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_failed_codegen_leaves_the_previous_file(tmp_path):
    target = tmp_path / "model.py"
    target.write_text("# the previous model\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 30}\n")
    out = _yarch("codegen", str(broken), "-o", str(target))
    assert out.returncode == 1
    assert target.read_text() == "# the previous model\n"
    assert {p.name for p in tmp_path.iterdir()} == {"model.py", "broken.yaml"}  # no temp file


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_folder_is_a_clear_error(tmp_path):  # pragma: no cover - CI runs as root
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    out = _yarch("codegen", "specs/googlenet.yaml", "-o", str(folder / "m.py"))
    assert out.returncode == 2 and "cannot write" in out.stderr


# --- devices and pipes as outputs: written into, never replaced -------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("command", ["codegen", "draw", "schema"])
def test_a_device_given_as_the_output_is_written_into_not_replaced(tmp_path, command):
    # `-o /dev/null` once replaced /dev/null with a regular file (as root): here a node of the
    # same device (1, 3) in a folder of the test's own
    import stat

    target = tmp_path / ("null.svg" if command == "draw" else "null.out")
    os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    args = [command, "-o", str(target)] + ([] if command == "schema" else ["specs/googlenet.yaml"])
    out = _yarch(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert stat.S_ISCHR(os.stat(target).st_mode) and os.stat(target).st_rdev == os.makedev(1, 3)
    assert {p.name for p in tmp_path.iterdir()} == {target.name}  # no temporary file left


def test_a_pipe_is_written_into_and_one_nobody_reads_is_an_error_not_a_hang(tmp_path):
    import threading

    from compiler.files import write_atomic

    fifo = tmp_path / "out.py"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a pipe that nothing reads"):
        write_atomic(fifo, b"x = 1\n")
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    reader = threading.Thread(target=read)
    reader.start()
    data = b"y = 2\n" * 50_000  # more than a pipe holds: the writes block until it is read
    for _ in range(100):  # the reader may not have opened it yet
        try:
            write_atomic(fifo, data)
            break
        except OSError:
            import time

            time.sleep(0.01)
    reader.join(10)
    assert received == [data]
    assert os.path.exists(fifo) and not os.path.isfile(fifo)


def test_a_socket_is_not_replaced(tmp_path):
    import socket

    from compiler.files import write_atomic

    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        with pytest.raises(OSError, match="not a regular file"):
            write_atomic(path, b"data")
        assert not path.is_file()
    finally:
        server.close()
