"""Mains hum: how strongly a recording carries a steady line at 50 or 60 Hz and their first harmonics.

A mel model cannot see hum under loud bass: its lowest mel bands are ~30 Hz wide and the line changes them by
less than a tenth of a nat, and what it does see it reconstructs and predicts well (a steady line is easy). Hum is
plain at a finer resolution, though: a fixed-frequency line standing out of its neighbourhood in every
two-second spectrum, where bass notes come and go and sit on the musical pitches between the mains harmonics.
This module measures exactly that, from the waveform; :class:`audiovae.latent.anomaly.Calibration` standardises
it against the model's held-out recordings like its other terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._torch import torch
from ..errors import ParameterError

MAINS_HZ = (50.0, 60.0)
HARMONICS = 4              # lines at 1..4 x the mains frequency (50-240 Hz)
SEGMENT_SECONDS = 2.0      # one spectrum per 2 s: 0.5 Hz resolution, so the line is one or two bins wide
LINE_HALF_WIDTH_HZ = 0.5   # the line's peak is sought within this of the nominal frequency (mains drifts ~0.1 Hz)
NEIGHBOURS_HZ = (3.0, 10.0)  # its neighbourhood: this far away on either side, clear of the line's window leakage
WINDOW_SECONDS = 10.0      # one strength per 10 s window of a recording, every 5 s
STRONGEST = 2              # a window's strength: the mean of its two most prominent harmonics


@dataclass(frozen=True)
class MainsHum:
    """strength: float[windows], nats: for each 10 s window (the whole recording when shorter), how far the mains
    lines stand above their neighbourhood (log power, the median over the window's 2 s spectra, the mean of the
    two most prominent of the 4 harmonics, at whichever of 50 and 60 Hz is stronger). Around 1-2 for music, 5 and
    more for audible hum. frequency: float[windows], that mains frequency in Hz. seconds: where each window
    starts."""

    strength: np.ndarray
    frequency: np.ndarray
    seconds: np.ndarray


def mains_hum(waveform: np.ndarray, sample_rate: int) -> MainsHum:
    """:class:`MainsHum` of a mono waveform float[samples] at ``sample_rate`` Hz (any level; silence scores 0)."""
    top = HARMONICS * max(MAINS_HZ) + NEIGHBOURS_HZ[1]
    if sample_rate < 4 * top:
        raise ParameterError(f"mains hum needs a sample rate of at least {4 * top:g} Hz, got {sample_rate}")
    spectra = _log_spectra(np.asarray(waveform, dtype=np.float32), sample_rate)  # [segments, bins]
    per_mains = np.stack([_line_prominence(spectra, mains) for mains in MAINS_HZ])  # [mains, segments, harmonics]
    hop = SEGMENT_SECONDS / 2  # a segment starts every hop seconds
    step = round(WINDOW_SECONDS / 2 / hop)  # windows start every half window
    span = round((WINDOW_SECONDS - SEGMENT_SECONDS) / hop) + 1  # the segments inside one window
    starts = list(range(0, max(1, per_mains.shape[1] - span + 1), step))
    strength = np.empty((len(MAINS_HZ), len(starts)))
    for w, first in enumerate(starts):
        steady = np.median(per_mains[:, first:first + span], axis=1)  # [mains, harmonics]
        strength[:, w] = np.sort(steady, axis=1)[:, -STRONGEST:].mean(1)
    best = strength.argmax(0)
    return MainsHum(strength[best, np.arange(len(starts))], np.asarray(MAINS_HZ)[best],
                    np.asarray(starts, dtype=np.float64) * hop)


def _log_spectra(waveform: np.ndarray, sample_rate: int, chunk: int = 32) -> np.ndarray:
    """Log power spectra float[segments, bins] of Hann-windowed SEGMENT_SECONDS segments every half segment, bins up
    to the highest neighbourhood (0.5 Hz apart). A recording shorter than one segment is zero-padded."""
    length = round(SEGMENT_SECONDS * sample_rate)
    peak = np.abs(waveform).max() if waveform.size else 0.0
    x = torch.from_numpy(waveform / peak if peak > 0 else np.zeros(length, np.float32))
    if len(x) < length:
        x = torch.nn.functional.pad(x, (0, length - len(x)))
    frames = x.unfold(0, length, length // 2)  # [segments, length], a view
    keep = int((HARMONICS * max(MAINS_HZ) + NEIGHBOURS_HZ[1]) * SEGMENT_SECONDS) + 2
    window = torch.hann_window(length, periodic=False)
    out = [torch.fft.rfft(frames[i:i + chunk] * window, dim=1)[:, :keep].abs().square()  # chunks bound the memory
           for i in range(0, len(frames), chunk)]
    return torch.log(torch.cat(out).double() + 1e-12).numpy()


def _line_prominence(spectra: np.ndarray, mains: float) -> np.ndarray:
    """How far each harmonic's line stands above its neighbourhood in each spectrum: float[segments, harmonics],
    nats (the largest log power within LINE_HALF_WIDTH_HZ minus the median over NEIGHBOURS_HZ on both sides)."""
    per_hz = SEGMENT_SECONDS
    half, near, far = (round(v * per_hz) for v in (LINE_HALF_WIDTH_HZ, *NEIGHBOURS_HZ))
    out = []
    for harmonic in range(1, HARMONICS + 1):
        k = round(harmonic * mains * per_hz)
        line = spectra[:, k - half:k + half + 1].max(1)
        around = np.concatenate([spectra[:, k - far:k - near], spectra[:, k + near + 1:k + far + 1]], axis=1)
        out.append(line - np.median(around, axis=1))
    return np.stack(out, axis=1)
