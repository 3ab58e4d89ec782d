"""Model classes. Every latent model satisfies :class:`LatentModel`; model folders name their class, which
:mod:`audiovae.checkpoint` finds in its registry (``audiovae.checkpoint.register_model`` adds your own)."""
from .mel_vae import MelVAE
from .mel_vqvae import MelVQVAE
from .pianoroll_cvae import PianoRollCVAE
from .posterior import DiagonalGaussian
from .protocol import LatentModel, LatentModelBase

__all__ = ["LatentModel", "LatentModelBase", "MelVAE", "MelVQVAE", "PianoRollCVAE", "DiagonalGaussian"]
