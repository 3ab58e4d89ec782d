"""Folders of audio as random waveform crops, for training a vocoder.

The files, their genres and the split by recording are exactly those of :class:`~audiovae.data.audio_folder.
AudioFolder` (the same scan, so the same skip report and the same held-out recordings). Each usable file is decoded
once, resampled and level-normalised like the mel cache, and kept as int16 .npy in the cache folder (never in the
data folder), so training reads memory-mapped samples instead of decoding Ogg or MP3 every step.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_file
from .._torch import torch
from ..audio.features import MelConfig
from ..audio.io import normalize, read_audio
from ..errors import AudioReadError, ParameterError
from .audio_folder import scan_roots, split_by_group
from .mel_cache import CachedClip

_log = logging.getLogger("audiovae.data")
SILENT_RMS = 1e-3  # a training crop quieter than this (RMS, full scale 1) is redrawn when a few tries find better


def _waveform_file(folder: Path, clip: CachedClip) -> Path:
    stat = clip.path.stat()
    key = f"{clip.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return folder / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".npy")


def cache_waveforms(clips: list[CachedClip], *, cache_dir: str | os.PathLike, sample_rate: int, normalization: str,
                    progress: bool = True) -> tuple[list[tuple[CachedClip, Path]], list[tuple[str, str]]]:
    """Decode every clip once into ``<cache_dir>/waveforms-<rate>-<normalization>/`` (int16 .npy, atomic writes;
    files already there are reused). Returns ``(kept [(clip, npy path)], skipped [(file, reason)])``: a file
    that changed or became unreadable since the mel scan is skipped with its reason, not fatal."""
    folder = Path(cache_dir) / f"waveforms-{sample_rate}-{normalization}"
    folder.mkdir(parents=True, exist_ok=True)
    kept, skipped, todo = [], [], []
    for clip in clips:
        try:
            todo.append((clip, _waveform_file(folder, clip)))
        except OSError as exc:  # removed or unreadable since the scan
            skipped.append((str(clip.path), f"no longer readable ({exc.strerror or exc})"))
    missing = [item for item in todo if not item[1].is_file()]
    bar = None
    if progress and missing:
        from tqdm import tqdm
        bar = tqdm(total=len(missing), desc="decoding audio for the vocoder", unit="file")
    for clip, target in todo:
        if not target.is_file():
            try:
                wav, _ = read_audio(clip.path, sample_rate=sample_rate)
            except AudioReadError as exc:
                skipped.append((str(clip.path), exc.reason))
                continue
            finally:
                if bar is not None:
                    bar.update()
            samples = np.round(np.clip(normalize(wav, mode=normalization), -1, 1) * 32767).astype(np.int16)
            with atomic_file(target, suffix=".npy") as tmp, open(tmp, "wb") as f:
                np.save(f, samples)
        kept.append((clip, target))
    if bar is not None:
        bar.close()
    for name, reason in skipped:
        _log.warning("skipped %s: %s", name, reason)
    return kept, skipped


class WaveformCrops(torch.utils.data.Dataset):
    """Waveform crops of one split of one or more audio folders; items are float32 Tensor[segment_samples].

    "train": random crops, one item per ``segment_samples`` of audio (long recordings are drawn more often),
    quiet crops redrawn a few times; shorter files are zero-padded. "val": :meth:`excerpts` gives one fixed
    excerpt per held-out recording. Build both from one scan with :meth:`splits`; the arguments mean what they
    mean for AudioFolder.
    """

    def __init__(self, files: list[tuple[CachedClip, Path]], *, segment_samples: int, train: bool):
        if segment_samples < 1:
            raise ParameterError(f"segment_samples must be >= 1, got {segment_samples}")
        self.files, self.segment, self.train = files, segment_samples, train
        lengths = [self.samples(i).shape[0] for i in range(len(files))]
        counts = [max(1, n // segment_samples) if train else 1 for n in lengths]
        self._item_file = np.repeat(np.arange(len(files)), counts)

    @classmethod
    def splits(cls, roots, *, cache_dir, mel_config: MelConfig, segment_samples: int, val_fraction: float = 0.1,
               labels: bool = True, normalization: str = "peak", min_seconds: float = 0.5, workers: int = 2,
               seed: int = 0, split_group: str = "file", progress: bool = True
               ) -> tuple[WaveformCrops, WaveformCrops, str]:
        """``(train, val, report)`` from one scan; report says what was used and skipped."""
        clips, report = scan_roots(roots, cache_dir=cache_dir, config=mel_config, normalization=normalization,
                                   labels=labels, min_seconds=min_seconds, workers=workers, progress=progress)
        train, val = split_by_group(clips, val_fraction=val_fraction, seed=seed, group=split_group)
        kept, skipped = cache_waveforms(train + val, cache_dir=cache_dir, sample_rate=mel_config.sample_rate,
                                        normalization=normalization, progress=progress)
        held_out = {c.rel for c in val}
        text = report.summary()
        if skipped:
            text += f"\n  skipped when decoding for the vocoder: {len(skipped)}"
        return (cls([f for f in kept if f[0].rel not in held_out], segment_samples=segment_samples, train=True),
                cls([f for f in kept if f[0].rel in held_out], segment_samples=segment_samples, train=False), text)

    def samples(self, index: int) -> np.ndarray:
        """The cached waveform of file ``index``: a read-only int16 memory map [samples]."""
        return np.load(self.files[index][1], mmap_mode="r")

    def __len__(self) -> int:
        return len(self._item_file)

    def __getitem__(self, index: int) -> torch.Tensor:
        wav = self.samples(int(self._item_file[index]))
        spare = max(wav.shape[0] - self.segment, 0)
        for _ in range(4):
            start = int(torch.randint(spare + 1, ()).item()) if self.train else spare // 2
            crop = wav[start:start + self.segment].astype(np.float32) / 32767
            if not self.train or float(np.sqrt(np.mean(crop ** 2))) > SILENT_RMS:
                break
        out = np.zeros(self.segment, dtype=np.float32)
        out[:crop.shape[0]] = crop
        return torch.from_numpy(out)

    def excerpts(self, seconds: float, sample_rate: int) -> list[tuple[Path, torch.Tensor]]:
        """One excerpt of up to ``seconds`` from the middle of each file: ``[(source path, float32 [samples])]``."""
        want = int(seconds * sample_rate)
        out = []
        for index, (clip, _) in enumerate(self.files):
            wav = self.samples(index)
            start = max(wav.shape[0] - want, 0) // 2
            out.append((clip.path, torch.from_numpy(wav[start:start + want].astype(np.float32) / 32767)))
        return out
