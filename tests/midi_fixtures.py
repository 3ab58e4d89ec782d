"""Tiny MIDI files for tests: each factory writes one file into ``directory`` and returns its path.

Times are chosen on a 16th-note grid at 120 bpm (one step = 0.125 s) so expected rolls can be written
down by hand; ``MELODY_NOTES`` lists them as (pitch, start_step, end_step).
"""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pretty_midi

STEP_S = 0.125  # one 16th note at 120 bpm

# (pitch, start_step, end_step) of the pitched notes written by write_melody, after grid snapping.
MELODY_NOTES = [
    (60, 0, 2), (60, 2, 4),  # repeated note, back to back
    (62, 4, 8),
    (60, 8, 16), (64, 8, 16), (67, 8, 16),  # chord
    (48, 0, 16),  # second instrument
    (72, 16, 17),  # shorter than a step: still one step
]


def _note(pitch: int, start_step: float, end_step: float, velocity: int = 80) -> pretty_midi.Note:
    return pretty_midi.Note(velocity=velocity, pitch=pitch, start=start_step * STEP_S, end=end_step * STEP_S)


def _write(pm: pretty_midi.PrettyMIDI, directory: Path, name: str) -> Path:
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


def write_melody(directory, name: str = "melody.mid") -> Path:
    """Melody with a repeated note and a chord, a second pitched instrument, a drum track, and one note
    outside the 88-key range (pitch 10) that the roll must drop."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    lead, bass = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=40)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for pitch, start, end in MELODY_NOTES:
        if pitch == 72:
            lead.notes.append(pretty_midi.Note(80, 72, 16 * STEP_S, 16 * STEP_S + 0.03))
        else:
            (bass if pitch == 48 else lead).notes.append(_note(pitch, start, end))
    lead.notes.append(_note(10, 0, 4))
    drums.notes += [_note(36, s, s + 1) for s in (0, 4, 8, 12)]
    pm.instruments += [lead, bass, drums]
    return _write(pm, directory, name)


def write_piece(directory, name: str, *, bars: int = 8, base_pitch: int = 60, seed: int = 0) -> Path:
    """A one-instrument piece of ``bars`` 4/4 bars: one 8th or quarter note at a time, with rests."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0)
    step = 0
    while step < bars * 16:
        length = int(rng.choice([2, 4]))
        if rng.random() > 0.2:
            inst.notes.append(_note(base_pitch + int(rng.integers(-5, 6)), step, step + length))
        step += length
    pm.instruments.append(inst)
    return _write(pm, directory, name)


def write_tempo_change(directory, name: str = "tempo_change.mid") -> tuple[Path, list[tuple[int, int, int]]]:
    """A file at 120 bpm for 8 quarter notes, then 60 bpm (written with mido: pretty_midi cannot write
    tempo changes). Returns the path and the expected notes as (pitch, start_step, end_step)."""
    tpq = 480
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    # (pitch, start quarter, end quarter); the tempo halves at quarter 8
    notes = [(60, 0, 1), (62, 7, 8), (64, 8, 9), (64, 9, 10), (65, 10, 12)]
    events = []
    for pitch, start, end in notes:
        events.append((start * tpq, 1, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((end * tpq, 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.append((8 * tpq, -1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60))))
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    mido.MidiFile(ticks_per_beat=tpq, tracks=[track]).save(str(path))
    return path, [(p, s * 4, e * 4) for p, s, e in notes]


def write_empty(directory, name: str = "empty.mid") -> Path:
    """A valid MIDI file with no instruments."""
    return _write(pretty_midi.PrettyMIDI(), directory, name)


def write_drums_only(directory, name: str = "drums.mid") -> Path:
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes += [_note(36 + (s % 3), s, s + 1) for s in range(0, 32, 2)]
    pm.instruments.append(drums)
    return _write(pm, directory, name)


def write_out_of_range(directory, name: str = "high.mid") -> Path:
    """Pitched notes only above the piano's top key (108)."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes += [_note(115, 0, 4), _note(120, 4, 8)]
    pm.instruments.append(inst)
    return _write(pm, directory, name)


def write_corrupt(directory, name: str = "corrupt.mid", *, seed: int = 0) -> Path:
    """Random bytes with a .mid name."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 512, dtype=np.uint8).tobytes())
    return path


def write_truncated(directory, name: str = "truncated.mid") -> Path:
    """A valid file cut in the middle of its track data."""
    full = write_piece(directory, name)
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    return full


HIGH_RESOLUTION = 10080  # ticks per quarter, as music21 writes them


def write_high_resolution(directory, name: str = "long.mid") -> Path:
    """A legitimate long file past pretty_midi's 1e7-tick limit: 10080 ticks per quarter, C4 for the first bar
    (steps 0-16) and D4 for the last quarter of quarter 1100 (ticks 1100 * 10080 to 1101 * 10080)."""
    tpq = HIGH_RESOLUTION
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                            mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=4 * tpq),
                            mido.Message("note_on", note=62, velocity=80, time=1100 * tpq - 4 * tpq),
                            mido.Message("note_off", note=62, velocity=0, time=tpq),
                            mido.MetaMessage("end_of_track", time=0)])
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    mido.MidiFile(ticks_per_beat=tpq, tracks=[track]).save(str(path))
    return path


def write_chords_with_a_random_bar(directory, name: str, *, bars: int = 12, random_bar: int = 6) -> Path:
    """A four-voice I-IV-V-I quarter-note progression at 100 bpm whose bar ``random_bar`` (from 0) holds 12
    scattered random sixteenth notes instead: one bar of wrong notes in an otherwise plain piece."""
    rng = np.random.default_rng(0)
    pm = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    piano = pretty_midi.Instrument(program=0)
    chords = [(48, 64, 67, 72), (53, 65, 69, 72), (55, 62, 67, 71), (48, 64, 67, 72)]
    beat = 0.6
    for bar in range(bars):
        for quarter in range(4):
            start = (bar * 4 + quarter) * beat
            if bar == random_bar:
                for _ in range(3):
                    onset = start + beat * rng.integers(0, 4) / 4
                    piano.notes.append(pretty_midi.Note(80, int(rng.integers(30, 100)), onset, onset + beat / 4))
            else:
                piano.notes += [pretty_midi.Note(80, pitch, start, start + beat)
                                for pitch in chords[(bar + quarter // 2) % 4]]
    pm.instruments.append(piano)
    return _write(pm, directory, name)
