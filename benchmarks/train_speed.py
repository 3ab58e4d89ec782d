"""Mel VAE training throughput at a recipe's size: optimizer steps/s and crops/s on random log-mels.

python benchmarks/train_speed.py --recipe recipes/mel_vae.toml --steps 30 --threads 1
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from audiovae.models import MelVAE
from audiovae.models.posterior import kl_with_free_bits
from audiovae.train.config import load_recipe
from audiovae.audio.reconstruction import mel_spectral_convergence


def time_steps(model, batch: torch.Tensor, genres: torch.Tensor, steps: int, spectral_weight: float) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            if batch.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
        x_hat, q = model(batch, genres)
        loss = model.reconstruction_nll(batch, x_hat).mean() + kl_with_free_bits(q.kl(), 0.0)
        loss = loss + spectral_weight * mel_spectral_convergence(batch, x_hat).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if batch.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="recipes/mel_vae.toml", help="recipe whose model/batch/crop sizes to use")
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps [default: 30]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda [default: cpu]")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    genres = ["g0", "g1", "g2", "g3", "g4", "g5"]
    model = MelVAE(frontend=recipe.mel_config, genres=genres, **recipe.model).to(args.device).train()
    b, t = recipe.train.batch_size, recipe.data.crop_frames
    batch = torch.randn(b, recipe.mel_config.n_mels, t, device=args.device) - 5
    ids = torch.randint(len(genres), (b,), device=args.device)
    seconds = time_steps(model, batch, ids, args.steps, recipe.loss.spectral_weight)
    audio_seconds = b * t / recipe.mel_config.frames_per_second
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, device {args.device}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'recipe':<24}{'params M':>9}{'batch':>7}{'crop':>6}{'steps/s':>9}{'crops/s':>9}{'audio s/s':>11}")
    print(f"{args.recipe:<24}{sum(p.numel() for p in model.parameters()) / 1e6:>9.2f}{b:>7}{t:>6}"
          f"{args.steps / seconds:>9.2f}{args.steps * b / seconds:>9.1f}{args.steps * audio_seconds / seconds:>11.1f}")


if __name__ == "__main__":
    main()
