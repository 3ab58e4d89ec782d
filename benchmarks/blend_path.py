"""Does a genre blend move toward genre B? P(genre B) along 5-step blend paths, judged by an audio classifier.

The classifier (audiovae.audio.classify) is trained on the training clips of the data folder, split by file the
way the model's recipe split it (so the clips used here were held out from the VAE too), and scored on the
held-out clips. Then for held-out clip pairs (one of genre A, one of genre B) it decodes each path and prints the
classifier's P(B) at every step, averaged over the pairs:

  latent slerp      encode A and B with no genre, slerp frame by frame (cropped to the shorter), decode with no genre
  slerp + cond mix  (conditional models) encode A with genre A and B with genre B, slerp, decode with the mixture
                    (1 - t) A + t B of the genre embeddings
  cond A->B         (conditional models) z of A (encoded with genre A) fixed, decode with the mixture (1 - t) A + t B
  centroid shift    z of A (no genre) + t * (centroid B - centroid A), decoded with no genre

Decoded log-mels go to the classifier directly (--vocode: through Griffin-Lim and back to a log-mel first).

    python benchmarks/blend_path.py --model runs/mel --data DIR --genre-a baroque_chorale --genre-b irish_fiddle
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import audiovae  # noqa: E402
from _judges import data_split, get_classifier, named_items  # noqa: E402
from audiovae.audio.classify import held_out_accuracy, predict_proba  # noqa: E402
from audiovae.errors import AudioVAEError  # noqa: E402
from audiovae.latent import blend_genres, centroids_from_folder, genre_centroids, interpolate_temporal  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default-mel", help="mel model folder or run folder [default: default-mel]")
    p.add_argument("--data", required=True, action="append",
                   help="audio folder with genre subfolders (the model's training data; repeat for several)")
    p.add_argument("--genre-a", required=True, help="genre the paths start from")
    p.add_argument("--genre-b", required=True, help="genre the paths go to")
    p.add_argument("--classifier", help="classifier folder: loaded when it exists, else trained and written there")
    p.add_argument("--classifier-steps", type=int, default=300, help="training steps of a new classifier [300]")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "audiovae-benchmark-cache"),
                   help="log-mel cache folder (outside the data folder)")
    p.add_argument("--steps", type=int, default=5, help="points on each path, ends included [5]")
    p.add_argument("--pairs", type=int, default=3, help="held-out (A, B) clip pairs to average over [3]")
    p.add_argument("--vocode", action="store_true", help="classify Griffin-Lim audio re-analysed to log-mel")
    p.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    return p.parse_args(argv)


@torch.no_grad()
def judge(model, classifier, z, cond, frames: int, vocode: bool) -> torch.Tensor:
    """The classifier's genre probabilities Tensor[G] for the decoded latent z: Tensor[C, T']."""
    from audiovae.inference import mel_to_waveform, waveform_to_mel

    mel = model.decode(z[None], cond, frames=frames)[0]
    if vocode:
        mel = waveform_to_mel(model, mel_to_waveform(model, mel, vocoder="griffin-lim", n_iter=32))
    return predict_proba(classifier, mel)[0]


@torch.no_grad()
def pair_paths(model, classifier, mel_a, mel_b, a: str, b: str, centroids, steps: int, vocode: bool) -> dict:
    """{path name: [genre probabilities Tensor[G] at t = 0 .. 1]} for one clip pair."""
    frames = min(mel_a.shape[-1], mel_b.shape[-1])
    ts = [i / (steps - 1) for i in range(steps)]
    z_a, z_b = model.encode(mel_a[None]).mode()[0], model.encode(mel_b[None]).mode()[0]
    out = {"latent slerp": [judge(model, classifier, interpolate_temporal(z_a, z_b, t), None, frames, vocode)
                            for t in ts]}
    if model.conditions:
        cond_a, cond_b = torch.tensor([model.conditions.index(a)]), torch.tensor([model.conditions.index(b)])
        za_c, zb_c = model.encode(mel_a[None], cond_a).mode()[0], model.encode(mel_b[None], cond_b).mode()[0]
        mixes = [blend_genres(model, za_c, {b: 1.0}, source=a, amount=t, path="condition")[1][:1] for t in ts]
        out["slerp + cond mix"] = [judge(model, classifier, interpolate_temporal(za_c, zb_c, t), mix, frames, vocode)
                                   for t, mix in zip(ts, mixes)]
        out["cond A->B"] = [judge(model, classifier, za_c, mix, mel_a.shape[-1], vocode) for mix in mixes]
    shifted = [blend_genres(model, z_a, {b: 1.0}, source=a, amount=t, path="centroid", centroids=centroids)[0]
               for t in ts]
    out["centroid shift"] = [judge(model, classifier, z, None, frames, vocode) for z in shifted]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = audiovae.load(args.model)
    train, val = data_split(model, args.data, args.cache)
    genres = list(train.genres)
    for g in (args.genre_a, args.genre_b):
        if g not in genres:
            raise AudioVAEError(f"genre {g!r} is not in {args.data}; its genres: {', '.join(genres)}")
    if model.conditions and list(model.conditions) != genres:
        raise AudioVAEError(f"the model's genres {model.conditions} differ from the data's {genres}")
    train_items, val_items = named_items(train), named_items(val)
    classifier = get_classifier(args.classifier, model, train_items, genres, steps=args.classifier_steps)
    acc = held_out_accuracy(classifier, val_items)
    print(f"classifier held-out accuracy: {acc['accuracy']:.1%} of {acc['clips']} clips (split by file); per genre: "
          + ", ".join(f"{g} {v:.0%}" for g, v in acc["per_genre"].items()))
    try:
        centroids = genre_centroids(model)
    except AudioVAEError:
        centroids = centroids_from_folder(model, train_items)
    clips_a = [(p, m) for (p, m, g) in val.eval_items() if g >= 0 and genres[g] == args.genre_a]
    clips_b = [(p, m) for (p, m, g) in val.eval_items() if g >= 0 and genres[g] == args.genre_b]
    pairs = list(zip(clips_a, clips_b))[: args.pairs]
    if not pairs:
        raise AudioVAEError(f"no held-out clips of both {args.genre_a} and {args.genre_b}")
    ib = genres.index(args.genre_b)
    print(f"reference P({args.genre_b}) of the real held-out clips: A "
          + ", ".join(f"{float(predict_proba(classifier, m)[0, ib]):.2f}" for _, m in clips_a[: args.pairs])
          + "; B " + ", ".join(f"{float(predict_proba(classifier, m)[0, ib]):.2f}" for _, m in clips_b[: args.pairs]))
    results = []
    for (path_a, mel_a), (path_b, mel_b) in pairs:
        print(f"pair: A {Path(path_a).name}  B {Path(path_b).name}")
        results.append(pair_paths(model, classifier, mel_a, mel_b, args.genre_a, args.genre_b, centroids,
                                  args.steps, args.vocode))
    names = list(results[0])
    print(f"\n{args.steps}-step paths from {args.genre_a} (t=0) to {args.genre_b} (t=1), mean over {len(results)} "
          f"held-out pair(s){', vocoded' if args.vocode else ''}")
    for genre, label in ((args.genre_b, "B"), (args.genre_a, "A")):
        index = genres.index(genre)
        print(f"\nP({label} = {genre})")
        print(f"{'t':>5}" + "".join(f"{n:>18}" for n in names))
        for i in range(args.steps):
            row = [sum(float(r[n][i][index]) for r in results) / len(results) for n in names]
            print(f"{i / (args.steps - 1):>5.2f}" + "".join(f"{v:>18.3f}" for v in row))
        if label == "B":
            rising = [sum(all(float(q[index]) >= float(p[index]) - 1e-3 for p, q in zip(r[n], r[n][1:]))
                          for r in results) for n in names]
            print(f"{'rises':>5}" + "".join(f"{f'{k}/{len(results)} pairs':>18}" for k in rising))
    print("\nmost likely genre at each step (first pair)")
    for n in names:
        print(f"  {n:<17} " + " -> ".join(genres[int(p.argmax())] for p in results[0][n]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AudioVAEError as exc:
        print(f"blend_path: error: {exc}", file=sys.stderr)
        sys.exit(2)
