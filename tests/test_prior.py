"""The shared temporal prior: its maps, and the second stage that fits it to a trained mel VAE."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import audiovae
from audiovae.latent import prior_samples
from audiovae.models.prior import TemporalPrior

RECIPES = Path(__file__).parent.parent / "recipes"


def _trained(prior: TemporalPrior, seed: int = 0) -> TemporalPrior:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0.0, 0.3)
    return prior.eval()


@pytest.mark.parametrize("positions", [None, 6])
def test_noise_and_latent_maps_invert_each_other(positions):
    prior = _trained(TemporalPrior(3, 2, 8, positions=positions))
    c = torch.randn(4, 2)
    eps = torch.randn(4, 6, 3)
    with torch.no_grad():
        z = prior.sample(eps, c)
        assert torch.allclose(prior.noise(z, c), eps, atol=1e-4)
        mean, logvar = prior.params(z, c)
        expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
        assert torch.allclose(prior.log_prob(z, c), expected, atol=1e-4)


def test_any_length_and_continuation():
    prior = _trained(TemporalPrior(3, 0, 8))
    with torch.no_grad():
        long = prior.sample(torch.randn(2, 50, 3), None)
        assert long.shape == (2, 50, 3) and torch.isfinite(long).all()
        eps = torch.randn(2, 8, 3)
        whole = prior.sample(eps, None)
        tail = prior.sample(eps[:, 5:], None, prefix=whole[:, :5])  # the same noise after the same context
        assert torch.allclose(tail, whole[:, 5:], atol=1e-5)
    with pytest.raises(ValueError, match="covers 4 positions"):
        TemporalPrior(3, 0, 8, positions=4).sample(torch.randn(1, 5, 3), None)


def test_guidance_moves_the_means_away_from_the_no_genre_prior():
    prior = _trained(TemporalPrior(3, 2, 8))
    eps, c, free = torch.zeros(1, 5, 3), torch.randn(1, 2), torch.randn(1, 2)
    with torch.no_grad():
        plain = prior.sample(eps, c)
        guided = prior.sample(eps, c, guide=free, guidance=2.0)
        unguided = prior.sample(eps, free)
    assert not torch.allclose(plain, guided)
    first = plain[:, 0] + 2.0 * (plain[:, 0] - unguided[:, 0])  # step 0 sees the same context in all three
    assert torch.allclose(guided[:, 0], first, atol=1e-5)


@pytest.mark.slow
def test_second_stage_fits_a_prior_and_leaves_the_vae_alone(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 3, "b": 3})
    env = {"OMP_NUM_THREADS": "1"}
    common = ["--data", str(data), "--no-progress", "--set", "train.threads=1", "--set", "train.sample_every=0"]
    vae_run, prior_run = tmp_path / "vae", tmp_path / "prior"
    for recipe, out, extra in [("mel_vae_tiny.toml", vae_run, []),
                               ("mel_prior_tiny.toml", prior_run, ["--set", f'model.vae="{vae_run}"'])]:
        result = subprocess.run([sys.executable, "-m", "audiovae", "train", str(RECIPES / recipe), "--out", str(out),
                                 *common, *extra], capture_output=True, text=True, env=os.environ | env)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "val/prior_nll_per_frame" in result.stdout
    vae, model = audiovae.load(vae_run), audiovae.load(prior_run)
    assert model.latent_prior is not None and vae.latent_prior is None
    before, after = load_file(str(vae_run / "model" / "model.safetensors")), load_file(
        str(prior_run / "model" / "model.safetensors"))
    for key, value in before.items():
        assert torch.equal(after[key], value), key  # encoder, decoder and genre embedding are the VAE's
    trained = [k for k in after if k.startswith("latent_prior.")]
    assert trained and any(after[k].abs().sum() > 0 for k in trained if k.startswith("latent_prior.out"))
    z = prior_samples(model, 2, frames=7, cond=torch.tensor([1]), seed=3)
    assert z.shape == (2, vae.latent_channels, 7)
    assert torch.equal(z, prior_samples(model, 2, frames=7, cond=torch.tensor([1]), seed=3))
    assert not torch.allclose(z, prior_samples(vae, 2, frames=7, cond=torch.tensor([1]), seed=3))


def _mel_model_with_prior():
    from audiovae.models import MelVAE

    model = MelVAE(frontend={"n_mels": 16}, hidden=16, latent_channels=4, blocks_per_stage=1, cond_dim=4,
                   genres=["a", "b"], prior="autoregressive", prior_hidden=8)
    return _trained_prior_in(model)


def _trained_prior_in(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.latent_prior.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def test_blends_run_through_the_latent_or_the_prior_noise():
    from audiovae.errors import ParameterError
    from audiovae.latent import latent_blend

    model = _mel_model_with_prior()
    z_a, z_b = torch.randn(1, 4, 6), torch.randn(1, 4, 6)
    a, b = torch.tensor([0]), torch.tensor([1])
    for method in ("slerp", "lerp", "noise"):
        start, cond0 = latent_blend(model, z_a, z_b, 0.0, method=method, cond_a=a, cond_b=b)
        end, cond1 = latent_blend(model, z_a, z_b, 1.0, method=method, cond_a=a, cond_b=b)
        assert torch.allclose(start, z_a, atol=1e-4) and torch.allclose(end, z_b, atol=1e-4), method
        assert cond0.tolist() == [[1.0, 0.0]] and cond1.tolist() == [[0.0, 1.0]]
    middle_noise = latent_blend(model, z_a, z_b, 0.5, method="noise", cond_a=a, cond_b=b)[0]
    assert not torch.allclose(middle_noise, latent_blend(model, z_a, z_b, 0.5, cond_a=a, cond_b=b)[0])
    assert latent_blend(model, z_a, z_b, 0.5)[1] is None
    with pytest.raises(ParameterError, match="same shape"):
        latent_blend(model, z_a, z_b[..., :3], 0.5)
    with pytest.raises(ParameterError, match="slerp, lerp, noise"):
        latent_blend(model, z_a, z_b, 0.5, method="cubic")


def test_continue_cli_extends_a_clip(tmp_path):
    from conftest import write_clip

    from audiovae.audio.io import read_audio
    from audiovae.checkpoint import write_model_folder
    from audiovae.cli import main

    model = _mel_model_with_prior()
    write_model_folder(tmp_path / "m", model)
    clip = write_clip(tmp_path / "clip.wav", seconds=1.0, kind="chirp")
    assert main(["continue", str(tmp_path / "m"), str(clip), "--seconds", "2", "--out", str(tmp_path / "out.wav"),
                 "--genre", "b", "--n-iter", "2", "--device", "cpu"]) == 0
    wav, rate = read_audio(tmp_path / "out.wav", sample_rate=22050)
    assert 2.9 < len(wav) / rate < 3.2
    plain = model.__class__(**(model.init_args | {"prior": "standard"}))
    write_model_folder(tmp_path / "plain", plain)
    assert main(["continue", str(tmp_path / "plain"), str(clip), "--out", str(tmp_path / "x.wav")]) == 2
