"""audiovae: variational autoencoders for music and sound (log-mel VAEs, MIDI piano-roll CVAEs, latent tools)."""
from __future__ import annotations

from .errors import AudioReadError, AudioVAEError, ConfigError, MidiReadError, ParameterError

__version__ = "0.1.0"


def load(path, *, device="cpu", modality=None):
    """Load a trained model from a model folder, a run folder or a bundled name; returns it in eval mode.

    modality: "audio" or "midi" to insist on that kind of model (a clear error otherwise).

    >>> model = audiovae.load("runs/mel")          # runs/mel/model, or the run's latest checkpoint
    >>> model = audiovae.load("default-midi")      # a model shipped with the package
    """
    from .checkpoint import load as load_model

    return load_model(path, device=device, modality=modality)


__all__ = ["load", "AudioVAEError", "AudioReadError", "MidiReadError", "ConfigError", "ParameterError", "__version__"]
