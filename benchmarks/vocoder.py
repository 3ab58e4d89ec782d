"""Neural vocoder against Griffin-Lim on held-out recordings: quality from the true mel, and speed.

    python benchmarks/vocoder.py default-vocoder ../shared/data/music_real ../shared/data/audio_genres
    python benchmarks/vocoder.py runs/vocoder ../shared/data/music_real --seconds 10 --json vocoder.json

Each folder is split exactly as training splits it (the same hash of --seed and each recording's key, see
`audiovae.data.audio_folder.group_key`), so with the recipe's data.val_fraction, train.seed and data.split_group
the rows are recordings the vocoder never saw. From each held-out recording, one excerpt of --seconds from its
middle is turned into the front end's log-mel and back into sound by each vocoder: Griffin-Lim with 32 and 64
iterations (audiovae's, mel inversion + fast Griffin-Lim) and the neural vocoder. Columns, against the real
excerpt (lower is better): multi-resolution STFT distance (spectral convergence + log-magnitude L1, mean over
n_fft 512/1024/2048), its spectral convergence part, and the log-mel L1. "vs GL32" is the relative change of
the neural vocoder's figure against Griffin-Lim 32 (-30% = 30% lower).

The speed table times each vocoder on one --seconds clip at 1 and 2 torch threads, best of --repeats, as the
real-time factor (audio seconds per wall second; higher is faster) and the ratio to Griffin-Lim 32 in the same run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audiovae  # noqa: E402
from _judges import add_split_args  # noqa: E402
from audiovae.audio.features import MelFrontend  # noqa: E402
from audiovae.audio.inversion import GriffinLim  # noqa: E402
from audiovae.data.waveform_crops import WaveformCrops  # noqa: E402
from audiovae.train.vocoder_task import vocoder_figures  # noqa: E402

FIGURES = ("mrstft", "spectral_convergence", "logmel_l1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("vocoder", help="neural vocoder: a model or run folder, or default-vocoder")
    p.add_argument("data", nargs="+", help="audio folder(s); each gets its own rows")
    p.add_argument("--seconds", type=float, default=10.0, help="excerpt length per recording [10]")
    add_split_args(p)
    p.add_argument("--repeats", type=int, default=3, help="timing repeats, best kept [3]")
    p.add_argument("--json", help="also write the tables as JSON here")
    return p.parse_args(argv)


def held_out_excerpts(folder: str, vocoder, args) -> list[tuple[Path, torch.Tensor]]:
    _, held_out, _ = WaveformCrops.splits(folder, cache_dir=args.cache, mel_config=vocoder.mel_config,
                                          segment_samples=vocoder.mel_config.hop_length, val_fraction=args.val_fraction,
                                          seed=args.seed, split_group=args.split_group, progress=False)
    return held_out.excerpts(args.seconds, vocoder.mel_config.sample_rate)


def quality_rows(vocoders: dict, excerpts, frontend) -> dict[str, dict[str, float]]:
    rows = {}
    for name, vocoder in vocoders.items():
        found = [vocoder_figures(vocoder, frontend, wav) for _, wav in excerpts]
        rows[name] = {k: sum(f[k] for f in found) / len(found) for k in FIGURES}
    return rows


def real_time_factor(vocoder, mel: torch.Tensor, seconds: float, repeats: int) -> float:
    best = float("inf")
    with torch.inference_mode():
        vocoder(mel)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            vocoder(mel)
            best = min(best, time.perf_counter() - started)
    return seconds / best


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(2)
    neural = audiovae.load(args.vocoder, modality="vocoder")
    config = neural.mel_config
    frontend = MelFrontend(config)
    vocoders = {"griffin-lim 32": GriffinLim(config, n_iter=32), "griffin-lim 64": GriffinLim(config, n_iter=64),
                "neural": neural}
    report = {"vocoder": args.vocoder, "quality": {}, "speed": {}}
    print(f"vocoder {args.vocoder}; held-out recordings (split by {args.split_group}, val_fraction "
          f"{args.val_fraction}, seed {args.seed}); {args.seconds:g} s excerpts from the true log-mel")
    print(f"{'data':<14} {'vocoder':<15} {'clips':>5} {'MR-STFT':>8} {'SC':>6} {'logmel L1':>9}   "
          f"{'vs GL32: MR-STFT':>16} {'logmel L1':>9}")
    for folder in args.data:
        excerpts = held_out_excerpts(folder, neural, args)
        rows = quality_rows(vocoders, excerpts, frontend)
        base = rows["griffin-lim 32"]
        for name, r in rows.items():
            change = "" if name == "griffin-lim 32" else (
                f"{100 * (r['mrstft'] / base['mrstft'] - 1):>+15.0f}% {100 * (r['logmel_l1'] / base['logmel_l1'] - 1):>+8.0f}%")
            print(f"{Path(folder).name:<14} {name:<15} {len(excerpts):>5} {r['mrstft']:>8.3f} "
                  f"{r['spectral_convergence']:>6.3f} {r['logmel_l1']:>9.3f}   {change}")
        report["quality"][folder] = {"clips": len(excerpts), "rows": rows}
        clip = excerpts[0][1]

    mel = frontend(clip[: int(args.seconds * config.sample_rate)][None])
    print(f"\nspeed: one {args.seconds:g} s clip, best of {args.repeats}; real-time factor (x) and ratio to GL32")
    print(f"{'vocoder':<15} {'1 thread':>9} {'2 threads':>10} {'ratio (2 thr)':>13}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, vocoder in vocoders.items():
            report["speed"].setdefault(name, {})[threads] = real_time_factor(vocoder, mel, args.seconds,
                                                                            args.repeats)
    for name, speeds in report["speed"].items():
        ratio = speeds[2] / report["speed"]["griffin-lim 32"][2]
        print(f"{name:<15} {speeds[1]:>8.0f}x {speeds[2]:>9.0f}x {ratio:>12.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
