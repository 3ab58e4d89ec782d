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

    def frames_of(self, x: torch.Tensor) -> int:
        """The length of one input in frames: the unit of "per frame" figures."""


class LatentModelBase(nn.Module):
    """The protocol's defaults: a standard-normal prior (identity noise map, closed-form KL against N(0, I)) and
    a learned genre embedding whose row ``len(genres)`` is "no genre" (used for cond None and, in training, with
    probability ``cond_dropout``, which is what classifier-free guidance needs). Subclasses set ``modality`` and
    implement encode, decode, latent_shape, reconstruction_nll and frames_of."""

    modality: str = ""

    def __init__(self, *, genres=(), cond_dim: int = 32, cond_dropout: float = 0.1):
        super().__init__()
        self.genres = list(genres)
        self.cond_dropout = cond_dropout
        self.cond_dim = cond_dim if self.genres else 0
        self.genre_embedding = nn.Embedding(len(self.genres) + 1, cond_dim) if self.genres else None
        self.latent_stats: dict = {}

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

    def latent_from_noise(self, eps: torch.Tensor, cond: torch.Tensor | None = None, *,
                          guidance: float = 0.0) -> torch.Tensor:
        return eps

    def noise_from_latent(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return z

    def latent_kl(self, posterior: DiagonalGaussian, cond: torch.Tensor | None = None) -> torch.Tensor:
        return posterior.kl()

    def frames_of(self, x: torch.Tensor) -> int:
        return int(x.shape[-1])
