"""Does `audiovae score` find defects inside real recordings, and where? Damaged copies of held-out tracks.

    python benchmarks/anomaly.py ../shared/data/music_real                     # default-mel, its calibration
    python benchmarks/anomaly.py ../shared/data/music_real --model runs/mel --excerpts 4 --json anomaly.json

The folder is split exactly as training splits it (--val-fraction, --seed, --split-group), so every excerpt comes
from a track the model never saw. From each held-out track, up to --excerpts excerpts of --seconds (evenly spaced,
not silent) are cut, and each gets one damaged copy per defect:
  clipping   the excerpt x4, hard-clipped at +-0.95;
  dropouts   six 250 ms stretches set to zero;
  hum        50 Hz (amplitude 0.05) and 150 Hz (0.025) sines added;
  bursts     five 200 ms stretches of white noise (standard deviation 0.3) added;
  reversal   played backwards;
  lowpass    8th-order Butterworth low-pass at 5 kHz (a coarse MP3-like bandwidth cut).
Every clip is then peak-normalised by the model's front end, as `audiovae score` reads files.

Columns: AUROC of damaged copies against the clean excerpts (1.0 = every damaged copy scores above every clean
one, 0.5 = chance) for the calibrated score (the worst window of the anomaly map, 0.25 s by default, in standard
deviations above the model's typical held-out window, or a whole-recording term brought to the same scale) and,
for comparison, the old per-file score (mean negative ELBO per frame); for dropouts and bursts, the share of
damaged copies with a flagged span (the calibrated threshold, or --threshold) within +-0.5 s of a defect, and the
share of flagged spans that are near one; then the AUROC each term gives alone: the three terms of the map
(surprise, misfit, bias; each file's worst window) and the whole-recording terms: motion, and mains hum (from the
waveform) when the calibration has it. The easy case: clean excerpts against white noise, pink noise and sine
sweeps of the same length (no speech recordings are available offline, so speech is not among them), and the share
of those flagged at all. Speed: seconds of audio scored per wall second (reading excluded: the log-mel, the map and
the hum).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audiovae  # noqa: E402
from _judges import add_split_args  # noqa: E402
from audiovae.audio.io import normalize, read_audio  # noqa: E402
from audiovae.data.audio_folder import scan_roots, split_by_group  # noqa: E402
from audiovae.latent import anomaly_scores  # noqa: E402
from audiovae.latent.anomaly import frame_terms  # noqa: E402
from audiovae.scoring import calibration_of, inspect_waveform  # noqa: E402

DEFECTS = ("clipping", "dropouts", "hum", "bursts", "reversal", "lowpass")
LOCALISED = ("dropouts", "bursts")
TOLERANCE_S = 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="audio folder of whole recordings (genre subfolders)")
    p.add_argument("--model", default="default-mel", help="mel model with an anomaly calibration [default-mel]")
    p.add_argument("--excerpts", type=int, default=4, help="excerpts per held-out track [4]")
    p.add_argument("--seconds", type=float, default=10.0, help="excerpt length [10]")
    add_split_args(p)
    p.add_argument("--threshold", type=float, help="flag spans above this score [the model's calibration]")
    p.add_argument("--threads", type=int, default=2, help="torch threads [2]")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p.parse_args(argv)


def held_out_excerpts(args, sample_rate: int, mel_config) -> list[np.ndarray]:
    clips, _ = scan_roots(args.data, cache_dir=args.cache, config=mel_config, normalization="peak", labels=True,
                          min_seconds=0.5, workers=0, progress=False)
    _, held_out = split_by_group(clips, val_fraction=args.val_fraction, seed=args.seed, group=args.split_group)
    length = int(args.seconds * sample_rate)
    out = []
    for clip in held_out:
        wav = normalize(read_audio(clip.path, sample_rate=sample_rate)[0])
        if len(wav) < length:
            continue
        starts = np.linspace(0, len(wav) - length, args.excerpts + 2).astype(int)[1:-1]
        out += [wav[s:s + length] for s in starts if np.sqrt(np.mean(wav[s:s + length] ** 2)) > 0.02]
    return out


def damage(x: np.ndarray, defect: str, sample_rate: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A damaged copy and the defect's (start s, end s) intervals."""
    from scipy.signal import butter, sosfilt

    seconds = len(x) / sample_rate
    whole = [(0.0, seconds)]
    if defect == "clipping":
        return np.clip(x * 4, -0.95, 0.95), whole
    if defect == "hum":
        t = np.arange(len(x)) / sample_rate
        return x + 0.05 * np.sin(2 * np.pi * 50 * t) + 0.025 * np.sin(2 * np.pi * 150 * t), whole
    if defect == "reversal":
        return x[::-1].copy(), whole
    if defect == "lowpass":
        return sosfilt(butter(8, 5000, fs=sample_rate, output="sos"), x), whole
    count, length = (6, 0.25) if defect == "dropouts" else (5, 0.2)
    starts = np.sort(rng.choice(np.arange(0.5, seconds - 0.5 - length, 0.05), count, replace=False))
    y = x.copy()
    for start in starts:
        a, b = int(start * sample_rate), int((start + length) * sample_rate)
        y[a:b] = 0.0 if defect == "dropouts" else y[a:b] + 0.3 * rng.standard_normal(b - a)
    return y, [(float(s), float(s + length)) for s in starts]


def easy_negatives(count: int, length: int, sample_rate: int, rng: np.random.Generator) -> list[np.ndarray]:
    t = np.arange(length) / sample_rate
    white = [rng.standard_normal(length) * 0.3 for _ in range(count)]
    pink = []
    for _ in range(count):
        spectrum = np.fft.rfft(rng.standard_normal(length))
        spectrum /= np.sqrt(np.arange(1, len(spectrum) + 1))
        pink.append(np.fft.irfft(spectrum, n=length))
    sweeps = [np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1]))) * 0.5
              for f0, f1 in rng.uniform([50, 2000], [400, 10000], size=(count, 2))]
    return [s.astype(np.float32) for s in white + pink + sweeps]


def auroc(negatives: list[float], positives: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half."""
    neg, pos = np.asarray(negatives)[:, None], np.asarray(positives)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (neg.size * pos.size))


TERMS = ("surprise", "misfit", "bias")


@torch.no_grad()
def score(model, wav: np.ndarray, calibration, threshold: float) -> dict:
    """One clip as `audiovae score` reads it: the calibrated score, its flagged spans and the seconds the scoring
    took (from the waveform: the log-mel and the map); for comparison the old per-file score (mean negative ELBO
    per frame) and the score each term would give alone (the file's worst window of a map term; the motion)."""
    started = time.perf_counter()
    found = inspect_waveform(model, wav.astype(np.float32), threshold=threshold)
    seconds = time.perf_counter() - started
    mel = found.mel[None]
    terms = frame_terms(model, mel).windowed(calibration.window)
    alone = {name: float(replace(calibration, weights=tuple(float(i == k) for i in range(3))).standardise(terms).max())
             for k, name in enumerate(TERMS)} | {"motion": found.motion}
    if found.hum is not None:
        alone["hum"] = found.hum
    return {"score": found.score, "spans": found.spans, "flagged": bool(found.spans or found.whole),
            "seconds": seconds,
            "old": float(anomaly_scores(model, mel)[0]), "alone": alone}


def near(span: tuple[float, float, float], intervals: list[tuple[float, float]]) -> bool:
    return any(span[0] <= b + TOLERANCE_S and span[1] >= a - TOLERANCE_S for a, b in intervals)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model, modality="audio")
    calibration = calibration_of(model)
    if calibration is None:
        raise SystemExit(f"{args.model} has no anomaly calibration: run `audiovae calibrate {args.model} --data DIR`")
    rate = model.frontend.sample_rate
    threshold = calibration.threshold if args.threshold is None else args.threshold
    alone_terms = TERMS + ("motion",) + (() if calibration.hum is None else ("hum",))
    rng = np.random.default_rng(0)
    clean = held_out_excerpts(args, rate, model.frontend)
    clean_scores = [score(model, x, calibration, threshold) for x in clean]
    report = {"model": args.model, "excerpts": len(clean), "threshold": threshold, "defects": {}}
    print(f"model {args.model}; {len(clean)} clean {args.seconds:g} s excerpts of held-out tracks of {args.data}; "
          f"threshold {threshold:g} SD; clean excerpts flagged: {np.mean([s['flagged'] for s in clean_scores]):.0%}")
    print(f"{'defect':<10} {'AUROC':>6} {'old AUROC':>10} {'files hit':>10} {'spans near':>11}   "
          f"AUROC of each term alone ({', '.join(alone_terms)})")
    for defect in DEFECTS:
        damaged = [damage(x, defect, rate, rng) for x in clean]
        scored = [score(model, y, calibration, threshold) for y, _ in damaged]
        row = {key: auroc([s[field] for s in clean_scores], [s[field] for s in scored])
               for key, field in (("auroc", "score"), ("auroc_old_score", "old"))}
        row["auroc_term_alone"] = {name: auroc([s["alone"][name] for s in clean_scores],
                                               [s["alone"][name] for s in scored]) for name in alone_terms}
        line = f"{defect:<10} {row['auroc']:>6.2f} {row['auroc_old_score']:>10.2f}"
        if defect in LOCALISED:
            hits = [any(near(span, where) for span in s["spans"]) for s, (_, where) in zip(scored, damaged)]
            spans = [near(span, where) for s, (_, where) in zip(scored, damaged) for span in s["spans"]]
            row |= {"files_hit": float(np.mean(hits)), "spans_near_defect": float(np.mean(spans)) if spans else 0.0}
            line += f" {row['files_hit']:>10.0%} {row['spans_near_defect']:>11.0%}"
        else:
            line += " " * 22
        print(line + "   " + " ".join(f"{row['auroc_term_alone'][name]:.2f}" for name in alone_terms))
        report["defects"][defect] = row
    easy = [score(model, y, calibration, threshold) for y in easy_negatives(10, len(clean[0]), rate, rng)]
    report["easy_auroc"] = auroc([s["score"] for s in clean_scores], [s["score"] for s in easy])
    report["easy_auroc_term_alone"] = {name: auroc([s["alone"][name] for s in clean_scores],
                                                   [s["alone"][name] for s in easy]) for name in alone_terms}
    report["easy_flagged"] = float(np.mean([s["flagged"] for s in easy]))
    report["audio_seconds_per_second"] = len(clean) * args.seconds / sum(s["seconds"] for s in clean_scores)
    print(f"easy case (white noise, pink noise, sine sweeps against the clean excerpts): "
          f"AUROC {report['easy_auroc']:.2f}, {report['easy_flagged']:.0%} flagged   alone: "
          + " ".join(f"{report['easy_auroc_term_alone'][name]:.2f}" for name in alone_terms))
    print(f"speed: {report['audio_seconds_per_second']:.0f} s of audio scored per second ({args.threads} threads)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
