"""PianoRollCVAE speed: training segments/s (forward + backward + AdamW step) and batched generation segments/s.

    python benchmarks/midi_speed.py                                   # recipe sizes, 1 and 2 torch threads
    python benchmarks/midi_speed.py --model runs/midi --threads 2     # a trained model
    python benchmarks/midi_speed.py --recipe recipes/midi_cvae_tiny.toml --generate 200

The model is freshly built from the recipe's [model] and [data] grid (6 genres) unless --model is given; weights
do not change the speed. Training feeds random rolls at the grid's typical density (no data loading) with the
recipe's batch size. Generation draws noise ~ N(0, I), maps it through the model's prior and decodes one batch of
--generate segments of the model's first genre (baroque_chorale for default-midi, the genre with the most decoding
rules) with the model's classifier-free guidance ("decode"; guidance doubles the prior and decoder work), and
additionally turns them into the rolls a user gets ("to rolls": thresholded, cleaned, with velocities and the
genre's onset grid, shortest note, steady voices and longest note), the way generate-midi does. Times are the best of --repeats runs (the CPU may be shared).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiovae.midi.generate import decode_rolls, rolls_for  # noqa: E402
from audiovae.models.pianoroll_cvae import PianoRollCVAE  # noqa: E402
from audiovae.train.config import load_recipe  # noqa: E402
from audiovae.train.midi_task import roll_config_from  # noqa: E402

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "midi_cvae.toml"
GENRES = ["g0", "g1", "g2", "g3", "g4", "g5"]


def best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def build(args) -> tuple[PianoRollCVAE, int]:
    recipe = load_recipe(args.recipe)
    if args.model:
        from audiovae import load

        return load(args.model), recipe.train.batch_size
    model = PianoRollCVAE(**(dict(recipe.model) | {"genres": GENRES, "roll": roll_config_from(recipe).to_dict()}))
    return model, recipe.train.batch_size


def training_rate(model: PianoRollCVAE, batch_size: int, repeats: int, steps: int = 5) -> float:
    g = torch.Generator().manual_seed(0)
    onset = torch.rand(batch_size, *model.segment_shape[1:], generator=g) < 0.007
    sustain = onset | (torch.rand(batch_size, *model.segment_shape[1:], generator=g) < 0.03)
    x = torch.stack([onset, sustain], 1).float()
    genre = torch.randint(max(1, len(model.conditions)), (batch_size,), generator=g)
    cond = genre if model.conditions else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def run():
        for _ in range(steps):
            logits, posterior = model(x, cond)
            loss = model.reconstruction_nll(x, logits).mean() + model.latent_kl(posterior, cond).sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    run()  # warm-up
    seconds = best_of(repeats, run)
    model.eval()
    return batch_size * steps / seconds


@torch.no_grad()
def generation_rates(model: PianoRollCVAE, count: int, repeats: int) -> tuple[float, float]:
    z = torch.randn(count, model.latent_dim, generator=torch.Generator().manual_seed(0))
    cond = torch.tensor([0]) if model.conditions else None
    decode_rolls(model, z[:8], cond, from_noise=True)
    decode_only = best_of(repeats, lambda: decode_rolls(model, z, cond, from_noise=True, batch_size=count))
    to_rolls = best_of(repeats, lambda: rolls_for(model, decode_rolls(model, z, cond, from_noise=True,
                                                                      batch_size=count), cond))
    return count / decode_only, count / to_rolls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="recipe for the model sizes and batch size")
    parser.add_argument("--model", help="a trained model (folder or run) instead of a fresh one")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts [default: 1,2]")
    parser.add_argument("--generate", type=int, default=1000, help="segments per generation batch [default: 1000]")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats, best kept [default: 3]")
    args = parser.parse_args()

    model, batch_size = build(args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"PianoRollCVAE {n_params / 1e6:.2f} M parameters, segments {list(model.segment_shape)}, "
          f"latent {model.latent_dim}, prior {'autoregressive' if model.latent_prior is not None else 'standard'}, "
          f"guidance {model.guidance:g}, training batch {batch_size}, generation batch {args.generate}")
    print(f"{'threads':>7} {'train seg/s':>12} {'decode seg/s':>13} {'to rolls seg/s':>15}")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        train = training_rate(model, batch_size, args.repeats)
        decode, rolls = generation_rates(model, args.generate, args.repeats)
        print(f"{threads:>7} {train:>12.0f} {decode:>13.0f} {rolls:>15.0f}")
    print(f"(torch {torch.__version__}, {torch.get_num_interop_threads()} interop threads, numpy {np.__version__})")


if __name__ == "__main__":
    main()
