"""The demo's pictures, drawn light: log-mel panels side by side, a morph strip with its step boundaries, the 2-D
pad's map, and a piano roll cropped to the notes it uses. Each is written as a PNG and its path returned.

Light, because a user waits for them: a fixed layout (no constrained layout, no colorbar), nearest-neighbour
images at DPI dots per inch; a three-panel blend picture of 15 s clips takes about 0.08 s on one CPU core instead of
0.35 s. Titles sit inside the picture, so the page shows the pictures without label chips.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DPI = 80
PANEL_HEIGHT_IN = 2.6
WIDTH_IN = 15.0    # 1200 pixels: the page's width, so the browser shows the picture unscaled
FLOOR_RANGE = 12.0  # nats of log-magnitude shown below the loudest cell (~100 dB)
ROLL_MARGIN = 3     # semitones kept above and below the notes a piano roll uses
ROLL_MIN_SPAN = 12  # a cropped piano roll shows at least an octave


def _array(mel) -> np.ndarray:
    return np.asarray(mel.detach().float().cpu() if hasattr(mel, "detach") else mel, dtype=np.float32)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # not pyplot: nothing piles up in a registry
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def mel_panels(mels: Sequence, titles: Sequence[str], path: str | os.PathLike, *, frames_per_second: float
               ) -> Path:
    """Log-mels (each Tensor/array [n_mels, frames], natural-log magnitude) side by side on one colour scale, each
    titled inside the picture, time in seconds. Writes a PNG ``WIDTH_IN`` inches wide; returns ``path``."""
    mels = [_array(m) for m in mels]
    vmax = max(float(m.max()) for m in mels)
    vmin = max(min(float(m.min()) for m in mels), vmax - FLOOR_RANGE)
    fig = _figure(WIDTH_IN, PANEL_HEIGHT_IN)
    fig.subplots_adjust(left=0.045, right=0.99, top=0.86, bottom=0.19, wspace=0.1)
    axes = fig.subplots(1, len(mels), squeeze=False)[0]
    for i, (ax, mel, title) in enumerate(zip(axes, mels, titles)):
        ax.imshow(mel, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma", interpolation="nearest",
                  extent=(0, mel.shape[1] / frames_per_second, 0, mel.shape[0]))
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("seconds", fontsize=9)
        ax.tick_params(labelsize=8)
        if i == 0:
            ax.set_ylabel("mel band", fontsize=9)
    return _save(fig, path)


def strip_picture(mels: Sequence, alphas: Sequence[float], gap_seconds: float, path: str | os.PathLike, *,
                  frames_per_second: float, title: str) -> Path:
    """A morph strip as one full-width log-mel: the steps ``mels`` ([n_mels, frames] each) in a row with
    ``gap_seconds`` of floor between them, a dashed line where each step starts and its α written above it."""
    mels = [_array(m) for m in mels]
    vmax = max(float(m.max()) for m in mels)
    floor = max(min(float(m.min()) for m in mels), vmax - FLOOR_RANGE)
    gap = np.full((mels[0].shape[0], int(round(gap_seconds * frames_per_second))), floor, np.float32)
    pieces, starts, t = [], [], 0.0
    for i, mel in enumerate(mels):
        starts.append(t)
        pieces.append(mel)
        t += mel.shape[1] / frames_per_second
        if i < len(mels) - 1:
            pieces.append(gap)
            t += gap.shape[1] / frames_per_second
    image = np.concatenate(pieces, axis=1)
    fig = _figure(WIDTH_IN, PANEL_HEIGHT_IN + 0.3)
    fig.subplots_adjust(left=0.045, right=0.99, top=0.8, bottom=0.18)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(image, origin="lower", aspect="auto", vmin=floor, vmax=vmax, cmap="magma", interpolation="nearest",
              extent=(0, image.shape[1] / frames_per_second, 0, image.shape[0]))
    for start, alpha in zip(starts, alphas):
        ax.axvline(start, color="white", linewidth=1.2, linestyle="--")
        ax.text(start, 1.02, f"α={alpha:.2f}", transform=ax.get_xaxis_transform(), fontsize=9, ha="left",
                va="bottom")
    ax.set_title(title, fontsize=10, loc="left", pad=16)
    ax.set_xlabel("seconds", fontsize=9)
    ax.set_ylabel("mel band", fontsize=9)
    ax.tick_params(labelsize=8)
    return _save(fig, path)


def pad_picture(corners: Sequence[str], point: tuple[float, float] | None, path: str | os.PathLike) -> Path:
    """The 2-D pad: a unit square whose corners (bottom-left, bottom-right, top-left, top-right) are named by
    ``corners``, with ``point`` (x, y in [0, 1]) marked. The square fills the picture edge to edge (so a click's
    pixel position maps straight to x, y); names are drawn inside it."""
    fig = _figure(4.0, 4.0)
    ax = fig.add_axes((0, 0, 1, 1))
    x, y = np.meshgrid(np.linspace(0, 1, 64), np.linspace(0, 1, 64))
    colours = np.stack([0.25 + 0.6 * x, 0.3 + 0.5 * y, 0.85 - 0.5 * x * y], -1)
    ax.imshow(colours, origin="lower", extent=(0, 1, 0, 1), interpolation="bilinear")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    places = [(0.03, 0.03, "left", "bottom"), (0.97, 0.03, "right", "bottom"), (0.03, 0.97, "left", "top"),
              (0.97, 0.97, "right", "top")]
    for (cx, cy, ha, va), name in zip(places, corners):
        ax.text(cx, cy, name, ha=ha, va=va, fontsize=10, color="black",
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 2})
    if point is not None:
        ax.plot([point[0]], [point[1]], marker="o", markersize=12, markerfacecolor="white", markeredgecolor="black")
    return _save(fig, path)


def cropped_roll(roll: np.ndarray, config, *, margin: int = ROLL_MARGIN, min_span: int = ROLL_MIN_SPAN):
    """(roll [C, steps, P'], config with pitch_low/pitch_high narrowed) keeping the pitches the roll uses plus
    ``margin`` semitones each side and at least ``min_span`` semitones, inside the config's range. An empty roll
    is returned whole."""
    roll = np.asarray(roll)
    used = np.flatnonzero(roll[:2].any(axis=(0, 1)))
    if used.size == 0:
        return roll, config
    low, high = int(used[0]) - margin, int(used[-1]) + margin
    if high - low < min_span:
        pad = (min_span - (high - low) + 1) // 2
        low, high = low - pad, high + pad
    low, high = max(0, low), min(config.num_pitches - 1, high)
    narrowed = dataclasses.replace(config, pitch_low=config.pitch_low + low, pitch_high=config.pitch_low + high)
    return roll[:, :, low: high + 1], narrowed
