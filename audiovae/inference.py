"""Audio in and out of a trained audio model: file -> log-mel the way the model's front end was configured, and
log-mel -> waveform through a vocoder.

Each loaded model gets one front end and one vocoder per choice and device, made on first use and cached beside
the model, not in its weights. The vocoder choice is "griffin-lim", a neural vocoder (a model folder, a run, or
"default-vocoder"), or "auto": the bundled neural vocoder when it was trained on the model's front end, else
Griffin-Lim.
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


GRIFFIN_LIM, AUTO, DEFAULT_VOCODER = "griffin-lim", "auto", "default-vocoder"


def resolve_vocoder_choice(model, choice: str | None) -> str:
    """"griffin-lim" or the neural vocoder ``choice`` names for ``model``: "auto" (or None) is the bundled
    default-vocoder when its front end is the model's, else Griffin-Lim."""
    if choice in (None, AUTO):
        from .checkpoint import read_config
        from .pretrained import bundled_model_path

        try:
            trained_on = read_config(bundled_model_path(DEFAULT_VOCODER))["model_args"].get("frontend")
        except ConfigError:  # not installed
            return GRIFFIN_LIM
        return DEFAULT_VOCODER if MelConfig.from_any(trained_on) == model_mel_config(model) else GRIFFIN_LIM
    return str(choice)


def vocoder_for(model, choice: str | None = AUTO, *, n_iter: int = 32) -> torch.nn.Module:
    """The vocoder (log-mel Tensor[B, n_mels, frames] -> waveform [B, samples]) for ``model``'s front end, on the
    model's device, cached per choice: see :func:`resolve_vocoder_choice`; ``n_iter`` is Griffin-Lim's iteration
    count. A neural vocoder trained on another front end is refused with a ConfigError naming both."""
    choice = resolve_vocoder_choice(model, choice)
    if choice == GRIFFIN_LIM:
        return _cached(model, (GRIFFIN_LIM, n_iter), lambda: GriffinLim(model_mel_config(model), n_iter=n_iter))

    def build():
        from .checkpoint import load

        vocoder = load(choice, modality="vocoder")
        vocoder.check_pairs_with(model_mel_config(model), name=f"vocoder {choice}",
                                 model_name=str(getattr(model, "checkpoint_path", "the model")))
        return vocoder

    return _cached(model, ("neural", choice), build)


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


def mel_to_waveform(model, mel: torch.Tensor, *, vocoder: str | torch.nn.Module | None = AUTO,
                    n_iter: int = 32) -> np.ndarray:
    """log-mel Tensor[n_mels, frames] -> float32 waveform [samples] via ``vocoder``: a vocoder module, or a choice
    for :func:`vocoder_for` (default "auto"; ``n_iter`` for Griffin-Lim). Peaks above 0.95 are scaled to 0.95."""
    if not isinstance(vocoder, torch.nn.Module):
        vocoder = vocoder_for(model, vocoder, n_iter=n_iter)
    with torch.inference_mode():
        waveform = vocoder(mel.float()).cpu().numpy()
    peak = float(np.abs(waveform).max()) if waveform.size else 0.0
    return waveform * (0.95 / peak) if peak > 0.95 else waveform
