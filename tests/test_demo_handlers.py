"""The demo's handler functions on tiny models: blends, morph strips, MIDI by genre, prior samples, genre shifts,
and the plain messages bad uploads and settings get."""
from __future__ import annotations

import os

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

import audiovae
from audiovae.demo import handlers
from audiovae.demo.handlers import DemoInputError
from audiovae.demo.models import load_demo_model
from demo_fixtures import (FRONTEND, MAX_SECONDS, make_mel_model, make_midi_model, rms, write_burst,
                           write_tone)

SR = FRONTEND["sample_rate"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_models")
    return {"mel": make_mel_model(root / "mel"), "midi": make_midi_model(root / "midi")}


@pytest.fixture(scope="module")
def mel(folders):
    return audiovae.load(folders["mel"])


@pytest.fixture(scope="module")
def midi(folders):
    return audiovae.load(folders["midi"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_clips")
    return {"a": write_tone(root / "a.wav", seconds=1.5), "b": write_tone(root / "b.wav", seconds=1.0, freq=660.0)}


def expected_samples(seconds: float) -> int:
    """A clip of ``seconds`` comes back exactly as long, at the model's rate (the vocoder's (frames - 1) * hop
    samples padded to the clip's length)."""
    return int(round(seconds * SR))


def read(path) -> np.ndarray:
    wav, rate = sf.read(str(path), dtype="float32")
    assert rate == SR
    return wav


@pytest.mark.parametrize("align, seconds", [("crop", 1.0), ("loop", 1.5), ("stretch", 1.5)])
def test_blend_is_a_non_silent_wav_as_long_as_the_aligned_clips(mel, clips, tmp_path, align, seconds):
    result = handlers.blend_clips(mel, clips["a"], clips["b"], alpha=0.3, method="slerp", align=align,
                                  max_seconds=MAX_SECONDS, out_dir=tmp_path)
    wav = read(result.audio)
    assert len(wav) == expected_samples(seconds)
    assert rms(result.audio) > 1e-3
    assert result.strip is None and result.steps == [] and result.strip_picture is None
    assert png_size(result.picture)[0] == 1200  # drawn as wide as the page
    assert "α = 0.30" in result.message and "a.wav" in result.message


def test_alpha_moves_the_blend_from_a_to_b(mel, clips, tmp_path):
    wavs = [read(handlers.blend_clips(mel, clips["a"], clips["b"], alpha=alpha, method="lerp",
                                      max_seconds=MAX_SECONDS, out_dir=tmp_path).audio) for alpha in (0.0, 0.5, 1.0)]
    assert not np.allclose(wavs[0], wavs[2], atol=1e-3)
    assert not np.allclose(wavs[1], wavs[0], atol=1e-3) and not np.allclose(wavs[1], wavs[2], atol=1e-3)


def test_morph_strip_holds_every_step_with_gaps(mel, clips, tmp_path):
    result = handlers.blend_clips(mel, clips["a"], clips["b"], alpha=0.5, strip=True, max_seconds=MAX_SECONDS,
                                  out_dir=tmp_path)
    step, gap = expected_samples(1.0), int(handlers.STRIP_GAP_S * SR)
    strip = read(result.strip)
    assert len(strip) == handlers.STRIP_STEPS * step + (handlers.STRIP_STEPS - 1) * gap
    pieces = [strip[i * (step + gap): i * (step + gap) + step] for i in range(handlers.STRIP_STEPS)]
    assert all(float(np.sqrt(np.mean(p**2))) > 1e-3 for p in pieces)
    assert np.all(np.abs(strip[step: step + gap]) < 1e-4)  # the gap is silence
    assert not np.allclose(pieces[0], pieces[-1], atol=1e-3)
    # the middle step is the alpha 0.5 blend itself (the same latent, decoded in one batch)
    assert np.allclose(pieces[2], read(result.audio), atol=2e-3)
    # each step is also its own clip, named by its alpha, the same as its piece of the strip
    assert [p.name for p in result.steps] == [f"morph_step{i + 1}_alpha{a:.2f}_slerp.wav"
                                              for i, a in enumerate((0.0, 0.25, 0.5, 0.75, 1.0))]
    assert all(np.allclose(read(p), piece, atol=1e-4) for p, piece in zip(result.steps, pieces))
    assert png_size(result.strip_picture)[0] == 1200


def png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def _silence(path):
    sf.write(str(path), np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    return path


BAD_UPLOADS = {
    "nothing": (lambda d: None, r"Clip A: no audio given"),
    "empty": (lambda d: _write_bytes(d / "empty.wav", b""), r"Clip A \(empty\.wav\) is an empty file"),
    "text": (lambda d: _write_bytes(d / "notes.txt", b"these are my notes, not audio"),
             r"Clip A \(notes\.txt\) is not an audio file this demo can read; use wav"),
    "corrupt": (lambda d: _write_bytes(d / "broken.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4),
                r"Clip A \(broken\.wav\) is (not an audio file|damaged)"),
    "too long": (lambda d: write_tone(d / "long.wav", seconds=MAX_SECONDS + 1.0),
                 r"Clip A \(long\.wav\) is 6\.0 s long; this demo takes clips of up to 5 s"),
    "silent": (lambda d: _silence(d / "quiet.wav"), r"Clip A \(quiet\.wav\) is silent"),
    "too short": (lambda d: write_tone(d / "blip.wav", seconds=0.02), r"Clip A \(blip\.wav\) is too short"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_a_plain_message(mel, clips, tmp_path, case):
    make, message = BAD_UPLOADS[case]
    with pytest.raises(DemoInputError, match=message) as info:
        handlers.blend_clips(mel, make(tmp_path), clips["b"], max_seconds=MAX_SECONDS, out_dir=tmp_path / "out")
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)
    # the same model still blends good clips afterwards
    result = handlers.blend_clips(mel, clips["a"], clips["b"], max_seconds=MAX_SECONDS, out_dir=tmp_path / "out")
    assert rms(result.audio) > 1e-3


@pytest.mark.parametrize("case", ["text", "empty", "silent", "too long"])
def test_upload_check_refuses_what_the_blend_would(mel, tmp_path, case):
    make, message = BAD_UPLOADS[case]
    with pytest.raises(DemoInputError, match=message):
        handlers.check_upload(mel, make(tmp_path), label="Clip A", max_seconds=MAX_SECONDS)


def test_upload_check_announces_a_good_clip(mel, clips):
    ready = handlers.check_upload(mel, clips["a"], label="Clip A", max_seconds=MAX_SECONDS)
    assert ready == "Clip A (a.wav): 1.5 s, ready"
    assert handlers.check_upload(mel, None, label="Clip A", max_seconds=MAX_SECONDS) == ""


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=1.5), r"α must be between 0 and 1, got 1\.5"),
    (dict(alpha=float("nan")), r"α must be between 0 and 1"),
    (dict(method="cubic"), r"interpolation must be one of slerp, lerp"),
    (dict(align="pad"), r"length alignment must be one of crop, loop, stretch"),
])
def test_bad_blend_settings_get_a_plain_message(mel, clips, tmp_path, kwargs, message):
    with pytest.raises(DemoInputError, match=message):
        handlers.blend_clips(mel, clips["a"], clips["b"], max_seconds=MAX_SECONDS, out_dir=tmp_path, **kwargs)


def test_midi_by_genre_writes_a_midi_file_both_parsers_open(midi, tmp_path):
    result = handlers.generate_midi(midi, genre="folk", bars=4, temperature=0.8, seed=3, out_dir=tmp_path)
    assert result.midi.suffix == ".mid" and result.picture.suffix == ".png" and result.picture.stat().st_size > 0
    pm = pretty_midi.PrettyMIDI(str(result.midi))
    notes = [n for inst in pm.instruments for n in inst.notes]
    assert notes, "the tiny model is biased to produce notes"
    quarters = 4 * 4  # 4 bars of 4/4
    assert pm.get_end_time() <= quarters * 60.0 / pm.get_tempo_changes()[1][0] + 1e-6
    assert len(mido.MidiFile(str(result.midi)).tracks) >= 1
    assert rms(result.audio) > 1e-3
    assert "4 bars of folk" in result.message and f"{len(notes)} notes" in result.message


def test_midi_genre_mix_and_seed(midi, tmp_path):
    def notes(**kwargs):
        result = handlers.generate_midi(midi, genre="folk", bars=2, out_dir=tmp_path, **kwargs)
        pm = pretty_midi.PrettyMIDI(str(result.midi))
        return result, [(n.pitch, round(n.start, 4)) for n in pm.instruments[0].notes]

    mixed, mixed_notes = notes(second_genre="jazz", mix=0.5, seed=0)
    assert "folk=0.50+jazz=0.50" in mixed.message
    assert notes(seed=0)[1] == notes(seed=0)[1]  # a seed repeats
    assert notes(seed=0)[1] != notes(seed=1)[1]
    assert mixed_notes != notes(seed=0)[1]  # the mixture changes the piece


def test_midi_tempo_instrument_and_fixed_velocity(midi, tmp_path):
    fixed = handlers.generate_midi(midi, genre="folk", bars=2, seed=4, tempo=90, program=40, velocity=33,
                                   out_dir=tmp_path)
    pm = pretty_midi.PrettyMIDI(str(fixed.midi))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90.0, abs=0.01)
    assert [i.program for i in pm.instruments] == [40]
    assert {n.velocity for i in pm.instruments for n in i.notes} == {33}
    assert "at 90 bpm, Violin" in fixed.message and "velocity 33" in fixed.message
    usual = handlers.generate_midi(midi, genre="folk", bars=2, seed=4, out_dir=tmp_path)
    pm = pretty_midi.PrettyMIDI(str(usual.midi))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(110.0, abs=0.01)  # no usual tempo for "folk": the default
    assert {n.velocity for i in pm.instruments for n in i.notes} != {33}
    assert "velocities from the model" in usual.message
    # the same notes either way: tempo, instrument and velocity change only how the file plays
    assert len(pm.instruments[0].notes) == len(pretty_midi.PrettyMIDI(str(fixed.midi)).instruments[0].notes)


def test_piano_roll_picture_is_cropped_to_the_notes_used():
    from audiovae.demo.plots import cropped_roll
    from audiovae.midi import RollConfig

    roll = np.zeros((2, 16, 88), bool)
    roll[:, 0:4, 60 - 21] = True
    roll[1, 4:8, 64 - 21] = True
    shown, config = cropped_roll(roll, RollConfig())
    assert config.pitch_low <= 57 and config.pitch_high >= 67 and 12 <= config.pitch_high - config.pitch_low <= 14
    assert shown.shape == (2, 16, config.num_pitches) and shown.sum() == roll.sum()
    assert shown[0, 0, 60 - config.pitch_low]
    empty = np.zeros((2, 16, 88), bool)
    assert cropped_roll(empty, RollConfig())[1] == RollConfig()


@pytest.mark.parametrize("kwargs, message", [
    (dict(genre="folk", tempo=10), r"tempo \(bpm\) must be between 30 and 300"),
    (dict(genre="folk", program=128), r"General MIDI instrument must be between 0 and 127"),
    (dict(genre="folk", velocity=0), r"note velocity must be between 1 and 127"),
    (dict(genre="rock"), r"unknown genre 'rock'; this model knows: folk, jazz"),
    (dict(genre="folk", second_genre="polka", mix=0.5), r"unknown genre 'polka'; this model knows: folk, jazz"),
    (dict(genre=None, second_genre="jazz", mix=0.5), r"pick the first genre"),
    (dict(genre="folk", bars=0), r"bars must be between 1 and 64"),
    (dict(genre="folk", mix=2.0), r"mix weight must be between 0 and 1"),
])
def test_bad_midi_settings_get_a_plain_message(midi, tmp_path, kwargs, message):
    with pytest.raises(DemoInputError, match=message):
        handlers.generate_midi(midi, out_dir=tmp_path, **kwargs)


def test_an_empty_piece_is_reported_not_written(folders, tmp_path):
    silent = audiovae.load(folders["midi"])
    with torch.no_grad():
        silent.conv_out.bias.fill_(-30.0)
    with pytest.raises(DemoInputError, match="The piece is empty; the model may be under-trained"):
        handlers.generate_midi(silent, genre="folk", out_dir=tmp_path)
    assert not list(tmp_path.rglob("*.mid"))


def test_prior_sample_per_genre(mel, tmp_path):
    folk = handlers.sample_prior(mel, genre="folk", seconds=1.0, temperature=1.0, seed=0, out_dir=tmp_path)
    jazz = handlers.sample_prior(mel, genre="jazz", seconds=1.0, temperature=1.0, seed=0, out_dir=tmp_path)
    none = handlers.sample_prior(mel, genre=None, seconds=1.0, seed=0, out_dir=tmp_path)
    for result in (folk, jazz, none):
        assert len(read(result.audio)) == expected_samples(1.0) and rms(result.audio) > 1e-3
    assert len(read(handlers.sample_prior(mel, genre="folk", seconds=2.5, out_dir=tmp_path).audio)) == \
        expected_samples(2.5)
    assert not np.allclose(read(folk.audio), read(jazz.audio), atol=1e-4)
    assert "jazz" in jazz.message and "no genre" in none.message
    with pytest.raises(DemoInputError, match="unknown genre 'rock'"):
        handlers.sample_prior(mel, genre="rock", out_dir=tmp_path)


@pytest.mark.parametrize("route", handlers.ROUTES)
def test_genre_shift_moves_away_from_the_reconstruction(mel, clips, tmp_path, route):
    def shifted(amount):
        return handlers.shift_clip(mel, clips["a"], target="jazz", amount=amount, source="folk", route=route,
                                   max_seconds=MAX_SECONDS, out_dir=tmp_path)

    start, end = shifted(0.0), shifted(1.0)
    assert len(read(end.audio)) == expected_samples(1.5) and rms(end.audio) > 1e-3
    assert not np.allclose(read(start.audio), read(end.audio), atol=1e-4)
    assert f"through the {route}" in end.message


def test_genre_shift_messages(mel, clips, tmp_path):
    with pytest.raises(DemoInputError, match="partial shift through the genre input starts from the clip's own genre"):
        handlers.shift_clip(mel, clips["a"], target="jazz", amount=0.5, source=None, route="condition",
                            max_seconds=MAX_SECONDS, out_dir=tmp_path)
    with pytest.raises(DemoInputError, match="The clip: no audio given"):
        handlers.shift_clip(mel, None, target="jazz", max_seconds=MAX_SECONDS, out_dir=tmp_path)
    no_stats = audiovae.load(mel.checkpoint_path)
    no_stats.latent_stats = {}
    with pytest.raises(DemoInputError, match="centroid route does not work with this model: .*no genre centroids"):
        handlers.shift_clip(no_stats, clips["a"], target="jazz", route="centroid", max_seconds=MAX_SECONDS,
                            out_dir=tmp_path)


def test_inspect_shows_the_curve_flags_spans_and_plays_the_worst(mel, tmp_path):
    burst = write_burst(tmp_path / "burst.wav", seconds=3.0, at=1.0)
    # this random tiny model barely reacts to the burst; a low threshold still flags the worst window
    result = handlers.inspect_clip(mel, burst, threshold=1.0, out_dir=tmp_path)
    assert "flagged span" in result.message and "Playing the worst one" in result.message
    assert 0.3 < len(read(result.audio)) / SR <= 3.0
    assert png_size(result.picture)[1] > 300  # the mel above the curve
    calm = handlers.inspect_clip(mel, burst, threshold=50.0, out_dir=tmp_path)
    assert "No window above 50" in calm.message and abs(len(read(calm.audio)) / SR - 1.5) < 0.05
    with pytest.raises(DemoInputError, match="not an audio file"):
        (tmp_path / "x.wav").write_text("text")
        handlers.inspect_clip(mel, tmp_path / "x.wav", out_dir=tmp_path)


def test_inspect_needs_a_calibrated_model(folders, tmp_path):
    import json
    import shutil

    folder = tmp_path / "mel"
    shutil.copytree(folders["mel"], folder)
    config = json.loads((folder / "config.json").read_text())
    del config["anomaly_calibration"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DemoInputError, match="audiovae calibrate"):
        handlers.inspect_clip(audiovae.load(folder), write_tone(tmp_path / "t.wav", seconds=1.0), out_dir=tmp_path)


def test_models_that_cannot_load_leave_a_message(folders, tmp_path):
    cpu = torch.device("cpu")
    missing = load_demo_model(tmp_path / "nowhere", "mel", cpu)
    assert missing.model is None and "--mel-model" in missing.message and "nowhere" in missing.message
    wrong_kind = load_demo_model(folders["midi"], "mel", cpu)
    assert wrong_kind.model is None and "holds a PianoRollCVAE, not a mel VAE (audio) model" in wrong_kind.message
    loaded = load_demo_model(audiovae.load(folders["mel"]), "mel", cpu)
    assert loaded.model is not None and loaded.source == str(folders["mel"])


def test_old_output_folders_are_removed(tmp_path):
    old = handlers.fresh_dir(tmp_path, "blend")
    (old / "x.wav").write_bytes(b"x")
    past = old.stat().st_mtime - handlers.OUTPUT_MAX_AGE_S - 10
    os.utime(old, (past, past))
    recent = handlers.fresh_dir(tmp_path, "blend")
    newest = handlers.fresh_dir(tmp_path, "blend")
    assert not old.exists() and recent.is_dir() and newest.is_dir() and recent != newest
