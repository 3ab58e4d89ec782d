"""Note statistics of MIDI, read from the notes (pretty_midi), not from the model's rolls: per-window features,
their overlapping area between generated and real music (Yang & Lerch 2018), and a genre judge built on them.

A window is ``bars`` bars of 4/4 (16 quarter notes by default) cut from a piece at multiples of its length; times
are in quarter notes from the tempo map, drums are left out. The features of a window:

  pitch_count               distinct pitches
  pitch_class_histogram     12 shares of notes per pitch class
  pitch_range               highest minus lowest pitch, semitones
  top_voice_interval        mean |interval| between successive notes of the top voice (highest note per onset)
  note_count                notes starting in the window
  inter_onset_interval      mean time between distinct onsets, quarters
  note_length_histogram     shares of notes lasting <= 1/4, 1/2, 1, 2, 4, > 4 quarters
  onset_position_histogram  shares of onsets on each sixteenth of the beat (4 positions; others to the nearest)
  polyphony_mean, polyphony_max   notes sounding at each onset
  velocity_mean, velocity_spread  mean and standard deviation of note velocities (1-127)

Overlapping area (OA), as Yang & Lerch define it: for one feature, the distribution of distances between pairs of
real windows (intra-set) and between generated and real windows (inter-set), each a Gaussian kernel density; OA is
the area under the smaller of the two curves, 1 when generated windows sit among real ones as real ones do.
"""
from __future__ import annotations

import numpy as np
import pretty_midi

from ..errors import ParameterError

SCALARS = ("pitch_count", "pitch_range", "top_voice_interval", "note_count", "inter_onset_interval",
           "polyphony_mean", "polyphony_max", "velocity_mean", "velocity_spread")
HISTOGRAMS = {"pitch_class_histogram": 12, "note_length_histogram": 6, "onset_position_histogram": 4}
FEATURES = SCALARS + tuple(HISTOGRAMS)
LENGTH_EDGES = (0.25, 0.5, 1.0, 2.0, 4.0)  # quarters: upper edges of the note-length bins (the last is open)


def midi_notes(pm: pretty_midi.PrettyMIDI) -> np.ndarray:
    """The pitched notes of a piece as float [N, 4]: (pitch, start, end, velocity), times in quarter notes from the
    tempo map, sorted by start then pitch."""
    notes = [(n.pitch, n.start, n.end, n.velocity) for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        return np.zeros((0, 4))
    array = np.array(notes, dtype=np.float64)
    ticks = np.array([[pm.time_to_tick(t) for t in row] for row in array[:, 1:3]], dtype=np.float64)
    array[:, 1:3] = ticks / pm.resolution
    return array[np.lexsort((array[:, 0], array[:, 1]))]


def note_windows(notes: np.ndarray, *, quarters: float = 16.0) -> list[np.ndarray]:
    """Non-empty windows of ``quarters`` (notes that start in each, times relative to its start)."""
    if quarters <= 0:
        raise ParameterError(f"a window must last > 0 quarters, got {quarters}")
    if len(notes) == 0:
        return []
    index = np.floor(notes[:, 1] / quarters).astype(np.int64)
    out = []
    for w in np.unique(index):
        window = notes[index == w].copy()
        window[:, 1:3] -= w * quarters
        out.append(window)
    return out


def window_features(notes: np.ndarray) -> dict[str, float | np.ndarray]:
    """The features (see the module docstring) of one window of notes float [N >= 1, 4]."""
    if len(notes) == 0:
        raise ParameterError("a window needs at least one note")
    pitch, start, end, velocity = notes.T
    onsets = np.unique(start)
    top = np.array([pitch[start == t].max() for t in onsets])
    sounding = np.array([np.sum((start <= t + 1e-6) & (end > t + 1e-6)) for t in onsets])
    lengths = np.digitize(end - start, LENGTH_EDGES, right=True)
    positions = np.rint((onsets % 1.0) * 4).astype(np.int64) % 4
    return {
        "pitch_count": float(len(np.unique(pitch))),
        "pitch_class_histogram": np.bincount(pitch.astype(np.int64) % 12, minlength=12) / len(pitch),
        "pitch_range": float(pitch.max() - pitch.min()),
        "top_voice_interval": float(np.abs(np.diff(top)).mean()) if len(top) > 1 else 0.0,
        "note_count": float(len(pitch)),
        "inter_onset_interval": float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0,
        "note_length_histogram": np.bincount(lengths, minlength=6)[:6] / len(pitch),
        "onset_position_histogram": np.bincount(positions, minlength=4) / len(onsets),
        "polyphony_mean": float(sounding.mean()),
        "polyphony_max": float(sounding.max()),
        "velocity_mean": float(velocity.mean()),
        "velocity_spread": float(velocity.std()),
    }


def feature_matrix(features: list[dict]) -> np.ndarray:
    """Window features as one row each, float [N, 9 + 12 + 6 + 4]: the scalars, then the histograms."""
    return np.array([[f[k] for k in SCALARS] + [v for k in HISTOGRAMS for v in f[k]] for f in features])


def _column(features: list[dict], name: str) -> np.ndarray:
    return np.array([np.atleast_1d(f[name]) for f in features], dtype=np.float64)


def _pairwise(a: np.ndarray, b: np.ndarray, same: bool) -> np.ndarray:
    distances = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return distances[np.triu_indices(len(a), k=1)] if same else distances.ravel()


def _kde_overlap(x: np.ndarray, y: np.ndarray) -> float:
    """Area under min(KDE(x), KDE(y)); two point masses at one value overlap fully."""
    from scipy.stats import gaussian_kde

    low, high = min(x.min(), y.min()), max(x.max(), y.max())
    if high - low < 1e-9:
        return 1.0
    span = high - low
    grid = np.linspace(low - 0.1 * span, high + 0.1 * span, 512)

    def density(values):
        if values.std() < 1e-9 * span:  # a constant sample: a narrow bump where it sits
            return np.exp(-0.5 * ((grid - values.mean()) / (0.01 * span)) ** 2) / (0.01 * span * np.sqrt(2 * np.pi))
        return gaussian_kde(values)(grid)

    return float(np.trapezoid(np.minimum(density(x), density(y)), grid))


def overlapping_areas(generated: list[dict], real: list[dict], *, max_windows: int = 200, seed: int = 0
                      ) -> dict[str, float]:
    """OA per feature of ``generated`` against ``real`` windows (lists of :func:`window_features`), plus "mean".
    At most ``max_windows`` of each set are used (an even random draw), which bounds the pairwise work."""
    if len(generated) < 2 or len(real) < 2:
        raise ParameterError(f"OA needs at least 2 windows of each set, got {len(generated)} and {len(real)}")
    rng = np.random.default_rng(seed)
    generated = [generated[i] for i in rng.permutation(len(generated))[:max_windows]]
    real = [real[i] for i in rng.permutation(len(real))[:max_windows]]
    areas = {}
    for name in FEATURES:
        g, r = _column(generated, name), _column(real, name)
        areas[name] = _kde_overlap(_pairwise(r, r, True), _pairwise(g, r, False))
    areas["mean"] = float(np.mean([areas[name] for name in FEATURES]))
    return areas


class NoteStatisticsJudge:
    """A genre classifier on window note statistics (gradient-boosted trees, scikit-learn), independent of the
    model's rolls: ``fit(features, genre_ids)``, ``predict(features) -> genre ids``."""

    def __init__(self, seed: int = 0):
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, random_state=seed)

    def fit(self, features: list[dict], genre_ids: np.ndarray) -> "NoteStatisticsJudge":
        self.model.fit(feature_matrix(features), np.asarray(genre_ids))
        return self

    def predict(self, features: list[dict]) -> np.ndarray:
        return self.model.predict(feature_matrix(features))


def folder_windows(root, piece_paths: list[str], genres: list[str], *, quarters: float = 16.0
                   ) -> tuple[list[dict], np.ndarray]:
    """Window features of MIDI pieces (paths relative to ``root``, the first folder naming the genre) and each
    window's genre id. Pieces pretty_midi cannot read are passed over (the scan that listed them already read
    them once)."""
    from pathlib import Path

    from .pianoroll import load_midi

    features, ids = [], []
    for rel in piece_paths:
        try:
            notes = midi_notes(load_midi(Path(root) / rel))
        except Exception:  # noqa: BLE001 - a piece that parsed in the scan and fails now is skipped, not fatal
            continue
        for window in note_windows(notes, quarters=quarters):
            features.append(window_features(window))
            ids.append(genres.index(rel.split("/")[0]))
    return features, np.array(ids, dtype=np.int64)


def rolls_to_windows(rolls: np.ndarray, config) -> tuple[list[dict], np.ndarray]:
    """Features of generated rolls bool [N, 2, S, P], each written out as the MIDI a user gets (roll_to_midi) and
    read back as notes; and the indices of the rolls that hold notes (empty ones have no features)."""
    from .pianoroll import roll_to_midi

    features, kept = [], []
    for i, roll in enumerate(rolls):
        notes = midi_notes(roll_to_midi(roll, config=config))
        if len(notes):
            features.append(window_features(notes))
            kept.append(i)
    return features, np.array(kept, dtype=np.int64)
