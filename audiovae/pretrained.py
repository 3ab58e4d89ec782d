"""The default models shipped inside the package: ``audiovae.load("default-mel")``, ``"default-midi"`` and
``"default-vocoder"``.

Each lives in ``audiovae/assets/models/<name>/`` as a normal checkpoint folder (config.json, model.safetensors)
plus a MODEL_CARD.md saying what it was trained on, how, and how well it does.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

MODELS_DIR = Path(__file__).parent / "assets" / "models"
BUNDLED_MODELS = {
    "default-mel": "log-mel VAE with a learned genre prior, trained on real recordings (music_real) and rendered "
                   "clips (audio_genres)",
    "default-midi": "piano-roll CVAE, genre-conditioned, trained on the bundled midi_genres data",
    "default-vocoder": "neural vocoder (log-mel -> waveform) for default-mel's front end, trained on real "
                       "recordings (music_real) and rendered clips (audio_genres)",
}


def is_bundled_name(path) -> bool:
    """True for a bundled model name that is not also an existing path (a local folder wins)."""
    return isinstance(path, str) and path in BUNDLED_MODELS and not Path(path).exists()


def bundled_model_path(name: str) -> Path:
    """The checkpoint folder of a bundled model; ConfigError naming the known ones when absent."""
    if name not in BUNDLED_MODELS:
        raise ConfigError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    folder = MODELS_DIR / name
    if not (folder / "config.json").is_file():
        raise ConfigError(f"the bundled model {name!r} is missing from this installation ({folder}); reinstall "
                          "audiovae, or pass the path of a model you trained")
    return folder
