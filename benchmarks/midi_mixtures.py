"""Drones in genre mixtures: the longest single held pitch of 50/50 mixture pieces against real music.

    python benchmarks/midi_mixtures.py default-midi --data ../shared/data/midi_genres

For every pair of the model's genres it generates --n pieces of --bars bars from the 50/50 mixture and reports
the longest note (in quarter notes) with the model's longest-note limit (what generate-midi writes) and without it
(the decoder's raw sustain), next to the longest notes of the real pieces of both genres: their maximum and the
99.9th percentile that the limit uses (one stray note sets the maximum). Real notes are read from the MIDI files
with pretty_midi (the files of the model's split, training and held-out alike); generated ones from the rolls.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audiovae import load  # noqa: E402
from audiovae.midi.generate import (decode_rolls, finish_roll, latent_path, note_length_limit, parse_genre,  # noqa: E402
                                    rolls_for)
from audiovae.midi.metrics import midi_notes  # noqa: E402
from audiovae.midi.pianoroll import MIDI_EXTENSIONS, join_segments, load_midi, roll_notes  # noqa: E402


def real_note_lengths(folder: Path) -> np.ndarray:
    """Lengths in quarter notes of every pitched note of the MIDI files under ``folder``; unreadable files are
    passed over (and counted on stderr)."""
    lengths, bad = [], 0
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_EXTENSIONS):
        try:
            notes = midi_notes(load_midi(path))
        except Exception:  # noqa: BLE001 - a bad file is skipped, not fatal
            bad += 1
            continue
        lengths.append(notes[:, 2] - notes[:, 1])
    if bad:
        print(f"{folder.name}: {bad} unreadable files skipped", file=sys.stderr)
    return np.concatenate(lengths) if lengths else np.zeros(0)


def longest(rolls, steps_per_quarter: int) -> float:
    """The longest note of any roll [C, T, P], in quarter notes."""
    return max((e - s for roll in rolls for _, s, e in roll_notes(roll)), default=0) / steps_per_quarter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a MIDI model (folder, run or bundled name)")
    parser.add_argument("--data", required=True, help="the MIDI folder it was trained on (genre subfolders)")
    parser.add_argument("--n", type=int, default=20, help="pieces per pair [default: 20]")
    parser.add_argument("--bars", type=int, default=8, help="bars per piece [default: 8]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads [default: 2]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model, modality="midi")
    config = model.roll
    lengths = {g: real_note_lengths(Path(args.data) / g) for g in model.conditions}
    segments = -(-args.bars // config.segment_bars)
    print(f"{args.n} pieces of {args.bars} bars per 50/50 mixture; note lengths in quarter notes")
    print(f"{'mixture':<46}{'raw':>8}{'limited':>9}{'real p99.9':>12}{'real max':>10}")
    for a, b in itertools.combinations(model.conditions, 2):
        cond = parse_genre(model, f"{a}=0.5,{b}=0.5")
        z = latent_path(args.n, segments, model.latent_dim, temperature=1.0, continuity=0.5,
                        generator=torch.Generator().manual_seed(0))
        probs = decode_rolls(model, z.flatten(0, 1), cond, from_noise=True)
        probs = probs.reshape(args.n, segments, *model.segment_shape)
        pieces = np.stack([join_segments(p)[:, : args.bars * config.steps_per_bar] for p in probs])
        both = np.concatenate([lengths[a], lengths[b]])
        limit = note_length_limit(model, cond)
        limited = "-" if limit is None else f"{longest(rolls_for(model, pieces, cond), config.steps_per_quarter):.2f}"
        print(f"{a + ' + ' + b:<46}{longest(finish_roll(pieces), config.steps_per_quarter):>8.2f}{limited:>9}"
              f"{np.percentile(both, 99.9):>12.2f}{both.max():>10.2f}")


if __name__ == "__main__":
    main()
