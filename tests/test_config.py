import tomllib

import pytest

from audiovae.errors import ConfigError
from audiovae.train.config import (apply_overrides, load_recipe, parse_override, recipe_from_tree,
                                   recipe_to_toml)


def test_override_values_are_toml_literals():
    assert parse_override("train.lr=1e-3") == (["train", "lr"], 0.001)
    assert parse_override("data.labels=false") == (["data", "labels"], False)
    assert parse_override("data.normalization=loudness") == (["data", "normalization"], "loudness")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("nonsense")


def test_base_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.toml").write_text('task = "mel_vae"\n[train]\nlr = 0.01\nmax_steps = 100\n[model]\nhidden = 64\n')
    (tmp_path / "small.toml").write_text('base = "base.toml"\n[train]\nmax_steps = 5\n')
    recipe = load_recipe(tmp_path / "small.toml", ["model.latent_channels=8"])
    assert (recipe.train.lr, recipe.train.max_steps) == (0.01, 5)
    assert recipe.model == {"hidden": 64, "latent_channels": 8}


def test_resolved_recipe_round_trips_through_toml():
    recipe = recipe_from_tree(apply_overrides({"task": "mel_vae"}, ["mel.f_max=7000", "loss.beta=0.5"]))
    again = recipe_from_tree(tomllib.loads(recipe_to_toml(recipe)))
    assert again == recipe


def test_unknown_keys_name_the_known_ones():
    with pytest.raises(ConfigError, match="max_steps"):
        recipe_from_tree({"train": {"max_step": 3}})
    with pytest.raises(ConfigError, match="unknown task"):
        recipe_from_tree({"task": "gan"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe("/nonexistent/recipe.toml")


def test_shipped_recipes_parse():
    from pathlib import Path

    for path in sorted((Path(__file__).parent.parent / "recipes").glob("*.toml")):
        recipe = load_recipe(path)
        assert recipe.train.max_steps > 0, path


@pytest.mark.parametrize("override, fragments", [
    ("train.lr=abc", ["train.lr", "float", "'abc'"]),
    ("train.max_steps=1.5", ["train.max_steps", "int", "1.5"]),
    ("data.labels=3", ["data.labels", "bool", "3"]),
    ("train.lr=true", ["train.lr", "float", "True"]),
    ("train.schedule=fast", ["train.schedule", "'steps', 'time'", "'fast'"]),
    ("train.precision=fp16", ["train.precision", "'auto', 'bf16', 'fp32'", "'fp16'"]),
    ("data.normalization=rms", ["data.normalization", "'peak', 'loudness', 'none'", "'rms'"]),
    ("loss.beta=[1, 2]", ["loss.beta", "float", "[1, 2]"]),
    ("data.cache_dir=7", ["data.cache_dir", "str", "7"]),
])
def test_values_are_checked_against_the_field_types(override, fragments):
    with pytest.raises(ConfigError) as caught:
        recipe_from_tree(apply_overrides({"task": "mel_vae"}, [override]))
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))


def test_numbers_are_converted_where_that_loses_nothing():
    recipe = recipe_from_tree(apply_overrides({}, ["train.lr=1", "train.max_steps=1e4", "data.cache_dir=x"]))
    assert recipe.train.lr == 1.0 and isinstance(recipe.train.lr, float)
    assert recipe.train.max_steps == 10000 and isinstance(recipe.train.max_steps, int)
    assert recipe.data.cache_dir == "x"


def test_time_schedule_needs_a_time_limit():
    with pytest.raises(ConfigError) as caught:
        recipe_from_tree({"train": {"schedule": "time"}})
    assert "train.schedule" in str(caught.value) and "train.time_limit_minutes" in str(caught.value)
    recipe = recipe_from_tree({"train": {"schedule": "time", "time_limit_minutes": 5}})
    assert recipe.train.time_limit_minutes == 5.0


def test_full_recipes_follow_the_clock_and_tiny_presets_the_steps():
    from pathlib import Path

    recipes = Path(__file__).parent.parent / "recipes"
    for name, minutes in [("mel_vae", 30.0), ("midi_cvae", 28.0)]:
        train = load_recipe(recipes / f"{name}.toml").train
        assert (train.schedule, train.time_limit_minutes) == ("time", minutes)
        tiny = load_recipe(recipes / f"{name}_tiny.toml").train
        assert (tiny.schedule, tiny.time_limit_minutes, tiny.max_steps) == ("steps", 0.0, 12)


def test_check_fields_works_for_any_dataclass():
    from dataclasses import dataclass
    from typing import Literal

    from audiovae.train.config import check_fields

    @dataclass
    class Window:
        size: int = 1024
        kind: Literal["hann", "hamming"] = "hann"
        f_max: float | None = None
        bands: list[int] | None = None

    assert check_fields("stft", Window, {"size": 512.0, "f_max": 8000, "bands": [1, 2]}) == {
        "size": 512, "f_max": 8000.0, "bands": [1, 2]}
    assert check_fields("stft", Window, {"f_max": None}) == {"f_max": None}
    with pytest.raises(ConfigError, match=r"stft\.kind expects one of 'hann', 'hamming', got 'box'"):
        check_fields("stft", Window, {"kind": "box"})
    with pytest.raises(ConfigError, match=r"stft\.bands expects list\[int\] or nothing .* got \[1, 'x'\]"):
        check_fields("stft", Window, {"bands": [1, "x"]})
    with pytest.raises(ConfigError, match=r"\[stft\] has unknown key\(s\) \['sise'\]; known: bands, f_max, kind, size"):
        check_fields("stft", Window, {"sise": 3})


def test_mel_and_data_settings_are_checked_when_the_recipe_loads():
    with pytest.raises(ConfigError, match=r"data.split_group must be .*got 'track'"):
        recipe_from_tree({"data": {"split_group": "track"}})
    with pytest.raises(ConfigError, match=r"\[mel\]: hop_length 4096 exceeds n_fft 1024"):
        recipe_from_tree({"mel": {"hop_length": 4096}})
    with pytest.raises(ConfigError, match=r"mel.n_mels expects int, got 'many'"):
        recipe_from_tree({"mel": {"n_mels": "many"}})
    recipe = recipe_from_tree({"mel": {"n_mels": 64}, "data": {"path": ["a", "b"], "split_group": "regex:(.*)_p"}})
    assert recipe.mel.n_mels == 64 and recipe.data.path == ["a", "b"]
