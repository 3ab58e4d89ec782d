"""How fast an audio model samples latents from its prior (no decoder, no vocoder): seconds per clip.

    python benchmarks/prior_speed.py default-mel --seconds 10 --threads 1

For one clip and for a batch of --batch clips, with and without classifier-free guidance (guidance doubles the
GRU work), after one warm-up: the median of --repeats runs. The target: 10 s of latent in at most 0.3 s on one
CPU thread. Also reports the device (the GPU when --device cuda and one is present).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audiovae  # noqa: E402
from audiovae.latent import prior_samples  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="audio model with a learned prior (a bundled name, a model or run folder)")
    p.add_argument("--seconds", type=float, default=10.0, help="latent length in seconds of audio [10]")
    p.add_argument("--batch", type=int, default=64, help="clips in the batched row [64]")
    p.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up [5]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads [1]")
    p.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    return p.parse_args(argv)


def seconds_per_call(model, n: int, frames: int, guidance: float, repeats: int) -> float:
    cond = torch.tensor([0]) if model.conditions else None

    def once():
        prior_samples(model, n, frames=frames, cond=cond, guidance=guidance)
        if next(model.parameters()).is_cuda:
            torch.cuda.synchronize()

    once()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model, device=args.device, modality="audio")
    if model.latent_prior is None:
        raise SystemExit(f"prior_speed: {args.model} has no learned prior (train one with recipes/mel_prior.toml)")
    config = model.frontend
    frames = model.latent_frames(config.num_frames(int(args.seconds * config.sample_rate)))
    print(f"model {args.model}; {args.seconds:g} s = {frames} latent frames; device {args.device}, "
          f"{args.threads} threads")
    print(f"{'clips':>6}  {'guidance':>8}  {'s per call':>10}  {'s per clip':>10}  {'x real time':>11}")
    for n in (1, args.batch):
        for guidance in (0.0, model.guidance or 1.0):
            took = seconds_per_call(model, n, frames, guidance, args.repeats)
            print(f"{n:>6}  {guidance:>8g}  {took:>10.3f}  {took / n:>10.4f}  {args.seconds * n / took:>11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
