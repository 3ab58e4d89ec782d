from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
from midi_fixtures import (
    MELODY_NOTES,
    write_corrupt,
    write_drums_only,
    write_empty,
    write_melody,
    write_out_of_range,
    write_tempo_change,
    write_truncated,
)

from audiovae.errors import AudioVAEError, MidiReadError, ParameterError
from audiovae.midi import (
    RollConfig,
    clean_roll,
    join_segments,
    load_midi,
    midi_to_roll,
    render_audio,
    roll_notes,
    roll_to_midi,
    save_roll_png,
    segment_roll,
    synthesize,
    write_midi,
)
from audiovae.midi import render

CONFIG = RollConfig()


def expected_roll(notes, steps, config=CONFIG):
    roll = np.zeros((2, steps, config.num_pitches), dtype=bool)
    for pitch, start, end in notes:
        roll[0, start, pitch - config.pitch_low] = True
        roll[1, start:end, pitch - config.pitch_low] = True
    return roll


def test_roll_config_defaults_and_validation():
    assert (CONFIG.num_pitches, CONFIG.segment_steps, CONFIG.steps_per_bar) == (88, 64, 16)
    assert RollConfig(**CONFIG.to_dict()) == CONFIG
    with pytest.raises(ParameterError):
        RollConfig(pitch_low=60, pitch_high=59)
    with pytest.raises(ParameterError):
        RollConfig(steps_per_quarter=0)


def test_melody_roll_matches_hand_written_notes(tmp_path):
    roll = midi_to_roll(write_melody(tmp_path), config=CONFIG)
    assert roll.dtype == bool and roll.shape == (2, 17, 88)
    np.testing.assert_array_equal(roll, expected_roll(MELODY_NOTES, 17))
    # the repeated C4 keeps two onsets inside one unbroken sustain run; drum pitch 36 is absent
    c4 = 60 - CONFIG.pitch_low
    assert roll[0, :4, c4].tolist() == [True, False, True, False] and roll[1, :4, c4].all()
    assert not roll[:, :, 36 - CONFIG.pitch_low].any()


def test_tempo_change_stays_on_grid(tmp_path):
    path, notes = write_tempo_change(tmp_path)
    assert len(load_midi(path).get_tempo_changes()[0]) == 2
    roll = midi_to_roll(path, config=CONFIG)
    np.testing.assert_array_equal(roll, expected_roll(notes, 48))


@pytest.mark.parametrize("make", ["melody", "tempo"])
def test_midi_roll_midi_roll_is_exact(tmp_path, make):
    path = write_melody(tmp_path) if make == "melody" else write_tempo_change(tmp_path)[0]
    roll = midi_to_roll(path, config=CONFIG)
    pm = roll_to_midi(roll, config=CONFIG, tempo=97.0, program=5, velocity=70)
    np.testing.assert_array_equal(midi_to_roll(pm, config=CONFIG), roll)
    written = write_midi(pm, tmp_path / "out" / "again.mid")
    back = load_midi(written)
    np.testing.assert_array_equal(midi_to_roll(back, config=CONFIG), roll)
    assert back.get_tempo_changes()[1] == pytest.approx([97.0], abs=1e-3)  # stored as whole microseconds per quarter
    assert {(n.velocity, i.program) for i in back.instruments for n in i.notes} == {(70, 5)}
    assert sorted(tmp_path.joinpath("out").iterdir()) == [written]  # no temp file left behind


def test_round_trip_with_other_grid_and_range(tmp_path):
    config = RollConfig(steps_per_quarter=8, pitch_low=48, pitch_high=72)
    roll = midi_to_roll(write_melody(tmp_path), config=config)
    assert roll.shape == (2, 33, 25)
    assert roll[:, :, 72 - 48].sum(axis=1).tolist() == [1, 1] and roll[0, 32, 72 - 48]  # top key kept, 1 step
    np.testing.assert_array_equal(midi_to_roll(roll_to_midi(roll, config=config), config=config), roll)


@pytest.mark.parametrize(
    "make, reason",
    [
        (write_empty, "no notes"),
        (write_drums_only, "drums only"),
        (write_out_of_range, "no notes in pitch range"),
        (write_corrupt, "not a MIDI file / corrupt"),
        (write_truncated, "not a MIDI file / corrupt"),
    ],
)
def test_unusable_files_raise_midi_read_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(MidiReadError) as info:
        midi_to_roll(path, config=CONFIG)
    assert info.value.reason.split(" (")[0] == reason
    assert info.value.path == str(path)


def test_missing_file_and_zero_byte_file(tmp_path):
    with pytest.raises(MidiReadError, match="no such file"):
        load_midi(tmp_path / "nope.mid")
    (tmp_path / "zero.mid").write_bytes(b"")
    with pytest.raises(MidiReadError, match="corrupt"):
        load_midi(tmp_path / "zero.mid")


def test_clean_roll_enforces_onset_sustain_consistency():
    roll = np.zeros((2, 6, 3), dtype=bool)
    roll[0, 1, 0] = True  # onset without sustain -> gains sustain
    roll[1, 3:5, 1] = True  # sustain from silence -> gains an onset at 3
    roll[1, 0:2, 2] = True  # sustain at step 0 -> onset at 0
    cleaned = clean_roll(roll)
    assert cleaned[1, 1, 0] and cleaned[0, 1, 0]
    assert cleaned[0, :, 1].tolist() == [False, False, False, True, False, False]
    assert cleaned[0, 0, 2] and not cleaned[0, 1, 2]
    probs = roll.astype(np.float32) * 0.8 + 0.1
    np.testing.assert_array_equal(clean_roll(probs[None].repeat(3, axis=0)), cleaned[None].repeat(3, axis=0))
    np.testing.assert_array_equal(clean_roll(cleaned), cleaned)


def test_roll_notes_splits_at_onsets_and_run_ends():
    roll = expected_roll([(60, 0, 2), (60, 2, 5), (60, 7, 8), (61, 3, 4)], 10)
    assert roll_notes(roll) == [(39, 0, 2), (39, 2, 5), (39, 7, 8), (40, 3, 4)]


def test_segment_and_join():
    config = RollConfig(segment_bars=1)  # 16 steps
    notes = [(60, 0, 4), (62, 14, 20), (62, 20, 22), (64, 40, 41)]  # steps 16..31 hold only the tail of 62
    roll = expected_roll(notes, 41)
    segments = segment_roll(roll, config=config)
    assert segments.shape == (3, 2, 16, 88) and segments.dtype == bool
    np.testing.assert_array_equal(join_segments(segments), np.pad(roll, ((0, 0), (0, 7), (0, 0))))
    # 62 is sustained across the first boundary (no onset at step 16) and re-struck at step 20
    assert not segments[1, 0, 0].any() and segments[1, 1, 0, 62 - 21]
    joined_notes = roll_notes(join_segments(segments[:2]))
    assert (41, 14, 20) in joined_notes and (41, 20, 22) in joined_notes
    empty_middle = expected_roll([(60, 0, 4), (64, 40, 41)], 41)
    assert len(segment_roll(empty_middle, config=config)) == 2  # steps 16..31 are silent: dropped
    overlapping = segment_roll(roll, config=config, hop_steps=8)  # starts 0, 8, 16, 24 (silent: dropped), 32
    assert overlapping.shape[0] == 4 and overlapping[3, 1, 8, 64 - 21]


def test_synthesize_builtin(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes.append(pretty_midi.Note(100, 69, 0.1, 0.6))  # A4 = 440 Hz
    pm.instruments.append(inst)
    sr = 16000
    audio = synthesize(pm, sample_rate=sr)
    assert audio.dtype == np.float32
    assert len(audio) == int(np.ceil(0.6 * sr)) + round(render.RELEASE_S * sr)
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-6)
    assert np.abs(audio[: int(0.09 * sr)]).max() == 0.0
    spectrum = np.abs(np.fft.rfft(audio[int(0.2 * sr): int(0.5 * sr)]))
    assert np.fft.rfftfreq(int(0.3 * sr), 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=5)


def test_render_audio_from_roll_uses_builtin_synth(tmp_path, monkeypatch):
    monkeypatch.delenv(render.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(render, "DEBIAN_SOUNDFONTS", ())
    roll = midi_to_roll(write_melody(tmp_path), config=CONFIG)  # 17 steps at 120 bpm = 2.125 s
    audio = render_audio(roll, sample_rate=8000, config=CONFIG)
    assert len(audio) == 17000 + round(render.RELEASE_S * 8000)
    assert np.sqrt(np.mean(audio ** 2)) > 0.05


def test_named_soundfont_must_exist(tmp_path, monkeypatch):
    with pytest.raises(AudioVAEError, match="does not exist"):
        render.find_soundfont(tmp_path / "missing.sf2")
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(tmp_path / "env.sf2"))
    with pytest.raises(AudioVAEError, match="env.sf2"):
        render.find_soundfont()


def test_save_roll_png(tmp_path):
    roll = midi_to_roll(write_melody(tmp_path), config=CONFIG)
    out = save_roll_png(roll, tmp_path / "pics" / "roll.png", config=CONFIG, title="melody")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "pics").iterdir()] == ["roll.png"]
    with pytest.raises(ParameterError):
        save_roll_png(roll[:, :, :40], tmp_path / "bad.png", config=CONFIG)


def test_long_high_resolution_file_is_retimed_not_refused(tmp_path):
    from midi_fixtures import HIGH_RESOLUTION, write_high_resolution

    from audiovae.midi.pianoroll import read_midi

    path = write_high_resolution(tmp_path)
    with pytest.raises(ValueError, match="likely corrupt"):  # what pretty_midi alone does with it
        pretty_midi.PrettyMIDI(str(path))
    pm, retimed_from = read_midi(path)
    assert retimed_from == HIGH_RESOLUTION and pm.resolution == 480
    roll = midi_to_roll(path, config=RollConfig())
    c4, d4 = 60 - 21, 62 - 21
    assert roll.shape[1] == 1101 * 4
    assert np.flatnonzero(roll[1, :, c4]).tolist() == list(range(16)) and roll[0, 0, c4]
    assert np.flatnonzero(roll[1, :, d4]).tolist() == list(range(4400, 4404)) and roll[0, 4400, d4]
    assert read_midi(write_melody(tmp_path))[1] is None
