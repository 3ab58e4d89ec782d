"""Helpers the data build scripts in this folder share: the output-folder guard, atomic writes, skip counting and
optional-dependency checks. Plain functions; the scripts import this module by name (it sits beside them)."""
from __future__ import annotations

import importlib
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from audiovae._atomic import atomic_file
from audiovae.errors import AudioVAEError


class MissingDependencyError(AudioVAEError):
    """An optional package or system library a data script needs is not installed; the message says how to get it."""


def require_module(name: str, install: str, *, purpose: str):
    """Import ``name`` or raise MissingDependencyError saying ``install`` (e.g. "pip install music21").

    Any ImportError counts (a module that is present but cannot load its shared library too); its text is kept.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs the Python package {name!r}, which could not be imported "
                                     f"({exc}). Install it with: {install}") from exc


def prepare_out_dir(out: str | os.PathLike, *, resume: bool) -> Path:
    """Create ``out`` (parents included) when missing; refuse a non-empty folder unless ``resume``.

    A folder counts as empty when it holds nothing at all (hidden files included), so a finished or half-written
    build is never mixed with a new one by accident. Raises AudioVAEError when ``out`` is a file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AudioVAEError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not resume:
        raise AudioVAEError(f"--out {out} is not empty; pass --resume to continue a build there, or choose an empty "
                            "or new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it onto ``path``
    (:func:`audiovae._atomic.atomic_file`: a leftover-free write, and the file gets the mode open() would give).

    A reader (or a resumed build) never sees a half-written file; the temporary name starts with a dot and ends in
    ``.tmp``, so folder scans that skip hidden files or look at extensions ignore a leftover one.
    """
    with atomic_file(path) as tmp:
        write(str(tmp))
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`write_atomic` for a bytes payload."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


class SkipLog:
    """Skipped items counted per genre and reason, with a few examples each for the closing summary.

    reason: a short kind such as "parse error"; detail: what went wrong for this item (kept for the first
    ``examples`` items of each reason).
    """

    def __init__(self, examples: int = 3):
        self.counts: Counter[tuple[str, str]] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._keep = examples

    def add(self, genre: str, reason: str, detail: str = "") -> None:
        self.counts[(genre, reason)] += 1
        kept = self.examples.setdefault(reason, [])
        if detail and len(kept) < self._keep:
            kept.append(detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """Lines "genre: reason: n", then up to ``examples`` details per reason; "nothing skipped" when empty."""
        if not self.counts:
            return "nothing skipped"
        lines = [f"skipped {self.total}:"]
        lines += [f"  {genre}: {reason}: {n}" for (genre, reason), n in sorted(self.counts.items())]
        for reason, details in sorted(self.examples.items()):
            lines += [f"  e.g. {reason}: {d}" for d in details]
        return "\n".join(lines)


def short_error(exc: BaseException, limit: int = 160) -> str:
    """``"TypeName: message"`` on one line, cut to ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_main(parse_args: Callable, run: Callable, argv: list[str] | None) -> int:
    """A script's ``main``: parse ``argv``, run; the package's errors print as one line and exit with 1."""
    args = parse_args(argv)
    try:
        run(args)
    except AudioVAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
