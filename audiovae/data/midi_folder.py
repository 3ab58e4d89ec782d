"""A folder of MIDI files as a training set of piano-roll segments, labelled by genre subfolder.

Layout: ``root/<genre>/**/*.mid``; the first-level subfolder names are the genres (sorted, so label ids are
stable). Each file is converted once to segments [n, 3, S, P] with dynamics (see :mod:`audiovae.midi.pianoroll`) and
cached as one .npz per file in ``cache_dir``, which must lie outside ``root``: nothing is written into the
user's folder. The cache name hashes the absolute path, size, mtime and roll settings, so an unchanged
file is never converted twice and a changed one is redone. Files that cannot be used are skipped and
reported by reason (:class:`ScanReport`); the split into training and validation is by piece.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._torch import torch
from .._atomic import atomic_file
from .guards import ensure_cache_outside
from ..errors import AudioVAEError, ConfigError, MidiReadError, ParameterError
from ..midi.pianoroll import (RETIMED_RESOLUTION, SUSTAIN, VELOCITY, RollConfig, is_midi_path, midi_to_roll,
                              read_midi, roll_tensor, segment_roll, with_velocity)

CACHE_VERSION = 3  # 3: segments carry each onset's velocity
SPLITS = ("train", "val", "all")


@dataclass
class ScanReport:
    """What a scan did. Paths are relative to ``root``, in POSIX form.

    used: files that gave segments; skipped: (path, reason) for the rest; retimed: (path, note) for used files
    that pretty_midi alone would refuse as "likely corrupt" (over 1e7 ticks at a high resolution) and that were
    re-timed instead; converted/cached: how many files were converted in this scan vs. read back from the cache
    (skips are cached too); seconds: wall time.
    """

    root: str
    used: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    retimed: list[tuple[str, str]] = field(default_factory=list)
    converted: int = 0
    cached: int = 0
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Skipped files per reason kind (the reason without its parenthesised detail)."""
        return dict(Counter(reason.split(" (")[0] for _, reason in self.skipped))

    def summary(self) -> str:
        lines = [f"{self.root}: {len(self.used)} MIDI files used, {len(self.skipped)} skipped "
                 f"({self.converted} converted, {self.cached} from cache, {self.seconds:.1f} s)"]
        lines += [f"  skipped, {reason}: {n}" for reason, n in sorted(self.counts.items())]
        lines += [f"    {path}: {reason}" for path, reason in self.skipped]
        if self.retimed:
            examples = ", ".join(path for path, _ in self.retimed[:3]) + (", ..." if len(self.retimed) > 3 else "")
            lines.append(f"  used after re-timing to {RETIMED_RESOLUTION} ticks per quarter (pretty_midi alone "
                         f"refuses them as likely corrupt): {len(self.retimed)} ({examples})")
        return "\n".join(lines)


@dataclass
class _Scan:
    """All usable pieces of a folder: segments [N, 2, S, P] bool and their onset velocities uint8 [N, S, P], with
    the piece index of each segment."""

    segments: np.ndarray
    velocities: np.ndarray
    piece_index: np.ndarray
    piece_paths: list[str]
    piece_genres: np.ndarray
    genres: tuple[str, ...]
    report: ScanReport


def _cache_name(path: Path, config: RollConfig, hop_steps: int | None) -> str:
    stat = path.stat()
    key = json.dumps({"version": CACHE_VERSION, "path": str(path.resolve()), "size": stat.st_size,
                      "mtime_ns": stat.st_mtime_ns, "config": config.to_dict(), "hop_steps": hop_steps},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:40] + ".npz"


def _write_npz(path: Path, **arrays) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _read_cache(path: Path) -> tuple[np.ndarray | str, str] | None:
    """(cached segments or skip reason, note), or None when the entry is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            note = str(data["note"]) if "note" in data.files else ""
            return (str(data["error"]) if "error" in data.files else data["segments"].astype(np.uint8)), note
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _convert(path: str, cache_file: str, config_dict: dict, hop_steps: int | None) -> tuple[np.ndarray | str, str]:
    """One file -> (segments uint8 [n, 3, S, P] with dynamics, or a skip reason; note); the outcome is written to
    ``cache_file``.
    The note says when the file was re-timed (see :func:`audiovae.midi.pianoroll.read_midi`), else is empty."""
    config = RollConfig(**config_dict)
    note = ""
    try:
        pm, retimed_from = read_midi(path)
        if retimed_from:
            note = f"re-timed from {retimed_from} to {RETIMED_RESOLUTION} ticks per quarter"
        outcome = segment_roll(midi_to_roll(pm, config=config, velocity=True), config=config, hop_steps=hop_steps)
    except MidiReadError as exc:
        outcome = exc.reason
    if isinstance(outcome, str):
        _write_npz(Path(cache_file), error=np.array(outcome))
    else:
        _write_npz(Path(cache_file), segments=outcome, note=np.array(note))
    return outcome, note


def scan_midi_folder(
    root: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike,
    config: RollConfig = RollConfig(),
    hop_steps: int | None = None,
    workers: int = 0,
    use_genres: bool = True,
    progress: bool = True,
) -> _Scan:
    """Find the .mid/.midi files under ``root`` (recursively), convert or read back each, and gather segments.

    ``workers`` > 0 converts in that many processes; 0 converts in this process. Raises
    :class:`ConfigError` for a bad layout and :class:`AudioVAEError` when no file is usable.
    """
    start_time = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"MIDI folder {root} does not exist or is not a folder")
    cache_dir = Path(cache_dir)
    ensure_cache_outside(root, cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if workers < 0:
        raise ParameterError(f"workers must be >= 0, got {workers}")
    files = sorted(p for p in root.rglob("*") if is_midi_path(p) and p.is_file())
    rel = [p.relative_to(root).as_posix() for p in files]
    if use_genres:
        loose = [r for r in rel if "/" not in r]
        if loose:
            raise ConfigError(f"{len(loose)} MIDI files lie directly in {root} (e.g. {loose[0]}), so they have no "
                              "genre; move them into a genre subfolder, or pass use_genres=False")
    report = ScanReport(root=str(root))
    outcomes: dict[int, tuple[np.ndarray | str, str]] = {}
    todo = []
    with tqdm(total=len(files), desc="MIDI files", unit="file", disable=not progress) as bar:
        for i, path in enumerate(files):
            cache_file = cache_dir / _cache_name(path, config, hop_steps)
            cached = _read_cache(cache_file) if cache_file.exists() else None
            if cached is None:
                todo.append((i, str(path), str(cache_file)))
            else:
                outcomes[i] = cached
                bar.update()
        report.cached = len(outcomes)
        report.converted = len(todo)
        args = [(path, cache_file, config.to_dict(), hop_steps) for _, path, cache_file in todo]
        if workers == 0 or len(todo) < 2:
            results = (_convert(*a) for a in args)
            for (i, _, _), outcome in zip(todo, results):
                outcomes[i] = outcome
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = pool.map(_convert, *zip(*args), chunksize=max(1, len(args) // (workers * 8)))
                for (i, _, _), outcome in zip(todo, results):
                    outcomes[i] = outcome
                    bar.update()
    genres = tuple(sorted({r.split("/")[0] for r in rel if "/" in r})) if use_genres else ()
    segments, piece_index, piece_paths, piece_genres = [], [], [], []
    for i, r in enumerate(rel):
        outcome, note = outcomes[i]
        if isinstance(outcome, str):
            report.skipped.append((r, outcome))
            continue
        report.used.append(r)
        if note:
            report.retimed.append((r, note))
        segments.append(outcome)
        piece_index.append(np.full(len(outcome), len(piece_paths), dtype=np.int64))
        piece_genres.append(genres.index(r.split("/")[0]) if use_genres else -1)
        piece_paths.append(r)
    report.seconds = time.perf_counter() - start_time
    if not piece_paths:
        raise AudioVAEError(f"no usable MIDI file under {root}: found {len(files)} .mid/.midi files\n{report.summary()}")
    segments = np.concatenate(segments)
    return _Scan(segments[:, :VELOCITY].astype(bool), segments[:, VELOCITY], np.concatenate(piece_index), piece_paths,
                 np.array(piece_genres, dtype=np.int64), genres, report)


def _hash_fraction(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16) / 2.0 ** 64


def split_pieces(piece_paths: list[str], piece_genres: np.ndarray, *, val_fraction: float) -> np.ndarray:
    """Validation mask bool [pieces]: a piece goes to validation when the hash fraction of its path is below
    ``val_fraction``. With ``val_fraction`` > 0, each genre with >= 2 pieces gets at least one validation
    piece and keeps at least one training piece. Deterministic for a given set of paths.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    fractions = np.array([_hash_fraction(p) for p in piece_paths])
    val = fractions < val_fraction
    if val_fraction > 0:
        for genre in np.unique(piece_genres):
            members = np.flatnonzero(piece_genres == genre)
            if len(members) < 2:
                continue
            if not val[members].any():
                val[members[np.argmin(fractions[members])]] = True
            if val[members].all():
                val[members[np.argmax(fractions[members])]] = False
    return val


class MidiFolder(torch.utils.data.Dataset):
    """Piano-roll segments of one split of a MIDI folder; items are ``(roll, genre_id)``.

    roll: float32 Tensor[2, S, P] in {0, 1} (onset, sustain), S = ``config.segment_steps``,
    P = ``config.num_pitches``; with ``velocity`` Tensor[3, S, P] whose channel 2 is each onset's velocity / 127
    (see :func:`audiovae.midi.pianoroll.roll_tensor`). genre_id: int64 Tensor[] indexing ``genres`` (-1 when
    ``use_genres`` is False). ``transpose`` = k > 0 shifts each training item by a random number of semitones in
    [-k, k], chosen so every note stays in range (training split only).

    Attributes: ``segments`` bool [N, 2, S, P], ``velocities`` uint8 [N, S, P] (MIDI velocity at onset cells),
    ``genre_ids`` int64 [N], ``piece_ids`` int64 [N] indexing ``piece_paths`` (relative paths of this split's
    pieces), ``genres``, ``report`` (:class:`ScanReport`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike,
        split: str = "train",
        val_fraction: float = 0.1,
        config: RollConfig = RollConfig(),
        hop_steps: int | None = None,
        transpose: int = 0,
        workers: int = 0,
        use_genres: bool = True,
        progress: bool = True,
        velocity: bool = False,
    ):
        scan = scan_midi_folder(root, cache_dir=cache_dir, config=config, hop_steps=hop_steps,
                                workers=workers, use_genres=use_genres, progress=progress)
        self._setup(scan, Path(root), config, split, val_fraction, transpose, velocity)

    def with_split(self, split: str, *, transpose: int = 0) -> MidiFolder:
        """The same scanned folder with another split (no rescan)."""
        other = object.__new__(MidiFolder)
        other._setup(self._scan, self.root, self.config, split, self.val_fraction, transpose, self.velocity)
        return other

    def _setup(self, scan: _Scan, root: Path, config: RollConfig, split: str, val_fraction: float, transpose: int,
               velocity: bool):
        if split not in SPLITS:
            raise ParameterError(f"split must be one of {SPLITS}, got {split!r}")
        if transpose < 0 or (transpose > 0 and split != "train"):
            raise ParameterError(f"transpose must be >= 0 and is for the training split only; got {transpose} "
                                 f"for split {split!r}")
        self._scan, self.root, self.config, self.split = scan, root, config, split
        self.val_fraction, self.transpose, self.velocity = val_fraction, int(transpose), bool(velocity)
        self.genres, self.report = scan.genres, scan.report
        val = split_pieces(scan.piece_paths, scan.piece_genres, val_fraction=val_fraction)
        keep_pieces = np.ones_like(val) if split == "all" else (val if split == "val" else ~val)
        new_id = np.cumsum(keep_pieces) - 1
        keep = keep_pieces[scan.piece_index]
        self.piece_paths = [p for p, k in zip(scan.piece_paths, keep_pieces) if k]
        self.segments = scan.segments if keep.all() else scan.segments[keep]
        self.velocities = scan.velocities if keep.all() else scan.velocities[keep]
        self.piece_ids = new_id[scan.piece_index[keep]].astype(np.int64)
        self.genre_ids = scan.piece_genres[scan.piece_index[keep]]
        active = self.segments[:, SUSTAIN].any(axis=1)  # [N, P]
        self._lowest = active.argmax(axis=1)
        self._highest = active.shape[1] - 1 - active[:, ::-1].argmax(axis=1)

    def segments_per_genre(self) -> dict[str, int]:
        counts = np.bincount(self.genre_ids[self.genre_ids >= 0], minlength=len(self.genres))
        return {g: int(n) for g, n in zip(self.genres, counts)}

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int):
        segment = self.segments[index]
        if self.velocity:
            segment = with_velocity(segment, self.velocities[index])
        if self.transpose:
            low = max(-self.transpose, -int(self._lowest[index]))
            high = min(self.transpose, self.config.num_pitches - 1 - int(self._highest[index]))
            shift = int(torch.randint(low, high + 1, ()))
            if shift:
                segment = np.roll(segment, shift, axis=-1)
        return roll_tensor(segment), torch.tensor(int(self.genre_ids[index]), dtype=torch.int64)
