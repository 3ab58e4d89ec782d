"""MIDI <-> piano roll on a beat grid.

A roll is a bool array [2, steps, pitches]: channel 0 holds onsets, channel 1 sustain. A note that occupies
grid steps s..e-1 has ``onset[s] = 1`` and ``sustain[s:e] = 1``; notes shorter than a step still occupy one
step, and a repeated note on the same pitch shows as a second onset inside an unbroken sustain run.
Pitch index i is MIDI note ``config.pitch_low + i``.

A roll with dynamics is uint8 [3, steps, pitches]: onset and sustain as 0/1, and channel 2 the MIDI velocity
(1..127) of each onset cell (0 elsewhere). Every function here that reads a roll takes either kind; those that
clean or threshold it give the bool onset/sustain pair (:func:`split_velocity` keeps the velocities apart).

The grid counts quarter notes, not seconds: note times are mapped through the file's tempo map, so a file
with tempo changes stays on the grid. Drum tracks are left out and all pitched instruments are merged.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import mido
import numpy as np
import pretty_midi

from ..errors import MidiReadError, ParameterError

ONSET, SUSTAIN, VELOCITY = 0, 1, 2
DEFAULT_VELOCITY = 90  # what a note gets when nothing says otherwise (the bundled corpus's own constant)
MIDI_EXTENSIONS = (".mid", ".midi")
_WRITE_RESOLUTION = 480  # ticks per quarter note: divisible by every common steps_per_quarter
RETIMED_RESOLUTION = _WRITE_RESOLUTION


@dataclass(frozen=True)
class RollConfig:
    """Grid and pitch range of a piano roll.

    steps_per_quarter: grid steps per quarter note (4 = sixteenth notes).
    pitch_low, pitch_high: MIDI note range kept, inclusive (21..108 = the 88 piano keys).
    segment_bars, beats_per_bar: segment length for training (4 bars of 4 quarter notes = 64 steps).
    """

    steps_per_quarter: int = 4
    pitch_low: int = 21
    pitch_high: int = 108
    segment_bars: int = 4
    beats_per_bar: int = 4

    def __post_init__(self):
        if self.steps_per_quarter < 1 or self.segment_bars < 1 or self.beats_per_bar < 1:
            raise ParameterError(f"steps_per_quarter, segment_bars and beats_per_bar must be >= 1, got {self}")
        if not 0 <= self.pitch_low <= self.pitch_high <= 127:
            raise ParameterError(f"need 0 <= pitch_low <= pitch_high <= 127, got {self.pitch_low}..{self.pitch_high}")

    @property
    def num_pitches(self) -> int:
        return self.pitch_high - self.pitch_low + 1

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_quarter * self.beats_per_bar

    @property
    def segment_steps(self) -> int:
        return self.segment_bars * self.steps_per_bar

    def to_dict(self) -> dict:
        return asdict(self)


def is_midi_path(path: str | os.PathLike) -> bool:
    """True when the file name ends in .mid or .midi (any case)."""
    return str(path).lower().endswith(MIDI_EXTENSIONS)


def load_midi(path: str | os.PathLike) -> pretty_midi.PrettyMIDI:
    """Parse a MIDI file; any parse failure becomes :class:`MidiReadError` naming the file and the cause.

    pretty_midi refuses files whose last tick exceeds 1e7 as "likely corrupt", but long pieces written at
    a high resolution (music21 writes 10080 ticks per quarter) pass that mark legitimately; such files are
    re-timed to 480 ticks per quarter (an error below 1/960 of a quarter note) and refused only if they
    are still too long. :func:`read_midi` also says whether that happened.
    """
    return read_midi(path)[0]


def read_midi(path: str | os.PathLike) -> tuple[pretty_midi.PrettyMIDI, int | None]:
    """(PrettyMIDI, the file's original ticks per quarter if it was re-timed, else None); see :func:`load_midi`."""
    path = Path(path)
    if not path.is_file():
        raise MidiReadError(path, "no such file")
    # pretty_midi and mido raise a wide, undocumented range of types on malformed input (ValueError for
    # huge ticks, OSError for a missing header, EOFError, KeyError, IndexError, mido.KeySignatureError, ...).
    try:
        midi = mido.MidiFile(str(path))
        retimed_from = None
        last_tick = max((sum(msg.time for msg in track) for track in midi.tracks), default=0)
        if last_tick >= pretty_midi.MAX_TICK and midi.ticks_per_beat > _WRITE_RESOLUTION:
            retimed_from = midi.ticks_per_beat
            _retime(midi, _WRITE_RESOLUTION)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about meta events on non-zero tracks
            return pretty_midi.PrettyMIDI(mido_object=midi), retimed_from
    except Exception as exc:  # noqa: BLE001
        raise MidiReadError(path, f"not a MIDI file / corrupt ({type(exc).__name__}: {exc})") from exc


def _retime(midi: mido.MidiFile, resolution: int) -> None:
    """Change ticks per quarter in place, rounding absolute (not delta) times so no error accumulates."""
    scale = resolution / midi.ticks_per_beat
    for track in midi.tracks:
        absolute = np.cumsum([msg.time for msg in track], dtype=np.int64)
        new_absolute = np.rint(absolute * scale).astype(np.int64)
        for msg, delta in zip(track, np.diff(new_absolute, prepend=0)):
            msg.time = int(delta)
    midi.ticks_per_beat = resolution


def _quarters(pm: pretty_midi.PrettyMIDI, times: np.ndarray) -> np.ndarray:
    """Seconds -> quarter notes since the start, through the file's tempo map (piecewise linear)."""
    change_times, tempi = pm.get_tempo_changes()
    change_quarters = np.concatenate([[0.0], np.cumsum(np.diff(change_times) * tempi[:-1] / 60.0)])
    idx = np.clip(np.searchsorted(change_times, times, side="right") - 1, 0, len(change_times) - 1)
    return change_quarters[idx] + (times - change_times[idx]) * tempi[idx] / 60.0


def midi_to_roll(source: str | os.PathLike | pretty_midi.PrettyMIDI, *, config: RollConfig = RollConfig(),
                 velocity: bool = False) -> np.ndarray:
    """MIDI file or PrettyMIDI -> roll: bool [2, steps, config.num_pitches] (onset, sustain), or with
    ``velocity`` the roll with dynamics, uint8 [3, steps, P] (the loudest note starting in a cell gives its
    velocity).

    ``steps`` runs from the start of the file (step 0 = time 0, so bars stay aligned) to the end of the
    last kept note. Raises :class:`MidiReadError` for unreadable files and files with no notes, only drum
    notes, or no notes inside the pitch range.
    """
    name = "<PrettyMIDI>" if isinstance(source, pretty_midi.PrettyMIDI) else str(source)
    pm = source if isinstance(source, pretty_midi.PrettyMIDI) else load_midi(source)
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        has_drums = any(inst.is_drum and inst.notes for inst in pm.instruments)
        raise MidiReadError(name, "drums only" if has_drums else "no notes")
    pitch = np.array([n.pitch for n in notes])
    keep = (pitch >= config.pitch_low) & (pitch <= config.pitch_high)
    if not keep.any():
        raise MidiReadError(name, f"no notes in pitch range ({config.pitch_low}..{config.pitch_high})")
    starts = np.array([n.start for n in notes])[keep]
    ends = np.array([n.end for n in notes])[keep]
    pitch = pitch[keep] - config.pitch_low
    on = np.rint(_quarters(pm, starts) * config.steps_per_quarter).astype(np.int64)
    off = np.rint(_quarters(pm, ends) * config.steps_per_quarter).astype(np.int64)
    on = np.maximum(on, 0)
    off = np.maximum(off, on + 1)
    roll = np.zeros((2, int(off.max()), config.num_pitches), dtype=bool)
    roll[ONSET, on, pitch] = True
    # Sustain runs via a difference array: +1 at onset, -1 at offset, cumulative sum > 0.
    delta = np.zeros((roll.shape[1] + 1, config.num_pitches), dtype=np.int64)
    np.add.at(delta, (on, pitch), 1)
    np.add.at(delta, (off, pitch), -1)
    roll[SUSTAIN] = np.cumsum(delta, axis=0)[:-1] > 0
    if not velocity:
        return roll
    loudness = np.zeros(roll.shape[1:], dtype=np.uint8)
    np.maximum.at(loudness, (on, pitch), np.array([n.velocity for n in notes], dtype=np.uint8)[keep])
    return np.concatenate([roll.astype(np.uint8), loudness[None]])


def split_velocity(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A roll [..., 2 or 3, steps, P] -> (its onset/sustain channels [..., 2, steps, P], velocities uint8
    [..., steps, P] or None for a roll without dynamics)."""
    roll = np.asarray(roll)
    if roll.ndim < 3 or roll.shape[-3] not in (2, 3):
        raise ParameterError(f"expected a roll shaped [..., 2 or 3, steps, pitches], got {roll.shape}")
    if roll.shape[-3] == 2:
        return roll, None
    return roll[..., :VELOCITY, :, :], roll[..., VELOCITY, :, :].astype(np.uint8)


def with_velocity(roll: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """A bool roll [..., 2, steps, P] and velocities [..., steps, P] (MIDI 1..127, or floats in [0, 1] meaning
    velocity / 127) -> the roll with dynamics, uint8 [..., 3, steps, P]; onset cells get at least velocity 1."""
    velocity = np.asarray(velocity)
    if np.issubdtype(velocity.dtype, np.floating):
        velocity = np.rint(np.clip(velocity, 0.0, 1.0) * 127)
    onset = np.asarray(roll[..., ONSET, :, :], dtype=bool)
    loudness = np.where(onset, np.clip(velocity, 1, 127), 0).astype(np.uint8)
    return np.concatenate([np.asarray(roll, dtype=np.uint8), loudness[..., None, :, :]], axis=-3)


def roll_tensor(roll: np.ndarray):
    """A roll [..., 2 or 3, steps, P] as a model's input: float32 Tensor of the same shape, onset/sustain in {0, 1}
    and velocity as velocity / 127 in [0, 1]."""
    import torch

    x = torch.from_numpy(np.asarray(roll).astype(np.float32))
    if x.shape[-3] == 3:
        x[..., VELOCITY, :, :] /= 127.0
    return x


def clean_roll(roll: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Make a roll [..., 2 or 3, steps, pitches] consistent; returns its bool onset/sustain [..., 2, steps, P].

    Float input (e.g. model probabilities) is thresholded at ``threshold`` first. Onset implies sustain,
    and sustain that rises from silence (or starts at step 0) gets an onset, so it starts a note.
    """
    roll, _ = split_velocity(roll)
    roll = roll > threshold if np.issubdtype(roll.dtype, np.floating) else roll.astype(bool)
    onset = roll[..., ONSET, :, :]
    sustain = roll[..., SUSTAIN, :, :] | onset
    previous = np.zeros_like(sustain)
    previous[..., 1:, :] = sustain[..., :-1, :]
    onset = onset | (sustain & ~previous)
    return np.stack([onset, sustain], axis=-3)


def voice_counts(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str], *, percentile: float = 95.0
                 ) -> dict[str, int]:
    """How many notes each genre sounds at once: the ``percentile`` of the number of sustained pitches over the
    steps that sound at all, per genre, from bool segments [N, 2, S, P] (at least 1)."""
    out = {}
    for g, genre in enumerate(genres):
        counts = segments[genre_ids == g][:, SUSTAIN].sum(-1).reshape(-1)
        counts = counts[counts > 0]
        if len(counts):
            out[genre] = max(1, int(np.ceil(np.percentile(counts, percentile))))
    return out


def longest_notes(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str], *, percentile: float = 99.9
                  ) -> dict[str, int]:
    """How long each genre holds one pitch: the ``percentile`` of note lengths in grid steps over the notes of its
    bool segments [N, 2, S, P] (a high percentile rather than the maximum, which one stray note can set)."""
    return {genre: max(1, int(np.ceil(np.percentile(lengths, percentile))))
            for genre, lengths in genre_note_lengths(segments, genre_ids, genres).items()}


def genre_note_lengths(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str]) -> dict[str, list[int]]:
    """The lengths in grid steps of every note of each genre's bool segments [N, 2, S, P]; genres without notes are
    left out."""
    out = {}
    for g, genre in enumerate(genres):
        lengths = [e - s for segment in segments[genre_ids == g] for _, s, e in roll_notes(segment)]
        if lengths:
            out[genre] = lengths
    return out


def onset_grids(segments: np.ndarray, genre_ids: np.ndarray, genres: list[str], steps_per_quarter: int, *,
                min_share: float = 0.05) -> dict[str, list[bool]]:
    """Where in the beat each genre starts notes: for each of the ``steps_per_quarter`` grid positions within a
    quarter note, whether at least ``min_share`` of the steps with an onset in its bool segments [N, 2, S, P] sit
    there (the most common position always counts)."""
    out = {}
    for g, genre in enumerate(genres):
        steps = np.flatnonzero(segments[genre_ids == g][:, ONSET].any(-1).reshape(-1))
        if len(steps):
            share = np.bincount(steps % steps_per_quarter, minlength=steps_per_quarter) / len(steps)
            out[genre] = [bool(v) for v in (share >= min_share) | (share == share.max())]
    return out


def velocity_levels(velocities: np.ndarray, genre_ids: np.ndarray, genres: list[str], *, min_share: float = 0.01
                    ) -> dict[str, list[int]]:
    """The velocities each genre plays: those of at least ``min_share`` of its onsets (the most common always
    counts), from onset velocities uint8 [N, S, P] (0 = no onset). A corpus written at one velocity gives one."""
    out = {}
    for g, genre in enumerate(genres):
        played = velocities[genre_ids == g]
        played = played[played > 0]
        if len(played):
            counts = np.bincount(played, minlength=128)
            out[genre] = [int(v) for v in np.flatnonzero((counts >= min_share * len(played)) | (counts == counts.max()))]
    return out


def snap_velocities(roll: np.ndarray, levels: list[int]) -> np.ndarray:
    """A copy of a roll with dynamics [..., 3, T, P] whose onset velocities are moved to the nearest of
    ``levels`` (MIDI velocities, see :func:`velocity_levels`)."""
    if not levels:
        raise ParameterError("snapping velocities needs at least one level")
    out = np.array(roll, copy=True)
    levels = np.sort(np.asarray(levels, dtype=np.int64))
    played = out[..., VELOCITY, :, :].astype(np.int64)
    right = np.clip(np.searchsorted(levels, played), 0, len(levels) - 1)
    left = np.clip(right - 1, 0, len(levels) - 1)
    nearest = np.where(np.abs(levels[left] - played) <= np.abs(levels[right] - played), levels[left], levels[right])
    out[..., VELOCITY, :, :] = np.where(played > 0, nearest, 0).astype(out.dtype)
    return out


def quantize_onsets(roll: np.ndarray, allowed: list[bool]) -> np.ndarray:
    """A copy of a roll [..., 2 or 3, T, P] whose notes start only at allowed positions of the beat: ``allowed``
    holds one bool per grid step of a quarter note (see :func:`onset_grids`). A note starting elsewhere starts at
    the next allowed step, keeping its end and velocity; one that ends before then is dropped. Notes only ever get
    shorter, so no two notes come to overlap (voice counts hold)."""
    if not any(allowed):
        raise ParameterError("an onset grid must allow at least one position")
    per_quarter = len(allowed)
    ahead = [next(d for d in range(per_quarter) if allowed[(p + d) % per_quarter]) for p in range(per_quarter)]
    out = np.array(roll, copy=True)
    steps, dynamics = out.shape[-2], out.shape[-3] == 3
    for t in range(steps):
        q = t + ahead[t % per_quarter]
        if q == t:
            continue
        moved = out[..., ONSET, t, :].astype(bool)
        if not moved.any():
            continue
        keep = (~moved).astype(out.dtype)
        out[..., SUSTAIN, t:q, :] *= keep[..., None, :]
        out[..., ONSET, t, :] *= keep
        if q < steps:
            starts = moved & out[..., SUSTAIN, q, :].astype(bool) & ~out[..., ONSET, q, :].astype(bool)
            out[..., ONSET, q, :] |= starts.astype(out.dtype)
            if dynamics:
                out[..., VELOCITY, q, :] = np.where(starts, out[..., VELOCITY, t, :], out[..., VELOCITY, q, :])
        if dynamics:
            out[..., VELOCITY, t, :] *= keep
    return out


def limit_note_length(roll: np.ndarray, steps: int) -> np.ndarray:
    """A copy of a roll [..., 2 or 3, T, P] in which no note sounds longer than ``steps`` grid steps: the sustain of
    a longer note ends there (its onset and velocity stay)."""
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps}")
    out = np.array(roll, copy=True)
    onset, sustain = out[..., ONSET, :, :].astype(bool), out[..., SUSTAIN, :, :].astype(bool)
    keep = np.empty_like(sustain)
    age = np.zeros(onset.shape[:-2] + onset.shape[-1:], dtype=np.int64)  # steps since the note's onset, per pitch
    for t in range(out.shape[-2]):
        age = np.where(onset[..., t, :], 0, age + 1) * sustain[..., t, :]
        keep[..., t, :] = age < steps
    out[..., SUSTAIN, :, :] *= keep.astype(out.dtype)
    return out


def limit_voices(probabilities: np.ndarray, voices: int) -> np.ndarray:
    """Keep at most ``voices`` pitches per step in a probability roll float [..., 2, steps, pitches]: at each step
    the pitches with the highest sustain probability; the others' onset and sustain are set to 0."""
    if voices < 1:
        raise ParameterError(f"voices must be >= 1, got {voices}")
    sustain = probabilities[..., SUSTAIN, :, :]
    if sustain.shape[-1] <= voices:
        return probabilities
    kth = np.partition(sustain, -voices, axis=-1)[..., -voices, None]  # the voices-th largest per step
    keep = sustain >= kth
    out = probabilities.copy()
    out[..., ONSET, :, :] *= keep
    out[..., SUSTAIN, :, :] *= keep
    return out


def roll_notes(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """Notes in a roll [2, steps, pitches] as (pitch_index, start_step, end_step), end exclusive.

    The roll is cleaned first; a note runs from an onset to the next onset or the end of its sustain run.
    """
    roll = clean_roll(roll)
    onset, sustain = roll[ONSET], roll[SUSTAIN]
    notes = []
    for p in np.flatnonzero(sustain.any(axis=0)):
        starts = np.flatnonzero(onset[:, p])
        run_end = np.flatnonzero(np.diff(np.concatenate([sustain[:, p], [False]]).astype(np.int8)) == -1) + 1
        for i, s in enumerate(starts):
            end = run_end[np.searchsorted(run_end, s, side="right")]
            if i + 1 < len(starts):
                end = min(end, starts[i + 1])
            notes.append((int(p), int(s), int(end)))
    return notes


def roll_to_midi(
    roll: np.ndarray,
    *,
    config: RollConfig = RollConfig(),
    tempo: float = 120.0,
    program: int = 0,
    velocity: int = 90,
) -> pretty_midi.PrettyMIDI:
    """Roll [2 or 3, steps, config.num_pitches] -> PrettyMIDI with one instrument at one tempo (bpm).

    ``program`` is the General MIDI program (0..127). A roll with dynamics gives each note the velocity of its
    onset cell; otherwise every note gets ``velocity`` (1..127). The time signature is ``config.beats_per_bar``/4.
    """
    roll = np.asarray(roll)
    if roll.ndim != 3 or roll.shape[0] not in (2, 3) or roll.shape[2] != config.num_pitches:
        raise ParameterError(f"expected a roll shaped [2 or 3, steps, {config.num_pitches}], got {roll.shape}")
    _, loudness = split_velocity(roll)
    if tempo <= 0 or not 0 <= program <= 127 or not 1 <= velocity <= 127:
        raise ParameterError(f"need tempo > 0, program in 0..127, velocity in 1..127; got {tempo}, {program}, {velocity}")
    pm = pretty_midi.PrettyMIDI(resolution=_WRITE_RESOLUTION, initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(config.beats_per_bar, 4, 0.0))
    instrument = pretty_midi.Instrument(program=program)
    step_seconds = 60.0 / tempo / config.steps_per_quarter
    for p, s, e in roll_notes(roll):
        note_velocity = velocity if loudness is None else (int(loudness[s, p]) or velocity)
        instrument.notes.append(pretty_midi.Note(velocity=note_velocity, pitch=p + config.pitch_low,
                                                 start=s * step_seconds, end=e * step_seconds))
    instrument.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(instrument)
    return pm


def segment_roll(roll: np.ndarray, *, config: RollConfig = RollConfig(), hop_steps: int | None = None) -> np.ndarray:
    """Cut a roll [C, steps, P] (C = 2, or 3 with dynamics) into segments [N, C, config.segment_steps, P] of the
    roll's dtype; empty segments dropped.

    Segments start at multiples of ``hop_steps`` (default: the segment length); the last one is padded
    with silence. A note sustained into a segment keeps no onset at step 0 (see :func:`join_segments`).
    """
    size = config.segment_steps
    hop = size if hop_steps is None else int(hop_steps)
    if hop < 1:
        raise ParameterError(f"hop_steps must be >= 1, got {hop_steps}")
    roll = np.asarray(roll)
    steps = roll.shape[1]
    starts = list(range(0, max(steps - size, 0) + 1, hop))
    if starts[-1] + size < steps:
        starts.append(starts[-1] + hop)
    padded = np.zeros((roll.shape[0], starts[-1] + size, roll.shape[2]), dtype=roll.dtype)
    padded[:, :steps] = roll
    segments = np.stack([padded[:, s:s + size] for s in starts])
    return segments[segments[:, SUSTAIN].any(axis=(1, 2))]


def join_segments(segments: np.ndarray) -> np.ndarray:
    """Segments [N, C, S, P] (C = 2, or 3 with dynamics) -> roll [C, N*S, P], end to end without gaps.

    A note sustained across a boundary continues; an onset at a boundary starts a new note.
    """
    segments = np.asarray(segments)
    if segments.ndim != 4 or segments.shape[1] not in (2, 3):
        raise ParameterError(f"expected segments shaped [N, 2 or 3, steps, pitches], got {segments.shape}")
    n, channels, size, pitches = segments.shape
    return np.ascontiguousarray(segments.transpose(1, 0, 2, 3).reshape(channels, n * size, pitches))
