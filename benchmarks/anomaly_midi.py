"""Does a bar of wrong notes stand out in `audiovae score`'s per-bar scores? Held-out MIDI pieces, one bar replaced.

    python benchmarks/anomaly_midi.py ../shared/data/midi_genres                     # default-midi
    python benchmarks/anomaly_midi.py ../shared/data/midi_genres --model runs/midi --notes 8 --json out.json

The folder is split by piece exactly as training splits it (--val-fraction), so every piece is one the model never
saw. In each held-out piece of at least 8 bars, one bar (not the first or last) is emptied and filled with --notes
random notes (random pitches in the model's range, random onsets on the grid, 1-4 steps long); the piece is written
as MIDI and scored from the file. Reported: the share of pieces whose top-scored bar is the replaced one, and per
threshold the share where it is flagged, next to the share of clean held-out pieces with any flagged bar.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audiovae  # noqa: E402
from audiovae.data.midi_folder import scan_midi_folder, split_pieces  # noqa: E402
from audiovae.midi.generate import read_roll  # noqa: E402
from audiovae.midi.pianoroll import roll_to_midi  # noqa: E402
from audiovae.scoring import inspect_midi  # noqa: E402

THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 8.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="MIDI folder with genre subfolders")
    p.add_argument("--model", default="default-midi", help="MIDI model [default-midi]")
    p.add_argument("--notes", type=int, default=8, help="random notes in the replaced bar [8]")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of pieces held out [0.1]")
    p.add_argument("--cache", default="/tmp/audiovae-midi-cache", help="scan cache, outside the data")
    p.add_argument("--threads", type=int, default=2, help="torch threads [2]")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p.parse_args(argv)


def replace_bar(roll: np.ndarray, bar: int, steps_per_bar: int, notes: int, rng) -> np.ndarray:
    out = roll.copy()
    start = bar * steps_per_bar
    out[:, start:start + steps_per_bar] = False
    for pitch, onset, length in zip(rng.integers(0, roll.shape[2], notes), rng.integers(0, steps_per_bar, notes),
                                    rng.integers(1, 5, notes)):
        a = start + onset
        out[0, a, pitch] = True
        out[1, a:min(a + length, start + steps_per_bar), pitch] = True
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model, modality="midi")
    config = model.roll
    steps_per_bar = config.segment_steps // config.segment_bars
    scan = scan_midi_folder(args.data, cache_dir=args.cache, config=config, hop_steps=config.segment_steps, workers=0)
    held_out = [p for p, v in zip(scan.piece_paths, split_pieces(scan.piece_paths, scan.piece_genres,
                                                                 val_fraction=args.val_fraction)) if v]
    rng = np.random.default_rng(0)
    top = pieces = 0
    replaced_z, clean_max_z = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rel in held_out:
            path = Path(args.data) / rel
            roll, tempo = read_roll(model, path)
            bars = roll.shape[1] // steps_per_bar
            if bars < 8:
                continue
            bar = int(rng.integers(1, bars - 1))
            damaged = Path(tmp) / f"{pieces}.mid"
            roll_to_midi(replace_bar(roll, bar, steps_per_bar, args.notes, rng), config=config,
                         tempo=tempo).write(str(damaged))
            result = inspect_midi(model, damaged)
            top += int(torch.argmax(result.z)) == bar
            replaced_z.append(float(result.z[bar]))
            clean_max_z.append(float(inspect_midi(model, path).z.max()))
            pieces += 1
    report = {"model": args.model, "pieces": pieces, "top_bar_is_the_replaced_one": top / pieces, "thresholds": {
        t: {"replaced_bar_flagged": float(np.mean(np.array(replaced_z) > t)),
            "clean_pieces_with_a_flagged_bar": float(np.mean(np.array(clean_max_z) > t))} for t in THRESHOLDS}}
    print(f"model {args.model}; {pieces} held-out pieces of {args.data} (>= 8 bars), one bar replaced by "
          f"{args.notes} random notes")
    print(f"top-scored bar is the replaced one: {report['top_bar_is_the_replaced_one']:.1%}")
    print(f"{'threshold':>9} {'replaced bar flagged':>21} {'clean pieces with a flagged bar':>32}")
    for t, row in report["thresholds"].items():
        print(f"{t:>9g} {row['replaced_bar_flagged']:>21.1%} {row['clean_pieces_with_a_flagged_bar']:>32.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
