"""Run checkpoints: run_dir/checkpoints/step_XXXXXXXX model folders with train_state.pt (optimizer, step, RNG:
plain tensors and dicts, loadable with torch.load(weights_only=True)), and the LATEST pointer.

Model folders themselves are read and written by :mod:`audiovae.checkpoint`; this module adds only what resuming
a run needs. The LATEST pointer is replaced with os.replace, so a run killed at any moment points at a whole
checkpoint.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .._atomic import atomic_write_text
from ..checkpoint import LATEST, resolve, unwrap, write_model_folder
from ..errors import ConfigError

__all__ = ["save_run_checkpoint", "resolve_checkpoint", "load_train_state", "unwrap", "write_model_folder",
           "atomic_write_text"]


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


def resolve_checkpoint(path) -> Path:
    """The model folder a run (or its checkpoints/ folder) points at; see :func:`audiovae.checkpoint.resolve`."""
    return resolve(path)


def load_train_state(folder: Path) -> dict:
    """The resume state of a run checkpoint (torch.load with weights_only=True)."""
    path = Path(folder) / "train_state.pt"
    if not path.is_file():
        raise ConfigError(f"{folder} holds no train_state.pt; it cannot be resumed")
    return torch.load(path, map_location="cpu", weights_only=True)
