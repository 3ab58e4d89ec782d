"""A resumable on-disk log-mel cache for a folder of audio, read back by memory mapping.

One preprocessing pass decodes every audio file under ``root`` (``read_audio`` at the front end's sample rate,
then ``normalize``), runs :class:`MelFrontend` and stores the result; later passes only redo new or changed files
(size or mtime differ). Nothing is ever written into ``root``.

Layout: ``<cache_dir>/<folder name>-<hash of its absolute path>/mel-<hash of the front end>/``
  config.json   mel settings, normalisation, dtype and format this cache holds (for people; the hash is the key)
  index.jsonl   one JSON line per finished file: relative path, source size and mtime, verdict, frames, seconds
  <id>.npy      float16 log-mel of one source file stored time-major, [frames, n_mels]; id = hash of its relative
                path. ``np.load(path, mmap_mode="r").T`` is a [n_mels, frames] view (what AudioFolder.mel returns).

Why one .npy per file rather than one consolidated memmap: every file is committed on its own (array written
to a temporary name and ``os.replace``d, then its index line appended), so killing a pass loses only the files
in flight, a changed source rewrites only its own array, and a growing folder never forces a rewrite.
A memory map (``np.memmap`` at the header offset recorded in the index, the same map ``np.load(mmap_mode="r")``
makes minus its header parsing, which tripled the per-item cost) reads nothing up front, and a crop touches only
the pages it needs, so a cache larger than RAM trains; the OS page cache keeps hot files resident.
Why time-major: a crop of consecutive frames is then one contiguous byte range (128 frames x 80 mels = 20 KiB,
5 pages); stored [n_mels, frames], a crop of a 15 s clip would touch one page per mel band, i.e. the whole file.
Why float16: log-mels lie in about [-11.5, 5] (natural log, floor 1e-5), where float16 is exact to 4e-3
(0.03 dB), far below what a VAE reconstructs; it halves disk space and read bandwidth.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._torch import torch
from ..audio.features import MelConfig, MelFrontend
from ..audio.io import AUDIO_EXTENSIONS, is_audio_path, normalize, read_audio
from .._atomic import atomic_file
from .guards import ensure_cache_outside
from ..errors import AudioReadError, AudioVAEError, ParameterError

CACHE_FORMAT = 1
SILENCE_PEAK = 1e-4  # a file whose largest absolute sample (before normalisation) is below this is "silent"
_CACHED_VERDICTS = ("ok", "unreadable", "silent")  # "failed" (an unexpected error) is retried on the next pass
_log = logging.getLogger("audiovae.data")


@dataclass(frozen=True)
class CachedClip:
    """One usable audio file and its cached log-mel.

    rel: path relative to the folder root (POSIX). path: the source file. mel_path: float16 .npy [frames, n_mels].
    offset: byte length of its .npy header. frames: mel frames. seconds: duration of the decoded audio.
    genre: first-level subfolder name (None when unlabelled). genre_id: index into the sorted genre names, -1 when
    unlabelled.
    """

    rel: str
    path: Path
    mel_path: Path
    offset: int
    frames: int
    seconds: float
    genre: str | None
    genre_id: int


@dataclass
class ScanReport:
    """What one preprocessing pass found.

    used: usable clips. converted: files decoded in this pass (new or changed). cached: files whose earlier
    verdict was reused. skipped: (relative path, reason) for every file left out; a reason reads
    "kind (detail)", e.g. "too short (0.10 s < 0.50 s)". genres: sorted genre names of the usable clips.
    """

    used: int
    converted: int
    cached: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    root: str = ""
    genres: list[str] = field(default_factory=list)

    def counts_by_reason(self) -> dict[str, int]:
        """Skipped files per reason kind (the reason without its parenthesised detail)."""
        return dict(sorted(Counter(reason.split(" (", 1)[0] for _, reason in self.skipped).items()))

    def summary(self, max_listed: int | None = 50) -> str:
        """Human-readable account: totals, skips per kind, then each skipped file (the first ``max_listed``)."""
        lines = [f"{self.root or 'audio folder'}: {self.used} clips used, {len(self.skipped)} skipped "
                 f"({self.converted} converted in this pass, {self.cached} from cache)"]
        lines += [f"  skipped, {kind}: {n}" for kind, n in self.counts_by_reason().items()]
        listed = self.skipped if max_listed is None else self.skipped[:max_listed]
        lines += [f"    {rel}: {reason}" for rel, reason in listed]
        if len(listed) < len(self.skipped):
            lines.append(f"    ... and {len(self.skipped) - len(listed)} more")
        return "\n".join(lines)


def cache_key(mel_config: MelConfig, normalization: str) -> str:
    """16 hex digits naming everything that shapes a cached array: front end, normalisation, dtype, format."""
    defaults = MelConfig().to_dict()
    # f_max=8000 from a TOML file and f_max=8000.0 are the same front end and must share a cache
    mel = {k: float(v) if isinstance(defaults[k], float) and v is not None else v
           for k, v in mel_config.to_dict().items()}
    spec = {"format": CACHE_FORMAT, "mel": mel, "normalization": normalization, "dtype": "float16",
            "silence_peak": SILENCE_PEAK}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cache_location(root: str | os.PathLike, *, cache_dir: str | os.PathLike, mel_config: MelConfig,
                   normalization: str) -> Path:
    """The directory holding ``root``'s cache for this front end (see the module docstring for the layout)."""
    root = Path(root).resolve()
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name)[:40] or "root"
    root_hash = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return Path(cache_dir) / f"{folder}-{root_hash}" / f"mel-{cache_key(mel_config, normalization)}"


def scan_audio_files(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of every audio file under ``root``, sorted; hidden files and folders are ignored."""
    root = Path(root)
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        base = Path(directory).relative_to(root)
        found += [(base / name).as_posix() for name in files if not name.startswith(".") and is_audio_path(name)]
    return sorted(found)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


class _Converter:
    """Source file -> cached float16 log-mel; returns the verdict as a dict for the index."""

    def __init__(self, config: MelConfig, normalization: str):
        self.frontend = MelFrontend(config)
        self.config = self.frontend.config
        self.normalization = normalization

    def __call__(self, source: str, target: str) -> dict:
        try:
            wav, rate = read_audio(source, sample_rate=self.config.sample_rate)
        except AudioReadError as exc:
            return {"status": "unreadable", "reason": f"unreadable ({exc.reason})"}
        peak = float(np.abs(wav).max())
        seconds = wav.size / rate
        if peak < SILENCE_PEAK:
            return {"status": "silent", "reason": f"silent (peak {peak:.1e} < {SILENCE_PEAK:.0e})",
                    "seconds": seconds}
        wav = normalize(wav, mode=self.normalization)
        if wav.size <= self.config.n_fft // 2:  # the reflect-padded STFT needs this many samples
            wav = np.pad(wav, (0, self.config.n_fft // 2 + 1 - wav.size))
        with torch.no_grad():
            mel = self.frontend(torch.from_numpy(wav)).numpy()
        array = np.ascontiguousarray(mel.T, dtype=np.float16)
        _save_npy_atomic(Path(target), array)
        offset = os.path.getsize(target) - array.nbytes  # the .npy header length: lets readers skip parsing it
        return {"status": "ok", "reason": None, "frames": array.shape[0], "offset": offset, "seconds": seconds}


def _convert_safely(converter: _Converter, source: str, target: str) -> dict:
    try:
        return converter(source, target)
    except Exception as exc:  # one odd file must not end a long pass; it is reported and retried next time
        return {"status": "failed", "reason": f"failed ({type(exc).__name__}: {exc})"}


_WORKER_CONVERTER: _Converter | None = None


def _init_worker(config: MelConfig, normalization: str, parent: int) -> None:
    global _WORKER_CONVERTER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which cancels the queue
    # a pool worker outlives a killed parent (it waits on a queue nobody closes): leave when the parent is gone
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    torch.set_num_threads(1)  # parallelism comes from the processes
    _WORKER_CONVERTER = _Converter(config, normalization)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _convert_in_worker(source: str, target: str) -> dict:
    return _convert_safely(_WORKER_CONVERTER, source, target)


class _Index:
    """index.jsonl: append-only, one line per finished file; the last line for a path wins."""

    def __init__(self, directory: Path):
        self.path = directory / "index.jsonl"
        self.lines = 0

    def load(self) -> dict[str, dict]:
        entries = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    self.lines += 1
                    try:
                        entry = json.loads(line)
                        entries[entry["rel"]] = entry
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a line cut short by a killed process
        return entries

    def open_for_append(self):
        needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline()
        handle = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: one write per entry
        if needs_newline:
            handle.write("\n")
        return handle

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def rewrite(self, entries: dict[str, dict]) -> None:
        with atomic_file(self.path, fsync=True) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(e) + "\n" for e in entries.values())


def _is_fresh(entry: dict | None, stat: os.stat_result, location: Path, n_mels: int) -> bool:
    if entry is None or entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
        return False
    if entry.get("status") != "ok":
        return entry.get("status") in _CACHED_VERDICTS
    try:
        return (location / entry["file"]).stat().st_size == entry["offset"] + entry["frames"] * n_mels * 2
    except (FileNotFoundError, KeyError, TypeError):
        return False


def _convert_all(tasks: list[dict], root: Path, location: Path, config: MelConfig, normalization: str,
                 workers: int, progress: bool) -> dict[str, dict]:
    """Convert ``tasks`` (index entries lacking a verdict), committing each to the index as it finishes."""
    if not tasks:
        return {}
    index = _Index(location)
    done = {}
    bar = tqdm(total=len(tasks), desc=f"log-mels {root.name}", unit="file", disable=not progress)

    def commit(task: dict, outcome: dict) -> None:
        entry = {**task, **outcome}
        if entry["status"] in _CACHED_VERDICTS:
            index_file.write(json.dumps(entry) + "\n")
        done[entry["rel"]] = entry
        bar.update()

    jobs = [(task, str(root / task["rel"]), str(location / task["file"])) for task in tasks]
    with index.open_for_append() as index_file:
        try:
            if workers == 0 or len(jobs) == 1:
                converter = _Converter(config, normalization)
                for task, source, target in jobs:
                    commit(task, _convert_safely(converter, source, target))
            else:
                _convert_in_pool(jobs, commit, config, normalization, workers)
        finally:
            bar.close()
    return done


def _convert_in_pool(jobs, commit, config: MelConfig, normalization: str, workers: int) -> None:
    # fork on Linux starts workers at once with torch already imported; they run single-threaded CPU ops only,
    # as DataLoader workers do. spawn elsewhere (macOS and Windows cannot fork safely).
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                               initializer=_init_worker, initargs=(config, normalization, os.getpid()))
    finished = False
    try:
        futures = {pool.submit(_convert_in_worker, source, target): task for task, source, target in jobs}
        for future in as_completed(futures):
            commit(futures[future], future.result())
        finished = True
    except BrokenProcessPool as exc:
        raise AudioVAEError(
            "a preprocessing worker died (out of memory, or a decoder crashed on some file); the files finished "
            "so far are cached and a rerun continues from there; use workers=0 to find the file") from exc
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)


def _check_folders(root: Path, cache_dir: Path) -> None:
    if not root.is_dir():
        raise AudioVAEError(f"audio folder {root} does not exist or is not a directory")
    ensure_cache_outside(root, cache_dir)


def preprocess_audio_folder(
    root: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike,
    mel_config: MelConfig | dict | None = None,
    normalization: str = "peak",
    labels: bool = True,
    min_seconds: float = 0.5,
    workers: int = 2,
    progress: bool = True,
) -> tuple[list[CachedClip], ScanReport]:
    """Make sure every audio file under ``root`` has a cached log-mel, then list the usable ones.

    Files are converted by ``workers`` processes (0: in this process), each committed as it finishes, so an
    interrupted pass resumes where it stopped and a pass over an unchanged folder converts nothing.
    With ``labels``, the first-level subfolder is the genre and files directly in ``root`` are skipped.
    Files that cannot be read, are silent (peak below 1e-4) or last less than ``min_seconds`` are skipped with
    their reason in the report (logged as a warning). Raises AudioVAEError when no usable clip is left.
    Returns ``(clips, report)``, clips in sorted path order.
    """
    root = Path(root).resolve()
    cache_dir = Path(cache_dir).expanduser()
    _check_folders(root, cache_dir)
    config = MelConfig.from_any(mel_config)
    normalize(np.zeros(1, dtype=np.float32), mode=normalization)  # rejects an unknown mode before any work
    if workers < 0 or min_seconds < 0:
        raise ParameterError(f"workers and min_seconds must be >= 0, got {workers} and {min_seconds}")

    rels = scan_audio_files(root)
    if not rels:
        raise AudioVAEError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}")
    skipped = []
    if labels:
        skipped = [(rel, "no genre (the file is not inside a genre subfolder)") for rel in rels if "/" not in rel]
        rels = [rel for rel in rels if "/" in rel]

    location = cache_location(root, cache_dir=cache_dir, mel_config=config, normalization=normalization)
    location.mkdir(parents=True, exist_ok=True)
    _write_cache_config(location, config, normalization, root)
    index = _Index(location)
    entries = index.load()
    tasks = []
    for rel in rels:
        stat = (root / rel).stat()
        if not _is_fresh(entries.get(rel), stat, location, config.n_mels):
            file = hashlib.sha256(rel.encode()).hexdigest()[:20] + ".npy"
            tasks.append({"rel": rel, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "file": file})
    entries.update(_convert_all(tasks, root, location, config, normalization, workers, progress))
    if index.lines > 2 * len(entries) + 64:  # many superseded lines from changed files: compact
        index.rewrite({rel: e for rel, e in entries.items() if e["status"] in _CACHED_VERDICTS})

    usable = []
    for rel in rels:
        entry = entries[rel]
        if entry["status"] != "ok":
            skipped.append((rel, entry["reason"]))
        elif entry["seconds"] < min_seconds:
            skipped.append((rel, f"too short ({entry['seconds']:.2f} s < {min_seconds:.2f} s)"))
        else:
            usable.append(entry)
    genres = sorted({e["rel"].split("/", 1)[0] for e in usable}) if labels else []
    clips = [_clip(root, location, e, genres if labels else None) for e in usable]
    report = ScanReport(used=len(clips), converted=len(tasks), cached=len(rels) - len(tasks),
                        skipped=sorted(skipped), root=str(root), genres=genres)
    if not clips:
        raise AudioVAEError(f"nothing usable in {root}: every audio file was skipped.\n{report.summary()}")
    _log.log(logging.WARNING if report.skipped else logging.INFO, report.summary())
    return clips, report


def _clip(root: Path, location: Path, entry: dict, genres: list[str] | None) -> CachedClip:
    genre = entry["rel"].split("/", 1)[0] if genres is not None else None
    return CachedClip(rel=entry["rel"], path=root / entry["rel"], mel_path=location / entry["file"],
                      offset=entry["offset"], frames=entry["frames"], seconds=entry["seconds"], genre=genre,
                      genre_id=genres.index(genre) if genres is not None else -1)


def _write_cache_config(location: Path, config: MelConfig, normalization: str, root: Path) -> None:
    path = location / "config.json"
    if path.exists():
        return
    description = {"format": CACHE_FORMAT, "root": str(root), "mel": config.to_dict(), "normalization": normalization,
                   "dtype": "float16", "silence_peak": SILENCE_PEAK}
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(description, f, indent=2)
