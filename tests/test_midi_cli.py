"""End to end on a tiny MIDI folder: preprocess, train the tiny recipe, generate, transfer, evaluate."""
from __future__ import annotations

import json
from pathlib import Path

import mido
import pretty_midi
import pytest
from midi_fixtures import write_corrupt, write_drums_only, write_empty, write_piece

from audiovae import load
from audiovae.cli import main

TINY = Path(__file__).resolve().parents[1] / "recipes" / "midi_cvae_tiny.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data folder, run folder, output of preprocess + train) for the tiny recipe on 2 genres x 4 pieces plus
    a corrupt, an empty and a drums-only file."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("midi")
    data = root / "data"
    for i in range(4):
        write_piece(data / "low", f"low_{i}.mid", bars=6, base_pitch=45, seed=i)
        write_piece(data / "high", f"high_{i}.mid", bars=6, base_pitch=76, seed=10 + i)
    write_corrupt(data / "low")
    write_empty(data / "high")
    write_drums_only(data / "high")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["preprocess", str(data), "--cache", str(root / "cache"), "--recipe", str(TINY),
                     "--workers", "0"]) == 0
        assert main(["train", str(TINY), "--data", str(data), "--out", str(root / "run"), "--no-progress",
                     "--set", f'data.cache_dir="{root / "cache"}"', "--set", "train.threads=1"]) == 0
    return data, root / "run", out.getvalue()


@pytest.fixture(scope="module")
def loud(trained, tmp_path_factory):
    """The tiny trained model with its output biases raised: 12 training steps leave every cell below 0.5, so
    the trained model itself writes only empty pieces (see the empty-piece test). Every cell on starts a note at
    every step, so this model also keeps notes of one step (its genres' shortest usual note is 2 steps)."""
    import torch

    from audiovae.checkpoint import write_model_folder

    model = load(trained[1])
    with torch.no_grad():
        model.conv_out.bias.view(model.channels, -1)[:2] += 3.0
    model.latent_stats["shortest_note"] = {genre: 1 for genre in model.conditions}
    return write_model_folder(tmp_path_factory.mktemp("loud") / "model", model)


def test_train_reports_skips_and_reuses_the_preprocessed_cache(trained):
    _, run, log = trained
    assert "8 MIDI files used, 3 skipped" in log
    assert "low/corrupt.mid: not a MIDI file / corrupt" in log
    assert "high/empty.mid: no notes" in log and "high/drums.mid: drums only" in log
    assert "(0 converted, 11 from cache" in log  # preprocess used the recipe's grid and hop
    assert "model written to" in log
    model = load(run)
    assert model.conditions == ["high", "low"] and model.roll.segment_bars == 2
    assert set(model.latent_stats["centroids"]) == {"high", "low"}
    assert len(model.latent_stats["mean"]) == model.latent_dim
    assert set(model.latent_stats["shortest_note"]) == {"high", "low"} and "steady_voices" in model.latent_stats
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/onset_f1" in m and "val/kl" in m and "val/active_units" in m for m in metrics)
    assert {"loss", "loss/recon_nll", "loss/kl"} <= set(metrics[0])
    assert list((run / "samples" / "final").glob("low_*.mid")) and (run / "samples" / "final" / "high_0.png").is_file()


def open_both(path: Path) -> pretty_midi.PrettyMIDI:
    mido.MidiFile(str(path))
    return pretty_midi.PrettyMIDI(str(path))


def test_generate_midi_writes_files_for_genres_and_mixtures(loud, tmp_path, capsys):
    run = loud
    assert main(["generate-midi", str(run), "--genre", "low", "--n", "2", "--bars", "3", "--temperature", "1.0",
                 "--seed", "0", "--out", str(tmp_path / "gen"), "--png", "--preview", "--tempo", "100"]) == 0
    files = sorted((tmp_path / "gen").iterdir())
    assert [f.name for f in files] == ["low_000.mid", "low_000.png", "low_000.wav", "low_001.mid", "low_001.png",
                                       "low_001.wav"]
    pm = open_both(files[0])
    assert pm.get_tempo_changes()[1][0] == pytest.approx(100.0)
    assert pm.get_end_time() <= 3 * 4 * 60 / 100 + 1e-6  # at most 3 bars of 4 quarters at 100 bpm
    assert main(["generate-midi", str(run), "--genre", "low=0.3,high=0.7", "--n", "1", "--bars", "2",
                 "--out", str(tmp_path / "mix")]) == 0
    (mixed,) = (tmp_path / "mix").glob("*.mid")
    open_both(mixed)
    assert "wrote 1 pieces of 2 bars" in capsys.readouterr().out


def test_fixed_velocity_and_empty_pieces_are_reported_not_written(trained, loud, tmp_path, capsys):
    import torch

    from audiovae.checkpoint import write_model_folder

    assert main(["generate-midi", str(loud), "--genre", "low", "--n", "1", "--bars", "2", "--velocity", "50",
                 "--out", str(tmp_path / "fixed")]) == 0
    (fixed,) = (tmp_path / "fixed").glob("*.mid")
    assert {n.velocity for n in open_both(fixed).instruments[0].notes} == {50}
    silent = load(trained[1])
    with torch.no_grad():
        silent.conv_out.weight.zero_()
        silent.conv_out.bias.fill_(-20.0)  # every cell off: every piece is empty
    folder = write_model_folder(tmp_path / "silent", silent)
    capsys.readouterr()
    assert main(["generate-midi", str(folder), "--genre", "low", "--n", "3", "--out", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "All 3 pieces are empty; the model may be under-trained" in err and "low_002" in err
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_unknown_genre_exits_2_and_lists_the_known_ones(trained, tmp_path, capsys):
    _, run, _ = trained
    assert main(["generate-midi", str(run), "--genre", "polka", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown genre 'polka'" in err and "high, low" in err


def test_transfer_midi_keeps_length(trained, loud, tmp_path):
    data, run = trained[0], loud
    source = data / "low" / "low_0.mid"
    out = tmp_path / "out.v2.mid"
    assert main(["transfer-midi", str(run), str(source), "--to", "high", "--from", "low", "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "out.mid").exists()
    pm = open_both(out)
    assert pm.get_end_time() <= pretty_midi.PrettyMIDI(str(source)).get_end_time() + 1e-6
    assert main(["transfer-midi", str(run), str(source), "--to", "high", "--out", str(tmp_path / "x.wav")]) == 2


def test_evaluate_midi_reports_and_reuses_its_classifier(trained, tmp_path, capsys):
    data, run, _ = trained
    args = ["evaluate-midi", str(run), "--data", str(data), "--per-genre", "4", "--transfer-per-genre", "2",
            "--classifier-steps", "6", "--threads", "1", "--form-bars", "2", "--form-pieces", "2"]
    assert main(args + ["--json", str(tmp_path / "eval.json")]) == 0
    out = capsys.readouterr().out
    assert "training the genre classifier" in out and "onset F1" in out and "novelty" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["genre_control"]) == {"T=0.5", "T=0.8", "T=1"}
    assert 0.0 <= report["genre_control"]["T=1"]["accuracy"] <= 1.0
    assert 0.0 <= report["reconstruction"]["onset_f1"] <= 1.0 and report["reconstruction"]["kl"] >= 0
    assert set(report["transfer"]["table"]["low"]) == {"high"}
    assert 0.0 <= report["novelty"]["generated"]["mean"] <= report["novelty"]["generated"]["max"] <= 1.0
    notes = report["note_statistics"]
    assert "note statistics" in out and notes["windows"]["train"] > 0 and notes["windows"]["held_out"] > 0
    assert 0.0 <= notes["judge_real_held_out"]["accuracy"] <= 1.0
    assert 0.0 <= report["transfer"]["notes"]["accuracy"] <= 1.0 and set(report["transfer"]["notes"]["table"])
    kept = report["transfer"]["kept"]
    assert 0.0 <= kept["transferred"] <= 1.0 and 0.0 <= kept["target_samples"] <= 1.0
    assert "transfer keeps a sustain IoU" in out
    form = report["form"]["per_genre"]["low"]
    assert form["real_pieces"] > 0 and 0.0 <= form["real"] <= 1.0 and "form: share of bar pairs" in out
    assert "val/velocity_mae" not in report["reconstruction"] and "velocity_mae" in report["reconstruction"]
    assert (run / "classifier" / "config.json").is_file()
    assert main(args) == 0
    assert "using the genre classifier" in capsys.readouterr().out


def test_evaluating_a_bundled_model_keeps_its_classifier_and_cache_out_of_the_package():
    from audiovae.checkpoint import resolve
    from audiovae.midi.classify import _run_dir
    from audiovae.pretrained import MODELS_DIR

    workspace = _run_dir(resolve("default-midi"))
    assert MODELS_DIR.resolve() not in workspace.resolve().parents and workspace.name == "default-midi"
