"""Anomaly scores of files: each file is read the way its model reads input (audio through the model's front end,
MIDI onto the model's roll grid) and scored with :func:`audiovae.latent.anomaly_scores`."""
from __future__ import annotations

import os

import torch

from .errors import AudioReadError, MidiReadError
from .latent.anomaly import anomaly_scores


def _file_score(model, path, max_seconds: float | None) -> float:
    if model.modality == "audio":
        from .inference import clip_to_mel

        return float(anomaly_scores(model, clip_to_mel(model, path, max_seconds=max_seconds)[None])[0])
    from .midi.generate import file_segments

    segments = file_segments(model, path)
    return float(torch.cat([anomaly_scores(model, chunk) for chunk in segments.split(256)]).mean())


def score_files(model, paths, *, max_seconds: float | None = None
                ) -> list[tuple[str, float | None, str | None]]:
    """Score audio files (audio models) or MIDI files (MIDI models): [(path, score, error)], in the given order.

    score: nats per input frame (a MIDI file's score is the mean over its non-empty segments), None when the
    file could not be used; error: why (unreadable, silent, too short or too long, no notes), else None.
    Bad files are reported, never raised. max_seconds: refuse longer audio files instead of encoding them.
    """
    out = []
    for path in paths:
        path = os.fspath(path)
        try:
            out.append((path, _file_score(model, path, max_seconds), None))
        except (AudioReadError, MidiReadError) as exc:
            out.append((path, None, exc.reason))
    return out
