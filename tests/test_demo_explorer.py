"""The latent explorer: principal directions (computed, stored, the prior fallback), moving a clip or a prior sample
along them, and the 2-D pad between clips and genres, on the tiny demo model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import audiovae
from audiovae.demo import explorer
from audiovae.demo.handlers import DemoInputError
from audiovae.errors import ParameterError
from audiovae.inference import waveform_to_mel
from audiovae.latent import (directions_from_items, directions_from_prior, latent_directions, move_along,
                             principal_directions)
from demo_fixtures import MAX_SECONDS, make_mel_model, write_tone

LOG_MEL_RMS_MOVED = 0.05  # a move of 2 standard deviations must change the log-mel by more than this (nats, RMS)


@pytest.fixture(scope="module")
def mel(tmp_path_factory):
    return audiovae.load(make_mel_model(tmp_path_factory.mktemp("explorer") / "mel"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_tone(tmp_path_factory.mktemp("explorer_clips") / "a.wav", seconds=1.5)


def log_mel(model, path) -> torch.Tensor:
    wav, _ = sf.read(str(path), dtype="float32")
    return waveform_to_mel(model, wav)


def log_mel_rms_difference(model, a, b) -> float:
    x, y = log_mel(model, a), log_mel(model, b)
    frames = min(x.shape[-1], y.shape[-1])
    return float(torch.sqrt(torch.mean((x[:, :frames] - y[:, :frames]) ** 2)))


def test_principal_directions_find_the_axis_the_frames_vary_along(mel):
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(4, 4, 50, generator=g) * 0.1          # [B, C, T]: small noise on every channel
    frames[:, 2] += 3.0 * torch.randn(4, 50, generator=g)      # channel 2 varies most
    found = principal_directions(mel, frames, count=3)
    components = torch.tensor(found["components"])
    assert components.shape == (3, 4) and found["frames"] == 200
    assert torch.allclose(components @ components.T, torch.eye(3, dtype=components.dtype), atol=1e-6)
    assert abs(float(components[0, 2])) > 0.99 and float(components[0, 2]) > 0  # sign: the largest entry positive
    assert 2.5 < found["std"][0] < 3.5 and found["explained"][0] > 0.95
    assert found["std"] == sorted(found["std"], reverse=True)
    with pytest.raises(ParameterError, match="at least two frames"):
        principal_directions(mel, [torch.zeros(4, 1)])


def test_move_along_shifts_every_frame_by_the_scaled_direction(mel):
    directions = {"components": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], "std": [2.0, 0.5]}
    z = torch.zeros(1, 4, 6)
    moved = move_along(mel, z, [1.5, -2.0], directions)
    assert moved.shape == z.shape
    assert torch.allclose(moved[0, :, 3], torch.tensor([3.0, -1.0, 0.0, 0.0]))
    assert torch.allclose(moved[0, :, 0], moved[0, :, 5])
    assert torch.equal(move_along(mel, z, [1.5, -2.0, 0.0, 0.0], directions), moved)  # unused sliders at 0
    with pytest.raises(ParameterError, match="only 2 directions are known"):
        move_along(mel, z, [0.0, 0.0, 1.0], directions)
    with pytest.raises(ParameterError, match="belong to another model"):
        move_along(mel, z, [1.0], {"components": [[1.0, 0.0]], "std": [1.0]})


def test_directions_come_from_training_items_or_on_first_use_from_the_prior(mel, clip, tmp_path):
    items = [("a.wav", log_mel(mel, clip), 0), ("b.wav", log_mel(mel, write_tone(tmp_path / "b.wav", seconds=1.0,
                                                                                   freq=660.0)), 1)]
    found = directions_from_items(mel, items, count=2)
    assert found["source"] == "training latents" and len(found["components"]) == 2 and len(found["mean"]) == 4
    model = audiovae.load(mel.checkpoint_path)
    assert "directions" not in model.latent_stats
    first = latent_directions(model)
    assert first["source"] == "prior samples" and len(first["components"]) == 4  # capped at 4 channels
    assert latent_directions(model) is first and "centroids" in model.latent_stats  # kept, nothing else lost
    assert first == directions_from_prior(model)  # seeded: the same every time
    model.latent_stats = {**model.latent_stats, "directions": found}
    assert latent_directions(model) is found


def test_bundled_default_mel_stores_its_directions():
    from audiovae.checkpoint import read_config, resolve

    stored = read_config(resolve("default-mel"))["latent_stats"]["directions"]
    assert stored["source"] == "training latents" and stored["frames"] > 100_000
    assert np.asarray(stored["components"]).shape == (8, 32)
    assert stored["explained"] == sorted(stored["explained"], reverse=True) and sum(stored["explained"]) < 1.0
    json.dumps(stored)


def test_a_slider_move_changes_the_clip_and_keeps_its_length(mel, clip, tmp_path):
    start = explorer.move_source(mel, path=clip, offsets=[0.0] * 8, max_seconds=MAX_SECONDS, out_dir=tmp_path)
    moved = explorer.move_source(mel, path=clip, offsets=[2.0], max_seconds=MAX_SECONDS, out_dir=tmp_path)
    assert sf.info(str(moved.audio)).frames == sf.info(str(start.audio)).frames
    assert log_mel_rms_difference(mel, start.audio, moved.audio) > LOG_MEL_RMS_MOVED
    assert "directions 1: +2.0" in moved.message and "a.wav" in moved.message
    assert moved.picture.is_file()
    with pytest.raises(DemoInputError, match=r"direction 2 must be between -3 and 3"):
        explorer.move_source(mel, path=clip, offsets=[0.0, 5.0], max_seconds=MAX_SECONDS, out_dir=tmp_path)
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(DemoInputError, match=r"The clip \(notes\.txt\) is not an audio file"):
        explorer.move_source(mel, path=tmp_path / "notes.txt", max_seconds=MAX_SECONDS, out_dir=tmp_path)


def test_without_a_clip_the_sliders_move_a_prior_sample(mel, tmp_path):
    start = explorer.move_source(mel, genre="jazz", seed=3, seconds=1.0, out_dir=tmp_path)
    moved = explorer.move_source(mel, genre="jazz", seed=3, seconds=1.0, offsets=[0.0, -2.0], out_dir=tmp_path)
    other = explorer.move_source(mel, genre="jazz", seed=4, seconds=1.0, out_dir=tmp_path)
    assert "prior sample of jazz, seed 3" in start.message
    assert log_mel_rms_difference(mel, start.audio, moved.audio) > LOG_MEL_RMS_MOVED
    assert not np.allclose(sf.read(str(start.audio))[0], sf.read(str(other.audio))[0], atol=1e-4)


def test_pad_corners_and_bilinear_mix(mel, clip, tmp_path):
    clips = {"a": str(clip), "b": str(write_tone(tmp_path / "b.wav", seconds=1.5, freq=660.0))}
    corners = ["clip:a", "clip:b", "genre:folk", "genre:jazz"]
    assert [v for _, v in explorer.corner_choices(mel, clips)] == corners
    at_a = explorer.pad_point(mel, corners, x=0.0, y=0.0, clips=clips, seconds=1.5, max_seconds=MAX_SECONDS,
                              out_dir=tmp_path)
    reconstruction = explorer.move_source(mel, path=clip, max_seconds=MAX_SECONDS, out_dir=tmp_path)
    assert np.allclose(sf.read(str(at_a.audio))[0], sf.read(str(reconstruction.audio))[0], atol=1e-4)  # corner a
    middle = explorer.pad_point(mel, corners, x=0.5, y=0.5, clips=clips, seconds=1.5, max_seconds=MAX_SECONDS,
                                out_dir=tmp_path)
    assert log_mel_rms_difference(mel, at_a.audio, middle.audio) > LOG_MEL_RMS_MOVED
    assert "a (clip) 0.25" in middle.message and "jazz (genre) 0.25" in middle.message
    with pytest.raises(DemoInputError, match="unknown pad clip '/etc/passwd'"):
        explorer.pad_point(mel, ["clip:/etc/passwd", *corners[1:]], x=0.5, y=0.5, clips=clips, out_dir=tmp_path)
    with pytest.raises(DemoInputError, match="four corners"):
        explorer.pad_point(mel, corners[:3], x=0.5, y=0.5, clips=clips, out_dir=tmp_path)
    with pytest.raises(DemoInputError, match="x must be between 0 and 1"):
        explorer.pad_point(mel, corners, x=1.5, y=0.5, clips=clips, out_dir=tmp_path)
