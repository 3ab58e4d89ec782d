"""MIDI <-> piano roll on a beat grid.

A roll is a bool array [2, steps, pitches]: channel 0 holds onsets, channel 1 sustain. A note that occupies
grid steps s..e-1 has ``onset[s] = 1`` and ``sustain[s:e] = 1``; notes shorter than a step still occupy one
step, and a repeated note on the same pitch shows as a second onset inside an unbroken sustain run.
Pitch index i is MIDI note ``config.pitch_low + i``.

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

ONSET, SUSTAIN = 0, 1
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


def midi_to_roll(source: str | os.PathLike | pretty_midi.PrettyMIDI, *, config: RollConfig = RollConfig()) -> np.ndarray:
    """MIDI file or PrettyMIDI -> roll: bool [2, steps, config.num_pitches] (onset, sustain).

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
    return roll


def clean_roll(roll: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Make a roll [..., 2, steps, pitches] consistent; returns bool of the same shape.

    Float input (e.g. model probabilities) is thresholded at ``threshold`` first. Onset implies sustain,
    and sustain that rises from silence (or starts at step 0) gets an onset, so it starts a note.
    """
    roll = np.asarray(roll)
    if roll.ndim < 3 or roll.shape[-3] != 2:
        raise ParameterError(f"expected a roll shaped [..., 2, steps, pitches], got {roll.shape}")
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
    """Roll [2, steps, config.num_pitches] -> PrettyMIDI with one instrument at one tempo (bpm).

    ``program`` is the General MIDI program (0..127), ``velocity`` the constant note velocity (1..127).
    The time signature is ``config.beats_per_bar``/4.
    """
    roll = np.asarray(roll)
    if roll.ndim != 3 or roll.shape[0] != 2 or roll.shape[2] != config.num_pitches:
        raise ParameterError(f"expected a roll shaped [2, steps, {config.num_pitches}], got {roll.shape}")
    if tempo <= 0 or not 0 <= program <= 127 or not 1 <= velocity <= 127:
        raise ParameterError(f"need tempo > 0, program in 0..127, velocity in 1..127; got {tempo}, {program}, {velocity}")
    pm = pretty_midi.PrettyMIDI(resolution=_WRITE_RESOLUTION, initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(config.beats_per_bar, 4, 0.0))
    instrument = pretty_midi.Instrument(program=program)
    step_seconds = 60.0 / tempo / config.steps_per_quarter
    for p, s, e in roll_notes(roll):
        instrument.notes.append(pretty_midi.Note(velocity=velocity, pitch=p + config.pitch_low,
                                                 start=s * step_seconds, end=e * step_seconds))
    instrument.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(instrument)
    return pm


def segment_roll(roll: np.ndarray, *, config: RollConfig = RollConfig(), hop_steps: int | None = None) -> np.ndarray:
    """Cut a roll [2, steps, P] into segments bool [N, 2, config.segment_steps, P]; empty segments dropped.

    Segments start at multiples of ``hop_steps`` (default: the segment length); the last one is padded
    with silence. A note sustained into a segment keeps no onset at step 0 (see :func:`join_segments`).
    """
    size = config.segment_steps
    hop = size if hop_steps is None else int(hop_steps)
    if hop < 1:
        raise ParameterError(f"hop_steps must be >= 1, got {hop_steps}")
    roll = np.asarray(roll, dtype=bool)
    steps = roll.shape[1]
    starts = list(range(0, max(steps - size, 0) + 1, hop))
    if starts[-1] + size < steps:
        starts.append(starts[-1] + hop)
    padded = np.zeros((2, starts[-1] + size, roll.shape[2]), dtype=bool)
    padded[:, :steps] = roll
    segments = np.stack([padded[:, s:s + size] for s in starts])
    return segments[segments[:, SUSTAIN].any(axis=(1, 2))]


def join_segments(segments: np.ndarray) -> np.ndarray:
    """Segments [N, 2, S, P] -> roll [2, N*S, P], end to end without gaps.

    A note sustained across a boundary continues; an onset at a boundary starts a new note.
    """
    segments = np.asarray(segments)
    if segments.ndim != 4 or segments.shape[1] != 2:
        raise ParameterError(f"expected segments shaped [N, 2, steps, pitches], got {segments.shape}")
    n, _, size, pitches = segments.shape
    return np.ascontiguousarray(segments.transpose(1, 0, 2, 3).reshape(2, n * size, pitches))
