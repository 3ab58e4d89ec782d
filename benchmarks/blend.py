"""Time a blend of two clips end to end on CPU: read + log-mel, encode both, slerp, decode, vocoder.

    python benchmarks/blend.py --model runs/mel --a A.ogg --b B.ogg --threads 1
    python benchmarks/blend.py --data ../shared/data/music_real --vocoder griffin-lim   # against Griffin-Lim
    python benchmarks/blend.py --model runs/mel --data DIR          # the first clips of two genre folders with audio
    python benchmarks/blend.py --model runs/mel                     # synthetic clips (tones + noise)

Both clips are cut to --seconds (10) and blended at alpha 0.5 frame by frame (guarded slerp, as `audiovae blend`
does), each clip encoded on its own at the posterior mode with no genre condition; the vocoder is --vocoder (auto:
the bundled neural vocoder when it fits the model's front end, else Griffin-Lim with --n-iter (32) iterations). One warm-up, then the median of --repeats runs per stage (milliseconds). "total" is the
sum of the stage medians; "blend" leaves out reading the files. The target: under 2 s for two 10-s clips on a
2-core CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audiovae  # noqa: E402
from audiovae.audio.io import is_audio_path, read_audio  # noqa: E402
from audiovae.inference import mel_to_waveform, model_mel_config, resolve_vocoder_choice, waveform_to_mel  # noqa: E402
from audiovae.latent import interpolate_temporal  # noqa: E402

STAGES = ("read + mel", "encode", "slerp", "decode", "vocoder")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default-mel", help="mel model folder or run folder [default: default-mel]")
    p.add_argument("--a", help="first audio file")
    p.add_argument("--b", help="second audio file")
    p.add_argument("--data", help="audio folder: take the first clip of its first two genre folders")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds [10]")
    p.add_argument("--vocoder", default="auto", help="griffin-lim, default-vocoder, a vocoder folder, or auto [auto]")
    p.add_argument("--n-iter", type=int, default=32, help="Griffin-Lim iterations [32]")
    p.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up [5]")
    p.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    return p.parse_args(argv)


def pick_clips(args) -> list[str | None]:
    if args.a and args.b:
        return [args.a, args.b]
    if args.data:
        folders = sorted(p for p in Path(args.data).iterdir() if p.is_dir())
        firsts = [next(iter(sorted(f for f in folder.rglob("*") if is_audio_path(f))), None) for folder in folders]
        picks = [p for p in firsts if p is not None][:2]  # folders without audio (LICENSES/) are passed over
        if len(picks) == 2:
            return [str(p) for p in picks]
        raise SystemExit(f"blend: {args.data} needs two genre folders with audio in them")
    return [None, None]


def synthetic(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """A tone with harmonics over gated noise, float32 [samples]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = rng.uniform(110, 440)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    noise = (np.sin(2 * np.pi * 3 * t) > 0.5) * rng.standard_normal(t.size) * 0.2
    return (0.3 * tone + noise).astype(np.float32)


def load_mel(model, source: str | None, seconds: float, seed: int) -> torch.Tensor:
    """log-mel Tensor[n_mels, frames] of the first ``seconds`` of a file (or of a synthetic clip)."""
    sample_rate = model_mel_config(model).sample_rate
    if source is None:
        waveform = synthetic(seconds, sample_rate, seed)
    else:
        waveform, _ = read_audio(source, sample_rate=sample_rate)
        waveform = waveform[: int(seconds * sample_rate)]
    return waveform_to_mel(model, waveform, path=source or "<synthetic>")


@torch.no_grad()
def blend_once(model, sources, seconds: float, vocoder: str, n_iter: int) -> tuple[dict[str, float], float]:
    """One end-to-end blend at alpha 0.5: ({stage: seconds}, output seconds)."""
    times = {}
    t0 = time.perf_counter()
    mel_a, mel_b = (load_mel(model, s, seconds, seed) for seed, s in enumerate(sources))
    t1 = time.perf_counter()
    z_a, z_b = model.encode(mel_a[None]).mode()[0], model.encode(mel_b[None]).mode()[0]
    t2 = time.perf_counter()
    z = interpolate_temporal(z_a, z_b, 0.5, method="slerp", align="crop")
    t3 = time.perf_counter()
    mel = model.decode(z[None], None, frames=min(mel_a.shape[-1], mel_b.shape[-1]))[0]
    t4 = time.perf_counter()
    wav = mel_to_waveform(model, mel, vocoder=vocoder, n_iter=n_iter)
    t5 = time.perf_counter()
    for name, (start, end) in zip(STAGES, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]):
        times[name] = end - start
    return times, len(wav) / model_mel_config(model).sample_rate


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model)
    sources = pick_clips(args)
    vocoder = resolve_vocoder_choice(model, args.vocoder)
    blend_once(model, sources, args.seconds, vocoder, args.n_iter)  # warm-up
    runs, out_seconds = [], 0.0
    for _ in range(args.repeats):
        times, out_seconds = blend_once(model, sources, args.seconds, vocoder, args.n_iter)
        runs.append(times)
    medians = {s: statistics.median(r[s] for r in runs) * 1000 for s in STAGES}
    total = sum(medians.values())
    params = sum(p.numel() for p in model.parameters())
    print(f"model {args.model} ({params / 1e6:.2f} M parameters); clips: "
          f"{', '.join(Path(s).name if s else 'synthetic' for s in sources)}; median of {args.repeats} runs; "
          f"vocoder {vocoder}{f' ({args.n_iter} iterations)' if vocoder == 'griffin-lim' else ''}; "
          f"output {out_seconds:.2f} s")
    header = ["threads", "clip s"] + list(STAGES) + ["blend", "total"]
    print("".join(f"{h:>13}" for h in header) + "   (ms)")
    row = [f"{args.threads}", f"{args.seconds:g}"] + [f"{medians[s]:.0f}" for s in STAGES]
    row += [f"{total - medians['read + mel']:.0f}", f"{total:.0f}"]
    print("".join(f"{v:>13}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
