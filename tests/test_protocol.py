"""The model protocol, the model-folder module and the shared request parsers."""
import json
import subprocess
import sys

import pytest
import torch

import audiovae
from audiovae.checkpoint import model_class, model_names, read_config, write_model_folder
from audiovae.device import resolve_device
from audiovae.errors import AudioVAEError, ConfigError, ParameterError
from audiovae.genres import UnknownGenreError, condition_weights, genre_condition, parse_genre_request
from audiovae.latent import anomaly_scores, prior_samples
from audiovae.models import LatentModel, LatentModelBase

ROLL = {"steps_per_quarter": 2, "pitch_low": 48, "pitch_high": 59, "segment_bars": 1, "beats_per_bar": 4}
TINY_LATENT_MODELS = {  # every registered latent model class, built tiny; a new class must be added here
    "MelVAE": dict(frontend={"n_mels": 16}, hidden=16, latent_channels=4, blocks_per_stage=1, cond_dim=4,
                   genres=["a", "b"]),
    "PianoRollCVAE": dict(roll=ROLL, genres=["a", "b"], latent_dim=8, substeps=2, channels=[16], cond_dim=4,
                          prior="autoregressive", prior_hidden=8),
    "MelVQVAE": dict(frontend={"n_mels": 16}, hidden=16, code_dim=4, codebook_size=8, num_codebooks=2,
                     blocks_per_stage=1, cond_dim=4, genres=["a", "b"], prior="categorical", prior_hidden=8),
}


def tiny(name: str):
    return model_class(name)(**TINY_LATENT_MODELS[name]).eval()


def example_input(model) -> torch.Tensor:
    if model.modality == "audio":
        return torch.randn(2, model.n_mels, 24) - 4
    return (torch.rand(2, *model.segment_shape) > 0.8).float()


def test_every_registered_latent_model_is_covered_here():
    assert sorted(TINY_LATENT_MODELS) == model_names("latent")


@pytest.mark.parametrize("name", sorted(TINY_LATENT_MODELS))
def test_every_registered_latent_model_satisfies_the_protocol(name):
    model = tiny(name)
    assert isinstance(model, LatentModel)
    assert model.modality in ("audio", "midi")
    x = example_input(model)
    cond = torch.tensor([0, 1])
    posterior = model.encode(x, cond)
    frames = model.frames_of(x)
    x_hat = model.decode(posterior.mode(), cond, frames=frames)
    assert x_hat.shape == x.shape
    assert model.latent_kl(posterior, cond).shape == posterior.mean.shape
    eps = torch.randn_like(posterior.mean)
    with torch.no_grad():  # noise -> z -> noise -> z gives z back, as the decoder sees it (project_latent)
        z = model.latent_from_noise(eps, cond)
        assert torch.allclose(model.latent_from_noise(model.noise_from_latent(z, cond), cond), model.project_latent(z),
                              atol=1e-4)
        assert model.project_latent(posterior.mode()).shape == posterior.mode().shape
    assert anomaly_scores(model, x, cond).shape == (2,)
    temporal = {"frames": posterior.mean.shape[-1]} if None in model.latent_shape else {}
    assert prior_samples(model, 3, cond=torch.tensor([1]), **temporal).shape == (3, *posterior.mean.shape[1:])


def test_judges_are_loadable_but_not_latent_models(tmp_path):
    assert set(model_names("judge")) == {"AudioGenreClassifier", "GenreClassifier"}
    classifier = model_class("GenreClassifier")(roll=ROLL, genres=["a", "b"], channels=[8])
    assert not isinstance(classifier, LatentModel)
    loaded = audiovae.load(write_model_folder(tmp_path / "judge", classifier))
    assert type(loaded).__name__ == "GenreClassifier"
    with pytest.raises(ConfigError, match="GenreClassifier .*not a latent model.*needs a midi model"):
        audiovae.load(tmp_path / "judge", modality="midi")


def test_bundled_models_are_latent_models():
    mel, midi = audiovae.load("default-mel"), audiovae.load("default-midi")
    assert isinstance(mel, LatentModel) and mel.modality == "audio"
    assert isinstance(midi, LatentModel) and midi.modality == "midi"
    with pytest.raises(ConfigError, match="holds a MelVAE .*audio model.*needs a midi model"):
        audiovae.load("default-mel", modality="midi")


def test_loading_a_model_does_not_import_the_trainer():
    code = ("import sys, audiovae; audiovae.load('default-mel'); audiovae.load('default-midi'); "
            "assert 'audiovae.train' not in sys.modules, sorted(m for m in sys.modules if 'train' in m)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_config_states_each_fact_once(tmp_path):
    folder = write_model_folder(tmp_path / "m", tiny("MelVAE"))
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 2
    assert set(config) == {"format", "format_version", "model_class", "model_args", "latent_stats"}
    assert "n_mels" not in config["model_args"] and config["model_args"]["frontend"]["n_mels"] == 16


def test_version_1_folders_still_load(tmp_path):
    model = tiny("MelVAE")
    folder = write_model_folder(tmp_path / "m", model)
    config = json.loads((folder / "config.json").read_text())
    args = config["model_args"]
    old = {"format": "audiovae-checkpoint", "format_version": 1, "model_class": "MelVAE",
           "model_args": args | {"n_mels": 16}, "conditions": args["genres"], "frontend": args["frontend"],
           "latent_stats": {}}
    (folder / "config.json").write_text(json.dumps(old))
    assert read_config(folder)["format_version"] == 2
    loaded = audiovae.load(folder)
    x = torch.randn(1, 16, 20)
    assert torch.equal(loaded.decode(loaded.encode(x).mode()), model.decode(model.encode(x).mode()))
    (folder / "config.json").write_text(json.dumps(old | {"model_args": args | {"n_mels": 80}}))
    with pytest.raises(ConfigError, match="n_mels 80 contradicts"):
        audiovae.load(folder)


def test_a_base_subclass_gets_the_defaults():
    class Identity(LatentModelBase):
        modality = "audio"
        latent_shape = (3, None)

        def encode(self, x, cond=None):
            from audiovae.models import DiagonalGaussian
            return DiagonalGaussian(x, torch.zeros_like(x))

        def decode(self, z, cond=None, *, frames=None):
            return z if frames is None else z[..., :frames]

        def frame_nll(self, x, x_hat):
            return (x - x_hat).pow(2).sum(1)

        def to_sequence(self, z):
            return z.transpose(1, 2)

    model = Identity(genres=["a"], cond_dim=2)
    assert isinstance(model, LatentModel)
    assert model.embed_condition(None, 4, "cpu").shape == (4, 2)
    assert model.embed_condition(torch.tensor([[1.0]]), 3, "cpu").shape == (3, 2)
    eps = torch.randn(2, 3, 5)
    assert model.latent_from_noise(eps) is eps and model.noise_from_latent(eps) is eps
    assert float(anomaly_scores(model, eps).sum()) == pytest.approx(
        float(model.encode(eps).kl().sum()) / 5, rel=1e-5)


def test_genre_requests_parse_once_for_every_caller():
    assert parse_genre_request(None) is None and parse_genre_request("") is None
    assert parse_genre_request("none") is None
    assert parse_genre_request(" jazz ") == "jazz"
    assert parse_genre_request("a=0.7, b=0.3") == {"a": 0.7, "b": 0.3}
    assert parse_genre_request("a,b") == {"a": 1.0, "b": 1.0}
    for bad, message in [("a=lots", "not a number"), ("a=-1", ">= 0"), ("a=0,b=0", "no positive weight"),
                         ("=1", "empty name")]:
        with pytest.raises(ConfigError, match=message):
            parse_genre_request(bad)
    model = tiny("MelVAE")
    assert genre_condition(model, "b").tolist() == [1]
    assert torch.allclose(genre_condition(model, "a=1,b=3"), torch.tensor([[0.25, 0.75]]))
    assert genre_condition(model, None) is None
    with pytest.raises(UnknownGenreError, match="unknown genre 'c'; this model knows: a, b"):
        genre_condition(model, "a=1,c=1")
    with pytest.raises(ParameterError, match="no positive weight"):
        condition_weights(model, {"a": 0.0})


def test_one_device_resolver():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(AudioVAEError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(AudioVAEError, match="no CUDA GPU"):
            resolve_device("cuda")
