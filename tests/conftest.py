"""Shared fixtures: a seeded RNG and a factory that writes a small synthetic audio folder."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))

SAMPLE_RATE = 22050


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _sine(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * rng.uniform(110, 880) * t)


def _noise_bursts(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gate = (np.sin(2 * np.pi * rng.uniform(2, 6) * t) > 0.3).astype(np.float64)
    return 0.3 * gate * rng.standard_normal(t.size)


def _chirp(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    f0, f1 = rng.uniform(100, 300), rng.uniform(1000, 4000)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1]))
    return 0.4 * np.sin(phase)


SIGNALS = {"sine": _sine, "noise": _noise_bursts, "chirp": _chirp}


def write_clip(path: Path, *, seconds: float, kind: str = "sine", seed: int = 0,
               sample_rate: int = SAMPLE_RATE) -> Path:
    """Write one mono 16-bit wav of ``kind`` ("sine", "noise", "chirp" or "silence") lasting ``seconds``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    wav = np.zeros_like(t) if kind == "silence" else SIGNALS[kind](t, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


@pytest.fixture
def make_audio_folder(tmp_path):
    """Factory: ``make_audio_folder(genres={"jazz": 3, "rock": 3}, name="audio") -> root``.

    Writes ``n`` clips per genre subfolder (kinds cycle sine, noise, chirp; 1-3 s; 22050 Hz wav) under
    ``tmp_path / name``; the clip of each genre with index 1 goes into a nested subfolder.
    """

    def make(genres: dict[str, int] | None = None, *, name: str = "audio") -> Path:
        root = tmp_path / name
        kinds = list(SIGNALS)
        for g, (genre, count) in enumerate(sorted((genres or {"jazz": 3, "rock": 3}).items())):
            for i in range(count):
                folder = root / genre / "live" if i == 1 else root / genre
                write_clip(folder / f"{genre}_{i}.wav", seconds=1.0 + (i % 3), kind=kinds[(g + i) % 3],
                           seed=100 * g + i)
        return root

    return make


def train_tiny_run(root: Path, recipe: str, *, seconds: float = 1.5, overrides: tuple[str, ...] = ()) -> Path:
    """Write a two-genre folder (``root/data``: a sine, a chirp and noise bursts per genre, ``seconds`` each) and
    train ``recipe`` (a tiny preset in recipes/) on it into ``root/run``, caching under ``root/cache``. Returns
    ``root``."""
    from audiovae.train.config import load_recipe
    from audiovae.train.loop import train

    for genre in ("low", "high"):
        for i, kind in enumerate(("sine", "chirp", "noise")):
            write_clip(root / "data" / genre / f"{genre}{i}.wav", seconds=seconds, kind=kind, seed=i)
    recipes = Path(__file__).parent.parent / "recipes"
    loaded = load_recipe(recipes / recipe, [f'data.path="{root / "data"}"', "train.sample_every=0",
                                            f'data.cache_dir="{root / "cache"}"', *overrides])
    train(loaded, root / "run", progress=False, log=lambda *_: None)
    return root


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and two threads on a busy 2-core CI machine can be 10x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
