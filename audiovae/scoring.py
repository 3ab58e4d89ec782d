"""Anomaly scores of files: each file is read the way its model reads input (audio through the model's front end,
MIDI onto the model's roll grid) and scored with :func:`audiovae.latent.anomaly_scores`; for audio models with a
stored calibration, :func:`inspect_files` also says where in a recording the defects are."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from .errors import AudioReadError, MidiReadError
from .latent.anomaly import Calibration, anomaly_scores, calibrated_map, flagged_spans


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


@dataclass
class FileAnomaly:
    """Where a recording looks damaged. score: the largest calibrated window score (standard deviations above the
    model's typical held-out window); spans: (start s, end s, peak) above the threshold; curve: the calibrated map
    Tensor[T'] at ``frames_per_second``; mel: the log-mel that was scored. For an unusable file all are empty and
    ``error`` says why."""

    path: str
    score: float | None = None
    spans: list[tuple[float, float, float]] = field(default_factory=list)
    curve: torch.Tensor | None = None
    mel: torch.Tensor | None = None
    frames_per_second: float = 0.0
    error: str | None = None


def calibration_of(model) -> Calibration | None:
    """The model's stored anomaly calibration (written at the end of training or by `audiovae calibrate`)."""
    stored = getattr(model, "anomaly_calibration", None)
    return Calibration.from_dict(stored) if stored else None


def inspect_audio(model, path, *, threshold: float | None = None, max_seconds: float | None = None) -> FileAnomaly:
    """The calibrated anomaly map of one audio file and its flagged spans; AudioReadError for an unusable file,
    ConfigError for a model without calibration."""
    from .errors import ConfigError
    from .inference import clip_to_mel

    calibration = calibration_of(model)
    if calibration is None:
        raise ConfigError(f"{getattr(model, 'checkpoint_path', 'the model')} has no anomaly calibration; run "
                          "`audiovae calibrate MODEL --data DIR` (the folders it was trained on)")
    mel = clip_to_mel(model, path, max_seconds=max_seconds)
    curve = calibrated_map(model, mel[None], calibration)[0].cpu()
    rate = model.frontend.frames_per_second / model.time_downsample
    spans = flagged_spans(curve, calibration.threshold if threshold is None else threshold, rate)
    return FileAnomaly(os.fspath(path), float(curve.max()), spans, curve, mel.cpu(), rate)


def inspect_files(model, paths, *, threshold: float | None = None, max_seconds: float | None = None
                  ) -> list[FileAnomaly]:
    """:func:`inspect_audio` for each file, in order; unusable files come back with ``error`` set, never raised."""
    out = []
    for path in paths:
        try:
            out.append(inspect_audio(model, path, threshold=threshold, max_seconds=max_seconds))
        except AudioReadError as exc:
            out.append(FileAnomaly(os.fspath(path), error=exc.reason))
    return out
