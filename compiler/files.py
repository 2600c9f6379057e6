"""Files yarch reads and writes: one containment rule for the files it opens on its own, and
atomic writes that keep a file's mode and clean up after a killed run."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePath

# Markers of a project's top folder, after a git repository: a spec beside them may extend, and
# `yarch lint DIR` may discover, specs anywhere below them, and nothing outside.
PROJECT_MARKERS = ("pyproject.toml", "yarch.toml", ".yarch.toml")


def matches_glob(relative: PurePath, patterns: Iterable[str]) -> bool:
    """Whether a relative path matches a glob: against the whole path (`specs/old/*`), or
    against any one name in it (`old`, `*_wip.yaml`). The rule of `--exclude` and of the
    configuration's `include` and `exclude`."""
    text = relative.as_posix()
    return any(
        fnmatch.fnmatchcase(text, pattern)
        or any(fnmatch.fnmatchcase(part, pattern) for part in relative.parts)
        for pattern in patterns
    )


def project_root(path: str | Path) -> Path:
    """The folder yarch may read on its own behalf for `path` (a spec or a folder): the git
    repository holding it, else the nearest folder above it with a `pyproject.toml` or yarch
    configuration, else the spec's own folder (the folder itself for a folder). Symbolic links
    are resolved first; the working folder plays no part, so the answer does not depend on
    where yarch runs."""
    resolved = Path(path).resolve()
    here = resolved if resolved.is_dir() else resolved.parent
    chain = (here, *here.parents)
    for folder in chain:
        if (folder / ".git").exists():
            return folder
    for folder in chain:
        if any((folder / marker).is_file() for marker in PROJECT_MARKERS):
            return folder
    return here


def inside(path: str | Path, root: Path) -> bool:
    """Whether `path`, symbolic links resolved, is `root` or lies below it."""
    try:
        target = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return target == root or root in target.parents


def regular_file_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read as a spec without blocking or reading forever (a named pipe,
    a device, a socket), or None for a regular file, a folder or a missing path (whose reader
    says so)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "is a named pipe, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`, so a
    failure half-way leaves the old file (or none), never a truncated one. An existing file keeps
    its permissions; temporary files left by a killed run are removed first.

    A character device or a pipe (`-o /dev/null`, `-o /dev/stdout`) is written into, as `cp`
    would, never replaced by a file; any other path that is not a regular file (a folder, a
    block device, a socket) raises `OSError`."""
    try:
        st: os.stat_result | None = os.stat(path)
    except OSError:
        st = None
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        _write_through(path, data)
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file, a character device or a pipe", str(path))
    remove_stale_temporaries(path)
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_through(path: Path, data: bytes) -> None:
    """`data` written into a device or a pipe. A pipe nobody reads is an error at once
    (`O_NONBLOCK` on open: ENXIO), not a hang; the writes themselves block as usual."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(exc.errno, "a pipe that nothing reads", str(path)) from None
        raise
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    # the writer's process id is part of the name, so a later run can tell a temporary file
    # of a killed writer (remove it) from one of a writer still at work (leave it)
    return f".{path.name}.{os.getpid()}."


_TEMPORARY = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that writers killed before they could clean up (SIGKILL,
    power loss) left in the folder of `path`, whatever file they were for; those of live
    writers stay."""
    pattern = _TEMPORARY
    try:
        names = os.listdir(path.parent or ".")
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: not ours to judge
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def spec_label(path: Path) -> str:
    """How generated files name their spec: relative to the working folder, never absolute."""
    try:
        relative = Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:  # another drive
        return path.name
    return path.name if relative.startswith("../") else relative


@contextlib.contextmanager
def folder_lock(folder: Path, on_wait: Callable[[], None], timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (an advisory lock on the folder itself: no lock file
    is left behind), so that two builds never write and clean the same folder at once.
    `on_wait` is called once if another process holds it; `TimeoutError` after `timeout`."""
    import fcntl  # POSIX only, and only builds need it

    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(0.05)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(folder) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


GENERATED_MARK = "Generated by yarch"
# where the mark names the spec: `Generated by yarch from `specs/x.yaml`.` in a module's
# docstring, `<!-- Generated by yarch from specs/x.yaml -->` in a diagram
_SOURCE = re.compile(rb"Generated by yarch from (?:`([^`\n]*)`|([^\n]*?) -->)")
# Diagrams drawn before they carried the mark are known by their legend.
_EARLIER_DIAGRAM = b"<title>cluster_[legend]</title>"


def generated_from(path: Path) -> str | None:
    """The spec a file yarch generated names as its source; "" for one yarch generated that
    names none; None for anything else, symbolic links included: a file yarch did not write."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with path.open("rb") as f:
            head = f.read(4096)
            if GENERATED_MARK.encode() in head:
                match = _SOURCE.search(head)
                named = match and (match.group(1) or match.group(2))
                return named.decode("utf-8", "replace") if named else ""
            if path.suffix != ".svg":
                return None
            return "" if _EARLIER_DIAGRAM in head + f.read(64 << 20) else None
    except OSError:
        return None


def comment_safe(text: str) -> str:
    """`text` for an XML comment (which may not hold `--`) on one line."""
    text = re.sub(r"[\x00-\x1f\x7f]", "?", text)
    while "--" in text:
        text = text.replace("--", "-‐")
    return text
