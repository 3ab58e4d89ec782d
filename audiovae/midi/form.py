"""Repetition structure of long pieces: how often one bar comes back, in generated pieces against real ones.

Two bars are alike when their sustain cells, aligned at the bar line, overlap with an IoU of at least
``threshold`` (the same pitches held at the same places in the bar). A piece's repetition share is the share of
its pairs of non-empty bars that are alike; real folk tunes repeat whole phrases (AABB), so theirs is high, while
through-composed polyphony repeats little.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .pianoroll import SUSTAIN

SIMILAR = 0.8  # sustain IoU at which two bars count as a repeat


def bar_similarity(roll: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """Sustain IoU of every pair of whole bars of a roll [C, T, P]: float [B, B], B = T // steps_per_bar (0 where
    both bars are empty)."""
    if steps_per_bar < 1:
        raise ParameterError(f"steps_per_bar must be >= 1, got {steps_per_bar}")
    bars = np.asarray(roll)[SUSTAIN].shape[0] // steps_per_bar
    cells = np.asarray(roll)[SUSTAIN, : bars * steps_per_bar].astype(np.float32).reshape(bars, -1)
    inter = cells @ cells.T
    sizes = cells.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)


def repetition_share(roll: np.ndarray, steps_per_bar: int, *, threshold: float = SIMILAR) -> float:
    """Share of the pairs of non-empty bars of a roll [C, T, P] whose sustain IoU is at least ``threshold``;
    NaN when fewer than two bars sound."""
    similarity = bar_similarity(roll, steps_per_bar)
    sounding = np.flatnonzero(np.asarray(roll)[SUSTAIN, : len(similarity) * steps_per_bar]
                              .reshape(len(similarity), -1).any(1))
    if len(sounding) < 2:
        return float("nan")
    pairs = similarity[np.ix_(sounding, sounding)][np.triu_indices(len(sounding), k=1)]
    return float((pairs >= threshold).mean())


def segment_repeats(segments: np.ndarray, piece_ids: np.ndarray, genre_ids: np.ndarray, genres: list[str], *,
                    hop: int = 2, threshold: float = SIMILAR) -> dict[str, float]:
    """How often each genre repeats a whole segment: the share of segments that match an earlier segment of the
    same piece (sustain IoU >= ``threshold``), per genre. segments: bool [N, 2, S, P] in piece order, cut with a
    hop of 1 / ``hop`` segment (every ``hop``-th of a piece's segments makes the piece end to end)."""
    out = {}
    for g, genre in enumerate(genres):
        hits = total = 0
        for piece in np.unique(piece_ids[genre_ids == g]):
            cells = segments[piece_ids == piece][::hop, SUSTAIN].reshape(-1, segments[0, SUSTAIN].size)
            cells = cells.astype(np.float32)
            inter = cells @ cells.T
            sizes = cells.sum(1)
            similarity = inter / np.maximum(sizes[:, None] + sizes[None, :] - inter, 1.0)
            hits += sum(bool((similarity[k, :k] >= threshold).any()) for k in range(1, len(cells)))
            total += max(len(cells) - 1, 0)
        if total:
            out[genre] = hits / total
    return out


def piece_windows(roll: np.ndarray, bars: int, steps_per_bar: int) -> list[np.ndarray]:
    """The whole windows of ``bars`` bars of a roll [C, T, P], end to end from its start."""
    size = bars * steps_per_bar
    return [roll[:, start:start + size] for start in range(0, roll.shape[1] - size + 1, size)]


def form_report(generated: dict[str, list[np.ndarray]], real: dict[str, list[np.ndarray]], steps_per_bar: int,
                *, threshold: float = SIMILAR) -> dict[str, dict[str, float]]:
    """Per genre, the mean repetition share of generated and of real rolls (lists of [C, T, P] with the same
    number of bars), and how many of each were measured."""
    out = {}
    for genre in generated:
        shares = {}
        for name, rolls in (("generated", generated[genre]), ("real", real.get(genre, []))):
            values = [repetition_share(r, steps_per_bar, threshold=threshold) for r in rolls]
            values = [v for v in values if v == v]
            shares[name] = float(np.mean(values)) if values else float("nan")
            shares[f"{name}_pieces"] = len(values)
        out[genre] = shares
    return out
