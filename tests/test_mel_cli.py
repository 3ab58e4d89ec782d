"""The mel verbs on a tiny model trained in-process: reconstruct, sample, blend, and their errors."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiovae.cli import main
from audiovae.train.config import load_recipe
from audiovae.train.loop import train
from conftest import write_clip

RECIPES = Path(__file__).parent.parent / "recipes"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("mel")
    for genre in ("low", "high"):
        for i in range(3):
            write_clip(root / "data" / genre / f"{genre}{i}.wav", seconds=1.5, kind=["sine", "chirp", "noise"][i], seed=i)
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [f'data.path="{root / "data"}"', "train.sample_every=0"])
    train(recipe, root / "run", progress=False, log=lambda *_: None)
    return root


def _wav(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path))
    assert rate == 22050
    return data


def test_reconstruct_writes_audio_of_the_input_length(tiny_model, tmp_path):
    clip = tiny_model / "data" / "low" / "low0.wav"
    out = tmp_path / "rec.wav"
    assert main(["reconstruct", str(tiny_model / "run"), str(clip), str(out), "--genre", "low", "--n-iter", "4",
                 "--png", str(tmp_path / "rec.png")]) == 0
    assert abs(len(_wav(out)) - 1.5 * 22050) <= 256
    assert (tmp_path / "rec.png").stat().st_size > 0


def test_sample_and_blend(tiny_model, tmp_path):
    assert main(["sample", str(tiny_model / "run"), "--n", "2", "--seconds", "0.5", "--n-iter", "4",
                 "--out", str(tmp_path / "s")]) == 0
    assert sorted(p.name for p in (tmp_path / "s").glob("*.wav")) == ["sample_000.wav", "sample_001.wav"]
    a, b = tiny_model / "data" / "low" / "low0.wav", tiny_model / "data" / "high" / "high1.wav"
    assert main(["blend", str(tiny_model / "run"), str(a), str(b), "--alpha", "0.3", "--n-iter", "4",
                 "--out", str(tmp_path / "blend.wav")]) == 0
    assert np.abs(_wav(tmp_path / "blend.wav")).max() > 0


def test_bad_inputs_are_plain_errors(tiny_model, tmp_path, capsys):
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    assert main(["reconstruct", str(tiny_model / "run"), str(text), str(tmp_path / "o.wav")]) == 2
    assert "notes.wav" in capsys.readouterr().err
    clip = tiny_model / "data" / "low" / "low0.wav"
    assert main(["reconstruct", str(tiny_model / "run"), str(clip), str(tmp_path / "o.wav"), "--genre", "jazz"]) == 2
    assert "knows: high, low" in capsys.readouterr().err
    silent = write_clip(tmp_path / "silence.wav", seconds=1.0, kind="silence")
    assert main(["blend", str(tiny_model / "run"), str(silent), str(clip), "--out", str(tmp_path / "b.wav")]) == 2
    assert "silent" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "b.wav").exists()
