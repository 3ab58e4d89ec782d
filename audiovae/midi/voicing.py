"""Note-level habits of a genre, measured on its real rolls and applied to generated ones.

A decoder that gives every cell its own probability cannot say "this voice goes on": where it is unsure, a
sustained voice breaks into sixteenth-note blips and gaps. Real chorales keep four voices sounding in 91% of
their steps, with 8% of notes a sixteenth long; thresholded samples of ``default-midi`` had a third of their notes
a sixteenth long. Three rules put the genre's habits back, each from a statistic of its training segments:

- *shortest note* (:func:`shortest_notes`): notes shorter than the genre's 10th percentile of note lengths are
  dropped (in the bundled data baroque_chorale, german_folk and medieval_trecento 2 steps, renaissance_polyphony 4,
  the quartet and the fiddle 1: nothing dropped);
- *steady voices* (:func:`steady_voices`): for a genre that keeps its usual chord (the median over segments of the
  most notes sounding at once) sounding in at least 90% of the steps of a segment, at most that many notes sound,
  a note already sounding keeps its voice and a new one without a free voice is dropped
  (:func:`keep_voices`), and a voice that falls silent is held on for up to a beat until its next note
  (:func:`hold_voices`).

Rolls here are [..., 2 or 3, T, P] (onset, sustain and optionally velocity channels on the model's grid), as
:mod:`audiovae.midi.pianoroll` defines them; every function returns a new roll.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .pianoroll import ONSET, SUSTAIN, genre_note_lengths

STEADY_SHARE = 0.9           # the share of steps a genre must keep its usual chord sounding to count as steady
SHORTEST_PERCENTILE = 10.0   # notes shorter than this percentile of the genre's lengths are dropped


def shortest_notes(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str], *,
                   percentile: float = SHORTEST_PERCENTILE) -> dict[str, int]:
    """The shortest usual note of each genre, in grid steps: the ``percentile`` of the note lengths of its bool
    segments [N, 2, S, P] (at least 1)."""
    return {genre: max(1, int(np.percentile(lengths, percentile)))
            for genre, lengths in genre_note_lengths(segments, genre_ids, genres).items()}


def steady_voices(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str], *,
                  share: float = STEADY_SHARE) -> dict[str, int]:
    """For each genre whose voices sound without a break, its usual chord size: the median over its bool segments
    [N, 2, S, P] of the most notes sounding at once, kept when at least ``share`` of the steps between a segment's
    first and last sounding step hold that many notes (chorales, one-voice tunes); genres whose voices come and go
    (a quartet, imitative polyphony) are left out."""
    out = {}
    for g, genre in enumerate(genres):
        counts = segments[genre_ids == g][:, SUSTAIN].sum(-1)  # [N, S] notes sounding per step
        counts = counts[counts.max(1) > 0]
        if not len(counts):
            continue
        chord = int(np.median(counts.max(1)))
        full, spanned = 0, 0
        for row in counts:
            sounding = np.flatnonzero(row)
            span = row[sounding[0]: sounding[-1] + 1]
            full, spanned = full + int((span >= chord).sum()), spanned + len(span)
        if full >= share * spanned:
            out[genre] = chord
    return out


def _note_lengths(onset: np.ndarray, sustain: np.ndarray) -> np.ndarray:
    """For every sounding cell of bool onset/sustain [..., T, P], the length in steps of the note it belongs to
    (a note runs from its onset while the sustain lasts, up to the next onset); 0 where nothing sounds."""
    steps = sustain.shape[-2]
    elapsed = np.zeros(sustain.shape, dtype=np.int64)
    run = np.zeros(sustain.shape[:-2] + sustain.shape[-1:], dtype=np.int64)
    for t in range(steps):
        run = np.where(onset[..., t, :], 1, run + 1) * sustain[..., t, :]
        elapsed[..., t, :] = run
    lengths = np.zeros_like(elapsed)
    total = np.zeros_like(run)
    for t in range(steps - 1, -1, -1):
        ends = sustain[..., t, :].copy()
        if t < steps - 1:
            ends &= ~sustain[..., t + 1, :] | onset[..., t + 1, :]
        total = np.where(ends, elapsed[..., t, :], total) * sustain[..., t, :]
        lengths[..., t, :] = total
    return lengths


def drop_short_notes(roll: np.ndarray, shortest: int) -> np.ndarray:
    """A copy of a clean roll [..., 2 or 3, T, P] without the notes shorter than ``shortest`` grid steps."""
    if shortest < 1:
        raise ParameterError(f"shortest must be >= 1, got {shortest}")
    out = np.array(roll, copy=True)
    onset, sustain = out[..., ONSET, :, :].astype(bool), out[..., SUSTAIN, :, :].astype(bool)
    short = sustain & (_note_lengths(onset, sustain) < shortest)
    keep = (~short).astype(out.dtype)
    out[..., : out.shape[-3], :, :] *= keep[..., None, :, :]
    return out


def keep_voices(roll: np.ndarray, voices: int, priority: np.ndarray) -> np.ndarray:
    """A copy of a clean roll [..., 2 or 3, T, P] in which at most ``voices`` notes sound at each step. A note that
    is sounding keeps its voice; new notes take the free voices in order of ``priority`` float [..., T, P] (e.g.
    the decoder's sustain probability), and a new note without a free voice is dropped whole."""
    if voices < 1:
        raise ParameterError(f"voices must be >= 1, got {voices}")
    out = np.array(roll, copy=True)
    shape = out.shape[-2:]
    onset = out[..., ONSET, :, :].astype(bool).reshape(-1, *shape)
    sustain = out[..., SUSTAIN, :, :].astype(bool).reshape(-1, *shape)
    priority = np.broadcast_to(priority, out[..., SUSTAIN, :, :].shape).reshape(-1, *shape)
    keep = np.zeros_like(sustain)
    kept = np.zeros((len(sustain), shape[1]), dtype=bool)     # the pitch's note holds a voice
    dropped = np.zeros_like(kept)                              # the pitch's note was dropped
    for t in range(shape[0]):
        starts = onset[:, t]
        dropped &= ~starts
        wanted = sustain[:, t] & ~dropped
        now = wanted.copy()
        crowded = np.flatnonzero(wanted.sum(-1) > voices)  # only these rows need a choice
        if len(crowded):
            going_on = wanted[crowded] & kept[crowded] & ~starts[crowded]
            score = np.where(going_on, 2.0, 0.0) + np.where(wanted[crowded], 1.0 + np.clip(priority[crowded, t], 0.0,
                                                                                              0.999), 0.0)
            rank = np.argsort(np.argsort(-score, axis=-1, kind="stable"), axis=-1, kind="stable")
            now[crowded] &= rank < voices
        dropped |= wanted & ~now
        kept = now
        keep[:, t] = now
    out[..., : out.shape[-3], :, :] *= keep.reshape(out[..., SUSTAIN, :, :].shape)[..., None, :, :].astype(out.dtype)
    return out


def hold_voices(roll: np.ndarray, voices: int, longest_hold: int) -> np.ndarray:
    """A copy of a clean roll [..., 2 or 3, T, P] in which a note that stops while fewer than ``voices`` notes sound
    is held on (no new onset) until another note takes its voice, for at most ``longest_hold`` extra steps."""
    if voices < 1 or longest_hold < 0:
        raise ParameterError(f"need voices >= 1 and longest_hold >= 0, got {voices}, {longest_hold}")
    out = np.array(roll, copy=True)
    sustain = out[..., SUSTAIN, :, :].astype(bool)
    held = np.zeros(sustain.shape[:-2] + sustain.shape[-1:], dtype=np.int64)
    for t in range(1, sustain.shape[-2]):
        stopped = sustain[..., t - 1, :] & ~sustain[..., t, :] & (held < longest_hold)
        free = voices - sustain[..., t, :].sum(-1, keepdims=True)
        # the lowest pitches among those that stopped take the free voices (any fixed order keeps it deterministic)
        order = np.cumsum(stopped, axis=-1)
        extend = stopped & (order <= free)
        sustain[..., t, :] |= extend
        held = np.where(extend, held + 1, 0) * sustain[..., t, :]
    out[..., SUSTAIN, :, :] = sustain.astype(out.dtype)
    return out
