"""Anomaly scores of files: each file is read the way its model reads input (audio through the model's front end,
MIDI onto the model's roll grid) and scored with :func:`audiovae.latent.anomaly_scores`; for audio models with a
stored calibration, :func:`inspect_files` also says where in a recording the defects are."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from .audio.hum import MainsHum, mains_hum
from .errors import AudioReadError, MidiReadError
from .latent.anomaly import (MOTION_SECONDS, Calibration, anomaly_scores, calibrate, calibrated_scores, flagged_spans,
                             latent_rate)


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
    """Where a recording looks damaged. score: the file's score, the largest of its largest calibrated window score
    (standard deviations above the model's typical held-out window) and its whole-recording terms, ``motion`` and
    ``hum``, each brought to the same scale (:meth:`audiovae.latent.anomaly.Calibration.on_map_scale`); spans:
    (start s, end s, peak) of the map above the threshold; whole: why the recording as a whole is atypical, one
    phrase per whole-recording term above the threshold (its latent moves unlike music: steady noise, a test tone;
    mains hum), empty when it is not; motion: how unlike held-out music its latent moves, in standard deviations;
    hum, hum_hz: its strongest mains hum in standard deviations above held-out recordings and at which mains
    frequency (None when not measured: no waveform, or a calibration without the hum term); curve: the calibrated
    map Tensor[T'] at ``frames_per_second``; mel: the log-mel that was scored. For an unusable file all are empty
    and ``error`` says why."""

    path: str
    score: float | None = None
    spans: list[tuple[float, float, float]] = field(default_factory=list)
    whole: list[str] = field(default_factory=list)
    motion: float | None = None
    hum: float | None = None
    hum_hz: float | None = None
    curve: torch.Tensor | None = None
    mel: torch.Tensor | None = None
    frames_per_second: float = 0.0
    error: str | None = None


def calibration_of(model) -> Calibration | None:
    """The model's stored anomaly calibration (written at the end of training or by `audiovae calibrate`)."""
    stored = getattr(model, "anomaly_calibration", None)
    return Calibration.from_dict(stored) if stored else None


def inspect_mel(model, mel: torch.Tensor, *, path: str | os.PathLike = "<mel>", threshold: float | None = None,
                hum: MainsHum | None = None) -> FileAnomaly:
    """The calibrated anomaly map of a log-mel Tensor[n_mels, frames] and its spans above ``threshold`` (None: the
    calibration's); ``hum``: the mains hum of the same recording's waveform (:func:`audiovae.audio.hum.mains_hum`;
    None: hum is not judged, as the log-mel alone cannot show it). ConfigError for a model without calibration."""
    from .errors import ConfigError

    calibration = calibration_of(model)
    if calibration is None:
        raise ConfigError(f"{getattr(model, 'checkpoint_path', 'the model')} has no anomaly calibration; run "
                          "`audiovae calibrate MODEL --data DIR` (the folders it was trained on)")
    curves, motions = calibrated_scores(model, mel[None], calibration)
    curve, motion = curves[0].cpu(), float(motions[0])
    threshold = calibration.threshold if threshold is None else threshold
    whole_terms = [(calibration.on_map_scale(motion, calibration.motion_threshold),
                    f"its latent moves unlike music over {MOTION_SECONDS:g} s: {motion:.1f} SD")]
    hum_sd, hum_hz = calibration.hum_score(hum) or (None, None)
    if hum_sd is not None:
        whole_terms.append((calibration.on_map_scale(hum_sd, calibration.hum_threshold),
                            f"mains hum at {hum_hz:g} Hz: {hum_sd:.1f} SD"))
    rate = latent_rate(model)
    return FileAnomaly(os.fspath(path), max([float(curve.max())] + [value for value, _ in whole_terms]),
                       flagged_spans(curve, threshold, rate),
                       whole=[why for value, why in whole_terms if value > threshold], motion=motion,
                       hum=hum_sd, hum_hz=hum_hz, curve=curve, mel=mel.cpu(), frames_per_second=rate)


def inspect_waveform(model, waveform, *, path: str | os.PathLike = "<waveform>", threshold: float | None = None,
                     max_seconds: float | None = None) -> FileAnomaly:
    """:func:`inspect_mel` of a waveform float[samples] at the model's sample rate, its mains hum included;
    AudioReadError naming ``path`` for a clip that is too short, too long or silent."""
    from .inference import model_mel_config, waveform_to_mel

    mel = waveform_to_mel(model, waveform, path=path, max_seconds=max_seconds)
    return inspect_mel(model, mel, path=path, threshold=threshold,
                       hum=mains_hum(waveform, model_mel_config(model).sample_rate))


def inspect_audio(model, path, *, threshold: float | None = None, max_seconds: float | None = None) -> FileAnomaly:
    """:func:`inspect_waveform` of one audio file read at the model's sample rate; AudioReadError for an unusable
    file."""
    from .audio.io import read_audio
    from .inference import model_mel_config

    waveform, _ = read_audio(path, sample_rate=model_mel_config(model).sample_rate)
    return inspect_waveform(model, waveform, path=path, threshold=threshold, max_seconds=max_seconds)


def inspect_files(model, paths, *, threshold: float | None = None, max_seconds: float | None = None
                  ) -> list[FileAnomaly | BarAnomaly]:
    """Where each file looks wrong, in order: :func:`inspect_audio` for an audio model, :func:`inspect_midi` for a
    MIDI model (``threshold`` None: the calibration's, or MIDI_THRESHOLD). Unusable files come back with ``error``
    set, never raised."""
    out = []
    for path in paths:
        try:
            if model.modality == "midi":
                out.append(inspect_midi(model, path, threshold=MIDI_THRESHOLD if threshold is None else threshold))
            else:
                out.append(inspect_audio(model, path, threshold=threshold, max_seconds=max_seconds))
        except (AudioReadError, MidiReadError) as exc:
            empty = BarAnomaly if model.modality == "midi" else FileAnomaly
            out.append(empty(os.fspath(path), error=exc.reason))
    return out


# Real pieces have bars that stand out (cadences, final chords): on 106 held-out pieces of midi_genres, 8 robust SD
# flags a bar of random notes in 93% of pieces and some bar of 6% of clean pieces (3 SD: 97% and 43%).
MIDI_THRESHOLD = 8.0


@dataclass
class BarAnomaly:
    """Which bars of a MIDI file look wrong. bar_scores: negative ELBO of each bar's grid steps, Tensor[bars] nats;
    z: the same in robust standard deviations above the piece's own typical bar ((score - median) / (1.4826 MAD));
    flagged: runs of bars with z above the threshold as (first bar, last bar, peak z), bars counted from 1;
    score: the largest z. For an unusable file all are empty and ``error`` says why."""

    path: str
    score: float | None = None
    flagged: list[tuple[int, int, float]] = field(default_factory=list)
    bar_scores: torch.Tensor | None = None
    z: torch.Tensor | None = None
    error: str | None = None


@torch.no_grad()
def inspect_midi(model, path, *, threshold: float = MIDI_THRESHOLD) -> BarAnomaly:
    """Per-bar anomaly scores of one MIDI file under a MIDI model (MidiReadError for an unusable file). Each
    segment is scored whole (:func:`audiovae.latent.anomaly_map`, one value per grid step) and the steps are
    summed per bar, so a bar of wrong notes stands out against the rest of its own piece."""
    from .latent.anomaly import anomaly_map
    from .midi.generate import read_roll, roll_to_segments
    from .midi.pianoroll import roll_tensor

    roll, _ = read_roll(model, path)
    if not roll.any():
        raise MidiReadError(path, "no notes on the model's grid")
    config = model.roll
    steps_per_bar = config.segment_steps // config.segment_bars
    segments = roll_tensor(roll_to_segments(roll, config.segment_steps))
    steps = torch.cat([anomaly_map(model, chunk) for chunk in segments.split(256)]).flatten()
    bars = -(-roll.shape[1] // steps_per_bar)
    bar_scores = steps[: bars * steps_per_bar].reshape(bars, steps_per_bar).sum(1).cpu()
    median = bar_scores.median()
    spread = 1.4826 * (bar_scores - median).abs().median()
    z = (bar_scores - median) / spread.clamp_min(1e-6 + 1e-3 * float(median.abs()))
    # flagged_spans at one "frame" per second gives (first bar index, one past the last, peak): bars from 1
    flagged = [(round(start) + 1, round(end), peak) for start, end, peak in
               flagged_spans(z, threshold, 1.0, merge_gap=0.0)]
    return BarAnomaly(os.fspath(path), float(z.max()), flagged, bar_scores, z)


@torch.no_grad()
def held_out_calibration(model, held_out, **settings) -> dict | None:
    """Calibration of ``model``'s anomaly map (audiovae.latent.anomaly.Calibration, as a dict) on the recordings of
    an AudioFolder split, each whole; None when the split is empty. ``settings`` go to
    :func:`audiovae.latent.anomaly.calibrate`. The recordings are encoded with no genre, as `audiovae score` encodes
    files (a map calibrated with the true genre would call every unlabelled file a little anomalous); their
    waveforms are read again for the mains-hum term (a file that no longer reads is left out of it)."""
    from .audio.io import read_audio
    from .inference import model_mel_config

    if not held_out.clips:
        return None
    rate = model_mel_config(model).sample_rate
    hum = []
    for clip in held_out.clips:
        try:
            hum.append(mains_hum(read_audio(clip.path, sample_rate=rate)[0], rate).strength)
        except AudioReadError:
            continue
    device = next(model.parameters()).device
    items = ((mel.to(device)[None], None) for _, mel, _ in held_out.eval_items())
    return calibrate(model, items, hum_strengths=hum or None, **settings).to_dict()
