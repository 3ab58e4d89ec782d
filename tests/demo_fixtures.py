"""Tiny demo models (a 2-genre MelVAE at 8 kHz and a 2-genre PianoRollCVAE) and the clips the demo tests upload.

Shared by test_demo_handlers.py, test_demo_app.py and test_demo_browser.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiovae.midi import RollConfig
from audiovae.models import MelVAE, PianoRollCVAE
from audiovae.checkpoint import write_model_folder

GENRES = ["folk", "jazz"]
FRONTEND = {"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16, "f_min": 0.0, "f_max": 4000.0,
            "power": 1.0, "log_floor": 1e-5}
ROLL = RollConfig(segment_bars=2, pitch_low=48, pitch_high=71)  # segments [2, 32, 24]
MAX_SECONDS = 5.0


def make_mel_model(folder: Path) -> Path:
    """A random tiny conditional MelVAE with stored latent statistics (genre centroids) and an anomaly calibration
    (on four 3 s tremolo tones), saved to ``folder``."""
    from audiovae.inference import waveform_to_mel
    from audiovae.latent.anomaly import calibrate

    torch.manual_seed(0)
    model = MelVAE(hidden=16, latent_channels=4, downsample_stages=2, blocks_per_stage=1, cond_dim=4,
                   genres=GENRES, frontend=FRONTEND).eval()
    with torch.no_grad():  # FiLM starts at zero; give the genres something to change
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.latent_stats = {"mean": [0.0] * 4, "std": [1.0] * 4,
                          "centroids": {"folk": [0.5, 0.0, -0.5, 0.0], "jazz": [-0.5, 0.5, 0.0, 0.5]}}
    tones = [tone(3.0, freq, FRONTEND["sample_rate"]) for freq in (330.0, 440.0, 550.0, 660.0)]
    calibration = calibrate(model, [(waveform_to_mel(model, wav)[None], None) for wav in tones])
    return write_model_folder(folder, model, extra={"anomaly_calibration": calibration.to_dict()})


def tone(seconds: float, freq: float, sample_rate: int) -> np.ndarray:
    """A tone with a slow tremolo, peak 0.5: float32 [samples]."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def make_midi_model(folder: Path) -> Path:
    """A random tiny PianoRollCVAE with dynamics whose output biases are spread out, so generated pieces hold
    notes."""
    torch.manual_seed(0)
    model = PianoRollCVAE(roll=ROLL.to_dict(), genres=GENRES, substeps=4, channels=[16], latent_dim=16,
                          cond_dim=4, velocity=True).eval()
    with torch.no_grad():
        model.conv_out.bias.normal_(-2.5, 1.5)
    return write_model_folder(folder, model)


def write_tone(path: Path, *, seconds: float, freq: float = 440.0, sample_rate: int = 22050) -> Path:
    """A mono 16-bit wav of :func:`tone`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, freq, sample_rate), sample_rate, subtype="PCM_16")
    return path


def write_burst(path: Path, *, seconds: float = 3.0, at: float = 1.0, sample_rate: int = 22050) -> Path:
    """:func:`write_tone` with a 0.25 s burst of loud white noise starting at ``at`` seconds."""
    wav = tone(seconds, 494.0, sample_rate)
    a = int(at * sample_rate)
    wav[a:a + sample_rate // 4] += np.random.default_rng(0).standard_normal(sample_rate // 4).astype(np.float32) * 0.5
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wav, -1, 1), sample_rate, subtype="PCM_16")
    return path


def rms(path) -> float:
    wav, _ = sf.read(str(path), dtype="float32")
    return float(np.sqrt(np.mean(np.square(wav)))) if wav.size else 0.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
