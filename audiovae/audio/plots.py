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


def anomaly_figure(mel, curve, spans, *, threshold: float, frames_per_second: float, curve_rate: float,
                   title: str):
    """The log-mel [n_mels, frames] above its calibrated anomaly curve [T'] (at ``curve_rate`` values per second),
    with the threshold and the flagged (start s, end s, peak) spans shaded in both panels."""
    mel = np.asarray(mel.detach().cpu() if hasattr(mel, "detach") else mel, dtype=np.float32)
    curve = np.asarray(curve.detach().cpu() if hasattr(curve, "detach") else curve, dtype=np.float32)
    seconds = mel.shape[1] / frames_per_second
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.8), sharex=True, constrained_layout=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    top.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=max(float(mel.min()), float(mel.max()) - 12),
               extent=(0, seconds, 0, mel.shape[0]))
    top.set_title(title)
    top.set_ylabel("mel band")
    times = (np.arange(len(curve)) + 0.5) / curve_rate
    bottom.plot(times, curve, color="black", linewidth=1)
    bottom.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    for start, end, _ in spans:
        top.axvspan(start, end, facecolor="none", edgecolor="white", linewidth=1.5, linestyle="--")
        bottom.axvspan(start, end, color="tab:red", alpha=0.25)
    bottom.set_xlim(0, seconds)
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("score (SD)")
    bottom.legend(loc="upper right", fontsize=8)
    return fig
