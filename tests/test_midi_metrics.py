"""Note statistics read from MIDI notes: features of hand-made windows, windows on the tempo map, overlapping area,
and the note-statistics judge."""
from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from audiovae.errors import ParameterError
from audiovae.midi.metrics import (FEATURES, NoteStatisticsJudge, feature_matrix, midi_notes, note_windows,
                                   overlapping_areas, window_features)


def _piece(notes, tempo: float = 120.0, drums=()) -> pretty_midi.PrettyMIDI:
    """notes: (pitch, start quarter, end quarter, velocity)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst, kit = pretty_midi.Instrument(0), pretty_midi.Instrument(0, is_drum=True)
    beat = 60.0 / tempo
    inst.notes += [pretty_midi.Note(v, p, s * beat, e * beat) for p, s, e, v in notes]
    kit.notes += [pretty_midi.Note(100, 36, s * beat, (s + 0.5) * beat) for s in drums]
    pm.instruments += [inst, kit]
    return pm


def test_features_of_a_hand_made_window():
    # C-E-G chord on beat 1 (a quarter long), then a melody D5, F5 on the off-beat sixteenths, velocities 60-100
    notes = [(60, 0, 1, 60), (64, 0, 1, 80), (67, 0, 1, 100), (74, 1.25, 1.75, 80), (77, 1.75, 3.75, 80)]
    f = window_features(midi_notes(_piece(notes, drums=(0, 1, 2))))
    assert f["pitch_count"] == 5 and f["note_count"] == 5 and f["pitch_range"] == 17
    assert f["top_voice_interval"] == pytest.approx((7 + 3) / 2)        # 67 -> 74 -> 77
    assert f["inter_onset_interval"] == pytest.approx(1.75 / 2)          # onsets 0, 1.25, 1.75
    assert f["polyphony_mean"] == pytest.approx((3 + 1 + 1) / 3) and f["polyphony_max"] == 3
    assert f["velocity_mean"] == 80 and f["velocity_spread"] == pytest.approx(np.std([60, 80, 100, 80, 80]))
    assert f["pitch_class_histogram"][[0, 4, 7, 2, 5]].tolist() == [0.2] * 5
    assert f["note_length_histogram"].tolist() == [0.0, 0.2, 0.6, 0.2, 0.0, 0.0]   # 0.5; 1, 1, 1; 2 quarters
    assert f["onset_position_histogram"].tolist() == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
    assert feature_matrix([f, f]).shape == (2, 9 + 12 + 6 + 4)
    with pytest.raises(ParameterError):
        window_features(np.zeros((0, 4)))


def test_windows_follow_the_tempo_map_and_skip_empty_ones():
    pm = _piece([(60, 0, 1, 90), (62, 17, 18, 90), (64, 40, 41, 90)], tempo=90.0)
    notes = midi_notes(pm)
    assert notes[:, 1].tolist() == pytest.approx([0, 17, 40])          # quarters, whatever the tempo
    windows = note_windows(notes, quarters=16)
    assert [w[:, 1].tolist() for w in windows] == [pytest.approx([0]), pytest.approx([1]), pytest.approx([8])]


def test_overlapping_area_is_high_for_the_same_music_and_low_for_different_music():
    rng = np.random.default_rng(0)

    def windows(centre: int, spread: float, count: int = 40):
        out = []
        for _ in range(count):
            pitches = rng.normal(centre, spread, 8).round()
            out.append(window_features(np.array([[p, i * 0.5, i * 0.5 + 0.5, 90] for i, p in enumerate(pitches)])))
        return out

    real = windows(60, 3)
    same, different = overlapping_areas(windows(60, 3), real), overlapping_areas(windows(84, 12), real)
    assert set(same) == set(FEATURES) | {"mean"}
    assert same["mean"] > 0.8 and different["pitch_range"] < 0.3 and different["mean"] < same["mean"]
    with pytest.raises(ParameterError, match="at least 2"):
        overlapping_areas(real[:1], real)


def test_note_statistics_judge_tells_dense_chords_from_a_sparse_melody():
    rng = np.random.default_rng(1)
    chords = [window_features(np.array([[p + rng.integers(0, 3), b, b + 1, 80] for b in range(16)
                                        for p in (48, 55, 64, 72)])) for _ in range(30)]
    melody = [window_features(np.array([[60 + rng.integers(0, 12), b * 0.5, b * 0.5 + 0.5, 60 + rng.integers(0, 40)]
                                        for b in range(32)])) for _ in range(30)]
    judge = NoteStatisticsJudge().fit(chords[:20] + melody[:20], np.array([0] * 20 + [1] * 20))
    assert judge.predict(chords[20:] + melody[20:]).tolist() == [0] * 10 + [1] * 10


def test_voice_counts_and_limits():
    from audiovae.midi.pianoroll import limit_voices, voice_counts

    segments = np.zeros((2, 2, 4, 6), dtype=bool)
    segments[0, 1, :, 2] = True                      # genre 0: one voice
    segments[1, 1, :, :3] = True                     # genre 1: three voices
    assert voice_counts(segments, np.array([0, 1]), ["solo", "trio"]) == {"solo": 1, "trio": 3}
    probabilities = np.zeros((2, 3, 6), dtype=np.float32)
    probabilities[1] = [[0.9, 0.8, 0.1, 0.7, 0.0, 0.6]] * 3
    probabilities[0] = probabilities[1] * 0.5
    two = limit_voices(probabilities, 2)
    assert (two[1] > 0).sum(-1).tolist() == [2, 2, 2] and two[1, 0, :2].tolist() == pytest.approx([0.9, 0.8])
    assert two[0, 0, 3] == 0 and two[0, 0, 0] == pytest.approx(0.45)   # onsets follow the kept sustains
    assert (limit_voices(probabilities, 1)[1] > 0).sum(-1).tolist() == [1, 1, 1]
    assert np.array_equal(limit_voices(probabilities, 6), probabilities)
    with pytest.raises(ParameterError):
        limit_voices(probabilities, 0)


def test_repetition_share_counts_repeated_bars():
    from audiovae.midi.form import bar_similarity, piece_windows, repetition_share

    roll = np.zeros((2, 64, 12), dtype=bool)  # 4 bars of 16 steps: A B A (silence)
    for bar, pitch in ((0, 3), (1, 7), (2, 3)):
        roll[0, bar * 16, pitch] = True
        roll[1, bar * 16: bar * 16 + 8, pitch] = True
    similarity = bar_similarity(roll, 16)
    assert similarity.shape == (4, 4) and similarity[0, 2] == 1.0 and similarity[0, 1] == 0.0
    assert similarity[3, 3] == 0.0  # an empty bar is like nothing
    assert repetition_share(roll, 16) == pytest.approx(1 / 3)  # of the pairs (A B), (A A), (B A)
    assert np.isnan(repetition_share(roll[:, :16], 16))
    assert [w.shape[1] for w in piece_windows(roll, 2, 16)] == [32, 32]


def test_segment_repeats_counts_segments_that_come_back():
    from audiovae.midi.form import segment_repeats

    a, b = np.zeros((2, 8, 6), dtype=bool), np.zeros((2, 8, 6), dtype=bool)
    a[:, 0:4, 1] = True
    b[:, 2:6, 4] = True
    half = np.zeros_like(a)  # the overlapping segments between, which a hop of 2 skips
    segments = np.stack([a, half, b, half, a, half, b, a])  # piece 0: A B A B; piece 1: A
    pieces = np.array([0] * 7 + [1])
    assert segment_repeats(segments, pieces, np.zeros(8, np.int64), ["g"]) == {"g": pytest.approx(2 / 3)}
