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
