"""Atomic writes: a temporary sibling that replaces the target in one rename, so a reader (or a run killed at
any moment) never sees half a file. Finished files and folders get the usual permissions (0666 / 0777 minus the
umask) rather than the owner-only ones of temporary files, so shared checkpoints and caches stay readable."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, and doing that while other threads create files
# (the demo serves requests concurrently) would briefly give their files no umask at all.
_UMASK = _read_umask()


def make_readable(path: str | os.PathLike) -> None:
    """Give a finished file 0666 & ~umask, a folder 0777 & ~umask (recursively for its files)."""
    path = Path(path)
    if path.is_dir():
        os.chmod(path, 0o777 & ~_UMASK)
        for child in path.iterdir():
            make_readable(child)
    else:
        os.chmod(path, 0o666 & ~_UMASK)


@contextmanager
def atomic_file(path: str | os.PathLike, *, suffix: str = ".tmp", fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it replaces ``path``, otherwise it is
    removed. ``suffix``: the temporary file's extension (writers that infer the format from it need the real one).
    ``fsync``: flush the data to disk before the rename (checkpoints, indexes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically and durably. Returns the path."""
    with atomic_file(path, fsync=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_dir(folder: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; when the block succeeds it replaces ``folder`` whole (an existing
    folder only after the new one is complete), otherwise it is removed. ``fsync``: flush every file first."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        yield tmp
        if fsync:
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        make_readable(tmp)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
