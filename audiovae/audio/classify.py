"""Train and apply the audio genre classifier (:class:`~audiovae.models.judges.AudioGenreClassifier`), the judge
for genre blends and samples of audio models. It learns from real clips only (never from model output)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import AudioVAEError, ParameterError
from ..models.judges import AudioGenreClassifier, balanced_draw, fit_classifier

__all__ = ["AudioGenreClassifier", "train_audio_classifier", "predict_proba", "held_out_accuracy"]


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
                           frontend=None, steps: int = 300, batch_size: int = 32,
                           crop_frames: int = 128, lr: float = 3e-3, gain: float = 0.5,
                           channels: Sequence[int] = (64, 64, 96), seed: int = 0, log=print
                           ) -> AudioGenreClassifier:
    """Train an :class:`AudioGenreClassifier` on whole clips; returns it in eval mode.

    items: (log-mel Tensor[n_mels, frames], genre name or index into ``genres``) pairs. Each step takes
    ``batch_size`` random crops of ``crop_frames`` frames, drawing a genre uniformly and then a clip of it (so
    rare genres count as much as common ones), with a random gain in [-gain, gain] nats added to the log-mel.
    AdamW with a cosine learning rate (:func:`~audiovae.models.judges.fit_classifier`); the band statistics
    come from all training frames. frontend: the MelConfig the clips were made with (default: the defaults).
    """
    genres = list(genres)
    if not items:
        raise AudioVAEError("the classifier needs training clips; got none")
    mels = [torch.as_tensor(mel, dtype=torch.float32).cpu() for mel, _ in items]
    labels = [_genre_index(g, genres) for _, g in items]
    members = [[i for i, label in enumerate(labels) if label == g] for g in range(len(genres))]
    torch.manual_seed(seed)  # the initial weights
    model = AudioGenreClassifier(genres=genres, channels=list(channels), frontend=frontend)
    if mels[0].shape[0] != model.n_mels:
        raise AudioVAEError(f"the clips have {mels[0].shape[0]} mel bands; the front end {model.frontend} has "
                            f"{model.n_mels}")
    frames = torch.cat(mels, 1)
    model.band_mean.copy_(frames.mean(1))
    model.band_std.copy_(frames.std(1).clamp_min(1e-3))
    floor = float(frames.min())

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        target, picks = balanced_draw(members, batch_size, generator)
        x = _random_crops(mels, picks, crop_frames, floor, generator)
        return x + gain * (2 * torch.rand(batch_size, 1, 1, generator=generator) - 1), target

    return fit_classifier(model, draw, steps=steps, lr=lr, seed=seed, name="audio classifier", log=log)


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
