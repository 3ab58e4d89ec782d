"""The genre classifiers that judge generated output, and the one small loop that fits them.

Both are trained on real data only (never on model output) and saved and loaded like every model
(``write_model_folder`` / ``audiovae.load``):

- :class:`AudioGenreClassifier` reads log-mels made by the same front end as the VAE it judges, so a decoded
  mel can be classified directly (:mod:`audiovae.audio.classify` trains and applies it).
- :class:`GenreClassifier` reads piano-roll segments (:mod:`audiovae.midi.classify`).

:func:`fit_classifier` is the training loop they share: batches that draw a genre uniformly and then an example
of it (so rare genres count as much as common ones), AdamW, a cosine learning rate, cross-entropy.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..audio.features import MelConfig
from ..errors import AudioVAEError, ParameterError
from .base import saves_init_args
from .blocks import norm_groups
from .pianoroll_cvae import TimeEncoder, roll_to_rows


@saves_init_args
class AudioGenreClassifier(nn.Module):
    """Genre of a clip: log-mel Tensor[B, n_mels, frames] (natural log) -> logits Tensor[B, num_genres].

    Per-band standardisation (mean and std of each mel band over the training clips, stored as buffers), strided
    1-D convolutions over time (mel bands are the input channels), mean and max pooling over time, a linear head.
    Clips of any length go in whole.
    Args: genres (at least two names), frontend (the MelConfig of the clips it learns from; n_mels comes from
    it), channels (conv channels; each layer halves time), dropout before the head.
    """

    def __init__(self, *, genres: list[str] | tuple[str, ...] = (), frontend: MelConfig | dict | None = None,
                 channels: list[int] | tuple[int, ...] = (64, 64, 96), dropout: float = 0.2):
        super().__init__()
        if len(genres) < 2:
            raise ParameterError(f"a genre classifier needs at least two genres, got {list(genres)}")
        self.genres, self.frontend = list(genres), MelConfig.from_any(frontend)
        self.n_mels = self.frontend.n_mels
        self.latent_stats: dict = {}
        self.register_buffer("band_mean", torch.zeros(self.n_mels))
        self.register_buffer("band_std", torch.ones(self.n_mels))
        layers, width = [], self.n_mels
        for c in channels:
            layers += [nn.Conv1d(width, c, 5, stride=2, padding=2), nn.GroupNorm(norm_groups(c), c), nn.SiLU()]
            width = c
        self.trunk = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, len(self.genres))

    @property
    def conditions(self) -> list[str]:
        return self.genres

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"expected log-mel [B, {self.n_mels}, frames], got {tuple(mel.shape)}")
        h = self.trunk((mel.float() - self.band_mean[:, None]) / self.band_std[:, None])
        return self.head(self.dropout(torch.cat([h.mean(-1), h.amax(-1)], 1)))


@saves_init_args
class GenreClassifier(nn.Module):
    """Genre of a piano-roll segment: Tensor[B, 2, S, P] -> logits Tensor[B, num_genres].

    The same 1-D convolution trunk as the MIDI CVAE's encoder, then mean and max pooling over time and a linear
    layer. Args: roll (the RollConfig dict), genres, channels (finest first), blocks_per_stage, dropout.
    """

    def __init__(self, *, roll: dict | None = None, genres: list[str] | tuple[str, ...] = (),
                 channels: list[int] | tuple[int, ...] = (64, 96, 128), blocks_per_stage: int = 1,
                 dropout: float = 0.2):
        super().__init__()
        from ..midi.pianoroll import RollConfig

        if len(genres) < 2:
            raise ValueError(f"a genre classifier needs at least two genres, got {list(genres)}")
        self.roll, self.genres = RollConfig(**(roll or {})), list(genres)
        self.latent_stats: dict = {}
        channels = tuple(channels)
        self.trunk = TimeEncoder(2 * self.roll.num_pitches, channels, blocks_per_stage, 0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * channels[-1], len(self.genres))

    @property
    def conditions(self) -> list[str]:
        return self.genres

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(roll_to_rows(x.to(self.head.weight.dtype)), None)
        return self.head(self.dropout(torch.cat([h.mean(-1), h.amax(-1)], 1)))


def balanced_draw(members: Sequence[Sequence[int]], batch_size: int, generator: torch.Generator
                  ) -> tuple[torch.Tensor, list[int]]:
    """A genre-balanced batch: (labels LongTensor[batch_size], example indices). Each row draws a genre uniformly
    among those with examples, then one of its examples. members[g]: the example indices of genre g."""
    present = [g for g, m in enumerate(members) if len(m)]
    if len(present) < 2:
        raise AudioVAEError(f"the classifier needs examples of at least two genres, got {len(present)}")
    labels = torch.tensor(present)[torch.randint(len(present), (batch_size,), generator=generator)]
    picks = [int(members[g][int(torch.randint(len(members[g]), (), generator=generator))]) for g in labels.tolist()]
    return labels, picks


def fit_classifier(model: nn.Module, draw: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]], *,
                   steps: int, lr: float, seed: int = 0, name: str = "classifier", log=print) -> nn.Module:
    """Train ``model`` for ``steps`` AdamW steps (weight decay 0.01, cosine learning rate from ``lr`` to 0) on
    the batches ``draw(generator) -> (inputs, labels LongTensor[B])`` gives, with cross-entropy. Logs the mean
    loss five times. Returns the model in eval mode."""
    if steps < 1:
        raise ParameterError(f"{name}: steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    started, running, report_every = time.perf_counter(), 0.0, max(1, steps // 5)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        x, labels = draw(generator)
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        if log and (step + 1) % report_every == 0:
            log(f"  {name} step {step + 1}/{steps}: loss {running / report_every:.3f} "
                f"({time.perf_counter() - started:.0f} s)")
            running = 0.0
    return model.eval()
