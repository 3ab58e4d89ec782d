import pytest
import torch

import audiovae
from audiovae.models import MelVAE
from audiovae.checkpoint import write_model_folder

TINY = dict(frontend={"n_mels": 16}, hidden=16, latent_channels=4, downsample_stages=2, blocks_per_stage=1, cond_dim=4)


@pytest.mark.parametrize("frames", [1, 7, 32, 61])
@pytest.mark.parametrize("genres", [[], ["folk", "jazz"]])
def test_any_length_encodes_to_a_temporal_latent(frames, genres):
    model = MelVAE(genres=genres, **TINY).eval()
    x = torch.randn(2, 16, frames) - 5
    cond = torch.tensor([0, 1]) if genres else None
    posterior = model.encode(x, cond)
    assert posterior.mean.shape == (2, 4, model.latent_frames(frames))
    x_hat, _ = model(x, cond)
    assert x_hat.shape == x.shape


def test_conditioning_by_id_by_mixture_and_none():
    torch.manual_seed(0)
    model = MelVAE(genres=["a", "b"], **TINY).eval()
    with torch.no_grad():
        for p in model.parameters():  # FiLM starts at zero; give it something to do
            p.add_(0.1 * torch.randn_like(p))
    z = torch.randn(1, 4, 8)
    by_id = model.decode(z, torch.tensor([1]))
    by_weights = model.decode(z, torch.tensor([[0.0, 1.0]]))
    assert torch.allclose(by_id, by_weights, atol=1e-5)
    assert not torch.allclose(model.decode(z, torch.tensor([0])), by_id)
    assert model.decode(z, None).shape == by_id.shape
    with pytest.raises(ValueError, match="mixture weights"):
        model.decode(z, torch.tensor([[1.0, 0.0, 0.0]]))


def test_wrong_mel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[B, 16, frames\]"):
        MelVAE(**TINY).encode(torch.randn(1, 80, 10))


def test_save_load_gives_the_same_output(tmp_path):
    torch.manual_seed(0)
    model = MelVAE(genres=["a", "b"], **(TINY | {"frontend": {"sample_rate": 16000, "n_mels": 16}})).eval()
    model.latent_stats = {"mean": [0.0] * 4, "std": [1.0] * 4, "centroids": {"a": [0.1] * 4}}
    write_model_folder(tmp_path / "ckpt", model)
    loaded = audiovae.load(tmp_path / "ckpt")
    x = torch.randn(1, 16, 20) - 5
    cond = torch.tensor([1])
    assert torch.equal(model(x, cond)[0], loaded(x, cond)[0])
    assert loaded.conditions == ["a", "b"] and loaded.frontend.sample_rate == 16000
    assert loaded.latent_stats["centroids"]["a"] == [0.1] * 4
    assert not loaded.training


def test_reconstruction_nll_is_laplace_in_nats():
    model = MelVAE(recon_scale=0.5, **TINY)
    x = torch.zeros(1, 16, 3)
    nll = model.reconstruction_nll(x, x + 0.5)
    # |err| / b + log(2b) per bin = 1 + log(1) = 1 nat, 48 bins
    assert float(nll[0]) == pytest.approx(48.0)
