"""Folders of audio as a dataset of fixed-length log-mel crops, labelled by genre subfolder.

Layout: ``root/<genre>/**/<clip>.{wav,flac,ogg,mp3,aiff}``; the sorted first-level subfolder names are the genres
(several roots pool their clips, and their genres by name). The log-mels come from the on-disk cache of
:mod:`audiovae.data.mel_cache` (one resumable pass, memory-mapped reads). The split into training and validation
is by recording: by file, by parent folder, or by a pattern that names the recording a file was cut from, so no
recording straddles it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._torch import torch
from ..audio.features import MelConfig
from ..errors import AudioVAEError, ParameterError
from .mel_cache import CachedClip, ScanReport, preprocess_audio_folder

SPLITS = ("train", "val", "all")


def _hash_fraction(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16) / 2.0 ** 64


SPLIT_GROUPS = ("file", "parent", "regex:<pattern>")
SILENCE_MARGIN = 3.0  # nats above the log floor a training crop's loudest bin must reach (see __getitem__)


def group_key(rel: str, group: str = "file") -> str:
    """The recording a file belongs to, for splitting: ``group`` "file" -> the file itself; "parent" -> its
    folder; "regex:<pattern>" -> the first match of the pattern in the relative path (its first capture group
    when it has one; a file the pattern misses is its own group). rel: path relative to the root, POSIX."""
    if group == "file":
        return rel
    if group == "parent":
        return rel.rsplit("/", 1)[0] if "/" in rel else ""
    if group.startswith("regex:"):
        try:
            match = re.search(group[len("regex:"):], rel)
        except re.error as exc:
            raise ParameterError(f"data.split_group {group!r} is not a valid regular expression: {exc}") from None
        if match is None:
            return rel
        return match.group(1) if match.groups() else match.group(0)
    raise ParameterError(f"data.split_group must be one of {', '.join(SPLIT_GROUPS)}, got {group!r}")


def split_by_group(clips: list[CachedClip], *, val_fraction: float, seed: int = 0, group: str = "file"
                   ) -> tuple[list[CachedClip], list[CachedClip]]:
    """Deterministic ``(train, val)`` split by recording (see :func:`group_key`): all clips of one group land
    on the same side.

    A group goes to validation when the hash of ``seed`` and its key falls below ``val_fraction``, so adding
    files never moves existing ones. Within each genre (all clips, when unlabelled) at least one group stays in
    training, and with ``val_fraction`` > 0 a genre of >= 2 groups sends at least one to validation. Order is
    preserved.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    keys = {clip.rel: group_key(clip.rel, group) for clip in clips}
    groups_per_genre = defaultdict(set)
    for clip in clips:
        groups_per_genre[clip.genre_id].add(keys[clip.rel])
    val_keys = set()
    for members in groups_per_genre.values():
        ranked = sorted(members, key=lambda k: _hash_fraction(f"{seed}:{k}"))
        n_val = sum(_hash_fraction(f"{seed}:{k}") < val_fraction for k in members)
        if val_fraction > 0 and len(members) >= 2:
            n_val = max(n_val, 1)
        n_val = min(n_val, len(members) - 1)  # a genre never goes wholly to validation
        val_keys.update(ranked[:n_val])
    return ([c for c in clips if keys[c.rel] not in val_keys], [c for c in clips if keys[c.rel] in val_keys])


def split_by_file(clips: list[CachedClip], *, val_fraction: float, seed: int = 0
                  ) -> tuple[list[CachedClip], list[CachedClip]]:
    """:func:`split_by_group` with each file its own recording."""
    return split_by_group(clips, val_fraction=val_fraction, seed=seed, group="file")


def scan_roots(roots, *, cache_dir, config: MelConfig, normalization: str, labels: bool, min_seconds: float,
               workers: int, progress: bool) -> tuple[list[CachedClip], ScanReport | "PooledReport"]:
    """Preprocess one audio folder or several (a path or a list of paths) and pool their clips: genres are
    merged by name (sorted) and each clip's genre id points into the merged list."""
    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    if not roots:
        raise AudioVAEError("no audio folder given")
    scanned = [preprocess_audio_folder(root, cache_dir=cache_dir, mel_config=config, normalization=normalization,
                                       labels=labels, min_seconds=min_seconds, workers=workers, progress=progress)
               for root in roots]
    if len(scanned) == 1:
        return scanned[0]
    genres = sorted({g for _, report in scanned for g in report.genres})
    clips = [dataclasses.replace(c, genre_id=genres.index(c.genre) if c.genre is not None else -1)
             for found, _ in scanned for c in found]
    return clips, PooledReport([report for _, report in scanned], genres)


@dataclasses.dataclass
class PooledReport:
    """The scan reports of several audio folders trained on together."""

    reports: list[ScanReport]
    genres: list[str]

    @property
    def root(self) -> str:
        return " + ".join(r.root for r in self.reports)

    def summary(self, max_listed: int | None = 50) -> str:
        return "\n".join(r.summary(max_listed) for r in self.reports)


class AudioFolder(torch.utils.data.Dataset):
    """Log-mel crops of one split of an audio folder; items are ``(mel, genre_id)``.

    mel: float32 Tensor[n_mels, crop_frames], natural-log magnitude; clips shorter than the crop are padded
    on the right with ``MelConfig.log_silence``. genre_id: int64 scalar Tensor, -1 when unlabelled.
    "train" and "all" take a random crop per access (from torch's RNG, which DataLoader seeds per worker),
    skipping near-silent crops (every bin within SILENCE_MARGIN nats of the log floor) when a few tries find a
    louder one; "val" takes the centre crop, so validation is deterministic. ``eval_items()`` yields whole clips.

    root: one folder or a list of folders (pooled, see :func:`scan_roots`). ``seed`` salts the hash of the split
    (0 gives the default split; keep it fixed to compare runs); ``split_group`` says which files are one
    recording (see :func:`group_key`). ``length_weighted``: a long recording is drawn more often, in proportion
    to its length (the dataset has one item per ``crop_frames`` of audio, item i mapping to the clip that holds
    that stretch), instead of one item per file. Build a train and a val set from one scan with :meth:`splits`.
    The other arguments go to :func:`preprocess_audio_folder`.
    """

    def __init__(self, root: str | os.PathLike, *, cache_dir: str | os.PathLike,
                 mel_config: MelConfig | dict | None = None, split: str = "train", val_fraction: float = 0.1,
                 crop_frames: int = 128, labels: bool = True, normalization: str = "peak",
                 min_seconds: float = 0.5, workers: int = 2, seed: int = 0, split_group: str = "file",
                 length_weighted: bool = False, progress: bool = True):
        config = MelConfig.from_any(mel_config)
        _check_split_args(split, val_fraction, crop_frames)
        clips, report = scan_roots(root, cache_dir=cache_dir, config=config, normalization=normalization,
                                   labels=labels, min_seconds=min_seconds, workers=workers, progress=progress)
        self._setup(clips, report, config, split=split, val_fraction=val_fraction, crop_frames=crop_frames,
                    seed=seed, split_group=split_group, length_weighted=length_weighted)

    @classmethod
    def splits(cls, root: str | os.PathLike, *, cache_dir: str | os.PathLike,
               mel_config: MelConfig | dict | None = None, val_fraction: float = 0.1, crop_frames: int = 128,
               labels: bool = True, normalization: str = "peak", min_seconds: float = 0.5, workers: int = 2,
               seed: int = 0, split_group: str = "file", length_weighted: bool = False, progress: bool = True
               ) -> tuple[AudioFolder, AudioFolder]:
        """``(train, val)`` datasets sharing one scan of ``root`` (``length_weighted`` applies to train)."""
        config = MelConfig.from_any(mel_config)
        _check_split_args("train", val_fraction, crop_frames)
        clips, report = scan_roots(root, cache_dir=cache_dir, config=config, normalization=normalization,
                                   labels=labels, min_seconds=min_seconds, workers=workers, progress=progress)
        made = []
        for split in ("train", "val"):
            dataset = cls.__new__(cls)
            dataset._setup(clips, report, config, split=split, val_fraction=val_fraction, crop_frames=crop_frames,
                           seed=seed, split_group=split_group, length_weighted=length_weighted and split == "train")
            made.append(dataset)
        return made[0], made[1]

    def _setup(self, clips: list[CachedClip], report, config: MelConfig, *, split: str, val_fraction: float,
               crop_frames: int, seed: int, split_group: str, length_weighted: bool) -> None:
        self.root = report.root
        self.report = report
        self.genres = list(report.genres)
        self.mel_config = config
        self.split = split
        self.crop_frames = crop_frames
        if split == "all":
            self.clips = list(clips)
        else:
            train, val = split_by_group(clips, val_fraction=val_fraction, seed=seed, group=split_group)
            self.clips = train if split == "train" else val
        windows = [max(1, clip.frames // crop_frames) if length_weighted else 1 for clip in self.clips]
        self._item_clip = np.repeat(np.arange(len(self.clips)), windows)  # item -> clip index

    def __len__(self) -> int:
        return len(self._item_clip)

    def mel(self, index: int) -> np.memmap:
        """The cached log-mel of clip ``index``: a read-only float16 memory map [n_mels, frames]
        (a transposed view of the time-major file, so a run of frames is contiguous on disk)."""
        clip = self.clips[index]
        try:
            mel = np.memmap(clip.mel_path, dtype=np.float16, mode="r", offset=clip.offset,
                            shape=(clip.frames, self.mel_config.n_mels))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise AudioVAEError(f"the cached log-mel of {clip.path} ({clip.mel_path}) is missing or damaged ({exc}); "
                                "run the preprocessing again to rebuild it") from exc
        return mel.T

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = int(self._item_clip[index])
        mel = self.mel(clip)
        spare = max(mel.shape[1] - self.crop_frames, 0)
        if self.split == "val":
            window = mel[:, spare // 2:spare // 2 + self.crop_frames]
        else:
            for _ in range(4):  # a few tries for a crop that is not all silence (track intros, endings, gaps)
                start = int(torch.randint(spare + 1, ()).item())
                window = mel[:, start:start + self.crop_frames]
                if float(window.max()) > self.mel_config.log_silence + SILENCE_MARGIN:
                    break
        crop = np.full((mel.shape[0], self.crop_frames), self.mel_config.log_silence, dtype=np.float32)
        crop[:, :window.shape[1]] = window
        return torch.from_numpy(crop), torch.tensor(self.clips[clip].genre_id, dtype=torch.int64)

    def eval_items(self) -> Iterator[tuple[Path, torch.Tensor, int]]:
        """Whole clips of this split: ``(source path, mel float32 Tensor[n_mels, frames], genre_id)``."""
        for index, clip in enumerate(self.clips):
            yield clip.path, torch.from_numpy(np.ascontiguousarray(self.mel(index), dtype=np.float32)), clip.genre_id


def _check_split_args(split: str, val_fraction: float, crop_frames: int) -> None:
    if split not in SPLITS:
        raise ParameterError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if crop_frames < 1:
        raise ParameterError(f"crop_frames must be >= 1, got {crop_frames}")
