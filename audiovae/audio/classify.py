"""A small audio genre classifier over log-mel spectrograms: the judge for genre blends of mel models.

It is trained on real clips only (never on model output) and reads log-mels made by the same front end as the
VAE it judges, so a decoded mel can be classified directly. Network: per-band standardisation (mean and std of
each mel band over the training clips, stored as buffers), three strided 1-D convolutions over time (mel bands
are the input channels), mean and max pooling over time, a linear layer. Clips of any length go in whole.
Saved and loaded like every model (``write_model_folder`` / ``audiovae.load``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import AudioVAEError, ParameterError
from ..models import register_model
from ..models.base import saves_init_args


@register_model
@saves_init_args
class AudioGenreClassifier(nn.Module):
    """Genre of a clip: log-mel Tensor[B, n_mels, frames] (natural log) -> logits Tensor[B, num_genres].

    Args: genres (at least two names), n_mels, channels (conv channels; each layer halves time), dropout before
    the head, frontend (the MelConfig dict of the clips it learned from; stored, never guessed).
    """

    def __init__(self, *, genres: list[str] | tuple[str, ...] = (), n_mels: int = 80,
                 channels: list[int] | tuple[int, ...] = (64, 64, 96), dropout: float = 0.2,
                 frontend: dict | None = None):
        super().__init__()
        if len(genres) < 2:
            raise ParameterError(f"a genre classifier needs at least two genres, got {list(genres)}")
        self.genres, self.n_mels, self.frontend = list(genres), n_mels, dict(frontend or {})
        self.latent_stats: dict = {}
        self.register_buffer("band_mean", torch.zeros(n_mels))
        self.register_buffer("band_std", torch.ones(n_mels))
        layers, width = [], n_mels
        for c in channels:
            layers += [nn.Conv1d(width, c, 5, stride=2, padding=2), nn.GroupNorm(8 if c % 8 == 0 else 1, c), nn.SiLU()]
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
        h = (mel.float() - self.band_mean[:, None]) / self.band_std[:, None]
        h = self.trunk(h)
        return self.head(self.dropout(torch.cat([h.mean(-1), h.amax(-1)], 1)))


def _genre_index(genre, genres: list[str]) -> int:
    if isinstance(genre, str):
        if genre not in genres:
            raise ParameterError(f"unknown genre {genre!r}; the classifier's genres are: {', '.join(genres)}")
        return genres.index(genre)
    index = int(genre)
    if not 0 <= index < len(genres):
        raise ParameterError(f"genre id {index} is outside 0..{len(genres) - 1}")
    return index


def _random_crops(mels: list[torch.Tensor], picks: list[int], crop: int, floor: float,
                  generator: torch.Generator) -> torch.Tensor:
    out = torch.full((len(picks), mels[0].shape[0], crop), floor)
    for row, i in enumerate(picks):
        mel = mels[i]
        start = int(torch.randint(max(mel.shape[1] - crop, 0) + 1, (), generator=generator))
        window = mel[:, start:start + crop]
        out[row, :, :window.shape[1]] = window
    return out


def train_audio_classifier(items: Sequence[tuple[torch.Tensor, str | int]], genres: Sequence[str], *,
                           frontend: dict | None = None, steps: int = 300, batch_size: int = 32,
                           crop_frames: int = 128, lr: float = 3e-3, gain: float = 0.5,
                           channels: Sequence[int] = (64, 64, 96), seed: int = 0, log=print
                           ) -> AudioGenreClassifier:
    """Train an :class:`AudioGenreClassifier` on whole clips; returns it in eval mode.

    items: (log-mel Tensor[n_mels, frames], genre name or index into ``genres``) pairs. Each step takes
    ``batch_size`` random crops of ``crop_frames`` frames, drawing a genre uniformly and then a clip of it (so
    rare genres count as much as common ones), with a random gain in [-gain, gain] nats added to the log-mel.
    AdamW with a cosine learning rate; the band statistics come from all training frames.
    """
    genres = list(genres)
    if not items:
        raise AudioVAEError("the classifier needs training clips; got none")
    mels = [torch.as_tensor(mel, dtype=torch.float32).cpu() for mel, _ in items]
    labels = [_genre_index(g, genres) for _, g in items]
    members = [[i for i, label in enumerate(labels) if label == g] for g in range(len(genres))]
    present = [g for g in range(len(genres)) if members[g]]
    if len(present) < 2:
        raise AudioVAEError(f"the classifier needs clips of at least two genres, got {len(present)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = AudioGenreClassifier(genres=genres, n_mels=mels[0].shape[0], channels=list(channels), frontend=frontend)
    frames = torch.cat(mels, 1)
    model.band_mean.copy_(frames.mean(1))
    model.band_std.copy_(frames.std(1).clamp_min(1e-3))
    floor = float(frames.min())
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    started, running = time.perf_counter(), 0.0
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        target = torch.tensor(present)[torch.randint(len(present), (batch_size,), generator=generator)]
        picks = [members[g][int(torch.randint(len(members[g]), (), generator=generator))] for g in target.tolist()]
        x = _random_crops(mels, picks, crop_frames, floor, generator)
        x = x + gain * (2 * torch.rand(batch_size, 1, 1, generator=generator) - 1)
        loss = F.cross_entropy(model(x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if log and (step + 1) % max(1, steps // 5) == 0:
            log(f"  audio classifier step {step + 1}/{steps}: loss {running / max(1, steps // 5):.3f} "
                f"({time.perf_counter() - started:.0f} s)")
            running = 0.0
    return model.eval()


@torch.no_grad()
def predict_proba(classifier: AudioGenreClassifier, mel: torch.Tensor) -> torch.Tensor:
    """Genre probabilities Tensor[B, G] (rows sum to 1, columns in ``classifier.genres`` order) for log-mel
    Tensor[B, n_mels, frames] or one clip Tensor[n_mels, frames] (B = 1). Runs in eval mode."""
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    x = mel[None] if mel.dim() == 2 else mel
    probs = torch.softmax(classifier(x.to(device)).float(), dim=1)
    classifier.train(was_training)
    return probs


def held_out_accuracy(classifier: AudioGenreClassifier, items: Sequence[tuple[torch.Tensor, str | int]]) -> dict:
    """{"accuracy": share of whole clips classified right, "per_genre": {genre: share}, "clips": N} over
    (log-mel Tensor[n_mels, frames], genre) pairs, one clip at a time (they may differ in length)."""
    genres = classifier.genres
    hits: dict[str, list[bool]] = {}
    for mel, genre in items:
        index = _genre_index(genre, genres)
        hits.setdefault(genres[index], []).append(int(predict_proba(classifier, mel).argmax(1)) == index)
    total = [h for v in hits.values() for h in v]
    return {"accuracy": sum(total) / max(len(total), 1), "clips": len(total),
            "per_genre": {g: sum(v) / len(v) for g, v in sorted(hits.items())}}
