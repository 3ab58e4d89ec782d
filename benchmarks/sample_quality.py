"""Do an audio model's prior samples sound like its genres? Genre accuracy, a two-sample test and blend paths.

    python benchmarks/sample_quality.py default-mel --data ../shared/data/audio_genres --data ../shared/data/music_real

The data folders are split by recording exactly as the model's recipe split them. An audio genre classifier
(audiovae.audio.classify) is trained on the training recordings only and scored on the held-out ones. Then, per
genre the model knows and the data holds:

- **genre accuracy**: the share of --n prior samples of --seconds (temperature --temperature, the model's guidance
  unless --guidance) that the classifier assigns to the genre they were drawn for;
- **two-sample test**: 5-fold cross-validated logistic regression (standardised features, L2) telling real
  --seconds crops of held-out recordings from samples, on clip summary features of the log-mel: per-band means
  and standard deviations, the means and standard deviations of 20 MFCCs (DCT-II of the log-mel) and of the
  spectral flux. 0.5 means the features cannot tell them apart; 1.0 that they always can. For reference, the same
  test on the model's reconstructions of those real crops (encoded with their genre, decoded from the posterior
  mode): what the decoder alone gives away, whatever the prior does; the same test on crops of the *training*
  recordings of the genre, real music that is not the held-out recordings ("other real"): what the test gives
  music that is real but not those few recordings, the floor a model's samples can be held to; and the mean
  spectral flux of real crops, samples and reconstructions (how much the log-mel changes from frame to frame);
- **blend paths**: for --pairs held-out recordings pairs of two different genres (--seconds crops), the
  classifier's mean P(B) at alpha = 0, 0.25, 0.5, 0.75, 1 and how many paths rise monotonically, for latent
  slerp and, when the model has a learned prior, interpolation in its noise space (latent_blend).

Decoded log-mels are judged directly (no vocoder), like the real crops they are compared with.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import audiovae  # noqa: E402
from _judges import data_split, get_classifier, named_items  # noqa: E402
from audiovae.audio.classify import held_out_accuracy, predict_proba  # noqa: E402
from audiovae.latent import latent_blend, prior_samples  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FLUX = -2  # the spectral-flux mean's place in summary_features


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="audio model: a model or run folder, or a bundled name")
    p.add_argument("--data", required=True, action="append", help="the model's data folder (repeat for several)")
    p.add_argument("--n", type=int, default=20, help="samples per genre [20]")
    p.add_argument("--seconds", type=float, default=5.0, help="length of samples and real crops [5]")
    p.add_argument("--temperature", type=float, default=1.0, help="prior temperature [1]")
    p.add_argument("--guidance", type=float, help="classifier-free guidance [default: the model's]")
    p.add_argument("--pairs", type=int, default=8, help="held-out pairs for the blend table [8]")
    p.add_argument("--classifier", help="classifier folder: loaded when it exists, else trained and written there")
    p.add_argument("--classifier-steps", type=int, default=400, help="training steps of a new classifier [400]")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "audiovae-benchmark-cache"),
                   help="log-mel cache folder (outside the data folders)")
    p.add_argument("--seed", type=int, default=0, help="random seed [0]")
    p.add_argument("--threads", type=int, default=2, help="torch threads [2]")
    return p.parse_args(argv)


# --- clip summary features and the two-sample test ------------------------------------------------------------
def summary_features(mel: torch.Tensor, n_mfcc: int = 20) -> torch.Tensor:
    """log-mel Tensor[n_mels, frames] -> Tensor[2 * n_mels + 2 * n_mfcc + 2]: per-band mean and std, MFCC mean and
    std, spectral-flux mean and std (flux: L2 norm of the frame-to-frame change of the log-mel)."""
    mel = mel.float()
    n_mels = mel.shape[0]
    k = torch.arange(n_mels, dtype=torch.float32)
    dct = torch.cos(math.pi / n_mels * (k[None] + 0.5) * torch.arange(n_mfcc, dtype=torch.float32)[:, None])
    mfcc = dct @ mel
    flux = (mel[:, 1:] - mel[:, :-1]).norm(dim=0)
    return torch.cat([mel.mean(1), mel.std(1), mfcc.mean(1), mfcc.std(1), flux.mean()[None], flux.std()[None]])


def logistic_cv_accuracy(x: torch.Tensor, y: torch.Tensor, *, folds: int = 5, l2: float = 1e-2, seed: int = 0
                         ) -> float:
    """Mean held-out accuracy of L2-regularised logistic regression (features standardised on each training
    fold, fitted by L-BFGS) over ``folds`` stratified folds. x: Tensor[N, F]; y: Tensor[N] of 0/1."""
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(y), dtype=torch.long)
    for label in (0, 1):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        fold_of[members] = torch.arange(len(members)) % folds
    correct = 0
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
        xt, xs = (x[train] - mean) / std, (x[test] - mean) / std
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, y[train].float()) + l2 * w.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            correct += int(((xs @ w + b > 0).long() == y[test]).sum())
    return correct / len(y)


def real_crops(items: list[tuple[torch.Tensor, str]], genre: str, n: int, frames: int) -> list[torch.Tensor]:
    """``n`` crops of ``frames`` frames from the held-out recordings of ``genre``, spread evenly over them."""
    mels = [mel for mel, g in items if g == genre and mel.shape[-1] >= frames]
    crops = []
    for i in range(n):
        mel = mels[i % len(mels)]
        spots = max(1, n // len(mels) + 1)
        start = int((mel.shape[-1] - frames) * ((i // len(mels)) + 0.5) / spots)
        crops.append(mel[:, start:start + frames])
    return crops


# --- the three measurements -----------------------------------------------------------------------------------
@torch.no_grad()
def genre_rows(model, classifier, held_out, train_items, args) -> dict[str, dict]:
    config = model.frontend
    frames = config.num_frames(int(args.seconds * config.sample_rate))
    guidance = model.guidance if args.guidance is None else args.guidance
    rows = {}
    for g, genre in enumerate(model.conditions):
        if not any(name == genre for _, name in held_out):
            continue
        cond = torch.tensor([g])
        z = prior_samples(model, args.n, temperature=args.temperature, seed=args.seed + g, cond=cond,
                          frames=model.latent_frames(frames), guidance=guidance)
        samples = model.decode(z, cond.expand(args.n), frames=frames)
        hits = predict_proba(classifier, samples).argmax(1) == classifier.genres.index(genre)
        real = real_crops(held_out, genre, args.n, frames)
        recon = [model.decode(model.encode(m[None], cond).mode(), cond, frames=frames)[0] for m in real]
        x = torch.stack([summary_features(m) for m in list(samples) + real])
        y = torch.cat([torch.ones(len(samples)), torch.zeros(len(real))]).long()
        x_recon = torch.cat([torch.stack([summary_features(m) for m in recon]), x[len(samples):]])
        other = real_crops(train_items, genre, args.n, frames)
        x_other = torch.cat([torch.stack([summary_features(m) for m in other]), x[len(samples):]])
        rows[genre] = {"genre_accuracy": float(hits.float().mean()),
                       "two_sample": logistic_cv_accuracy(x, y, seed=args.seed),
                       "recon_two_sample": logistic_cv_accuracy(x_recon, y, seed=args.seed),
                       "other_real_two_sample": logistic_cv_accuracy(x_other, y, seed=args.seed),
                       "flux": [float(part[:, FLUX].mean()) for part in (x[len(samples):], x[:len(samples)],
                                                                         x_recon[:len(recon)])],
                       "x": x, "y": y, "x_recon": x_recon, "x_other": x_other}
    return rows


@torch.no_grad()
def blend_table(model, classifier, held_out, args) -> dict[str, dict]:
    config = model.frontend
    frames = config.num_frames(int(args.seconds * config.sample_rate))
    generator = torch.Generator().manual_seed(args.seed)
    pool = [(mel, g) for mel, g in held_out if mel.shape[-1] >= frames and g in model.conditions]
    methods = ["slerp"] + (["noise"] if model.latent_prior is not None else [])
    table = {m: {"p_b": [[] for _ in ALPHAS], "monotone": 0, "pairs": 0} for m in methods}
    for _ in range(args.pairs * 20):
        if table["slerp"]["pairs"] >= args.pairs:
            break
        i, j = torch.randint(len(pool), (2,), generator=generator).tolist()
        (mel_a, a), (mel_b, b) = pool[i], pool[j]
        if a == b:
            continue
        ia, ib = model.conditions.index(a), model.conditions.index(b)
        crop = lambda m: m[:, (m.shape[-1] - frames) // 2:(m.shape[-1] - frames) // 2 + frames]  # noqa: E731
        # posterior means: a Gaussian's mode, a VQ model's pre-quantisation vectors (latent_blend quantises again)
        z_a = model.encode(crop(mel_a)[None], torch.tensor([ia])).mean
        z_b = model.encode(crop(mel_b)[None], torch.tensor([ib])).mean
        for method in methods:
            probs = []
            for alpha in ALPHAS:
                z, cond = latent_blend(model, z_a, z_b, alpha, method=method, cond_a=torch.tensor([ia]),
                                       cond_b=torch.tensor([ib]))
                probs.append(float(predict_proba(classifier, model.decode(z, cond, frames=frames))[0, ib]))
            entry = table[method]
            for k, p in enumerate(probs):
                entry["p_b"][k].append(p)
            entry["monotone"] += all(q >= p - 0.02 for p, q in zip(probs, probs[1:]))
            entry["pairs"] += 1
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = audiovae.load(args.model, modality="audio")
    train, val = data_split(model, args.data, args.cache)
    genres = list(train.genres)
    train_items, held_out = named_items(train), named_items(val)
    classifier = get_classifier(args.classifier, model, train_items, genres, steps=args.classifier_steps)
    acc = held_out_accuracy(classifier, held_out)
    print(f"classifier on held-out recordings: {acc['accuracy']:.1%} of {acc['clips']} ("
          + ", ".join(f"{g} {v:.0%}" for g, v in acc["per_genre"].items()) + ")")
    guidance = model.guidance if args.guidance is None else args.guidance
    prior = "learned prior" if model.latent_prior is not None else "no learned prior"
    print(f"model {args.model} ({prior}); {args.n} samples of {args.seconds:g} s per genre, T={args.temperature:g}, "
          f"guidance {guidance:g}")
    rows = genre_rows(model, classifier, held_out, train_items, args)
    width = max(len(g) for g in list(rows) + list(args.data)) + 2
    print(f"\n{'genre':<{width}}  {'genre acc':>9}  {'two-sample':>10}  {'recon':>6}  {'other real':>10}   spectral "
          "flux: real, samples, reconstructions")
    for genre, r in rows.items():
        print(f"{genre:<{width}}  {r['genre_accuracy']:>9.1%}  {r['two_sample']:>10.2f}  {r['recon_two_sample']:>6.2f}  "
              f"{r['other_real_two_sample']:>10.2f}   " + ", ".join(f"{v:.2f}" for v in r["flux"]))
    groups = {"overall": list(rows)} | {folder: [g for g in rows if (Path(folder) / g).is_dir()] for folder in args.data}
    for name, genres_in in groups.items():
        if not genres_in or (name != "overall" and len(args.data) == 1):
            continue
        y = torch.cat([rows[g]["y"] for g in genres_in])
        pooled = [logistic_cv_accuracy(torch.cat([rows[g][key] for g in genres_in]), y, seed=args.seed)
                  for key in ("x", "x_recon", "x_other")]
        accuracy = sum(rows[g]["genre_accuracy"] for g in genres_in) / len(genres_in)
        print(f"{name:<{width}}  {accuracy:>9.1%}  {pooled[0]:>10.2f}  {pooled[1]:>6.2f}  {pooled[2]:>10.2f}")
    print("(two-sample: real held-out crops against samples, pooled over the genres of a line; recon: the model's "
          "reconstructions of the same crops; other real: crops of the training recordings, real music that is not "
          "the held-out recordings)")
    table = blend_table(model, classifier, held_out, args)
    print(f"\nblend paths over {table['slerp']['pairs']} held-out pairs of two genres: mean P(B) at alpha")
    print(f"{'method':<8}" + "".join(f"{a:>7.2f}" for a in ALPHAS) + "   monotone")
    for method, entry in table.items():
        means = [sum(v) / len(v) for v in entry["p_b"]]
        print(f"{method:<8}" + "".join(f"{m:>7.3f}" for m in means) + f"   {entry['monotone']}/{entry['pairs']}")
    print(f"\n({time.perf_counter() - started:.0f} s, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
