"""Held-out reconstruction of an audio model, one row per genre: unseen recordings through the posterior mode.

    python benchmarks/heldout_recon.py default-mel ../shared/data/music_real
    python benchmarks/heldout_recon.py runs/mel ../shared/data/music_real ../shared/data/audio_genres \
        --split-group file --val-fraction 0.1 --json heldout.json

The folders are split exactly as training splits them (the same hash of --seed and each recording's key, see
`audiovae.data.audio_folder.group_key`), so with the recipe's data.val_fraction, data.seed and data.split_group
the rows are the recordings that run never saw. Each held-out recording is encoded whole, with its genre when the
model knows it (else with no genre), and decoded. Columns: recordings, spectral convergence of mel magnitudes,
log-mel L1, KL per latent frame (nats), and seconds of compute per clip. The log-mels come from the model's own
front end (cached under --cache, outside the data folders). For a VQ model the last lines say how the codes use the
codebooks, averaged over the codebooks and for the weakest one: on the held-out recordings, and on the training
recordings (the codebooks' state at the end of training: a code no training recording uses is dead).
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
from audiovae.audio.reconstruction import clip_metrics  # noqa: E402
from audiovae.data import AudioFolder  # noqa: E402

COLUMNS = ("spectral_convergence", "logmel_l1", "kl_per_latent_frame", "seconds_per_clip")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="audio model: a model or run folder, or a bundled name (default-mel)")
    p.add_argument("data", nargs="+", help="audio folder(s) with genre subfolders")
    add_split_args(p)
    p.add_argument("--threads", type=int, default=2, help="torch threads [2]")
    p.add_argument("--json", help="also write the table as JSON here")
    return p.parse_args(argv)


def per_genre_rows(model, held_out: AudioFolder) -> dict[str, dict[str, float]]:
    """{genre: {recordings, spectral_convergence, logmel_l1, kl_per_latent_frame, seconds_per_clip}}, plus an
    "all" row averaged over recordings."""
    rows: dict[str, list[dict[str, float]]] = {}
    known = list(model.conditions)
    for path, mel, genre_id in held_out.eval_items():
        genre = held_out.genres[genre_id] if genre_id >= 0 else "(unlabelled)"
        started = time.perf_counter()
        figures, _ = clip_metrics(model, mel, known.index(genre) if genre in known else -1)
        figures["seconds_per_clip"] = time.perf_counter() - started
        rows.setdefault(genre, []).append(figures)
    rows["all"] = [f for genre_rows in list(rows.values()) for f in genre_rows]
    return {genre: {"recordings": len(found)} | {c: sum(f[c] for f in found) / len(found) for c in COLUMNS}
            for genre, found in rows.items()}


@torch.no_grad()
def codebook_use(model, recordings: AudioFolder) -> dict[str, float]:
    """code_statistics of a VQ model's codes over a split's recordings (each whole, with its genre if known)."""
    from audiovae.models.quantiser import code_statistics

    known = list(model.conditions)
    codes = []
    for _, mel, genre_id in recordings.eval_items():
        genre = recordings.genres[genre_id] if genre_id >= 0 else None
        cond = torch.tensor([known.index(genre)]) if genre in known else None
        codes.append(model.encode_codes(mel[None], cond)[0])
    return code_statistics(torch.cat(codes, 1), model.codebook_size)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model, modality="audio")
    train, held_out = AudioFolder.splits(args.data if len(args.data) > 1 else args.data[0], cache_dir=args.cache,
                                     mel_config=model.frontend, val_fraction=args.val_fraction, seed=args.seed,
                                     split_group=args.split_group, progress=False)
    rows = per_genre_rows(model, held_out)
    width = max(len(g) for g in rows)
    print(f"model {args.model}; held-out recordings of {', '.join(args.data)} (split by {args.split_group}, "
          f"val_fraction {args.val_fraction}, seed {args.seed}); torch threads {args.threads}")
    print(f"{'genre':<{width}}  {'recs':>4}  {'SC':>6}  {'logmel L1':>9}  {'KL/frame':>8}  {'s/clip':>6}")
    for genre, r in rows.items():
        print(f"{genre:<{width}}  {r['recordings']:>4}  {r['spectral_convergence']:>6.3f}  {r['logmel_l1']:>9.3f}  "
              f"{r['kl_per_latent_frame']:>8.1f}  {r['seconds_per_clip']:>6.2f}")
    codebooks = ({split: codebook_use(model, recordings) for split, recordings in (("held-out", held_out),
                                                                                  ("training", train))}
                 if hasattr(model, "encode_codes") else None)
    for split, use in (codebooks or {}).items():
        print(f"codebooks ({model.num_codebooks} x {model.codebook_size}, {model.bits_per_second:.0f} bits/s), {split} "
              f"codes: perplexity {use['perplexity_ratio']:.1%} of K and {use['dead']:.1%} unused on average; "
              f"weakest codebook {use['worst_perplexity_ratio']:.1%} and {use['worst_dead']:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "data": args.data, "rows": rows,
                                               "codebooks": codebooks}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
