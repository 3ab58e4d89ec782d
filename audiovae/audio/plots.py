"""Pictures of log-mel spectrograms (PNG), for training samples, the CLI and the demo."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

from .._atomic import atomic_file

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def mel_figure(mels, titles, *, frames_per_second: float, vmin: float | None = None, vmax: float | None = None):
    """A figure with one panel per log-mel (each np/tensor [n_mels, frames]) side by side, on a shared scale."""
    mels = [np.asarray(m.detach().cpu() if hasattr(m, "detach") else m, dtype=np.float32) for m in mels]
    vmin = min(float(m.min()) for m in mels) if vmin is None else vmin
    vmax = max(float(m.max()) for m in mels) if vmax is None else vmax
    vmin = max(vmin, vmax - 12.0)  # ~100 dB of range; below that is floor noise
    fig, axes = plt.subplots(1, len(mels), figsize=(4.2 * len(mels), 3.2), squeeze=False, constrained_layout=True)
    for ax, mel, title in zip(axes[0], mels, titles):
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma",
                          extent=(0, mel.shape[1] / frames_per_second, 0, mel.shape[0]))
        ax.set_title(title)
        ax.set_xlabel("seconds")
        ax.set_ylabel("mel band")
    fig.colorbar(image, ax=axes[0].tolist(), label="log magnitude (nats)")
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a PNG atomically and close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_file(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def save_mel_png(path, mels, titles, *, frames_per_second: float) -> Path:
    return save_figure(mel_figure(mels, titles, frames_per_second=frames_per_second), path)
