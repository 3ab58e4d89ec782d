"""Audio files in and out: read (wav, flac, ogg, mp3, aiff via soundfile), mono mix-down, resampling,
normalisation, and atomic wav writing. Waveforms are float32 numpy arrays in [-1, 1], shape [samples]."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .._atomic import atomic_file
from ..errors import AudioReadError, ParameterError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc")


def is_audio_path(path: str | os.PathLike) -> bool:
    """True when the file name ends in an extension this module reads."""
    return str(path).lower().endswith(AUDIO_EXTENSIONS)


def read_audio(path: str | os.PathLike, *, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Returns ``(waveform, sample_rate)``: float32, shape [samples] when ``mono`` (channels averaged) or
    [channels, samples] otherwise, resampled to ``sample_rate`` when one is given.
    Raises :class:`AudioReadError` naming the file and the reason when it cannot be decoded or is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(path, "no such file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioReadError(path, f"not a readable audio file ({exc})") from exc
    if data.size == 0:
        raise AudioReadError(path, "the file holds no samples")
    if not np.isfinite(data).all():
        raise AudioReadError(path, "the file holds NaN or infinite samples")
    waveform = data.mean(axis=1) if mono else data.T
    if sample_rate is not None and sample_rate != file_rate:
        waveform = resample(waveform, orig_rate=file_rate, target_rate=sample_rate)
        file_rate = sample_rate
    return np.ascontiguousarray(waveform, dtype=np.float32), int(file_rate)


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality) along the last axis."""
    import librosa  # deferred: importing librosa costs about a second

    if orig_rate <= 0 or target_rate <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    return librosa.resample(waveform, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq").astype(np.float32)


def peak_normalize(waveform: np.ndarray, *, peak: float = 0.95) -> np.ndarray:
    """Scale so the largest absolute sample equals ``peak``; silence is returned unchanged."""
    top = float(np.abs(waveform).max()) if waveform.size else 0.0
    return waveform if top == 0.0 else (waveform * (peak / top)).astype(np.float32)


def loudness_normalize(waveform: np.ndarray, *, target_db: float = -20.0, peak_limit: float = 0.99) -> np.ndarray:
    """Scale to an RMS level of ``target_db`` dBFS, then limit so no sample exceeds ``peak_limit``."""
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if waveform.size else 0.0
    if rms == 0.0:
        return waveform
    scaled = waveform * (10.0 ** (target_db / 20.0) / rms)
    top = float(np.abs(scaled).max())
    if top > peak_limit:
        scaled = scaled * (peak_limit / top)
    return scaled.astype(np.float32)


def normalize(waveform: np.ndarray, *, mode: str = "peak") -> np.ndarray:
    """Apply ``mode``: "peak", "loudness" or "none"."""
    if mode == "peak":
        return peak_normalize(waveform)
    if mode == "loudness":
        return loudness_normalize(waveform)
    if mode == "none":
        return waveform
    raise ParameterError(f"unknown normalisation {mode!r}; choose 'peak', 'loudness' or 'none'")


def write_wav(path: str | os.PathLike, waveform: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM wav atomically (temp file + rename); clips to [-1, 1]. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    waveform = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    with atomic_file(path) as tmp:
        sf.write(tmp, waveform.T if waveform.ndim == 2 else waveform, sample_rate, subtype="PCM_16", format="WAV")
    return path
