"""The example clips shipped in audiovae/assets/examples: one short readable clip per genre, described in its
README, small enough to ship, packaged, and offered by the demo's Blend tab when no examples are given."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from audiovae.examples import example_clips, examples_dir  # noqa: E402
from demo_fixtures import make_mel_model, write_tone  # noqa: E402

GENRES = ["ambient", "baroque_chorale", "classical_quartet", "game_score", "german_folk", "irish_fiddle",
          "medieval_trecento", "renaissance_polyphony", "rock"]  # the rendered audio_genres and real music_real
REPO = Path(__file__).resolve().parents[1]


def test_one_short_readable_clip_per_genre():
    clips = example_clips()
    assert [p.stem for p in clips] == GENRES
    assert all(p.parent == examples_dir() for p in clips)
    for path in clips:
        wav, rate = sf.read(str(path), dtype="float32")
        assert rate == 22050 and wav.ndim == 1, path.name
        assert 9.0 <= len(wav) / rate <= 11.0, path.name
        assert float(np.sqrt(np.mean(wav**2))) > 0.05 and np.abs(wav).max() <= 1.0, path.name
    assert sum(p.stat().st_size for p in examples_dir().iterdir()) < 1_000_000


def test_readme_says_where_each_clip_comes_from():
    text = (examples_dir() / "README.md").read_text()
    for path in example_clips():
        row = next(line for line in text.splitlines() if line.startswith(f"| {path.name} |"))
        source, offset = row.split(" | ")[1:3]
        folder = "music_real" if path.stem in ("ambient", "game_score", "rock") else "audio_genres"
        assert source.startswith(f"{folder}/{path.stem}/") and float(offset) >= 0.0
    assert "Licences:" in text and "music21" in text and "FluidR3" in text and "CC BY-SA" in text
    notices = {p.name for p in (examples_dir() / "LICENSES").iterdir()}
    assert {"fretsonfire-songs-muldjord.copyright", "hyperrogue-music.copyright",
            "drascula-music.copyright"} <= notices


def test_example_clips_filters_by_length(tmp_path):
    write_tone(tmp_path / "b.wav", seconds=2.0)
    write_tone(tmp_path / "a.wav", seconds=1.0)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "c.wav").write_bytes(b"not audio")
    assert [p.name for p in example_clips(folder=tmp_path)] == ["a.wav", "b.wav", "c.wav"]
    assert [p.name for p in example_clips(folder=tmp_path, max_seconds=1.5)] == ["a.wav"]
    assert example_clips(folder=tmp_path / "missing") == []
    assert [p.stem for p in example_clips(max_seconds=8.0)] == []  # the bundled ones last 10 s


def test_the_package_data_ships_the_examples():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "assets/**/*" in package_data["audiovae"]
    assert examples_dir() == REPO / "audiovae" / "assets" / "examples"


@pytest.fixture(scope="module")
def mel_folder(tmp_path_factory):
    return make_mel_model(tmp_path_factory.mktemp("examples_demo") / "mel")


def _example_samples(demo) -> list[list[str]]:
    """The Blend tab's example pairs (the Explore tab has its own examples: a clip and slider settings)."""
    datasets = [c["props"] for c in demo.get_config_file()["components"]
                if c.get("type") == "dataset" and c["props"].get("elem_id") == "blend-examples"]
    return [sample for d in datasets for sample in d["samples"]]


def test_the_demo_offers_the_bundled_clips_in_pairs_of_genres(mel_folder, tmp_path):
    from audiovae.demo.app import build_demo

    demo = build_demo(mel_folder, tmp_path / "no_midi_model", device="cpu", max_seconds=15.0)
    samples = _example_samples(demo)
    names = [p.name for p in example_clips()]
    assert len(samples) == len(names)
    assert {a for a, _ in samples} == set(names) == {b for _, b in samples}
    assert all(a != b for a, b in samples)
    assert _example_samples(build_demo(mel_folder, None, device="cpu", max_seconds=15.0, examples=[])) == []
    assert _example_samples(build_demo(mel_folder, None, device="cpu", max_seconds=8.0)) == []  # too long for it
