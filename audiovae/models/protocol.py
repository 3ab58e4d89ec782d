"""The model protocol the latent toolkit, the CLI and the demo talk to, and a base class with its defaults.

Every latent model (mel VAE, MIDI CVAE, and every model that comes later) satisfies :class:`LatentModel`, so code
over models never probes them with ``hasattr``, inspects signatures or branches on the model family: what
differs between families is behind these members.

Conditions: ``cond`` is None ("no genre"), genre ids LongTensor[B] (-1 = unknown, B or 1) or mixture weights
FloatTensor[B, num_genres] (B or 1); :meth:`LatentModelBase.embed_condition` turns it into an embedding.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .posterior import DiagonalGaussian
from .prior import TemporalPrior

MODALITIES = ("audio", "midi")


@runtime_checkable
class LatentModel(Protocol):
    """What a latent model offers. Shapes: x is the model's input (log-mel Tensor[B, n_mels, frames] for audio,
    rolls Tensor[B, 2, S, P] for MIDI); z is Tensor[B, *latent_shape] with None entries following the input's
    length."""

    modality: str          # "audio" (reads and writes log-mels) or "midi" (piano rolls)
    latent_stats: dict     # what the latent space learned: mean/std, per-genre centroids; stored in the folder

    @property
    def conditions(self) -> list[str]:
        """Genre names, in condition-id order; empty for an unconditional model."""

    @property
    def latent_shape(self) -> tuple[int | None, ...]:
        """z's shape without the batch axis; None marks an axis that follows the input's length."""

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x, cond)."""

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None, *, frames: int | None = None
               ) -> torch.Tensor:
        """x_hat (the model's output space: log-mel, or roll logits) for z; ``frames`` trims a temporal output."""

    def embed_condition(self, cond: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        """The condition as Tensor[batch, cond_dim], or None for an unconditional model."""

    def latent_from_noise(self, eps: torch.Tensor, cond: torch.Tensor | None = None, *,
                          guidance: float = 0.0) -> torch.Tensor:
        """Prior noise eps ~ N(0, T^2 I), shaped like z, -> z under the prior p(z | cond)."""

    def noise_from_latent(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The inverse of :meth:`latent_from_noise`."""

    def latent_kl(self, posterior: DiagonalGaussian, cond: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q || p(z | cond)) per latent element, shaped like z, nats."""

    def reconstruction_nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per item, Tensor[B], nats."""

    def frame_nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per input frame, Tensor[B, frames], nats (it sums to reconstruction_nll)."""

    def frames_of(self, x: torch.Tensor) -> int:
        """The length of one input in frames: the unit of "per frame" figures."""

    def to_sequence(self, z: torch.Tensor) -> torch.Tensor:
        """z: Tensor[B, *latent_shape] -> Tensor[B, T, dim]: the latent laid out in time (T latent frames)."""

    def project_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The nearest latent the decoder was trained on, same shape as z: z itself for a continuous latent, the
        quantisation of z for a vector-quantised one (the latent toolkit applies it after blending or shifting)."""


class LatentModelBase(nn.Module):
    """The protocol's defaults: the prior and a learned genre embedding whose row ``len(genres)`` is "no genre"
    (used for cond None and, in training, with probability ``cond_dropout``, which is what classifier-free
    guidance needs). Subclasses set ``modality`` and implement encode, decode, latent_shape, frame_nll, frames_of
    and to_sequence / from_sequence.

    The prior is standard normal (z = eps, closed-form KL against N(0, I)) until a subclass sets
    ``self.latent_prior`` to a :class:`~audiovae.models.prior.TemporalPrior` and says how its z is laid out in
    time (:meth:`to_sequence` / :meth:`from_sequence`); then the noise maps and the KL go through that prior.
    """

    modality: str = ""

    def __init__(self, *, genres=(), cond_dim: int = 32, cond_dropout: float = 0.1):
        super().__init__()
        self.genres = list(genres)
        self.cond_dropout = cond_dropout
        self.cond_dim = cond_dim if self.genres else 0
        self.genre_embedding = nn.Embedding(len(self.genres) + 1, cond_dim) if self.genres else None
        self.latent_stats: dict = {}
        self.latent_prior: TemporalPrior | None = None

    @property
    def conditions(self) -> list[str]:
        return self.genres

    def embed_condition(self, cond: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        """cond (see the module docstring) -> Tensor[batch, cond_dim]; None for an unconditional model. A
        mixture is the weighted sum of its genres' rows; one condition row is expanded to the batch."""
        if self.genre_embedding is None:
            return None
        table = self.genre_embedding.weight
        if cond is None:
            return table[len(self.genres)].expand(batch, -1)
        cond = cond.to(device)
        if cond.is_floating_point():
            if cond.dim() != 2 or cond.shape[1] != len(self.genres):
                raise ValueError(f"mixture weights must be [B, {len(self.genres)}], got {tuple(cond.shape)}")
            embedded = cond.to(table.dtype) @ table[: len(self.genres)]
        else:
            ids = cond.long().clone()
            ids[ids < 0] = len(self.genres)
            if self.training and self.cond_dropout > 0:
                ids[torch.rand(ids.shape, device=ids.device) < self.cond_dropout] = len(self.genres)
            embedded = self.genre_embedding(ids)
        return embedded.expand(batch, -1) if embedded.shape[0] == 1 else embedded

    def to_sequence(self, z: torch.Tensor) -> torch.Tensor:
        """z: Tensor[B, *latent_shape] -> Tensor[B, T, dim], the latent laid out in time (what a learned prior runs
        over, and the frames of anomaly maps)."""
        raise NotImplementedError(f"{type(self).__name__} does not say how its latent is laid out in time")

    def from_sequence(self, sequence: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_sequence`."""
        raise NotImplementedError(f"{type(self).__name__} does not say how its latent is laid out in time")

    def project_latent(self, z: torch.Tensor) -> torch.Tensor:
        """z itself: every vector is a latent of a continuous model (a VQ model quantises here)."""
        return z

    def reconstruction_nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per item, Tensor[B], nats: :meth:`frame_nll` summed over the frames."""
        return self.frame_nll(x, x_hat).sum(1)

    def latent_from_noise(self, eps: torch.Tensor, cond: torch.Tensor | None = None, *,
                          guidance: float = 0.0, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """Prior noise eps ~ N(0, T^2 I), shaped like z, -> z (eps itself under the standard prior). With a learned
        prior, ``guidance`` > 0 applies classifier-free guidance to its means, and ``prefix`` (latents shaped like
        z) is the context the result continues."""
        if self.latent_prior is None:
            return eps
        c = self.embed_condition(cond, eps.shape[0], eps.device)
        guide = self.embed_condition(None, eps.shape[0], eps.device) if cond is not None and guidance else None
        prefix = None if prefix is None else self.to_sequence(prefix)
        return self.from_sequence(self.latent_prior.sample(self.to_sequence(eps), c, guide=guide, guidance=guidance,
                                                           prefix=prefix))

    def noise_from_latent(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The inverse of :meth:`latent_from_noise` under the genre ``cond``."""
        if self.latent_prior is None:
            return z
        c = self.embed_condition(cond, z.shape[0], z.device)
        return self.from_sequence(self.latent_prior.noise(self.to_sequence(z), c))

    def latent_kl(self, posterior: DiagonalGaussian, cond: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z | x, genre) || p(z | genre)) per latent element, shaped like z, nats.

        Standard prior: closed form. Learned prior: the closed-form KL of each step given the earlier steps of one
        posterior sample (an unbiased estimate of the full KL) in training mode, and of the posterior mean in eval
        mode (deterministic).
        """
        if self.latent_prior is None:
            return posterior.kl()
        c = self.embed_condition(cond, posterior.mean.shape[0], posterior.mean.device)
        z = posterior.sample() if self.training else posterior.mode()
        seq = self.to_sequence
        return self.from_sequence(self.latent_prior.kl(seq(posterior.mean), seq(posterior.logvar), seq(z), c))

    def frames_of(self, x: torch.Tensor) -> int:
        return int(x.shape[-1])
