"""Audio in and out of a trained audio model: file -> log-mel the way the model's front end was configured, and
log-mel -> waveform through a vocoder.

Each loaded model gets one front end and one Griffin-Lim vocoder per device (and iteration count), made on first
use and cached beside the model, not in its weights.
"""
from __future__ import annotations

import os
import weakref

import numpy as np
import torch

from .audio.features import MelConfig, MelFrontend
from .audio.inversion import GriffinLim
from .audio.io import normalize, read_audio
from .device import model_device
from .errors import AudioReadError, ConfigError

_IO_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def model_mel_config(model) -> MelConfig:
    """The mel front end an audio model reads and writes; ConfigError for a model of another modality."""
    if model.modality != "audio":
        raise ConfigError(f"{type(model).__name__} is a {model.modality} model; it cannot read or write audio")
    return model.frontend


def _cached(model, key: tuple, build):
    store = _IO_CACHE.setdefault(model, {})
    key = key + (str(model_device(model)),)
    if key not in store:
        store[key] = build().to(model_device(model))
    return store[key]


def frontend_for(model) -> MelFrontend:
    """The model's log-mel front end on the model's device (made once, then cached)."""
    return _cached(model, ("frontend",), lambda: MelFrontend(model_mel_config(model)))


def vocoder_for(model, n_iter: int = 32) -> GriffinLim:
    """A Griffin-Lim vocoder for the model's front end on the model's device (cached per ``n_iter``)."""
    return _cached(model, ("griffin-lim", n_iter), lambda: GriffinLim(model_mel_config(model), n_iter=n_iter))


def clip_to_mel(model, path: str | os.PathLike, *, normalization: str = "peak", max_seconds: float | None = None,
                min_seconds: float = 0.1) -> torch.Tensor:
    """Read an audio file as the model's front end expects: log-mel Tensor[n_mels, frames] on the model's device."""
    config = model_mel_config(model)
    waveform, _ = read_audio(path, sample_rate=config.sample_rate)
    return waveform_to_mel(model, waveform, path=path, normalization=normalization, max_seconds=max_seconds,
                           min_seconds=min_seconds)


def waveform_to_mel(model, waveform: np.ndarray, *, path="<waveform>", normalization: str = "peak",
                    max_seconds: float | None = None, min_seconds: float = 0.1) -> torch.Tensor:
    """waveform: float32 [samples] at the model's sample rate -> log-mel Tensor[n_mels, frames].

    Raises AudioReadError naming ``path`` for a clip that is too short, too long or silent."""
    config = model_mel_config(model)
    seconds = len(waveform) / config.sample_rate
    if seconds < min_seconds:
        raise AudioReadError(path, f"too short ({seconds:.2f} s < {min_seconds:.2f} s)")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioReadError(path, f"too long ({seconds:.1f} s > {max_seconds:.1f} s)")
    if np.abs(waveform).max() < 1e-4:
        raise AudioReadError(path, "silent")
    tensor = torch.from_numpy(normalize(waveform, mode=normalization)).to(model_device(model))
    return frontend_for(model)(tensor)


def mel_to_waveform(model, mel: torch.Tensor, *, n_iter: int = 32, vocoder=None) -> np.ndarray:
    """log-mel Tensor[n_mels, frames] -> float32 waveform [samples] via ``vocoder`` (default: the model's
    Griffin-Lim with ``n_iter`` iterations); peaks above 0.95 are scaled down to 0.95."""
    vocoder = vocoder or vocoder_for(model, n_iter)
    waveform = vocoder(mel.float()).cpu().numpy()
    peak = float(np.abs(waveform).max()) if waveform.size else 0.0
    return waveform * (0.95 / peak) if peak > 0.95 else waveform
