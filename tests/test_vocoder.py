"""The neural vocoder: its STFT pair, mel matching, phase refinement, training, pairing, CLI choice and export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiovae.audio.features import MelConfig, MelFrontend
from audiovae.audio.spectral_distance import log_mel_l1, stft_distances
from audiovae.checkpoint import load, write_model_folder
from audiovae.cli import main
from audiovae.errors import ConfigError, ParameterError
from audiovae.inference import GRIFFIN_LIM, resolve_vocoder_choice, vocoder_for
from audiovae.models.mel_vae import MelVAE
from audiovae.models.vocoder import InverseSTFT, MelVocoder
from audiovae.train.config import load_recipe
from audiovae.train.loop import train
from conftest import train_tiny_run, write_clip

RECIPES = Path(__file__).parent.parent / "recipes"


def _music(seconds: float = 2.0, sample_rate: int = 22050) -> torch.Tensor:
    """Three decaying harmonic notes in a row: Tensor[1, samples], a whole number of 256-sample hops."""
    t = np.arange(int(seconds * sample_rate) // 256 * 256) / sample_rate
    wav = np.zeros_like(t)
    for i, f0 in enumerate((220.0, 330.0, 440.0)):
        start = i * seconds / 3
        env = np.where(t >= start, np.exp(-(t - start) * 3), 0.0)
        wav += env * sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
    return torch.from_numpy(wav.astype(np.float32))[None]


@pytest.mark.parametrize("mode", ["fft", "matmul"])
def test_stft_pair_matches_torch(mode):
    torch.manual_seed(0)
    istft = InverseSTFT(1024, 256, mode)
    spec = torch.randn(2, 40, 513, dtype=torch.complex64)
    expected = torch.istft(spec.transpose(1, 2), 1024, 256, window=torch.hann_window(1024), center=True)
    assert torch.allclose(istft(spec.real, spec.imag), expected, atol=1e-5)
    wav = torch.randn(2, 10240)
    real, imag = istft.analyse(wav)
    ref = torch.stft(wav, 1024, 256, window=torch.hann_window(1024), center=True, pad_mode="reflect",
                     return_complex=True).transpose(1, 2)
    assert torch.allclose(real, ref.real, atol=2e-4) and torch.allclose(imag, ref.imag, atol=2e-4)


def test_output_length_and_shapes():
    from audiovae.audio.inversion import Vocoder

    vocoder = MelVocoder(dim=16, hidden=32, layers=1).eval()
    assert isinstance(vocoder, Vocoder) and vocoder.sample_rate == 22050
    with torch.no_grad():
        assert vocoder(torch.randn(3, 80, 50)).shape == (3, 49 * 256)
        assert vocoder(torch.randn(80, 20)).shape == (19 * 256,)
    with pytest.raises(ParameterError, match="n_mels"):
        vocoder(torch.randn(1, 64, 20))
    with pytest.raises(ParameterError, match="multiple of hop_length"):
        MelVocoder(frontend=MelConfig(n_fft=1000, hop_length=256))


def test_mel_matching_and_refinement_pull_a_wrong_spectrum_to_the_input_mel():
    """With the true phase and every bin's magnitude off by a random gain, matching the mel removes most of the
    log-mel error; from a random phase, refinement rounds remove most of it too."""
    torch.manual_seed(0)
    wav = _music()
    frontend = MelFrontend()
    log_mel = frontend(wav)
    spec = torch.stft(wav, 1024, 256, window=torch.hann_window(1024), center=True, pad_mode="reflect",
                      return_complex=True).transpose(1, 2)
    vocoder = MelVocoder(dim=8, hidden=8, layers=1, mel_refine=3, phase_refine=16).eval()
    wrong = spec.abs() * torch.exp(0.5 * torch.randn(1, 1, 513))
    phase = spec / spec.abs().clamp_min(1e-9)

    def error(magnitude, unit_phase):
        out = vocoder.istft((magnitude * unit_phase).real, (magnitude * unit_phase).imag)
        return float(log_mel_l1(out, wav, frontend)[0])

    before, matched = error(wrong, phase), error(vocoder.match_mel(wrong, log_mel), phase)
    assert matched < 0.6 * before, (matched, before)
    random_phase = torch.exp(1j * 2 * np.pi * torch.rand(spec.shape))
    start = spec.abs() * random_phase
    refined = torch.complex(*vocoder.refine_phase(start.real, start.imag, log_mel, 16))
    before, after = error(spec.abs(), random_phase), error(refined.abs(), refined / refined.abs().clamp_min(1e-12))
    assert after < 0.5 * before, (after, before)


def test_stft_distance_is_zero_for_the_same_signal_and_grows_with_noise():
    wav = _music()
    same = stft_distances(wav, wav)
    assert float(same["mrstft"][0]) < 1e-5
    noisy = stft_distances(wav + 0.05 * torch.randn_like(wav), wav)
    noisier = stft_distances(wav + 0.2 * torch.randn_like(wav), wav)
    assert 0 < float(noisy["mrstft"][0]) < float(noisier["mrstft"][0])


def test_save_load_round_trip_gives_the_same_waveform(tmp_path):
    torch.manual_seed(0)
    vocoder = MelVocoder(dim=16, hidden=32, layers=2, mel_refine=2, phase_refine=2).eval()
    write_model_folder(tmp_path / "voc", vocoder)
    loaded = load(tmp_path / "voc", modality="vocoder")
    mel = torch.randn(1, 80, 30) - 4
    with torch.no_grad():
        assert torch.equal(vocoder(mel), loaded(mel))
    with pytest.raises(ConfigError, match="needs a audio model|this needs a audio"):
        load(tmp_path / "voc", modality="audio")


@pytest.fixture(scope="module")
def trained_vocoder(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("vocoder"), "vocoder_tiny.toml")


def test_tiny_recipe_trains_validates_and_leaves_the_data_alone(trained_vocoder):
    root = trained_vocoder
    lines = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/mrstft" in line and "val/logmel_l1" in line for line in lines)
    assert any("loss/mrstft" in line for line in lines)
    assert sorted(p.name for p in (root / "data").rglob("*") if p.is_file()) == sorted(
        f"{g}{i}.wav" for g in ("low", "high") for i in range(3))
    assert list((root / "cache").glob("waveforms-22050-peak/*.npy"))
    vocoder = load(root / "run", modality="vocoder")
    assert vocoder(torch.randn(80, 12) - 4).shape == (11 * 256,)


def _mel_model(n_mels: int = 80) -> MelVAE:
    torch.manual_seed(0)
    model = MelVAE(frontend=MelConfig(n_mels=n_mels), hidden=8, latent_channels=4, cond_dim=4,
                   genres=["a", "b"]).eval()
    model.checkpoint_path = Path(f"mel-{n_mels}")
    return model


def test_vocoder_choice_and_pairing(trained_vocoder):
    run = str(trained_vocoder / "run")
    model = _mel_model()
    assert isinstance(vocoder_for(model, run), MelVocoder)
    assert resolve_vocoder_choice(model, "griffin-lim") == GRIFFIN_LIM
    other = _mel_model(n_mels=64)
    assert resolve_vocoder_choice(other, "auto") == GRIFFIN_LIM  # the bundled vocoder has 80 mels
    with pytest.raises(ConfigError, match="n_mels=80.*n_mels=64"):
        vocoder_for(other, run)


def test_cli_reconstruct_with_a_chosen_vocoder_and_a_refused_one(trained_vocoder, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.wav", seconds=1.0, kind="chirp")
    write_model_folder(tmp_path / "mel", _mel_model())
    out = tmp_path / "out.wav"
    assert main(["reconstruct", str(tmp_path / "mel"), str(clip), str(out), "--vocoder",
                 str(trained_vocoder / "run")]) == 0
    assert out.stat().st_size > 1000
    write_model_folder(tmp_path / "mel64", _mel_model(n_mels=64))
    assert main(["reconstruct", str(tmp_path / "mel64"), str(clip), str(tmp_path / "x.wav"), "--vocoder",
                 str(trained_vocoder / "run")]) == 2
    assert "different mel front end" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_reproduces_eager_output(fmt, tmp_path):
    from audiovae.export import export_model, run_exported

    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is a test extra")
    torch.manual_seed(1)
    model = _mel_model()
    vocoder = MelVocoder(dim=16, hidden=32, layers=2, mel_refine=2, phase_refine=2).eval()
    description = export_model(model, fmt, tmp_path / "export", vocoder=vocoder)
    assert set(description["graphs"]) == {"decoder", "vocoder"}
    assert description["condition_columns"] == ["a", "b", "(no genre)"]
    suffix = ".pt" if fmt == "torchscript" else ".onnx"
    z, weights = torch.randn(3, 4, 11), torch.tensor([[1.0, 0, 0], [0.3, 0.7, 0], [0, 0, 1.0]])
    mel = run_exported(tmp_path / "export" / f"decoder{suffix}", (z, weights))
    with torch.no_grad():
        expected_mel = model.decode_embedded(z, weights @ model.genre_embedding.weight)
        assert torch.allclose(mel, expected_mel, atol=1e-4)
        assert torch.allclose(expected_mel[1:2], model.decode(z[1:2], torch.tensor([[0.3, 0.7]])), atol=1e-5)
        log_mel = torch.randn(2, 80, 23) - 4
        wav = run_exported(tmp_path / "export" / f"vocoder{suffix}", (log_mel,))
        assert wav.shape == (2, 22 * 256)
        assert float((wav - vocoder(log_mel)).abs().max()) <= 1e-4


def test_adversarial_switch_trains_generator_and_discriminators(tmp_path):
    """One step with loss.adversarial: the discriminators learn only from their own loss and the generator only
    from its losses (one optimizer over both), and the folder reloads with its discriminators."""
    root = tmp_path
    for i in range(2):
        write_clip(root / "data" / "g" / f"c{i}.wav", seconds=1.0, kind=["sine", "chirp"][i], seed=i)
    recipe = load_recipe(RECIPES / "vocoder_tiny.toml", [
        f'data.path="{root / "data"}"', f'data.cache_dir="{root / "cache"}"', "data.val_fraction=0.0",
        "train.sample_every=0", "train.max_steps=2", "loss.adversarial=true", "model.discriminator_width=2"])
    train(recipe, root / "run", progress=False, log=lambda *_: None)
    lines = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/discriminator" in line and "loss/feature_matching" in line for line in lines)
    vocoder = load(root / "run", modality="vocoder")
    assert vocoder.discriminators is not None

    from audiovae.models.discriminators import WaveformDiscriminators, adversarial_losses

    torch.manual_seed(0)
    discriminators = WaveformDiscriminators(2)
    fake = torch.randn(2, 4096, requires_grad=True)
    losses = adversarial_losses(discriminators, torch.randn(2, 4096), fake)
    d_params = list(discriminators.parameters())
    from_d = torch.autograd.grad(losses["discriminator"], [fake] + d_params, allow_unused=True)
    assert from_d[0] is None and any(g is not None and g.abs().sum() > 0 for g in from_d[1:])
    from_g = torch.autograd.grad(losses["generator"] + losses["feature_matching"], [fake] + d_params,
                                 allow_unused=True)
    assert from_g[0].abs().sum() > 0 and all(g is None for g in from_g[1:])


def test_fast_inference_path_matches_the_generic_one():
    """Eager inference refines with preallocated FFTs and the filterbank's two taps per bin; training and export
    use plain tensor operations. Both must give the same waveform."""
    torch.manual_seed(0)
    vocoder = MelVocoder(dim=16, hidden=32, layers=2, mel_refine=2, phase_refine=6).eval()
    log_mel = MelFrontend()(_music())
    assert vocoder.has_taps and vocoder._fast_path_applies() is False  # gradients are on here
    with torch.no_grad():
        assert vocoder._fast_path_applies()
        fast = vocoder(log_mel)
        real, imag = vocoder.spectrum(log_mel)
        generic = vocoder.istft(*vocoder.refine_phase(real, imag, log_mel, 6))
    assert torch.allclose(fast, generic, atol=1e-4 * float(generic.abs().max()))


def test_waveform_cache_skips_a_file_damaged_after_the_scan(tmp_path):
    from audiovae.data.audio_folder import scan_roots
    from audiovae.data.waveform_crops import cache_waveforms

    for i, kind in enumerate(("sine", "chirp", "noise")):
        write_clip(tmp_path / "data" / "g" / f"c{i}.wav", seconds=1.0, kind=kind, seed=i)
    clips, _ = scan_roots(tmp_path / "data", cache_dir=tmp_path / "cache", config=MelConfig(), normalization="peak",
                          labels=True, min_seconds=0.5, workers=0, progress=False)
    (tmp_path / "data" / "g" / "c1.wav").write_text("damaged")
    (tmp_path / "data" / "g" / "c2.wav").unlink()
    kept, skipped = cache_waveforms(clips, cache_dir=tmp_path / "cache", sample_rate=22050, normalization="peak",
                                    progress=False)
    assert [clip.rel for clip, _ in kept] == ["g/c0.wav"]
    reasons = dict(skipped)
    assert "not a readable audio file" in reasons[str(tmp_path / "data" / "g" / "c1.wav")]
    assert "no longer readable" in reasons[str(tmp_path / "data" / "g" / "c2.wav")]
    assert np.load(kept[0][1]).dtype == np.int16
