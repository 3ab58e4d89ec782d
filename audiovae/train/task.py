"""What the training loop needs from a model family. The loop (loop.py) is the same for every task."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import AudioVAEError
from .config import Recipe
from .distributed import DistInfo


class Task:
    """A model family's data, loss, validation and samples.

    Subclasses set ``self.genres`` in :meth:`build_datasets` and implement the rest. ``batch`` is whatever the
    dataset's default collate returns; the loop moves tensors to the device.
    """

    name = "task"
    monitor: tuple[str, str] | None = None  # ("val/<figure>", "min" | "max"): what train.stop_on_plateau watches

    def __init__(self, recipe: Recipe, run_dir: Path, dist: DistInfo, *, progress: bool = True):
        self.recipe, self.run_dir, self.dist, self.progress = recipe, Path(run_dir), dist, progress
        self.genres: list[str] = []

    def build_datasets(self) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
        raise NotImplementedError

    def data_location(self) -> tuple[str, Path]:
        """(the data folder, the cache folder: data.cache_dir, else <run>/cache); AudioVAEError when no data
        folder was given."""
        d = self.recipe.data
        if not d.path:
            raise AudioVAEError("no data folder given: pass --data DIR (or set data.path in the recipe)")
        return d.path, Path(d.cache_dir) if d.cache_dir else self.run_dir / "cache"

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def losses(self, model: torch.nn.Module, batch, step: int) -> dict[str, torch.Tensor]:
        """Namespaced loss terms; ``"loss"`` is the one to minimise."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def save_samples(self, model: torch.nn.Module, step: int, folder: Path) -> None:
        """Pictures and audio a person looks at and listens to during training."""

    @torch.no_grad()
    def latent_stats(self, model: torch.nn.Module) -> dict:
        """Latent mean/std and per-genre centroids over the training data, stored in the checkpoint."""
        return {}

    @torch.no_grad()
    def anomaly_calibration(self, model: torch.nn.Module) -> dict | None:
        """How the model's anomaly map scores held-out data (audiovae.latent.anomaly.Calibration as a dict), stored
        in the checkpoint so scores read as standard deviations above typical; None when the task has none."""
        return None

    def report(self) -> str:
        """What the data scan used and skipped, for the log."""
        return ""
