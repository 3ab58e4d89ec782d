"""A folder of audio as a dataset of fixed-length log-mel crops, labelled by genre subfolder.

Layout: ``root/<genre>/**/<clip>.{wav,flac,ogg,mp3,aiff}``; the sorted first-level subfolder names are the genres.
The log-mels come from the on-disk cache of :mod:`audiovae.data.mel_cache` (one resumable pass, memory-mapped
reads); the split into training and validation is by file, so no clip leaks across it.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._torch import torch
from ..audio.features import MelConfig
from ..errors import AudioVAEError, ParameterError
from .mel_cache import CachedClip, ScanReport, as_mel_config, preprocess_audio_folder

SPLITS = ("train", "val", "all")


def _hash_fraction(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16) / 2.0 ** 64


def split_by_file(clips: list[CachedClip], *, val_fraction: float, seed: int = 0
                  ) -> tuple[list[CachedClip], list[CachedClip]]:
    """Deterministic ``(train, val)`` split by file.

    A clip goes to validation when the hash of ``seed`` and its relative path falls below ``val_fraction``, so
    adding files never moves existing ones. Every genre (all clips, when unlabelled) keeps at least one training
    clip, and with ``val_fraction`` > 0 one with >= 2 clips gets at least one validation clip. Order is preserved.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups = defaultdict(list)
    for clip in clips:
        groups[clip.genre_id].append(clip)
    val_rels = set()
    for members in groups.values():
        ranked = sorted(members, key=lambda c: _hash_fraction(f"{seed}:{c.rel}"))
        n_val = sum(_hash_fraction(f"{seed}:{c.rel}") < val_fraction for c in members)
        if val_fraction > 0 and len(members) >= 2:
            n_val = max(n_val, 1)
        n_val = min(n_val, len(members) - 1)  # a genre never goes wholly to validation
        val_rels.update(c.rel for c in ranked[:n_val])
    return [c for c in clips if c.rel not in val_rels], [c for c in clips if c.rel in val_rels]


class AudioFolder(torch.utils.data.Dataset):
    """Log-mel crops of one split of an audio folder; items are ``(mel, genre_id)``.

    mel: float32 Tensor[n_mels, crop_frames], natural-log magnitude; clips shorter than the crop are padded
    on the right with ``MelConfig.log_silence``. genre_id: int64 scalar Tensor, -1 when unlabelled.
    "train" and "all" take a random crop per access (from torch's RNG, which DataLoader seeds per worker);
    "val" takes the centre crop, so validation is deterministic. ``eval_items()`` yields whole clips.

    ``seed`` salts the file hash of the split (0 gives the default split; keep it fixed to compare runs).
    Build a train and a val set from one scan with :meth:`splits`. The other arguments go to
    :func:`preprocess_audio_folder`.
    """

    def __init__(self, root: str | os.PathLike, *, cache_dir: str | os.PathLike,
                 mel_config: MelConfig | dict | None = None, split: str = "train", val_fraction: float = 0.1,
                 crop_frames: int = 128, labels: bool = True, normalization: str = "peak",
                 min_seconds: float = 0.5, workers: int = 2, seed: int = 0, progress: bool = True):
        config = as_mel_config(mel_config)
        _check_split_args(split, val_fraction, crop_frames)
        clips, report = preprocess_audio_folder(root, cache_dir=cache_dir, mel_config=config,
                                                normalization=normalization, labels=labels,
                                                min_seconds=min_seconds, workers=workers, progress=progress)
        self._setup(clips, report, config, split=split, val_fraction=val_fraction, crop_frames=crop_frames,
                    seed=seed)

    @classmethod
    def splits(cls, root: str | os.PathLike, *, cache_dir: str | os.PathLike,
               mel_config: MelConfig | dict | None = None, val_fraction: float = 0.1, crop_frames: int = 128,
               labels: bool = True, normalization: str = "peak", min_seconds: float = 0.5, workers: int = 2,
               seed: int = 0, progress: bool = True) -> tuple[AudioFolder, AudioFolder]:
        """``(train, val)`` datasets sharing one scan of ``root``."""
        config = as_mel_config(mel_config)
        _check_split_args("train", val_fraction, crop_frames)
        clips, report = preprocess_audio_folder(root, cache_dir=cache_dir, mel_config=config,
                                                normalization=normalization, labels=labels,
                                                min_seconds=min_seconds, workers=workers, progress=progress)
        made = []
        for split in ("train", "val"):
            dataset = cls.__new__(cls)
            dataset._setup(clips, report, config, split=split, val_fraction=val_fraction, crop_frames=crop_frames,
                           seed=seed)
            made.append(dataset)
        return made[0], made[1]

    def _setup(self, clips: list[CachedClip], report: ScanReport, config: MelConfig, *, split: str,
               val_fraction: float, crop_frames: int, seed: int) -> None:
        self.root = Path(report.root)
        self.report = report
        self.genres = list(report.genres)
        self.mel_config = config
        self.split = split
        self.crop_frames = crop_frames
        if split == "all":
            self.clips = list(clips)
        else:
            train, val = split_by_file(clips, val_fraction=val_fraction, seed=seed)
            self.clips = train if split == "train" else val

    def __len__(self) -> int:
        return len(self.clips)

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
        mel = self.mel(index)
        spare = max(mel.shape[1] - self.crop_frames, 0)
        if self.split == "val":
            start = spare // 2
        else:
            start = int(torch.randint(spare + 1, ()).item())
        crop = np.full((mel.shape[0], self.crop_frames), self.mel_config.log_silence, dtype=np.float32)
        window = mel[:, start:start + self.crop_frames]
        crop[:, :window.shape[1]] = window
        return torch.from_numpy(crop), torch.tensor(self.clips[index].genre_id, dtype=torch.int64)

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
