from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_clip

import audiovae
from audiovae.audio.classify import (AudioGenreClassifier, held_out_accuracy, predict_proba,
                                     train_audio_classifier)
from audiovae.audio.features import MelConfig, MelFrontend
from audiovae.audio.io import read_audio
from audiovae.errors import AudioVAEError, ParameterError
from audiovae.checkpoint import model_class, write_model_folder

CONFIG = MelConfig(n_fft=512, hop_length=256, n_mels=24)


def _tone_seeds(low: bool, count: int) -> list[int]:
    """Seeds whose write_clip "sine" lies below 300 Hz (low) or above 600 Hz (high); the draw is its first."""
    def wanted(hz: float) -> bool:
        return hz < 300 if low else hz > 600

    return [s for s in range(500) if wanted(np.random.default_rng(s).uniform(110, 880))][:count]


@pytest.fixture
def tone_items(tmp_path):
    """(log-mel Tensor[24, frames], "low" | "high") for 8 low and 8 high sine clips of 0.6-1.2 s."""
    frontend = MelFrontend(CONFIG)
    items = []
    for genre in ("low", "high"):
        for i, seed in enumerate(_tone_seeds(genre == "low", 8)):
            path = write_clip(tmp_path / genre / f"{i}.wav", seconds=0.6 + 0.2 * (i % 4), kind="sine", seed=seed)
            waveform, _ = read_audio(path, sample_rate=CONFIG.sample_rate)
            items.append((frontend(torch.from_numpy(waveform)), genre))
    return items


def _train(items):
    return train_audio_classifier(items, ["low", "high"], frontend=CONFIG, steps=60, batch_size=16,
                                  crop_frames=24, channels=(16, 16), log=None)


def test_classifier_learns_low_and_high_tones_and_survives_save_load(tone_items, tmp_path):
    train = [item for i, item in enumerate(tone_items) if i % 8 < 6]
    held_out = [item for i, item in enumerate(tone_items) if i % 8 >= 6]
    classifier = _train(train)
    report = held_out_accuracy(classifier, held_out)
    assert report == {"accuracy": 1.0, "clips": 4, "per_genre": {"high": 1.0, "low": 1.0}}
    batch = torch.stack([mel[:, :20] for mel, _ in held_out])
    probs = predict_proba(classifier, batch)
    assert probs.shape == (4, 2) and torch.allclose(probs.sum(1), torch.ones(4))
    assert probs.argmax(1).tolist() == [0, 0, 1, 1]  # low first, as in ["low", "high"]

    assert model_class("AudioGenreClassifier") is AudioGenreClassifier
    loaded = audiovae.load(write_model_folder(tmp_path / "clf", classifier))
    assert isinstance(loaded, AudioGenreClassifier) and loaded.genres == ["low", "high"]
    assert loaded.frontend == CONFIG
    assert torch.equal(loaded.band_mean, classifier.band_mean)
    assert torch.allclose(predict_proba(loaded, batch), probs)


def test_classifier_refuses_bad_training_data(tone_items):
    low_only = [item for item in tone_items if item[1] == "low"]
    with pytest.raises(AudioVAEError, match="at least two genres"):
        _train(low_only)
    with pytest.raises(ParameterError, match="unknown genre 'jazz'.*low, high"):
        _train(tone_items + [(tone_items[0][0], "jazz")])
    with pytest.raises(ParameterError, match="at least two genres"):
        AudioGenreClassifier(genres=["only"])
