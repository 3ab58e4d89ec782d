"""audiovae: variational autoencoders for music and sound (log-mel VAEs, MIDI piano-roll CVAEs, latent tools)."""
from __future__ import annotations

from .errors import AudioReadError, AudioVAEError, ConfigError, MidiReadError, ParameterError

__version__ = "0.1.0"


def load(path, *, device="cpu"):
    """Load a trained model from a checkpoint folder or a run folder; returns it in eval mode.

    >>> model = audiovae.load("runs/mel")          # runs/mel/model, or the run's latest checkpoint
    >>> model = audiovae.load("default-midi")      # a model shipped with the package
    """
    from .train.checkpoint import load_model

    return load_model(path, device=device)


__all__ = ["load", "AudioVAEError", "AudioReadError", "MidiReadError", "ConfigError", "ParameterError", "__version__"]
