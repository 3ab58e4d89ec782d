"""Griffin-Lim speed and quality: audiovae's griffin_lim against librosa.griffinlim on real clips.

    python benchmarks/griffin_lim.py                       # 1 clip, 32/60/100 iterations, 1 torch thread (~20 s)
    python benchmarks/griffin_lim.py --clips 3 --n-iter 32 --repeats 3 --threads 2

Both sides get the same input, S = |STFT| (n_fft 1024, hop 256, Hann, centred, reflect padding, float32) of
each clip, the same iteration count, momentum 0.99 and the clip's length. librosa runs with its default
init='random' (random_state=0; "lib-rand") and with init=None ("lib-none", zero phase); ours uses its default
phase-locked start (init="phase_locked"), and "SC ours-0ph" is ours from zero phase, librosa's init=None
(untimed). The speed-up is librosa's default (lib-rand) wall time over ours. Wall times are the best of --repeats runs
(the CPU may be shared). RTF is audio seconds per wall second (higher is faster). SC is the spectral
convergence ||S - |STFT(y)|||_F / ||S||_F of the output against S (lower is better).
numpy's FFT, which librosa uses, runs on one core, so --threads 1 (the default) compares one core with one core.

The second table times the whole vocoder path, GriffinLim(log-mel) -> waveform (mel-filterbank inversion +
Griffin-Lim), with SC against the clip's true |STFT| (this includes what the mel projection threw away).

On a shared 2-core machine, --threads 2 can be much slower than 1 when the other core is busy (OpenMP
threads wait on each other); compare --threads 1 and 2 on an idle machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiovae.audio.features import MelConfig, MelFrontend  # noqa: E402
from audiovae.audio.inversion import GriffinLim, griffin_lim, spectral_convergence  # noqa: E402
from audiovae.audio.io import is_audio_path, read_audio  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio_genres"


def pick_clips(data: Path, count: int) -> list[Path]:
    """``count`` files spread over the sorted audio files of ``data`` (so over its genre folders)."""
    files = sorted(p for p in data.rglob("*") if p.is_file() and is_audio_path(p))
    if not files:
        sys.exit(f"no audio files under {data}; pass --data DIR")
    step = max(1, len(files) // count)
    return files[::step][:count]


def best_of(repeats: int, fn):
    """(result of the last call, the shortest wall time in seconds over ``repeats`` calls)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def compare_row(name: str, wav: np.ndarray, seconds: float, n_iter: int, cfg: MelConfig, repeats: int) -> list[str]:
    mag = torch.stft(torch.from_numpy(wav), cfg.n_fft, cfg.hop_length, window=torch.hann_window(cfg.n_fft),
                     center=True, pad_mode="reflect", return_complex=True).abs()
    mag_np = mag.numpy()
    kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length)
    ours, t_ours = best_of(repeats, lambda: griffin_lim(mag, n_iter=n_iter, length=wav.size, **kw))
    lib = {}
    for label, init in (("rand", "random"), ("none", None)):
        y, t = best_of(repeats, lambda: librosa.griffinlim(mag_np, n_iter=n_iter, momentum=0.99, init=init,
                                                          random_state=0, length=wav.size, **kw))
        lib[label] = (t, spectral_convergence(mag, torch.from_numpy(y), **kw))
    sc_ours = spectral_convergence(mag, ours, **kw)
    sc_zero = spectral_convergence(mag, griffin_lim(mag, n_iter=n_iter, init="zeros", length=wav.size, **kw), **kw)
    t_lib = lib["rand"][0]
    return [name, f"{seconds:.1f}", str(n_iter), f"{t_ours:.3f}", f"{t_lib:.3f}", f"{lib['none'][0]:.3f}",
            f"{t_lib / t_ours:.2f}x", f"{seconds / t_ours:.0f}", f"{seconds / t_lib:.0f}",
            f"{sc_ours:.4f}", f"{sc_zero:.4f}", f"{lib['rand'][1]:.4f}", f"{lib['none'][1]:.4f}"]


def vocoder_row(name: str, wav: np.ndarray, seconds: float, n_iter: int, cfg: MelConfig, repeats: int) -> list[str]:
    frontend = MelFrontend(cfg)
    log_mel = frontend(torch.from_numpy(wav))
    vocoder = GriffinLim(cfg, n_iter=n_iter)
    out, t = best_of(repeats, lambda: vocoder(log_mel))
    mag = torch.stft(torch.from_numpy(wav), cfg.n_fft, cfg.hop_length, window=torch.hann_window(cfg.n_fft),
                     center=True, pad_mode="reflect", return_complex=True).abs()
    sc = spectral_convergence(mag, out, n_fft=cfg.n_fft, hop_length=cfg.hop_length)
    loud = log_mel > log_mel.max() - 10
    mel_err = float((frontend(out) - log_mel)[loud].abs().mean())
    return [name, f"{seconds:.1f}", str(n_iter), f"{t:.3f}", f"{seconds / t:.0f}", f"{sc:.4f}", f"{mel_err:.3f}"]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder of audio clips, searched recursively (default: {DEFAULT_DATA})")
    parser.add_argument("--n-iter", type=int, nargs="+", default=[32, 60, 100],
                        help="Griffin-Lim iteration counts to compare (default: 32 60 100)")
    parser.add_argument("--clips", type=int, default=1, help="number of clips, spread over the folder (default: 1)")
    parser.add_argument("--seconds", type=float, default=15.0, help="use at most this much of each clip (default: 15)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default: 1, like numpy's single-core FFT)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each run this many times, keep the best (default: 1)")
    parser.add_argument("--skip-vocoder", action="store_true", help="skip the log-mel -> waveform GriffinLim table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = MelConfig()

    clips = []
    for path in pick_clips(args.data, args.clips):
        wav, _ = read_audio(path, sample_rate=cfg.sample_rate)
        wav = np.ascontiguousarray(wav[: int(args.seconds * cfg.sample_rate)], dtype=np.float32)
        clips.append((f"{path.parent.name}/{path.stem}", wav, wav.size / cfg.sample_rate))
    # Warm both paths up (FFT plans, lazy imports) on a short slice so the first timed run is not penalised.
    warm = clips[0][1][: cfg.sample_rate]
    compare_row("warm-up", warm, 1.0, 2, cfg, 1)

    print(f"torch threads: {torch.get_num_threads()}, n_fft {cfg.n_fft}, hop {cfg.hop_length}, momentum 0.99, "
          f"best of {args.repeats}")
    header = ["clip", "audio s", "iter", "ours s", "lib-rand s", "lib-none s", "speed-up", "RTF ours",
              "RTF lib", "SC ours", "SC ours-0ph", "SC lib-rand", "SC lib-none"]
    rows = [compare_row(name, wav, sec, n, cfg, args.repeats) for name, wav, sec in clips for n in args.n_iter]
    print_table(header, rows)

    if not args.skip_vocoder:
        print("\nGriffinLim vocoder, log-mel -> waveform (80 mels, fmax 8 kHz); SC against the true |STFT|, "
              "mel err = mean |log-mel(output) - log-mel(input)| over bands within 10 nats of the peak")
        header = ["clip", "audio s", "iter", "wall s", "RTF", "SC", "mel err"]
        rows = [vocoder_row(name, wav, sec, n, cfg, args.repeats) for name, wav, sec in clips for n in args.n_iter[:1]]
        print_table(header, rows)


if __name__ == "__main__":
    main()
