"""The default models shipped in the package work with no training: a blend of two bundled example clips and a
MIDI piece for every genre, through the demo's own handlers; their model cards carry held-out metrics."""
from __future__ import annotations

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

import audiovae
from audiovae.demo.handlers import blend_clips, generate_midi
from audiovae.examples import example_clips
from audiovae.pretrained import BUNDLED_MODELS, bundled_model_path


@pytest.fixture(scope="module")
def mel():
    return audiovae.load("default-mel")


@pytest.fixture(scope="module")
def midi():
    return audiovae.load("default-midi")


@pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
def test_model_cards_report_held_out_metrics(name):
    folder = bundled_model_path(name)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "## Held-out metrics" in card and "audiovae train recipes/" in card
    if name == "default-mel":
        assert "spectral_convergence" in card and "logmel_l1" in card
    elif name == "default-vocoder":
        assert "mrstft" in card and "logmel_l1" in card and "griffin-lim 32" in card
    else:
        assert "onset F1" in card and "genre-control accuracy" in card
    size = sum(f.stat().st_size for p in BUNDLED_MODELS for f in bundled_model_path(p).iterdir())
    assert size < 25e6


def test_blend_of_two_bundled_examples(mel, tmp_path):
    a, b = example_clips()[:2]
    result = blend_clips(mel, a, b, alpha=0.5, out_dir=tmp_path)
    audio, rate = sf.read(str(result.audio), dtype="float32")
    assert rate == 22050 and len(audio) > 4 * rate
    assert float(np.sqrt(np.mean(audio**2))) > 1e-2


def test_midi_for_every_genre(midi, tmp_path):
    assert len(midi.conditions) == 6
    for genre in midi.conditions:
        result = generate_midi(midi, genre=genre, bars=4, seed=0, out_dir=tmp_path)
        mido.MidiFile(str(result.midi))
        notes = [n for inst in pretty_midi.PrettyMIDI(str(result.midi)).instruments for n in inst.notes]
        assert len(notes) >= 4, genre


def test_default_mel_knows_real_and_rendered_genres_and_samples_from_its_prior(mel, tmp_path):
    from audiovae.demo.handlers import sample_prior

    assert {"rock", "ambient", "game_score", "irish_fiddle"} <= set(mel.conditions)
    assert mel.latent_prior is not None
    result = sample_prior(mel, genre="rock", seconds=2.0, seed=1, out_dir=tmp_path)
    audio, rate = sf.read(str(result.audio), dtype="float32")
    assert rate == 22050 and len(audio) > 1.5 * rate and float(np.sqrt(np.mean(audio**2))) > 1e-2


def test_default_vocoder_pairs_with_default_mel_and_beats_griffin_lim_on_a_held_out_example(mel):
    """`auto` picks the bundled vocoder for default-mel, and on a held-out real excerpt it rebuilds the sound from
    the true log-mel closer than Griffin-Lim (32 iterations) on both the multi-resolution STFT distance and the
    log-mel L1."""
    import torch

    from audiovae.audio.features import MelFrontend
    from audiovae.audio.inversion import GriffinLim
    from audiovae.audio.io import normalize, read_audio
    from audiovae.inference import resolve_vocoder_choice, vocoder_for
    from audiovae.train.vocoder_task import vocoder_figures

    assert resolve_vocoder_choice(mel, "auto") == "default-vocoder"
    vocoder = vocoder_for(mel)
    assert vocoder.mel_config == mel.frontend
    real = [p for p in example_clips() if p.stem == "rock"][0]  # a held-out excerpt of a real band recording
    wav, _ = read_audio(real, sample_rate=mel.frontend.sample_rate)
    wav = torch.from_numpy(normalize(wav))
    frontend = MelFrontend(mel.frontend)
    ours = vocoder_figures(vocoder, frontend, wav)
    griffin = vocoder_figures(GriffinLim(mel.frontend, n_iter=32), frontend, wav)
    assert ours["mrstft"] < griffin["mrstft"] and ours["logmel_l1"] < griffin["logmel_l1"], (ours, griffin)


def test_default_midi_per_bar_scores_single_out_a_bar_of_random_notes(midi, tmp_path):
    """A 12-bar four-voice chord progression with bar 7 replaced by scattered random notes: that bar scores
    highest and is flagged, and no other bar is."""
    from audiovae.scoring import inspect_midi
    from midi_fixtures import write_chords_with_a_random_bar

    path = write_chords_with_a_random_bar(tmp_path, "chorale.mid", bars=12, random_bar=6)
    result = inspect_midi(midi, path)
    assert len(result.bar_scores) == 12
    assert int(result.z.argmax()) == 6
    assert [(a, b) for a, b, _ in result.flagged] == [(7, 7)]
