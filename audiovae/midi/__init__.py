"""MIDI piano rolls: conversion to and from MIDI, segmenting, preview audio and pictures."""
from __future__ import annotations

from .pianoroll import (
    MIDI_EXTENSIONS,
    RollConfig,
    clean_roll,
    is_midi_path,
    join_segments,
    load_midi,
    midi_to_roll,
    roll_notes,
    roll_to_midi,
    segment_roll,
)
from .render import find_soundfont, render_audio, save_roll_png, synthesize, write_midi

__all__ = [
    "MIDI_EXTENSIONS",
    "RollConfig",
    "clean_roll",
    "find_soundfont",
    "is_midi_path",
    "join_segments",
    "load_midi",
    "midi_to_roll",
    "render_audio",
    "roll_notes",
    "roll_to_midi",
    "save_roll_png",
    "segment_roll",
    "synthesize",
    "write_midi",
]
