"""Audio in and out of a trained mel model: file -> log-mel the way the model's front end was configured,
and log-mel -> waveform through a vocoder."""
from __future__ import annotations

import os

import numpy as np
import torch

from .audio.features import MelConfig, MelFrontend
from .audio.io import normalize, read_audio
from .errors import AudioReadError, ConfigError


def model_mel_config(model) -> MelConfig:
    if not getattr(model, "frontend", None):
        raise ConfigError("this model carries no mel front-end config; it cannot read or write audio")
    return MelConfig(**model.frontend)


def clip_to_mel(model, path: str | os.PathLike, *, normalization: str = "peak", max_seconds: float | None = None,
                min_seconds: float = 0.1) -> torch.Tensor:
    """Read an audio file as the model's front end expects: log-mel Tensor[n_mels, frames] on the model's device."""
    config = model_mel_config(model)
    waveform, _ = read_audio(path, sample_rate=config.sample_rate)
    return waveform_to_mel(model, waveform, path=path, normalization=normalization, max_seconds=max_seconds,
                           min_seconds=min_seconds)


def waveform_to_mel(model, waveform: np.ndarray, *, path="<waveform>", normalization: str = "peak",
                    max_seconds: float | None = None, min_seconds: float = 0.1) -> torch.Tensor:
    """waveform: float32 [samples] at the model's sample rate -> log-mel Tensor[n_mels, frames]."""
    config = model_mel_config(model)
    seconds = len(waveform) / config.sample_rate
    if seconds < min_seconds:
        raise AudioReadError(path, f"too short ({seconds:.2f} s < {min_seconds:.2f} s)")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioReadError(path, f"too long ({seconds:.1f} s > {max_seconds:.1f} s)")
    if np.abs(waveform).max() < 1e-4:
        raise AudioReadError(path, "silent")
    frontend = MelFrontend(**config.to_dict()).to(next(model.parameters()).device)
    tensor = torch.from_numpy(normalize(waveform, mode=normalization)).to(next(model.parameters()).device)
    return frontend(tensor)


def mel_to_waveform(model, mel: torch.Tensor, *, n_iter: int = 32, vocoder=None) -> np.ndarray:
    """log-mel Tensor[n_mels, frames] -> float32 waveform [samples] via ``vocoder`` (default Griffin-Lim)."""
    from .audio.inversion import GriffinLim

    vocoder = vocoder or GriffinLim(model_mel_config(model), n_iter=n_iter).to(mel.device)
    waveform = vocoder(mel.float()).cpu().numpy()
    peak = float(np.abs(waveform).max()) if waveform.size else 0.0
    return waveform * (0.95 / peak) if peak > 0.95 else waveform


def genre_condition(model, genre: str | None, device) -> torch.Tensor | None:
    """LongTensor[1] for a genre name, None for no genre; an unknown name lists the known ones."""
    if genre is None:
        return None
    if not model.conditions:
        raise ConfigError(f"this model has no genre conditions; drop --genre {genre}")
    if genre not in model.conditions:
        raise ConfigError(f"unknown genre {genre!r}; this model knows: {', '.join(model.conditions)}")
    return torch.tensor([model.conditions.index(genre)], device=device)
