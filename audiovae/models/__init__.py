"""Model classes, registered by name so a checkpoint's config.json can rebuild them."""
from .mel_vae import MelVAE
from .pianoroll_cvae import GenreClassifier, PianoRollCVAE
from .posterior import DiagonalGaussian

MODEL_CLASSES = {"MelVAE": MelVAE, "PianoRollCVAE": PianoRollCVAE, "GenreClassifier": GenreClassifier}


def register_model(cls):
    """Make ``cls`` loadable from checkpoints by its class name."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


from ..audio import classify as _audio_classify  # noqa: E402,F401  (registers AudioGenreClassifier)

__all__ = ["MelVAE", "PianoRollCVAE", "GenreClassifier", "DiagonalGaussian", "MODEL_CLASSES", "register_model"]
