"""Dynamics: rolls that carry each onset's velocity, MIDI -> roll -> MIDI with velocities, the folder cache, and a
PianoRollCVAE that reads and writes them."""
from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch

from audiovae.checkpoint import load as load_model
from audiovae.checkpoint import write_model_folder
from audiovae.data.midi_folder import MidiFolder
from audiovae.errors import ParameterError
from audiovae.midi import RollConfig
from audiovae.midi.generate import finish_roll, generate_pieces, transfer_roll
from audiovae.midi.pianoroll import (clean_roll, join_segments, midi_to_roll, roll_tensor, roll_to_midi, segment_roll,
                                     split_velocity, with_velocity)
from audiovae.midi.reconstruction import reconstruction_metrics
from audiovae.models.pianoroll_cvae import PianoRollCVAE

STEP_S = 0.125  # a sixteenth at 120 bpm
ROLL = RollConfig(segment_bars=2, pitch_low=48, pitch_high=71)  # segments [C, 32, 24]


def write_dynamics(path, notes):
    """One instrument at 120 bpm; notes as (pitch, start_step, end_step, velocity)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0)
    inst.notes += [pretty_midi.Note(velocity=v, pitch=p, start=s * STEP_S, end=e * STEP_S) for p, s, e, v in notes]
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


NOTES = [(60, 0, 4, 40), (64, 0, 2, 110), (64, 2, 4, 70), (67, 8, 16, 127), (55, 20, 40, 1)]


def test_midi_roll_midi_keeps_every_velocity(tmp_path):
    path = write_dynamics(tmp_path / "dyn.mid", NOTES)
    roll = midi_to_roll(path, config=ROLL, velocity=True)
    assert roll.dtype == np.uint8 and roll.shape == (3, 40, 24)
    plain = midi_to_roll(path, config=ROLL)
    assert np.array_equal(split_velocity(roll)[0], plain)  # the same notes as without dynamics
    assert roll[2, 0, 60 - 48] == 40 and roll[2, 2, 64 - 48] == 70 and roll[2, 1, 64 - 48] == 0
    back = roll_to_midi(roll, config=ROLL, tempo=120.0)
    written = sorted((n.pitch, round(n.start / STEP_S), round(n.end / STEP_S), n.velocity)
                     for n in back.instruments[0].notes)
    assert written == sorted(NOTES)
    assert {n.velocity for n in roll_to_midi(plain, config=ROLL, velocity=77).instruments[0].notes} == {77}


def test_segments_and_joins_keep_velocities():
    roll = np.zeros((3, 70, 24), dtype=np.uint8)
    roll[:2, 3:9, 5] = 1
    roll[2, 3, 5] = 99
    roll[:2, 40:41, 7] = 1
    roll[2, 40, 7] = 12
    segments = segment_roll(roll, config=ROLL)
    assert segments.dtype == np.uint8 and segments.shape == (2, 3, 32, 24)  # the silent third segment is dropped
    assert segments[0, 2, 3, 5] == 99 and segments[1, 2, 8, 7] == 12
    assert np.array_equal(join_segments(segments)[:, :41], roll[:, :41])


def test_with_velocity_from_probabilities_and_errors():
    roll = np.zeros((2, 4, 3), dtype=bool)
    roll[:, 1, 2] = True
    out = with_velocity(roll, np.full((4, 3), 0.5, dtype=np.float32))
    assert out.dtype == np.uint8 and out[2, 1, 2] == 64 and out[2].sum() == 64  # only the onset cell
    assert with_velocity(roll, np.zeros((4, 3), dtype=np.float32))[2, 1, 2] == 1  # an onset is never silent
    assert np.array_equal(clean_roll(out), roll)
    with pytest.raises(ParameterError):
        split_velocity(np.zeros((4, 4, 3)))
    x = roll_tensor(out)
    assert x.dtype == torch.float32 and x[2, 1, 2] == pytest.approx(64 / 127)


def test_folder_caches_velocities_and_serves_them(tmp_path):
    for i in range(4):
        write_dynamics(tmp_path / "data" / "folk" / f"p{i}.mid", [(60 + i, 0, 4, 30 + 20 * i), (62, 8, 12, 100)])
    folder = MidiFolder(tmp_path / "data", cache_dir=tmp_path / "cache", split="all", val_fraction=0.0,
                        config=ROLL, progress=False, velocity=True)
    assert folder.velocities.shape == (4, 32, 24) and folder.velocities.dtype == np.uint8
    assert sorted(folder.velocities[:, 0].max(1).tolist()) == [30, 50, 70, 90]
    x, _ = folder[0]
    assert x.shape == (3, 32, 24) and float(x[2].max()) == pytest.approx(100 / 127)
    again = MidiFolder(tmp_path / "data", cache_dir=tmp_path / "cache", split="all", val_fraction=0.0,
                       config=ROLL, progress=False)  # read back from the cache, served without dynamics
    assert again.report.cached == 4 and np.array_equal(again.velocities, folder.velocities)
    assert again[0][0].shape == (2, 32, 24)


def velocity_model(seed=0) -> PianoRollCVAE:
    torch.manual_seed(seed)
    return PianoRollCVAE(roll=ROLL.to_dict(), genres=["a", "b"], cond_dim=4, substeps=4, channels=[16],
                         latent_dim=16, velocity=True).eval()


def random_dynamics(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    onset = rng.random((n, 32, 24)) < 0.05
    sustain = onset | (rng.random((n, 32, 24)) < 0.1)
    return with_velocity(clean_roll(np.stack([onset, sustain], 1)), rng.integers(1, 128, (n, 32, 24)))


def test_model_reads_and_writes_velocities(tmp_path):
    model = velocity_model()
    rolls = random_dynamics(3)
    x = roll_tensor(rolls)
    cond = torch.tensor([0, 1, 0])
    assert model.segment_shape == (3, 32, 24)
    logits = model.decode(model.encode(x, cond).mode(), cond)
    assert logits.shape == (3, 3, 32, 24)
    # The velocity term counts at onsets only, and grows when the target moves away from the prediction.
    nll = model.frame_nll(x, logits)
    louder = x.clone()
    louder[:, 2] = x[:, 0]  # every onset at velocity 127
    assert (model.frame_nll(louder, logits).sum(1) != nll.sum(1)).all()
    quiet_off_onsets = x.clone()
    quiet_off_onsets[:, 2] += (1 - x[:, 0]) * 0.5  # values off the onset cells are ignored
    assert torch.allclose(model.frame_nll(quiet_off_onsets, logits), nll)
    # A roll without dynamics is read at the default velocity; the same model saves and loads exactly.
    plain = x[:, :2]
    assert torch.allclose(model.encode(plain, cond).mean, model.encode(model.as_input(plain), cond).mean)
    folder = write_model_folder(tmp_path / "m", model)
    loaded = load_model(folder)
    assert loaded.velocity and torch.equal(loaded.decode(torch.ones(1, 16)), model.decode(torch.ones(1, 16)))
    metrics = reconstruction_metrics(model, rolls[:, :2].astype(bool), np.zeros(3, np.int64),
                                     velocities=rolls[:, 2])
    assert 0.0 <= metrics["val/velocity_mae"] <= 127.0


def test_generated_pieces_carry_the_decoded_velocities():
    model = velocity_model()
    with torch.no_grad():
        bias = model.conv_out.bias.view(3, -1)
        bias[:2].fill_(0.5)  # an untrained model would stay silent; make cells likely
        bias[2].fill_(-1.0)   # sigmoid(-1) * 127 = 34
        model.conv_out.weight.view(3, -1, 16)[2].zero_()
    piece = generate_pieces(model, n=1, bars=3, genre="a", seed=0)[0]
    assert piece.dtype == np.uint8 and piece.shape == (3, 48, 24)
    onsets = piece[0].astype(bool)
    assert onsets.any() and (piece[2][onsets] == 34).all() and not piece[2][~onsets].any()
    velocities = {n.velocity for n in roll_to_midi(piece, config=ROLL).instruments[0].notes}
    assert velocities == {34}
    moved = transfer_roll(model, random_dynamics(1)[0], to="b", source="a")
    assert moved.shape == (3, 32, 24) and moved.dtype == np.uint8
    probabilities = np.random.default_rng(0).random((2, 3, 8, 5)).astype(np.float32)
    assert finish_roll(probabilities).shape == (2, 3, 8, 5)
    assert finish_roll(probabilities[:, :2]).dtype == bool


def test_long_notes_are_cut_to_the_genres_longest():
    from audiovae.midi.generate import note_length_limit
    from audiovae.midi.pianoroll import limit_note_length, longest_notes, roll_notes

    roll = np.zeros((3, 40, 4), dtype=np.uint8)
    for pitch, start, end in ((1, 0, 30), (2, 10, 14), (2, 20, 22)):  # a 30-step drone and two short notes
        roll[0, start, pitch] = 1
        roll[1, start:end, pitch] = 1
    roll[2] = roll[0] * 80
    cut = limit_note_length(roll, 8)
    assert sorted(roll_notes(cut)) == [(1, 0, 8), (2, 10, 14), (2, 20, 22)]
    assert np.array_equal(cut[[0, 2]], roll[[0, 2]])  # onsets and velocities stay
    segments = np.stack([clean_roll(roll), clean_roll(cut)])
    assert longest_notes(segments, np.array([0, 1]), ["a", "b"], percentile=100) == {"a": 30, "b": 8}
    model = velocity_model()
    model.latent_stats = {"longest_note": {"a": 6, "b": 12}}
    assert note_length_limit(model, torch.tensor([0])) == 6
    assert note_length_limit(model, torch.tensor([[0.5, 0.5]])) == 12  # a mixture allows either genre's longest
    assert note_length_limit(model, None) is None
    with torch.no_grad():
        model.conv_out.weight.zero_()
        model.conv_out.bias.view(3, -1)[0].fill_(-9.0)  # no onsets but the first: one note per pitch ...
        model.conv_out.bias.view(3, -1)[1].fill_(9.0)   # ... held throughout
    piece = generate_pieces(model, n=1, bars=2, genre="a", seed=0)[0]
    assert {e - s for _, s, e in roll_notes(piece)} == {6}


def test_onsets_move_to_the_genres_grid():
    from audiovae.midi.generate import onset_grid
    from audiovae.midi.pianoroll import onset_grids, quantize_onsets, roll_notes

    roll = np.zeros((3, 16, 4), dtype=np.uint8)
    for pitch, start, end, velocity in ((0, 0, 3, 50), (1, 5, 8, 60), (2, 3, 4, 70), (3, 1, 2, 80)):
        roll[0, start, pitch], roll[1, start:end, pitch], roll[2, start, pitch] = 1, 1, velocity
    on_beats = quantize_onsets(roll, [True, False, False, False])
    # (1, 5, 8) waits for the beat at 8 and ends there: dropped; (2, 3, 4) likewise; (3, 1, 2) too.
    assert sorted(roll_notes(on_beats)) == [(0, 0, 3)]
    roll[1, 8:10, 1] = 1  # now the note on pitch 1 lasts past the beat at step 8
    on_beats = quantize_onsets(roll, [True, False, False, False])
    assert sorted(roll_notes(on_beats)) == [(0, 0, 3), (1, 8, 10)]
    assert on_beats[2, 8, 1] == 60 and on_beats[2, 5, 1] == 0 and not on_beats[2, 1:8].any()
    eighths = quantize_onsets(roll, [True, False, True, False])
    assert sorted(roll_notes(eighths)) == [(0, 0, 3), (1, 6, 10)]
    assert np.array_equal(quantize_onsets(roll, [True] * 4), roll)
    with pytest.raises(ParameterError):
        quantize_onsets(roll, [False] * 4)
    segments = np.stack([clean_roll(roll), clean_roll(on_beats)])
    assert onset_grids(segments, np.array([0, 1]), ["free", "beats"], 4, min_share=0.2) == {
        "free": [True, True, False, True], "beats": [True, False, False, False]}
    model = velocity_model()
    model.latent_stats = {"onset_grid": {"a": [True, False, False, False], "b": [True, False, True, False]}}
    assert onset_grid(model, torch.tensor([0])) == [True, False, False, False]
    assert onset_grid(model, torch.tensor([[0.5, 0.5]])) == [True, False, True, False]  # either genre's positions
    with torch.no_grad():
        model.conv_out.bias.view(3, -1)[:2].fill_(0.5)
    piece = generate_pieces(model, n=2, bars=2, genre="a", seed=0)
    starts = [s for roll in piece for _, s, _ in roll_notes(roll)]
    assert starts and all(s % 4 == 0 for s in starts)


def test_velocities_snap_to_the_levels_a_genre_plays():
    from audiovae.midi.generate import velocity_palette
    from audiovae.midi.pianoroll import snap_velocities, velocity_levels

    velocities = np.zeros((3, 4, 2), dtype=np.uint8)
    velocities[0, 0, 0] = velocities[0, 1, 0] = 90
    velocities[1, 0, 0], velocities[1, 2, 1], velocities[1, 3, 1] = 40, 100, 100
    velocities[2, 0, 0] = 41  # a quarter of the loud genre's onsets: under a min_share of 0.3
    assert velocity_levels(velocities, np.array([0, 1, 1]), ["flat", "loud"], min_share=0.3) == {
        "flat": [90], "loud": [100]}
    assert velocity_levels(velocities, np.array([0, 1, 1]), ["flat", "loud"], min_share=0.2)["loud"] == [40, 41, 100]
    roll = with_velocity(np.ones((2, 4, 2), dtype=bool), np.array([[1, 64], [66, 127], [70, 80], [90, 91]],
                                                                  dtype=np.uint8))
    snapped = snap_velocities(roll, [40, 100])
    assert snapped[2].tolist() == [[40, 40], [40, 100], [40, 100], [100, 100]]  # 70 is a tie: it goes low
    assert np.array_equal(snap_velocities(roll, [90])[2], np.full((4, 2), 90))
    model = velocity_model()
    model.latent_stats = {"velocity_levels": {"a": [90], "b": [40, 90, 120]}}
    assert velocity_palette(model, torch.tensor([0])) == [90]
    assert velocity_palette(model, torch.tensor([[0.5, 0.5]])) == [40, 90, 120]
    with torch.no_grad():
        model.conv_out.bias.view(3, -1)[:2].fill_(0.5)
    piece = generate_pieces(model, n=1, bars=2, genre="a", seed=0)[0]
    assert set(piece[2][piece[0] > 0].tolist()) == {90}


def test_genres_can_have_their_own_guidance(tmp_path):
    from audiovae.midi.generate import decode_rolls, default_guidance

    torch.manual_seed(0)
    model = PianoRollCVAE(roll=ROLL.to_dict(), genres=["a", "b"], cond_dim=4, substeps=4, channels=[16],
                          latent_dim=16, guidance=2.0, genre_guidance={"a": 4.0}).eval()
    assert default_guidance(model, torch.tensor([0])) == 4.0 and default_guidance(model, torch.tensor([1])) == 2.0
    assert default_guidance(model, torch.tensor([[0.25, 0.75]])) == pytest.approx(2.5)  # weighed by the mixture
    assert default_guidance(model, None) == 2.0
    z = torch.randn(3, 16)
    assert np.allclose(decode_rolls(model, z, torch.tensor([0])), decode_rolls(model, z, torch.tensor([0]), guidance=4.0))
    assert not np.allclose(decode_rolls(model, z, torch.tensor([0])),
                           decode_rolls(model, z, torch.tensor([0]), guidance=2.0))
    assert load_model(write_model_folder(tmp_path / "m", model)).genre_guidance == {"a": 4.0}
    with pytest.raises(ValueError, match="does not know"):
        PianoRollCVAE(roll=ROLL.to_dict(), genres=["a"], substeps=4, channels=[16], latent_dim=16,
                      genre_guidance={"polka": 1.0})
