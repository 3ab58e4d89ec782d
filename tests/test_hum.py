"""Mains hum: a steady 50/60 Hz line found under changing bass notes, located in time, and flagged by default-mel's
calibration as a whole-recording defect."""
from __future__ import annotations

import numpy as np
import pytest

from audiovae.audio.hum import mains_hum
from audiovae.errors import ParameterError

RATE = 22050


def notes(seconds: float, seed: int = 0) -> np.ndarray:
    """A bass line and chords that change every 0.25-0.5 s, on equal-tempered pitches from 41 Hz (E1) up, with
    harmonics and a little noise: a busy low end like a band recording's."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    start = 0
    while start < len(out):
        length = int(rng.choice([0.25, 0.5]) * RATE)
        t = np.arange(min(length, len(out) - start)) / RATE
        envelope = np.exp(-3 * t)
        for pitch in [28 + rng.integers(0, 24)] + list(40 + rng.integers(0, 24, 2)):  # MIDI 28 = E1
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            out[start:start + len(t)] += sum(envelope * np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        start += length
    return out / np.abs(out).max() + 0.01 * rng.standard_normal(len(out))


def hum(seconds: float, mains: float, start: float = 0.0) -> np.ndarray:
    """The mains frequency and its third harmonic at -20 and -26 dB of the music's peak (from ``start`` s on)."""
    t = np.arange(int(seconds * RATE)) / RATE
    line = 0.1 * np.sin(2 * np.pi * mains * t) + 0.05 * np.sin(2 * np.pi * 3 * mains * t)
    return np.where(t >= start, line, 0.0)


def test_a_steady_line_stands_out_under_changing_notes_at_its_own_mains_frequency():
    music = notes(10.0)
    clean = mains_hum(music, RATE)
    assert clean.strength.shape == (1,) and float(clean.strength[0]) < 3.0
    for mains in (50.0, 60.0):
        found = mains_hum(music + hum(10.0, mains), RATE)
        assert float(found.strength[0]) > float(clean.strength[0]) + 3.0
        assert float(found.frequency[0]) == mains


def test_a_long_recording_gets_a_strength_every_5_s_and_hum_that_starts_late_shows_late():
    music = notes(30.0, seed=1)
    found = mains_hum(music + hum(30.0, 50.0, start=20.0), RATE)
    assert found.seconds.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert float(found.strength[-1]) > float(found.strength[:2].max()) + 3.0


def test_silence_short_clips_and_low_sample_rates():
    assert mains_hum(np.zeros(RATE), RATE).strength.tolist() == [0.0]
    assert mains_hum(notes(1.0), RATE).strength.shape == (1,)  # shorter than one 2 s spectrum: padded
    with pytest.raises(ParameterError, match="sample rate"):
        mains_hum(np.ones(800), 800)


def test_default_mel_flags_a_hummed_recording_as_a_whole_and_not_the_clean_one():
    import audiovae
    from audiovae.scoring import calibration_of, inspect_waveform

    model = audiovae.load("default-mel")
    music = notes(10.0, seed=2)
    clean = inspect_waveform(model, music.astype(np.float32))
    hummed = inspect_waveform(model, (music + hum(10.0, 60.0)).astype(np.float32))
    calibration = calibration_of(model)
    assert clean.hum < calibration.hum_threshold and not any("hum" in why for why in clean.whole)
    assert hummed.hum > calibration.hum_threshold and hummed.hum_hz == 60.0
    assert any(why.startswith("mains hum at 60 Hz") for why in hummed.whole)
    # the file's score carries the hum on the map's scale, above the threshold
    assert hummed.score == pytest.approx(max(float(hummed.curve.max()),
                                             calibration.on_map_scale(hummed.motion, calibration.motion_threshold),
                                             calibration.on_map_scale(hummed.hum, calibration.hum_threshold)))
    assert hummed.score > calibration.threshold
