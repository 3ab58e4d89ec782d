"""Note-level genre habits on rolls: short notes dropped, steady voices kept and held, and the statistics behind
them measured on segments."""
import numpy as np
import pytest
import torch

from audiovae.errors import ParameterError
from audiovae.midi.generate import rolls_for, shortest_note, steady_voice_count
from audiovae.midi.pianoroll import ONSET, SUSTAIN, VELOCITY, roll_notes, with_velocity
from audiovae.midi.voicing import drop_short_notes, hold_voices, keep_voices, shortest_notes, steady_voices


def roll_of(notes, steps=16, pitches=6, velocity=None):
    """A bool roll [2, steps, pitches] (or uint8 [3, ...] with ``velocity``) from (pitch, start, end) notes."""
    roll = np.zeros((2, steps, pitches), dtype=bool)
    for pitch, start, end in notes:
        roll[ONSET, start, pitch] = True
        roll[SUSTAIN, start:end, pitch] = True
    return roll if velocity is None else with_velocity(roll, np.full((steps, pitches), velocity))


def notes_of(roll):
    return sorted(roll_notes(np.asarray(roll)[:2] > 0))


def test_drop_short_notes_removes_only_the_short_ones_with_their_velocity():
    roll = roll_of([(0, 0, 3), (1, 4, 5), (2, 2, 4), (2, 4, 5), (3, 6, 12)], velocity=80)  # (2, 4, 5): a restrike
    out = drop_short_notes(roll, 2)
    assert notes_of(out) == [(0, 0, 3), (2, 2, 4), (3, 6, 12)]
    assert out[VELOCITY, 4, 1] == 0 and out[VELOCITY, 4, 2] == 0 and out[VELOCITY, 6, 3] == 80
    assert notes_of(drop_short_notes(roll, 1)) == notes_of(roll)
    with pytest.raises(ParameterError):
        drop_short_notes(roll, 0)


def test_keep_voices_keeps_sounding_notes_and_drops_a_new_note_whole():
    # two voices allowed: 0 and 1 sound first; 2 starts while both sound (dropped whole, even once 0 ends);
    # 2's next note starts when a voice is free and sounds
    roll = roll_of([(0, 0, 4), (1, 0, 8), (2, 2, 6), (2, 8, 10)])
    priority = np.full((16, 6), 0.5)
    priority[:, 2] = 0.99  # a more probable new note still waits for a voice
    out = keep_voices(roll, 2, priority)
    assert notes_of(out) == [(0, 0, 4), (1, 0, 8), (2, 8, 10)]
    assert out[SUSTAIN].sum(-1).max() <= 2
    # among new notes starting together, the more probable ones take the free voices
    chord = roll_of([(0, 0, 4), (1, 0, 4), (2, 0, 4)])
    priority = np.zeros((16, 6))
    priority[:, [0, 2]] = 0.9
    assert notes_of(keep_voices(chord, 2, priority)) == [(0, 0, 4), (2, 0, 4)]


def test_hold_voices_fills_gaps_up_to_the_limit_without_new_notes():
    roll = roll_of([(0, 0, 2), (1, 4, 6), (2, 12, 14)], velocity=90)
    out = hold_voices(roll, 1, longest_hold=2)
    # a stopped note is held for at most 2 extra steps: the first until the next note starts, the others for 2
    assert notes_of(out) == [(0, 0, 4), (1, 4, 8), (2, 12, 16)]
    assert np.array_equal(out[ONSET], roll[ONSET]) and np.array_equal(out[VELOCITY], roll[VELOCITY])
    chord = roll_of([(0, 0, 4), (1, 0, 2), (2, 0, 2)])
    assert hold_voices(chord, 2, longest_hold=8)[SUSTAIN].sum(-1).max() <= 3  # never beyond the voices it had
    assert hold_voices(chord, 2, longest_hold=8)[SUSTAIN, 2:8].sum(-1).max() == 2


def test_genre_statistics_tell_steady_voices_and_short_notes():
    steady = np.stack([roll_of([(p, s, s + 4) for p in range(4) for s in range(0, 16, 4)]) for _ in range(5)])
    loose = np.stack([roll_of([(0, 0, 16), (1, 0, 2), (2, 8, 9), (3, 12, 13)]) for _ in range(5)])
    segments, ids = np.concatenate([steady, loose]), np.repeat([0, 1], 5)
    assert steady_voices(segments, ids, ["chorale", "loose"]) == {"chorale": 4}
    assert shortest_notes(segments, ids, ["chorale", "loose"]) == {"chorale": 4, "loose": 1}


class Stub:
    """What rolls_for reads of a model: its genres, grid and stored genre habits."""

    class roll:
        steps_per_quarter = 4

    conditions = ["chorale", "loose"]
    latent_stats = {"shortest_note": {"chorale": 2, "loose": 1}, "steady_voices": {"chorale": 2}}


def test_rolls_for_applies_the_genres_habits_and_a_mixture_allows_what_either_does():
    probabilities = np.zeros((1, 2, 16, 6), dtype=np.float32)
    for pitch, start, end in [(0, 0, 8), (1, 0, 3), (2, 0, 8), (3, 5, 6)]:
        probabilities[0, ONSET, start, pitch] = 0.9
        probabilities[0, SUSTAIN, start:end, pitch] = 0.6 + 0.1 * pitch
    chorale = rolls_for(Stub, probabilities, torch.tensor([0]))[0]
    # 3 voices start at once: the 2 most probable (pitches 2 and 1) sound, each held for up to a beat (4 steps)
    # once it stops, as no other note takes its voice; the blip at pitch 3 is too short
    assert notes_of(chorale) == [(1, 0, 7), (2, 0, 12)]
    assert notes_of(rolls_for(Stub, probabilities, torch.tensor([1]))[0]) == [(0, 0, 8), (1, 0, 3), (2, 0, 8), (3, 5, 6)]
    mixture = torch.tensor([[0.5, 0.5]])
    assert shortest_note(Stub, mixture) == 1 and steady_voice_count(Stub, mixture) is None
    assert shortest_note(Stub, None) is None and steady_voice_count(Stub, torch.tensor([0])) == 2
