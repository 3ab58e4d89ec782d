"""What the audio benchmarks share: the model's own held-out split of its data folders (and its flags), and the
audio genre classifier (trained on the training recordings only) that judges decoded output."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from audiovae.audio.classify import train_audio_classifier
from audiovae.checkpoint import load, read_config, write_model_folder
from audiovae.data.audio_folder import AudioFolder
from audiovae.errors import AudioVAEError


def add_split_args(p) -> None:
    """The held-out split of a training recipe as benchmark flags (the defaults are every recipe's)."""
    p.add_argument("--split-group", default="file", help="file | parent | regex:<pattern> [file]")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of recordings held out [0.1]")
    p.add_argument("--seed", type=int, default=0, help="split seed (the recipe's train.seed) [0]")
    p.add_argument("--cache", default="/tmp/audiovae-cache", help="cache folder, outside the data [/tmp/audiovae-cache]")


def data_split(model, data: str | list[str], cache: str):
    """(train, val) AudioFolders of ``data`` (one folder or several) split by recording exactly as the model's
    training recipe split them (its val_fraction, split_group and seed; the defaults when it has no recipe)."""
    recipe = read_config(model.checkpoint_path).get("recipe") or {}
    d, seed = recipe.get("data", {}), recipe.get("train", {}).get("seed", 0)
    folders = data if isinstance(data, str) or len(data) > 1 else data[0]
    return AudioFolder.splits(folders, cache_dir=cache, mel_config=model.frontend,
                              val_fraction=d.get("val_fraction", 0.1), normalization=d.get("normalization", "peak"),
                              min_seconds=d.get("min_seconds", 0.5), split_group=d.get("split_group", "file"),
                              seed=seed, workers=2, progress=False)


def named_items(dataset) -> list[tuple[torch.Tensor, str]]:
    """(whole log-mel Tensor[n_mels, frames], genre name) of every labelled recording of ``dataset``."""
    return [(mel, dataset.genres[g]) for _, mel, g in dataset.eval_items() if g >= 0]


def get_classifier(folder: str | None, model, train_items, genres: list[str], *, steps: int):
    """The audio genre classifier in ``folder`` when it exists and fits (same genres and front end), else one
    trained on ``train_items`` for ``steps`` steps (and written to ``folder`` when given)."""
    folder = Path(folder) if folder else None
    if folder is not None and (folder / "config.json").is_file():
        classifier = load(folder)
        if classifier.genres != genres or classifier.frontend != model.frontend:
            raise AudioVAEError(f"the classifier in {folder} was trained on other genres or another front end; "
                                "remove it or give another --classifier folder")
        print(f"classifier: loaded from {folder}")
        return classifier
    started = time.perf_counter()
    classifier = train_audio_classifier(train_items, genres, frontend=model.frontend, steps=steps, log=None)
    print(f"classifier: trained on {len(train_items)} recordings, {steps} steps, {time.perf_counter() - started:.0f} s")
    if folder is not None:
        write_model_folder(folder, classifier)
        print(f"classifier: written to {folder}")
    return classifier
