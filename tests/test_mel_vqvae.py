"""The mel VQ-VAE: quantiser (EMA, k-means start, restarts, residual stages), the code prior, code files, the CLI
round trip, the latent toolkit on codes and the two training stages on a tiny folder."""
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audiovae
from audiovae.checkpoint import write_model_folder
from audiovae.cli import main
from audiovae.codes import read_codes, write_codes
from audiovae.errors import AudioVAEError, ParameterError
from audiovae.latent import anomaly_scores, blend_genres, latent_blend, prior_samples
from audiovae.models.mel_vqvae import MelVQVAE
from audiovae.models.prior import CategoricalPrior
from audiovae.models.quantiser import ResidualQuantiser, VectorQuantiser, code_statistics
from conftest import train_tiny_run

TINY = dict(frontend={"n_mels": 16}, hidden=16, code_dim=4, codebook_size=8, num_codebooks=2, blocks_per_stage=1,
            cond_dim=4, genres=["a", "b"], kmeans_batches=2)


def tiny(**changes) -> MelVQVAE:
    torch.manual_seed(0)
    return MelVQVAE(**(TINY | changes))


def warmed(model: MelVQVAE, batches: int = 3) -> MelVQVAE:
    """Run training-mode batches through the quantiser (the k-means start and a few EMA steps), then eval."""
    model.train()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(4, model.n_mels, 32, generator=generator) - 4, torch.tensor([0, 1, 0, 1]))
    return model.eval()


# --- quantiser --------------------------------------------------------------------------------------------------
def test_codebooks_start_from_kmeans_after_the_first_batches_then_follow_their_inputs():
    torch.manual_seed(0)
    quantiser = ResidualQuantiser(2, 4, 1, decay=0.5, kmeans_batches=2).train()
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    batch = lambda: (centres[torch.arange(64) % 4] + 0.01 * torch.randn(64, 2)).T[None]  # noqa: E731 [1, 2, 64]
    z = batch()
    out, _, commitment = quantiser(z)
    assert torch.equal(out, z) and float(commitment) == 0.0 and not bool(quantiser.initialised)
    quantiser(batch())
    assert bool(quantiser.initialised)
    found = quantiser.stages[0].codebook.clone()
    assert torch.cdist(centres, found).min(1).values.max() < 0.05  # every cluster has its code
    quantiser(batch() + torch.tensor([1.0, 0.0])[None, :, None])  # every cluster moves by +1 in x
    moved = quantiser.stages[0].codebook
    assert torch.allclose(torch.sort(moved[:, 0]).values, torch.sort(found[:, 0]).values + 0.5, atol=0.05)  # EMA 0.5


def test_dead_codes_restart_at_recent_inputs():
    torch.manual_seed(0)
    stage = VectorQuantiser(2, 4, decay=0.5, restart_threshold=0.3)
    stage.set_codebook(torch.tensor([[0.0, 0.0], [100.0, 100.0], [0.1, 0.0], [0.0, 0.1]]), torch.ones(4))
    x = torch.randn(32, 2) * 0.01
    for _ in range(2):
        restarted = stage.update(x, stage.nearest(x))
    assert restarted >= 1
    assert torch.cdist(stage.codebook[1:2], x).min() < 1e-6  # the far code now sits on one of the inputs


def test_straight_through_gradients_and_exact_eval_codes():
    quantiser = ResidualQuantiser(3, 8, 2, kmeans_batches=0).train()
    z = torch.randn(2, 3, 10, requires_grad=True)
    out, codes, commitment = quantiser(z)
    (out.sum() + commitment).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0 and codes.shape == (2, 2, 10)
    quantiser.eval()
    out, codes, _ = quantiser(z.detach())
    assert torch.equal(out, quantiser.decode_codes(codes))
    assert torch.equal(codes, quantiser.encode_codes(z.detach()))


def test_residual_stages_reduce_the_quantisation_error():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 512)
    errors = []
    for stages in (1, 3):
        quantiser = ResidualQuantiser(4, 16, stages, kmeans_batches=1).train()
        quantiser(x)
        errors.append(float((quantiser.eval()(x)[0] - x).pow(2).mean()))
    assert errors[1] < 0.6 * errors[0]


def test_code_statistics_count_usage_and_perplexity():
    codes = torch.tensor([[0, 1, 2, 3] * 5])  # 4 of 8 codes, equally often
    stats = code_statistics(codes, 8)
    assert stats["usage"] == 0.5 and stats["dead"] == 0.5
    assert stats["perplexity"] == pytest.approx(4.0) and stats["perplexity_ratio"] == pytest.approx(0.5)
    two = code_statistics(torch.tensor([[0, 1, 2, 3] * 5, [0, 1] * 10]), 8)  # the second codebook uses 2 codes
    assert two["perplexity_ratio"] == pytest.approx(0.375) and two["worst_perplexity_ratio"] == pytest.approx(0.25)
    assert two["dead"] == pytest.approx(0.625) and two["worst_dead"] == pytest.approx(0.75)


# --- the model --------------------------------------------------------------------------------------------------
def test_encode_gives_quantised_vectors_codes_and_log_k_per_code():
    model = warmed(tiny())
    x = torch.randn(2, 16, 24) - 4
    posterior = model.encode(x, torch.tensor([0, 1]))
    assert posterior.mode() is posterior.quantised and posterior.sample(2.0) is posterior.quantised
    assert posterior.mean.shape == posterior.quantised.shape == (2, 4, 6)
    assert not torch.equal(posterior.mean, posterior.quantised)
    assert torch.equal(posterior.codes, model.encode_codes(x, torch.tensor([0, 1])))
    assert torch.equal(model.codes_to_latent(posterior.codes), posterior.quantised)
    assert torch.equal(model.decode_codes(posterior.codes, frames=24), model.decode(posterior.mode(), frames=24))
    assert torch.allclose(model.latent_kl(posterior).sum(1), torch.full((2, 6), 2 * math.log(8)))
    assert model.bits_per_second == pytest.approx(2 * 3 * model.frontend.frames_per_second / 4)


def test_codes_that_do_not_fit_are_refused():
    model = tiny()
    with pytest.raises(ParameterError, match=r"\[B, 2, frames\]"):
        model.decode_codes(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ParameterError, match="hold 8 codes"):
        model.decode_codes(torch.full((1, 2, 5), 8))
    with pytest.raises(ParameterError, match="integers"):
        model.decode_codes(torch.zeros(1, 2, 5))


def test_save_and_load_keep_codebooks_and_codes(tmp_path):
    model = warmed(tiny())
    loaded = audiovae.load(write_model_folder(tmp_path / "vq", model))
    x = torch.randn(1, 16, 40) - 4
    assert isinstance(loaded, MelVQVAE) and bool(loaded.quantiser.initialised)
    assert torch.equal(loaded.encode_codes(x), model.encode_codes(x))
    assert torch.equal(loaded.decode(loaded.encode(x).mode()), model.decode(model.encode(x).mode()))


# --- the code prior ---------------------------------------------------------------------------------------------
def _fixed_prior(log_p: torch.Tensor) -> CategoricalPrior:
    """A prior whose every code has the probabilities softmax(log_p), whatever came before."""
    prior = CategoricalPrior(1, len(log_p), 0, 8)
    with torch.no_grad():
        prior.heads[0].bias.copy_(log_p)
    return prior


def test_prior_draws_follow_its_probabilities_temperature_and_top_k():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    prior = _fixed_prior(probs.log())
    uniforms = torch.rand(4000, 1, 1, generator=torch.Generator().manual_seed(0))  # 4000 draws of one code

    def frequencies(**settings):
        codes = prior.sample(uniforms, None, **settings)
        return torch.bincount(codes.flatten(), minlength=4).float() / codes.numel()

    assert torch.allclose(frequencies(), probs, atol=0.03)
    sharper = probs.pow(2) / probs.pow(2).sum()
    assert torch.allclose(frequencies(temperature=0.5), sharper, atol=0.03)
    assert torch.equal(frequencies(temperature=0.0), torch.tensor([1.0, 0, 0, 0]))
    top2 = frequencies(top_k=2)
    assert top2[2:].sum() == 0 and top2[0] == pytest.approx(0.5 / 0.8, abs=0.03)


def test_guidance_pushes_codes_away_from_the_no_genre_prior():
    model = tiny(prior="categorical", prior_hidden=8, num_codebooks=1)
    with torch.no_grad():  # genre 0 and "no genre" get different inputs; the head reads them through the GRU
        model.genre_embedding.weight.copy_(torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 0, 0]]))
        model.latent_prior.heads[0].weight.normal_(0, 1.0)
    codes = torch.zeros(1, 1, 1, dtype=torch.long)
    cond, free = model.code_logits(codes, torch.tensor([0]))[0, 0, 0], model.code_logits(codes, None)[0, 0, 0]
    guided = cond + 2.0 * (cond - free)
    drawn = model.sample_codes(torch.full((1, 1, 1), 0.5), torch.tensor([0]), temperature=0.0, guidance=2.0)
    assert int(drawn) == int(guided.argmax())
    assert int(model.sample_codes(torch.full((1, 1, 1), 0.5), torch.tensor([0]), temperature=0.0)) == int(cond.argmax())


def test_an_untrained_prior_is_uniform_and_noise_maps_to_codes_and_back():
    model = warmed(tiny(prior="categorical", prior_hidden=8))
    x = torch.randn(1, 16, 40) - 4
    with torch.no_grad():
        assert torch.allclose(model.code_nll(model.encode_codes(x)), torch.full((1, 10), 2 * math.log(8)))
    z = prior_samples(model, 2, seed=5, frames=12, cond=torch.tensor([1]))
    assert torch.equal(prior_samples(model, 2, seed=5, frames=12, cond=torch.tensor([1])), z)
    assert torch.equal(model.project_latent(z), model.latent_from_noise(model.noise_from_latent(z)))
    cold = prior_samples(model, 2, seed=5, frames=12, temperature=0.0)
    assert torch.equal(cold[0], cold[1])  # temperature 0: the same most likely codes for every seed
    prefix = model.encode(x).mode()
    continued = model.latent_from_noise(torch.randn(1, 4, 6), prefix=prefix)
    assert continued.shape == (1, 4, 6)


# --- latent toolkit on codes ------------------------------------------------------------------------------------
def test_blends_and_genre_shifts_run_on_pre_quantisation_vectors_and_are_quantised_again():
    model = warmed(tiny(num_codebooks=1))
    x_a, x_b = torch.randn(1, 16, 40) - 4, torch.randn(1, 16, 40) - 3
    a, b = model.encode(x_a), model.encode(x_b)
    start, _ = latent_blend(model, a.mean, b.mean, 0.0, method="lerp")
    assert torch.equal(start, a.mode())
    half, _ = latent_blend(model, a.mean, b.mean, 0.5)
    assert torch.equal(model.project_latent(half), half)  # on the codebook
    model.latent_stats = {"centroids": {"a": a.mean[0].mean(1).tolist(), "b": b.mean[0].mean(1).tolist()}}
    shifted, cond = blend_genres(model, a.mean[0], {"b": 1.0}, source="a", path="centroid")
    assert cond is None and torch.equal(model.project_latent(shifted[None])[0], shifted)


def test_anomaly_score_is_the_codes_nll_under_the_prior_plus_reconstruction():
    model = warmed(tiny(prior="categorical", prior_hidden=8))
    x = torch.randn(2, 16, 24) - 4
    posterior = model.encode(x)
    expected = (model.reconstruction_nll(x, model.decode(posterior.mode(), frames=24))
                + model.code_nll(posterior.codes).sum(1)) / 24
    assert torch.allclose(anomaly_scores(model, x), expected, rtol=1e-5)


# --- code files and the CLI -------------------------------------------------------------------------------------
def test_code_files_carry_their_model_and_refuse_other_codebooks(tmp_path):
    model = warmed(tiny())
    codes = model.encode_codes(torch.randn(1, 16, 40) - 4)[0]
    path = write_codes(tmp_path / "c.npy", codes, model, genre="a", frames=38)
    read, facts = read_codes(path, model)
    assert torch.equal(read, codes) and facts["genre"] == "a" and facts["codebook_size"] == 8
    assert facts["frames"] == 38
    assert np.load(path)["code"].tolist() == codes.tolist()
    with pytest.raises(AudioVAEError, match="c.npy holds codes of another model: codebook_size 8 \\(this model: 16\\)"):
        read_codes(path, warmed(tiny(codebook_size=16)))
    other = warmed(tiny())
    with torch.no_grad():
        other.quantiser.stages[0].codebook.add_(0.01)
    with pytest.raises(AudioVAEError, match="c.npy holds codes of another model: its codebooks"):
        read_codes(path, other)
    np.save(tmp_path / "plain.npy", codes.numpy())
    with pytest.raises(AudioVAEError, match="plain.npy is not an audiovae codes file"):
        read_codes(tmp_path / "plain.npy", model)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny VQ-VAE recipe, then the tiny code-prior recipe on it, on a two-genre synthetic folder."""
    root = train_tiny_run(tmp_path_factory.mktemp("vq"), "mel_vqvae_tiny.toml",
                          overrides=("train.max_steps=6", "train.val_every=6", "model.kmeans_batches=2"))
    from audiovae.train.config import load_recipe
    from audiovae.train.loop import train

    recipe = load_recipe(Path(__file__).parent.parent / "recipes" / "mel_vqvae_prior_tiny.toml", [
        f'data.path="{root / "data"}"', f'data.cache_dir="{root / "cache"}"', f'model.vae="{root / "run"}"',
        "train.max_steps=4", "train.val_every=4"])
    train(recipe, root / "prior", progress=False, log=lambda *_: None)
    return root


def test_the_two_stages_train_report_codebook_figures_and_attach_the_prior(trained):
    vq, prior = audiovae.load(trained / "run"), audiovae.load(trained / "prior")
    assert vq.latent_prior is None and prior.latent_prior is not None
    figures = audiovae.checkpoint.read_config(trained / "run" / "model")["training"]
    text = str(figures)
    for key in ("val/codebook_usage", "val/perplexity", "val/dead_codes", "val/spectral_convergence",
                "val/logmel_l1"):
        assert key in text
    x = torch.randn(1, 80, 40) - 4
    assert torch.equal(prior.encode_codes(x), vq.encode_codes(x))  # the second stage leaves the codebooks alone
    assert prior.anomaly_calibration is not None


def _wav(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path))
    return data


def test_codes_then_decode_codes_sound_like_reconstruct_and_other_codes_are_refused(trained, tmp_path, capsys):
    clip, run = trained / "data" / "low" / "low0.wav", str(trained / "prior")
    common = ["--vocoder", "griffin-lim", "--n-iter", "4"]
    assert main(["reconstruct", run, str(clip), str(tmp_path / "rec.wav"), "--genre", "low", *common]) == 0
    assert main(["codes", run, str(clip), "--out", str(tmp_path / "c.npy"), "--genre", "low"]) == 0
    assert main(["decode-codes", run, str(tmp_path / "c.npy"), str(tmp_path / "dec.wav"), *common]) == 0
    assert np.array_equal(_wav(tmp_path / "rec.wav"), _wav(tmp_path / "dec.wav"))
    other = tmp_path / "other"
    write_model_folder(other, warmed(tiny(frontend=None, codebook_size=8)))
    capsys.readouterr()
    assert main(["decode-codes", str(other), str(tmp_path / "c.npy"), str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "c.npy holds codes of another model: codebook_size 16 (this model: 8)" in err
    assert main(["codes", "default-mel", str(clip), "--out", str(tmp_path / "m.npy")]) == 2
    assert "no discrete codes" in capsys.readouterr().err
    assert main(["sample", run, "--n", "1", "--seconds", "0.5", "--out", str(tmp_path / "s"), *common]) == 0
    assert (tmp_path / "s" / "sample_000.wav").is_file()


def test_the_full_recipes_follow_the_clock_and_the_tiny_ones_the_steps():
    from audiovae.train.config import load_recipe

    recipes = Path(__file__).parent.parent / "recipes"
    for name, minutes in [("mel_vqvae", 30.0), ("mel_vqvae_prior", 10.0)]:
        full, small = load_recipe(recipes / f"{name}.toml"), load_recipe(recipes / f"{name}_tiny.toml")
        assert (full.task, full.train.schedule, full.train.time_limit_minutes) == (name, "time", minutes)
        assert (small.task, small.train.schedule, small.train.time_limit_minutes) == (name, "steps", 0.0)
    model = load_recipe(recipes / "mel_vqvae.toml").model
    assert MelVQVAE(**model).bits_per_second == pytest.approx(16 * 8 * 22050 / 256 / 4)


def test_the_gaussian_prior_stage_refuses_a_vq_model(trained, tmp_path, capsys):
    recipe = Path(__file__).parent.parent / "recipes" / "mel_prior_tiny.toml"
    assert main(["train", str(recipe), "--data", str(trained / "data"), "--out", str(tmp_path / "p"), "--no-progress",
                 "--set", f'data.cache_dir="{trained / "cache"}"', "--set", f'model.vae="{trained / "run"}"']) == 2
    assert "is a VQ-VAE: its prior over codes is recipes/mel_vqvae_prior.toml" in capsys.readouterr().err
