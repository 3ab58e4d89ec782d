from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import write_clip
from midi_fixtures import write_corrupt, write_piece
from torch.nn import functional as F

from audiovae.cli import main
from audiovae.errors import ConfigError, ParameterError
from audiovae.latent import (align_latents, anomaly_scores, attribute_vector, blend_genres, centroids_from_folder,
                             condition_weights, genre_centroids, interpolate_temporal, lerp, prior_samples,
                             shift_latent, slerp)
from audiovae.midi import RollConfig
from audiovae.midi.generate import read_roll, roll_to_segments
from audiovae.models import MelVAE, PianoRollCVAE
from audiovae.checkpoint import write_model_folder
from audiovae.scoring import score_files

TINY_MEL = dict(hidden=16, latent_channels=4, downsample_stages=2, blocks_per_stage=1, cond_dim=4)
FRONTEND = {"sample_rate": 22050, "n_fft": 512, "hop_length": 256, "n_mels": 16, "f_max": 8000.0}
ROLL = RollConfig(segment_bars=2, pitch_low=48, pitch_high=71)  # segments [2, 32, 24]
CENTROIDS = {"a": [1.0, 0.0, 0.0, 0.0], "b": [0.0, 2.0, 0.0, 0.0], "c": [0.0, 0.0, 0.0, -1.0]}


def mel_model(genres=(), seed=0, **kw) -> MelVAE:
    torch.manual_seed(seed)
    return MelVAE(genres=list(genres), frontend=FRONTEND, **(TINY_MEL | kw)).eval()


def roll_model(genres=("a", "b"), seed=0) -> PianoRollCVAE:
    torch.manual_seed(seed)
    return PianoRollCVAE(roll=ROLL.to_dict(), genres=list(genres), substeps=4, channels=[16], latent_dim=16,
                         cond_dim=4).eval()


# --- slerp and alignment -------------------------------------------------------------------------------------
def test_slerp_stays_on_the_sphere_and_falls_back_to_lerp():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([1.0, 1.0]) / math.sqrt(2), atol=1e-6)
    assert float(lerp(a, b, 0.5).norm()) == pytest.approx(1 / math.sqrt(2))
    parallel = slerp(a, 2 * a, 0.25)  # angle 0: slerp's 1/sin(angle) would be 1/0
    assert torch.equal(parallel, lerp(a, 2 * a, 0.25))
    from_zero = slerp(torch.zeros(2), b, 0.5)
    assert torch.isfinite(from_zero).all() and torch.allclose(from_zero, 0.5 * b)


def test_align_crop_loop_and_stretch():
    a = torch.arange(12.0).reshape(3, 4)  # a[c, t] = 4c + t
    b = -torch.arange(21.0).reshape(3, 7)
    ca, cb = align_latents(a, b, mode="crop")
    assert torch.equal(ca, a) and torch.equal(cb, b[:, :4])
    la, lb = align_latents(a, b, mode="loop")
    assert la.shape == (3, 7) and torch.equal(lb, b)
    assert torch.equal(la[:, :4], a) and torch.equal(la[:, 4:], a[:, :3])
    sa, sb = align_latents(a, b, mode="stretch")
    assert sa.shape == (3, 7) and torch.equal(sb, b)
    # a is linear in time, so stretching 4 frames onto 7 puts frame j at t = j * 3 / 6
    expected = 4 * torch.arange(3.0)[:, None] + torch.arange(7.0)[None] * 0.5
    assert torch.allclose(sa, expected, atol=1e-5)
    # the longer one may come first, too; and one frame stretches by repetition
    sb2, sa2 = align_latents(b, a, mode="stretch")
    assert torch.equal(sb2, b) and torch.allclose(sa2, expected, atol=1e-5)
    one, _ = align_latents(a[:, :1], b, mode="stretch")
    assert torch.equal(one, a[:, :1].expand(3, 7))
    same = align_latents(a, a + 1, mode="loop")
    assert torch.equal(same[0], a) and torch.equal(same[1], a + 1)


def test_align_and_interpolate_refuse_bad_arguments():
    a, b = torch.randn(3, 4), torch.randn(3, 7)
    with pytest.raises(ParameterError, match="crop, loop, stretch"):
        align_latents(a, b, mode="pad")
    with pytest.raises(ParameterError, match="differ only in length"):
        align_latents(a, torch.randn(5, 7))
    with pytest.raises(ParameterError, match="slerp, lerp"):
        interpolate_temporal(a, b, 0.5, method="cubic")


def test_interpolate_temporal_slerps_every_frame():
    torch.manual_seed(0)
    a, b = torch.randn(8, 5), torch.randn(8, 9)
    out = interpolate_temporal(a, b, 0.3, align="loop")
    assert out.shape == (8, 9)
    la, lb = align_latents(a, b, mode="loop")
    for t in range(9):
        assert torch.allclose(out[:, t], slerp(la[:, t], lb[:, t], 0.3), atol=1e-6)
    assert torch.allclose(interpolate_temporal(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(interpolate_temporal(a, b, 1.0), b[:, :5], atol=1e-6)
    assert torch.allclose(interpolate_temporal(a, b, 0.3, method="lerp"), 0.7 * a + 0.3 * b[:, :5])


# --- prior samples -------------------------------------------------------------------------------------------
def test_prior_samples_shapes_seeds_and_temperature():
    mel, roll = mel_model(), roll_model()
    z = prior_samples(mel, 3, frames=5, seed=7)
    assert z.shape == (3, 4, 5)
    assert torch.equal(z, prior_samples(mel, 3, frames=5, seed=7))
    assert not torch.equal(z, prior_samples(mel, 3, frames=5, seed=8))
    assert torch.equal(prior_samples(mel, 3, frames=5, seed=7, temperature=0.5), 0.5 * z)
    v = prior_samples(roll, 2000, temperature=0.5)
    assert v.shape == (2000, 16)
    assert float(v.std()) == pytest.approx(0.5, rel=0.05) and abs(float(v.mean())) < 0.02
    with pytest.raises(ParameterError, match="frames="):
        prior_samples(mel, 1)
    with pytest.raises(ParameterError, match="drop frames"):
        prior_samples(roll, 1, frames=4)
    with pytest.raises(ParameterError, match="temperature"):
        prior_samples(roll, 1, temperature=-1)


# --- genre centroids, shifts and blends ----------------------------------------------------------------------
def test_centroids_attribute_vectors_and_shifts():
    model = mel_model()
    with pytest.raises(ConfigError, match="centroids_from_folder"):
        genre_centroids(model)
    model.latent_stats = {"mean": [0.0] * 4, "std": [1.0] * 4, "centroids": CENTROIDS}
    centroids = genre_centroids(model)
    assert torch.equal(centroids["b"], torch.tensor([0.0, 2.0, 0.0, 0.0]))
    assert torch.equal(attribute_vector(centroids, "a", "b"), torch.tensor([-1.0, 2.0, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="known: a, b, c"):
        attribute_vector(centroids, "a", "polka")

    z = torch.randn(2, 4, 6)
    shifted = shift_latent(model, z, source="a", target="b", amount=0.5)
    step = torch.tensor([-0.5, 1.0, 0.0, 0.0])[None, :, None]
    assert torch.allclose(shifted, z + step)  # the same vector at every frame
    toward = shift_latent(model, z, source=None, target="c", amount=1.0)
    assert torch.allclose(toward.mean(-1), centroids["c"].expand(2, 4), atol=1e-6)
    assert torch.allclose(toward - toward.mean(-1, keepdim=True), z - z.mean(-1, keepdim=True), atol=1e-6)
    with pytest.raises(ParameterError, match="does not fit"):
        shift_latent(model, torch.randn(2, 5, 6), source="a", target="b")


def test_blend_genres_takes_the_centroid_path_for_unconditional_models():
    model = roll_model(genres=())
    model.latent_stats = {"centroids": {"x": [1.0] * 16, "y": [-1.0] * 16, "w": [3.0] * 16}}
    z = torch.randn(3, 16)
    out, cond = blend_genres(model, z, {"y": 1.0, "w": 3.0}, source="x", amount=0.5)
    assert cond is None
    assert torch.allclose(out, z + 0.5 * (torch.full((16,), 2.0) - 1.0))  # goal 0.25*-1 + 0.75*3 = 2
    out, _ = blend_genres(model, z, {"y": 1.0})  # source unknown: from z itself, amount 1 lands on the centroid
    assert torch.allclose(out, torch.full((3, 16), -1.0))
    with pytest.raises(ConfigError, match="no genre conditions"):
        blend_genres(model, z, {"y": 1.0}, path="condition")


def test_blend_genres_mixes_the_condition_for_conditional_models():
    model = mel_model(genres=["a", "b", "c"])
    with torch.no_grad():
        for p in model.parameters():  # FiLM starts at zero; give the condition an effect
            p.add_(0.1 * torch.randn_like(p))
    z = torch.randn(2, 4, 3)
    same, cond = blend_genres(model, z, {"c": 1.0}, source="a", amount=0.25)
    assert same is z and cond.shape == (2, 3)
    assert torch.allclose(cond, torch.tensor([[0.75, 0.0, 0.25]] * 2))
    _, full = blend_genres(model, z, {"b": 2.0, "c": 2.0})
    assert torch.allclose(full, torch.tensor([[0.0, 0.5, 0.5]] * 2))
    _, one = blend_genres(model, z, {"b": 1.0})
    assert torch.allclose(model.decode(z, one), model.decode(z, torch.tensor([1, 1])), atol=1e-5)
    with pytest.raises(ParameterError, match="needs the source genre"):
        blend_genres(model, z, {"b": 1.0}, amount=0.5)
    with pytest.raises(ParameterError, match="blend path"):
        blend_genres(model, z, {"b": 1.0}, path="sideways")


def test_condition_weights_normalise_and_name_the_known_genres():
    model = mel_model(genres=["folk", "jazz", "rock"])
    assert torch.allclose(condition_weights(model, {"jazz": 1, "rock": 3}), torch.tensor([[0.0, 0.25, 0.75]]))
    with pytest.raises(ConfigError, match="polka.*knows: folk, jazz, rock"):
        condition_weights(model, {"polka": 1.0})
    with pytest.raises(ParameterError, match=">= 0"):
        condition_weights(model, {"jazz": -1.0})
    with pytest.raises(ParameterError, match="no positive weight"):
        condition_weights(model, {"jazz": 0.0})
    with pytest.raises(ConfigError, match="no genre conditions"):
        condition_weights(mel_model(), {"jazz": 1.0})


def test_centroids_from_folder_are_time_averaged_posterior_means():
    model = mel_model(genres=["a", "b"])
    torch.manual_seed(1)
    items = [(torch.randn(16, 20) - 5, "b"), (torch.randn(16, 12) - 5, "a"), (torch.randn(16, 8) - 5, "b")]
    centroids = centroids_from_folder(model, items)
    assert list(centroids) == ["a", "b"]
    with torch.no_grad():
        means = [model.encode(x[None]).mean[0].mean(-1) for x, _ in items]
    assert torch.allclose(centroids["a"], means[1]) and torch.allclose(centroids["b"], (means[0] + means[2]) / 2)
    vector = roll_model()
    rolls = (torch.rand(2, 2, 32, 24) < 0.1).float()
    by_genre = centroids_from_folder(vector, [(rolls[0], "x"), (rolls[1], "x")])
    with torch.no_grad():
        assert torch.allclose(by_genre["x"], vector.encode(rolls).mean.mean(0), atol=1e-6)


# --- anomaly scores ------------------------------------------------------------------------------------------
def test_anomaly_score_is_the_negative_elbo_per_frame():
    model = mel_model(genres=["a", "b"], recon_scale=0.5)
    x = torch.randn(3, 16, 13) - 5
    cond = torch.tensor([0, 1, -1])
    with torch.no_grad():
        post = model.encode(x, cond)
        x_hat = model.decode(post.mean, cond, frames=13)
        nll = ((x - x_hat).abs() / 0.5 + math.log(2 * 0.5)).sum((1, 2))
        kl = 0.5 * (post.mean ** 2 + post.logvar.exp() - 1 - post.logvar).sum((1, 2))
    assert torch.allclose(anomaly_scores(model, x, cond), (nll + kl) / 13, rtol=1e-5)

    roll = roll_model()
    rolls = (torch.rand(2, 2, 32, 24) < 0.1).float()
    with torch.no_grad():
        post = roll.encode(rolls)
        logits = roll.decode(post.mean)
        bce = (F.softplus(logits) - rolls * logits).sum((1, 2, 3))
        kl = 0.5 * (post.mean ** 2 + post.logvar.exp() - 1 - post.logvar).sum(1)
    assert torch.allclose(anomaly_scores(roll, rolls), (bce + kl) / 32, rtol=1e-5)


def _smooth_mels(n: int, generator: torch.Generator) -> torch.Tensor:
    """Log-mels [n, 16, 32] with one bright band that drifts slowly: what the tiny model learns."""
    centre = 3 + 10 * torch.rand(n, 1, 1, generator=generator) + torch.linspace(0, 2, 32)[None, None]
    bands = torch.arange(16.0)[None, :, None]
    return -6 + 4 * torch.exp(-((bands - centre) ** 2) / 4)


def test_anomaly_scores_rank_corrupted_inputs_above_clean_ones():
    model = mel_model(recon_scale=0.3).train()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        x = _smooth_mels(16, generator)
        x_hat, post = model(x)
        loss = (model.reconstruction_nll(x, x_hat) + post.kl_per_item()).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    clean = _smooth_mels(8, generator)
    noisy = clean + 1.5 * torch.randn(clean.shape, generator=generator)
    # the same values with the bands shuffled: only a model that learned the band structure finds these odd
    # (the untrained model scores them below the clean ones)
    shuffled = clean[:, torch.randperm(16, generator=generator)]
    clean_scores = anomaly_scores(model, clean)
    assert float(anomaly_scores(model, noisy).min()) > float(clean_scores.max())
    assert float(anomaly_scores(model, shuffled).min()) > float(clean_scores.max())


# --- files and the CLI ---------------------------------------------------------------------------------------
def _bad_audio(path):
    path.write_text("this is not audio")
    return path


def test_score_files_scores_good_audio_and_reports_bad_files(tmp_path):
    model = mel_model()
    good = write_clip(tmp_path / "tone.wav", seconds=1.0, kind="sine")
    bad = _bad_audio(tmp_path / "bad.wav")
    silent = write_clip(tmp_path / "silent.wav", seconds=1.0, kind="silence")
    results = score_files(model, [good, bad, silent, tmp_path / "missing.wav"])
    assert [r[0] for r in results] == [str(p) for p in (good, bad, silent, tmp_path / "missing.wav")]
    (_, score, error), *failed = results
    from audiovae.inference import clip_to_mel

    assert error is None and score == pytest.approx(float(anomaly_scores(model, clip_to_mel(model, good)[None])[0]))
    assert [(s, e) for _, s, e in failed] == [(None, failed[0][2]), (None, "silent"), (None, "no such file")]
    assert "not a readable audio file" in failed[0][2]


def test_score_files_reads_midi_for_midi_models(tmp_path):
    model = roll_model()
    piece = write_piece(tmp_path, "piece.mid", bars=6)  # 3 segments of 2 bars
    corrupt = write_corrupt(tmp_path, "corrupt.mid")
    (path, score, error), (_, none, reason) = score_files(model, [piece, corrupt])
    roll, _ = read_roll(model, piece)
    segments = torch.from_numpy(roll_to_segments(roll, 32).astype("float32"))
    assert error is None and score == pytest.approx(float(anomaly_scores(model, segments).mean()), rel=1e-5)
    assert none is None and "corrupt" in reason


def test_cli_score_ranks_files_and_writes_json(tmp_path, capsys):
    model = mel_model()
    folder = write_model_folder(tmp_path / "model", model)
    files = [write_clip(tmp_path / "sine.wav", seconds=1.0, kind="sine"),
             write_clip(tmp_path / "noise.wav", seconds=1.0, kind="noise", seed=3),
             write_clip(tmp_path / "chirp.wav", seconds=1.5, kind="chirp", seed=4),
             _bad_audio(tmp_path / "broken.wav")]
    out = tmp_path / "scores.json"
    assert main(["score", str(folder), *map(str, files), "--json", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = report["files"]
    scores = [r["score"] for r in rows if r["score"] is not None]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in rows] == [1, 2, 3, None]
    assert rows[-1]["path"] == str(files[-1]) and "not a readable audio file" in rows[-1]["error"]
    lines = printed.splitlines()
    ranked = [line.split()[1] for line in lines[1:4]]
    assert ranked == [r["path"] for r in rows[:3]]
    assert "not scored (1)" in printed and "broken.wav" in printed.split("not scored")[1]
    assert main(["score", str(folder), str(files[-1])]) == 2
    assert "none of the 1 files could be scored" in capsys.readouterr().err
