"""Checkpoints: a folder with config.json + model.safetensors (what `audiovae.load` reads) and, for training runs,
train_state.pt (optimizer, step, RNG: plain tensors and dicts, loadable with torch.load(weights_only=True)).

Every write is atomic: a checkpoint is written into a hidden temporary folder and renamed into place, and the
run's LATEST pointer is replaced with os.replace, so a process killed at any moment leaves either the old or the
new checkpoint, never a torn one.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .._atomic import atomic_dir, atomic_write_text
from ..errors import ConfigError

FORMAT = "audiovae-checkpoint"
FORMAT_VERSION = 1
LATEST = "LATEST"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_config(model: torch.nn.Module) -> dict:
    """The JSON-able description that rebuilds ``model``: class name, constructor kwargs, stats."""
    model = unwrap(model)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "model_args": model.init_args,
        "conditions": list(model.conditions),
        "frontend": getattr(model, "frontend", None) or None,
        "latent_stats": getattr(model, "latent_stats", {}),
    }


def write_model_folder(folder: Path, model: torch.nn.Module, *, extra: dict | None = None,
                       train_state: dict | None = None) -> Path:
    """Write a complete checkpoint folder atomically (temporary sibling + rename). Returns ``folder``.

    An existing folder of the same name is replaced only after the new one is complete.
    """
    folder = Path(folder)
    with atomic_dir(folder, fsync=True) as tmp:
        plain = unwrap(model)
        config = model_config(plain) | (extra or {})
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in plain.state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        if train_state is not None:
            torch.save(train_state, tmp / "train_state.pt")
    return folder


def save_run_checkpoint(run_dir: Path, model: torch.nn.Module, *, step: int, train_state: dict,
                        extra: dict | None = None, keep: int = 2) -> Path:
    """Write run_dir/checkpoints/step_XXXXXXXX, point run_dir/checkpoints/LATEST at it, prune old ones."""
    ckpt_root = Path(run_dir) / "checkpoints"
    folder = write_model_folder(ckpt_root / f"step_{step:08d}", model, extra=extra, train_state=train_state)
    atomic_write_text(ckpt_root / LATEST, folder.name + "\n")
    finished = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for stale in finished[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    return folder


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from: the folder itself, a run folder (its final model/, else its LATEST checkpoint),
    or a run's checkpoints/ folder; or the name of a bundled model ("default-mel", "default-midi")."""
    from ..pretrained import bundled_model_path, is_bundled_name

    if is_bundled_name(path):
        return bundled_model_path(path)
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    for root in (path / "checkpoints", path):
        pointer = root / LATEST
        if pointer.is_file():
            target = root / pointer.read_text().strip()
            if (target / "config.json").is_file():
                return target
    raise ConfigError(f"{path} is not a checkpoint: expected config.json and model.safetensors in it, "
                      "or a run folder with checkpoints/LATEST")


def read_config(folder: Path) -> dict:
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {folder}/config.json: {exc}") from exc
    if config.get("format") != FORMAT:
        raise ConfigError(f"{folder}/config.json is not an audiovae checkpoint (format={config.get('format')!r})")
    return config


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model in a checkpoint, load its weights (safetensors, never pickle), eval mode."""
    from ..models import MODEL_CLASSES

    folder = resolve_checkpoint(path)
    config = read_config(folder)
    name = config.get("model_class")
    if name not in MODEL_CLASSES:
        raise ConfigError(f"{folder}: unknown model class {name!r}; known: {', '.join(sorted(MODEL_CLASSES))}")
    model = MODEL_CLASSES[name](**config["model_args"])
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{folder}: weights do not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.latent_stats = config.get("latent_stats") or {}
    model.checkpoint_path = folder
    return model.to(device).eval()


def load_train_state(folder: Path) -> dict:
    """The resume state of a run checkpoint (torch.load with weights_only=True)."""
    path = Path(folder) / "train_state.pt"
    if not path.is_file():
        raise ConfigError(f"{folder} holds no train_state.pt; it cannot be resumed")
    return torch.load(path, map_location="cpu", weights_only=True)
