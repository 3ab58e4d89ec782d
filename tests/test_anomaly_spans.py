"""Defects inside a recording: the frame terms, their calibration, flagged spans, and `audiovae score`/`calibrate`."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from audiovae.checkpoint import load, read_config
from audiovae.cli import main
from audiovae.errors import ConfigError
from audiovae.latent.anomaly import (FALSE_ALARM_SHARE, MOTION_SECONDS, Calibration, calibrate, calibrated_map,
                                     calibrated_scores, flagged_spans, frame_terms, latent_motion, latent_rate,
                                     moving_average, spectral_background_nll, window_frames)
from conftest import train_tiny_run


def test_moving_average_keeps_constants_and_averages_inside():
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 0.0, 0.0]])
    smooth = moving_average(values, 3)
    assert torch.allclose(smooth[0], torch.ones(5))
    assert torch.allclose(smooth[1], torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    assert torch.equal(moving_average(values, 1), values)


def test_flagged_spans_merge_close_runs_and_report_peaks():
    scores = torch.tensor([0, 4, 5, 0, 4, 0, 0, 0, 0, 0, 6, 0], dtype=torch.float32)
    # 10 frames per second: the runs at 0.1-0.3 s and 0.4-0.5 s are 0.1 s apart (merged); 1.0-1.1 s stands alone
    assert flagged_spans(scores, 3.0, 10.0) == [(0.1, 0.5, 5.0), (1.0, 1.1, 6.0)]
    assert flagged_spans(scores, 3.0, 10.0, merge_gap=0.0) == [(0.1, 0.3, 5.0), (0.4, 0.5, 4.0), (1.0, 1.1, 6.0)]
    assert flagged_spans(scores, 10.0, 10.0) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("anomaly"), "mel_vae_tiny.toml", seconds=2.0)


def test_training_stores_a_calibration_that_standardises_held_out_windows(trained):
    stored = read_config(trained / "run" / "model")["anomaly_calibration"]
    calibration = Calibration.from_dict(stored)
    model = load(trained / "run")
    assert calibration.window == window_frames(model) and calibration.recordings >= 2
    assert len(calibration.bias_mean) == len(calibration.bias_std) == model.frontend.n_mels
    # recomputed from the same held-out recordings (encoded with no genre, as `audiovae score` encodes files), the
    # map has mean 0 and standard deviation 1 over them, and FALSE_ALARM_SHARE of the windows exceed the threshold
    from audiovae.data.audio_folder import AudioFolder

    _, held_out = AudioFolder.splits(trained / "data", cache_dir=trained / "cache", mel_config=model.frontend,
                                     crop_frames=32, progress=False)
    items = [(mel[None], None) for _, mel, _ in held_out.eval_items()]
    again = calibrate(model, items)
    assert again.total == pytest.approx(calibration.total, rel=1e-4)
    assert again.threshold == pytest.approx(calibration.threshold, abs=1e-3)
    maps = torch.cat([calibrated_map(model, x, calibration).flatten() for x, _ in items])
    assert float(maps.mean()) == pytest.approx(0.0, abs=1e-3) and float(maps.std()) == pytest.approx(1.0, rel=1e-3)
    above = float((maps > calibration.threshold + 0.005).float().mean())  # the threshold is stored to 2 decimals
    assert above <= FALSE_ALARM_SHARE + 1.0 / maps.numel()
    # the map is the weighted sum of the three standardised terms, standardised once more
    terms = frame_terms(model, items[0][0]).windowed(calibration.window)
    w = calibration.weights
    summed = (w[0] * (terms.surprise - calibration.surprise[0]) / calibration.surprise[1]
              + w[1] * (terms.misfit - calibration.misfit[0]) / calibration.misfit[1]
              + w[2] * ((terms.bias - torch.tensor(calibration.bias_mean)[:, None])
                        / torch.tensor(calibration.bias_std)[:, None]).mean(1))
    assert torch.allclose(calibrated_map(model, items[0][0], calibration),
                          (summed - calibration.total[0]) / calibration.total[1], atol=1e-4)


def test_frame_terms_are_one_value_per_latent_frame_and_the_background_is_spectral_smoothness(trained):
    model = load(trained / "run").eval()
    x = torch.randn(2, model.frontend.n_mels, 37) - 4.0
    terms = frame_terms(model, x)
    latent_frames = model.latent_frames(37)
    assert terms.surprise.shape == terms.misfit.shape == (2, latent_frames)
    assert terms.bias.shape == (2, model.frontend.n_mels, latent_frames)
    # with the mirrored context, the edges of a steady input score like its middle (the convolutions' zero padding
    # and the prior's missing past fall on frames that are dropped again)
    steady = (torch.linspace(-8.0, -2.0, model.frontend.n_mels)[None, :, None]).expand(1, -1, 200).contiguous()
    terms = frame_terms(model, steady)
    middle = terms.misfit.shape[1] // 2
    for term in (terms.surprise, terms.misfit, terms.bias.mean(1)):
        edges = torch.cat([term[0, :2], term[0, -2:]])
        assert torch.allclose(edges, term[0, middle].expand(4), rtol=1e-4, atol=1e-4)
    # a flat spectrum costs the background model only its constant; each step between bins costs |step| / scale
    flat = torch.zeros(1, 4, 3)
    scale = 0.5
    assert torch.allclose(spectral_background_nll(flat, scale), torch.full((1, 3), 4 * math.log(2 * scale)))
    ramp = torch.arange(4.0)[None, :, None].expand(1, 4, 3)
    assert torch.allclose(spectral_background_nll(ramp, scale), torch.full((1, 3), 3 / scale + 4 * math.log(1.0)))


def test_latent_motion_is_the_log_spread_of_each_channel_in_every_full_window():
    code = torch.tensor([[[1.0, -1.0] * 5, [2.0] * 10]])  # [1, 2 channels, 10 frames]
    motion = latent_motion(code, 4)
    assert motion.shape == (1, 2, 7)
    assert torch.allclose(motion[0, 0], torch.zeros(7), atol=1e-6)  # std 1 in every window
    assert bool((motion[0, 1] < -10).all())  # a channel that does not move at all
    assert latent_motion(code, 20).shape == (1, 2, 1)  # shorter than one window: the whole input


def test_a_steady_input_is_atypical_as_a_whole_and_held_out_recordings_are_not(trained):
    model = load(trained / "run").eval()
    calibration = Calibration.from_dict(read_config(trained / "run" / "model")["anomaly_calibration"])
    assert calibration.motion_window == round(MOTION_SECONDS * latent_rate(model))
    assert calibration.motion_threshold >= 1.0 and len(calibration.motion_mean) == model.latent_channels
    from audiovae.data.audio_folder import AudioFolder

    _, held_out = AudioFolder.splits(trained / "data", cache_dir=trained / "cache", mel_config=model.frontend,
                                     crop_frames=32, progress=False)
    held = torch.cat([calibrated_scores(model, mel[None], calibration)[1] for _, mel, _ in held_out.eval_items()])
    # a spectrum that never changes: every latent channel stands still, far below any held-out recording's motion
    steady = (torch.linspace(-8.0, -2.0, model.frontend.n_mels)[None, :, None]).expand(1, -1, 400).contiguous()
    still = calibrated_scores(model, steady, calibration)[1]
    assert float(still) > calibration.motion_threshold and float(still) > float(held.max())
    assert calibration.on_map_scale(calibration.motion_threshold, calibration.motion_threshold) == pytest.approx(
        calibration.threshold)
    assert calibration.hum is not None and calibration.hum_threshold >= 1.0  # training read the held-out waveforms


def test_a_calibration_of_an_older_version_is_refused_with_the_way_out():
    old = {"mean": 127.0, "std": 6.7, "window": 22, "windows": 100, "recordings": 4, "threshold": 3.0}
    with pytest.raises(ConfigError, match="audiovae calibrate"):
        Calibration.from_dict(old)


def test_score_lists_spans_and_writes_pictures_json_and_csv(trained, tmp_path, capsys):
    good = trained / "data" / "low" / "low0.wav"
    wav, rate = sf.read(str(good))
    damaged = wav.copy()
    damaged[rate // 2: rate] = np.random.default_rng(0).standard_normal(rate // 2) * 0.5  # a 0.5 s noise burst
    bad = tmp_path / "burst.wav"
    sf.write(str(bad), damaged, rate)
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    out = [tmp_path / "pics", tmp_path / "s.json", tmp_path / "s.csv"]
    assert main(["score", str(trained / "run"), str(good), str(bad), str(junk), "--threshold", "-100", "--png",
                 str(out[0]), "--json", str(out[1]), "--csv", str(out[2])]) == 0
    printed = capsys.readouterr().out
    assert "standard deviations above" in printed and "junk.wav" in printed.split("not scored")[1]
    assert sorted(p.name for p in out[0].iterdir()) == ["burst_anomaly.png", "low0_anomaly.png"]
    report = json.loads(out[1].read_text())
    scored = [f for f in report["files"] if f["score"] is not None]
    assert len(scored) == 2 and report["threshold"] == -100
    # everything is above a threshold of -100 SD: one span covering each whole clip, and each clip atypical as a whole
    for entry in scored:
        assert len(entry["spans"]) == 1 and entry["spans"][0]["start"] == 0.0
        assert entry["spans"][0]["end"] == pytest.approx(2.0, abs=0.2)
        assert entry["whole"] and math.isfinite(entry["motion"])
    rows = list(csv.DictReader(out[2].open()))
    assert {row["path"] for row in rows} == {str(good), str(bad)}
    assert sorted(row["kind"] for row in rows) == ["whole", "whole", "window", "window"]
    assert [f for f in report["files"] if f["score"] is None][0]["error"]


def test_calibrate_verb_adds_a_calibration_and_score_needs_one(trained, tmp_path, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained / "run" / "model", folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("anomaly_calibration")
    (folder / "config.json").write_text(json.dumps(config))
    clip = str(trained / "data" / "low" / "low0.wav")
    assert main(["score", str(folder), clip, "--png", str(tmp_path / "p")]) == 2
    assert "audiovae calibrate" in capsys.readouterr().err
    assert main(["calibrate", str(folder), "--data", str(trained / "data"), "--cache", str(tmp_path / "cache"),
                 "--threshold", "2.5", "--window", "1.0"]) == 0
    stored = read_config(folder)["anomaly_calibration"]
    assert stored["threshold"] == 2.5 and stored["recordings"] >= 2
    assert stored["window"] == window_frames(load(folder), 1.0) > window_frames(load(folder))
    assert main(["score", str(folder), clip]) == 0
    assert "threshold 2.5" in capsys.readouterr().out


def test_score_of_midi_files_lists_flagged_bars(tmp_path, capsys):
    from midi_fixtures import write_chords_with_a_random_bar

    piece = write_chords_with_a_random_bar(tmp_path, "piece.mid", bars=12, random_bar=6)
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd not really")
    out = tmp_path / "bars.json"
    assert main(["score", "default-midi", str(piece), str(broken), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "piece's own typical bar" in printed and "broken.mid" in printed.split("not scored")[1]
    report = json.loads(out.read_text())
    row = report["files"][0]
    assert len(row["bar_scores_nats"]) == 12 and row["flagged_bars"][0]["first"] == 7
    assert report["files"][1]["error"] and report["threshold"] == 8.0
    assert main(["score", "default-midi", str(piece), "--png", str(tmp_path / "p")]) == 2
