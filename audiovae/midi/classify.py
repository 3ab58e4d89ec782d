"""Evaluate a trained PianoRollCVAE: a genre classifier trained on real data only, then reconstruction,
genre control, genre transfer and novelty numbers.

The classifier (:class:`~audiovae.models.pianoroll_cvae.GenreClassifier`) learns from the training pieces of the
same piece-level split the VAE trained on and is scored on the held-out pieces; it is saved as its own checkpoint
folder and reused while the data, split and grid stay the same. Generated segments are judged the way a user gets
them: thresholded at 0.5 and cleaned (:func:`clean_roll`).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import AudioVAEError, ConfigError
from ..checkpoint import load, read_config, write_model_folder
from ..models.judges import GenreClassifier, balanced_draw, fit_classifier
from .generate import decode_rolls, default_guidance, retarget_latent, rolls_for
from .form import SIMILAR
from .pianoroll import SUSTAIN, RollConfig, roll_tensor, with_velocity

TEMPERATURES = (0.5, 0.8, 1.0)


# --- the classifier --------------------------------------------------------------------------------------------
def _shift_pitch(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Transpose rolls Tensor[B, 2, S, P] by ``shift`` semitones; notes pushed out of range are dropped."""
    if shift == 0:
        return x
    out = torch.zeros_like(x)
    if shift > 0:
        out[..., shift:] = x[..., :-shift]
    else:
        out[..., :shift] = x[..., -shift:]
    return out


def train_classifier(segments: np.ndarray, genre_ids: np.ndarray, *, genres: list[str], roll: RollConfig,
                     steps: int = 1500, batch_size: int = 64, lr: float = 2e-3, transpose: int = 2, seed: int = 0,
                     channels: tuple[int, ...] = (64, 96, 128), log=print) -> GenreClassifier:
    """Train a GenreClassifier on bool segments [N, 2, S, P] with genre ids [N].

    Batches draw genres uniformly and then segments uniformly within the genre (so rare genres count as much as
    common ones), with a random transposition in [-transpose, transpose] semitones; AdamW with a cosine learning
    rate (:func:`~audiovae.models.judges.fit_classifier`).
    """
    torch.manual_seed(seed)  # the initial weights
    model = GenreClassifier(roll=roll.to_dict(), genres=list(genres), channels=list(channels))
    members = [np.flatnonzero(genre_ids == g) for g in range(len(genres))]

    def draw(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        labels, picks = balanced_draw(members, batch_size, generator)
        x = torch.from_numpy(segments[picks].astype(np.float32))
        shift = int(torch.randint(-transpose, transpose + 1, (), generator=generator)) if transpose else 0
        return _shift_pitch(x, shift), labels

    return fit_classifier(model, draw, steps=steps, lr=lr, seed=seed, name="classifier", log=log)


@torch.no_grad()
def classify(classifier: GenreClassifier, rolls: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """Predicted genre ids int64 [N] for rolls [N, 2 or 3, S, P] (bool, 0/1 or float in [0, 1]); the classifier
    reads onsets and sustain only."""
    out = [classifier(torch.from_numpy(np.asarray(rolls[i:i + batch_size, :2], dtype=np.float32))).argmax(1)
           for i in range(0, len(rolls), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def load_or_train_classifier(path: Path, train, val, *, retrain: bool = False, steps: int = 1500, seed: int = 0,
                             log=print) -> GenreClassifier:
    """The classifier saved at ``path`` if it was trained on the same data, split and grid; else train one on
    ``train`` (a MidiFolder split) and save it there. ``val`` only identifies the split."""
    identity = {"data": str(Path(train.root).resolve()), "val_fraction": train.val_fraction,
                "train_pieces": len(train.piece_paths), "val_pieces": len(val.piece_paths),
                "train_segments": len(train), "roll": train.config.to_dict(), "genres": list(train.genres)}
    path = Path(path)
    if not retrain and (path / "config.json").is_file():
        if read_config(path).get("classifier_data") == identity:
            log(f"using the genre classifier in {path}")
            return load(path)
        log(f"the classifier in {path} was trained on other data or another split; retraining it")
    log(f"training the genre classifier on {len(train)} real training segments ({steps} steps)")
    classifier = train_classifier(train.segments, train.genre_ids, genres=list(train.genres), roll=train.config,
                                  steps=steps, seed=seed, log=log)
    write_model_folder(path, classifier, extra={"classifier_data": identity})
    log(f"classifier written to {path}")
    return classifier


# --- the measurements ------------------------------------------------------------------------------------------
def per_genre_accuracy(predicted: np.ndarray, wanted: np.ndarray, genres: list[str]) -> dict:
    """{"accuracy": share of predicted == wanted, "balanced": mean over genres, "per_genre": {genre: share}}."""
    per = {g: float((predicted[wanted == i] == i).mean()) for i, g in enumerate(genres) if (wanted == i).any()}
    return {"accuracy": float((predicted == wanted).mean()), "balanced": float(np.mean(list(per.values()))),
            "per_genre": per}


def sample_segments(model, genre: int, n: int, *, temperature: float, generator: torch.Generator,
                    guidance: float | None = None) -> np.ndarray:
    """``n`` prior samples of one genre (noise at ``temperature`` through the model's prior): the segments a user
    gets, [n, C, S, P] (see :func:`~audiovae.midi.generate.rolls_for`)."""
    z = torch.randn(n, model.latent_dim, generator=generator) * temperature
    cond = torch.tensor([genre])
    return rolls_for(model, decode_rolls(model, z, cond, from_noise=True, guidance=guidance), cond)


def genre_control(model, classifier, *, per_genre: int, temperatures=TEMPERATURES, seed: int = 0,
                  guidance: float | None = None):
    """Share of generated segments the classifier assigns to the requested genre, per temperature.

    Returns ({"T=0.5": per_genre_accuracy(...), ...}, the segments generated at the last temperature
    [G * per_genre, C, S, P]).
    """
    genres = list(model.conditions)
    results, last = {}, None
    for temperature in temperatures:
        generator = torch.Generator().manual_seed(seed)
        rolls = np.concatenate([sample_segments(model, g, per_genre, temperature=temperature, generator=generator,
                                                guidance=guidance)
                                for g in range(len(genres))])
        wanted = np.repeat(np.arange(len(genres)), per_genre)
        results[f"T={temperature:g}"] = per_genre_accuracy(classify(classifier, rolls), wanted, genres)
        last = rolls
    return results, last


def pick_per_genre(genre_ids: np.ndarray, genre: int, limit: int) -> np.ndarray:
    """Up to ``limit`` indices of ``genre``, evenly spread over its segments (deterministic)."""
    members = np.flatnonzero(genre_ids == genre)
    if len(members) <= limit:
        return members
    return members[np.linspace(0, len(members) - 1, limit).astype(np.int64)]


@torch.no_grad()
def transfer_accuracy(model, classifier, segments: np.ndarray, genre_ids: np.ndarray, *, per_genre: int,
                      guidance: float | None = None, velocities: np.ndarray | None = None,
                      note_judge=None, strength: float = 0.0, seed: int = 0) -> dict:
    """Held-out segments of each genre (bool [N, 2, S, P], with their onset velocities uint8 [N, S, P] when given),
    encoded with their genre (posterior mode) and decoded as each other genre with that genre's guidance on the
    prior and the decoder (``guidance`` None: the model's default, as in generation): the share the classifier puts
    in the target genre, overall and as a source x target table; with a ``note_judge``
    (:class:`~audiovae.midi.metrics.NoteStatisticsJudge`) the same under it ("notes"), reading the MIDI a user
    gets. Empty results count as misses. ``strength``: see :func:`~audiovae.midi.generate.retarget_latent`.

    "kept": how much of the source survives, as the mean sustain IoU of each transferred segment with its source,
    next to the same IoU between the sources and the target genre's own prior samples (what keeping nothing gives).
    """
    from .metrics import rolls_to_windows

    genres = list(model.conditions)
    device = next(model.parameters()).device
    judged = {"conv": ({}, [0, 0]), "notes": ({}, [0, 0])}
    kept, by_chance = [], []
    generator = torch.Generator().manual_seed(seed)
    for source in range(len(genres)):
        pick = pick_per_genre(genre_ids, source, per_genre)
        if len(pick) == 0:
            continue
        rolls = segments[pick] if velocities is None else with_velocity(segments[pick], velocities[pick])
        x = roll_tensor(rolls).to(device)
        z = model.encode(x, torch.full((len(x),), source, device=device)).mode()
        for target in range(len(genres)):
            if target == source:
                continue
            cond = torch.tensor([target])
            weight = default_guidance(model, cond) if guidance is None else guidance
            moved = retarget_latent(model, z, torch.tensor([source]), cond, strength=strength, guidance=weight)
            out = rolls_for(model, decode_rolls(model, moved, cond, guidance=weight), cond)
            sampled = rolls_for(model, decode_rolls(model, torch.randn(z.shape, generator=generator), cond,
                                                    from_noise=True, guidance=weight), cond)
            kept.append(sustain_iou(out, rolls))
            by_chance.append(sustain_iou(sampled, rolls))
            hits = {"conv": int((classify(classifier, out) == target).sum())}
            if note_judge is not None:
                features, _ = rolls_to_windows(out, model.roll)
                hits["notes"] = int((note_judge.predict(features) == target).sum()) if features else 0
            for name, count in hits.items():
                table, totals = judged[name]
                table.setdefault(genres[source], {})[genres[target]] = count / len(out)
                totals[0] += count
                totals[1] += len(out)
    report = {"accuracy": judged["conv"][1][0] / max(judged["conv"][1][1], 1), "segments_per_source": per_genre,
              "table": judged["conv"][0]}
    if kept:
        report["kept"] = {"transferred": float(np.concatenate(kept).mean()),
                          "target_samples": float(np.concatenate(by_chance).mean())}
    if note_judge is not None:
        report["notes"] = {"accuracy": judged["notes"][1][0] / max(judged["notes"][1][1], 1),
                           "table": judged["notes"][0]}
    return report


def sustain_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair of rolls [N, C, S, P], the intersection over union of their sounding cells (1 for two silent
    rolls): float [N]."""
    a, b = np.asarray(a)[:, SUSTAIN] > 0, np.asarray(b)[:, SUSTAIN] > 0
    union = (a | b).sum((1, 2))
    return np.where(union > 0, (a & b).sum((1, 2)) / np.maximum(union, 1), 1.0)


def max_overlap(queries: np.ndarray, references: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """For each query roll, the largest sustain-channel IoU (Jaccard) with any reference roll: float [Nq].

    queries, references: bool [N, 2, S, P]. IoU = |a & b| / |a | b| over the S x P sustain cells (0 for two
    empty rolls).
    """
    q = torch.from_numpy(queries[:, SUSTAIN].reshape(len(queries), -1).astype(np.float32))
    q_size = q.sum(1, keepdim=True)
    best = torch.zeros(len(q))
    for start in range(0, len(references), chunk):
        r = torch.from_numpy(references[start:start + chunk, SUSTAIN].reshape(-1, q.shape[1]).astype(np.float32))
        inter = q @ r.T
        union = q_size + r.sum(1)[None] - inter
        best = torch.maximum(best, (inter / union.clamp_min(1)).amax(1))
    return best.numpy()


def novelty(generated: np.ndarray, train_segments: np.ndarray, held_out: np.ndarray) -> dict:
    """Nearest-training-segment overlap (sustain IoU) of generated segments, with held-out real segments of the
    same count as the reference point (real music that was not trained on)."""
    generated_best = max_overlap(generated, train_segments)
    pick = np.linspace(0, len(held_out) - 1, min(len(held_out), len(generated))).astype(np.int64)
    real_best = max_overlap(held_out[pick], train_segments) if len(pick) else np.zeros(0)
    return {"generated": {"max": float(generated_best.max()), "mean": float(generated_best.mean()),
                          "share_above_0.8": float((generated_best > 0.8).mean()), "segments": len(generated_best)},
            "held_out_real": {"max": float(real_best.max()) if len(real_best) else float("nan"),
                              "mean": float(real_best.mean()) if len(real_best) else float("nan"),
                              "share_above_0.8": float((real_best > 0.8).mean()) if len(real_best) else float("nan"),
                              "segments": len(real_best)}}


# --- the whole evaluation --------------------------------------------------------------------------------------
def _run_dir(folder: Path) -> Path:
    """The training run a checkpoint folder belongs to (the nearest ancestor with recipe.resolved.toml), else
    the folder's parent; for a bundled model, a folder under the system's temporary folder, so that the default
    classifier and cache are never written into the installed package."""
    from ..pretrained import MODELS_DIR

    if MODELS_DIR.resolve() in folder.resolve().parents:
        return Path(tempfile.gettempdir()) / "audiovae-evaluate" / folder.name
    for parent in folder.resolve().parents:
        if (parent / "recipe.resolved.toml").is_file():
            return parent
    return folder.resolve().parent


def evaluate_model(model, data: str | Path, *, cache_dir: str | Path | None = None,
                   classifier_path: str | Path | None = None, retrain_classifier: bool = False,
                   classifier_steps: int = 1500, per_genre: int = 200, transfer_per_genre: int = 100,
                   temperatures=TEMPERATURES, seed: int = 0, guidance: float | None = None, form_bars: int = 16,
                   form_pieces: int = 20, log=print) -> dict:
    """Evaluate a trained PianoRollCVAE on a MIDI folder with the split it was trained with; returns a JSON-able
    dict (see :func:`format_report`). Defaults: cache and classifier in the model's run folder."""
    from ..data.midi_folder import MidiFolder
    from .reconstruction import reconstruction_metrics

    started = time.perf_counter()
    folder = Path(model.checkpoint_path)
    run_dir = _run_dir(folder)
    recipe = read_config(folder).get("recipe") or {}
    d = recipe.get("data", {})
    if not model.conditions:
        raise ConfigError("evaluate-midi measures genre control; this model is unconditional")
    config: RollConfig = model.roll
    hop_bars = d.get("hop_bars") or config.segment_bars
    cache_dir = Path(cache_dir or d.get("cache_dir") or run_dir / "cache")
    train = MidiFolder(data, cache_dir=cache_dir, split="train", val_fraction=d.get("val_fraction", 0.1),
                       config=config, hop_steps=hop_bars * config.steps_per_bar, workers=d.get("workers", 0),
                       progress=False)
    val = train.with_split("val")
    if list(train.genres) != list(model.conditions):
        raise ConfigError(f"the data's genres {list(train.genres)} differ from the model's {model.conditions}")
    if len(val) == 0:
        raise AudioVAEError("the held-out split is empty; evaluate needs held-out pieces (data.val_fraction > 0)")
    log(f"data: {len(train)} training segments ({len(train.piece_paths)} pieces), {len(val)} held-out segments "
        f"({len(val.piece_paths)} pieces)")
    classifier = load_or_train_classifier(Path(classifier_path or run_dir / "classifier"), train, val,
                                          retrain=retrain_classifier, steps=classifier_steps, seed=seed, log=log)
    genres = list(model.conditions)
    real = per_genre_accuracy(classify(classifier, val.segments), val.genre_ids, genres)
    log("reconstruction of held-out segments ...")
    recon = {k.removeprefix("val/"): v for k, v in
             reconstruction_metrics(model, val.segments, val.genre_ids, velocities=val.velocities).items()}
    log(f"genre control ({per_genre} segments per genre and temperature) ...")
    control, generated = genre_control(model, classifier, per_genre=per_genre, temperatures=temperatures, seed=seed,
                                       guidance=guidance)
    log("note statistics (an independent judge on real training windows, overlapping areas) ...")
    notes, note_judge = note_statistics(model, data, train, val, generated, per_genre=per_genre, seed=seed)
    log("genre transfer ...")
    transfer = transfer_accuracy(model, classifier, val.segments, val.genre_ids, per_genre=transfer_per_genre,
                                 guidance=guidance, velocities=val.velocities, note_judge=note_judge, seed=seed)
    log("novelty (nearest training segment) ...")
    novel = novelty(generated, train.segments, val.segments)
    log(f"form ({form_pieces} pieces of {form_bars} bars per genre against held-out pieces) ...")
    form = long_form(model, data, val.piece_paths, bars=form_bars, pieces=form_pieces, temperature=temperatures[-1],
                     seed=seed, guidance=guidance)
    return {"model": str(folder), "data": str(data), "genres": genres, "classifier_real_held_out": real,
            "reconstruction": recon, "genre_control": control, "transfer": transfer,
            "novelty": novel | {"temperature": float(temperatures[-1])},
            "guidance": guidance if guidance is not None else guidance_setting(model),
            "note_statistics": notes | {"temperature": float(temperatures[-1])},
            "form": {"bars": form_bars, "threshold": SIMILAR, "per_genre": form},
            "seconds": round(time.perf_counter() - started, 1)}


def guidance_setting(model) -> str:
    """The model's own guidance as the report states it: "2" or "2 (baroque_chorale 3, german_folk 1)"."""
    own = ", ".join(f"{g} {w:g}" for g, w in model.genre_guidance.items())
    return f"{model.guidance:g}" + (f" ({own})" if own else "")


def long_form(model, data, piece_paths: list[str], *, bars: int, pieces: int, temperature: float, seed: int,
              guidance: float | None) -> dict:
    """Repetition shares (audiovae.midi.form) of ``pieces`` generated pieces of ``bars`` bars per genre against
    the whole ``bars``-bar windows of the held-out pieces (paths relative to ``data``)."""
    from .form import form_report, piece_windows
    from .generate import generate_pieces, read_roll

    steps_per_bar = model.roll.steps_per_bar
    real = {g: [] for g in model.conditions}
    for rel in piece_paths:
        try:
            roll, _ = read_roll(model, Path(data) / rel)
        except AudioVAEError:  # a piece the scan used and that fails now is passed over
            continue
        real[rel.split("/")[0]] += piece_windows(roll, bars, steps_per_bar)
    generated = {g: generate_pieces(model, n=pieces, bars=bars, genre=g, temperature=temperature, seed=seed,
                                    guidance=guidance) for g in model.conditions}
    return form_report(generated, real, steps_per_bar)


def note_statistics(model, data, train, val, generated: np.ndarray, *, per_genre: int, seed: int = 0):
    """Genre control judged from note statistics (audiovae.midi.metrics), and how closely generated windows match
    real held-out windows of their genre (overlapping areas), with each genre's velocity spread (mean within-window
    standard deviation) generated against real. ``generated``: the segments genre_control made, in blocks of
    ``per_genre`` per genre. Returns (that report, the fitted judge)."""
    from .metrics import NoteStatisticsJudge, folder_windows, overlapping_areas, rolls_to_windows

    genres = list(model.conditions)
    train_features, train_ids = folder_windows(data, train.piece_paths, genres)
    val_features, val_ids = folder_windows(data, val.piece_paths, genres)
    judge = NoteStatisticsJudge(seed).fit(train_features, train_ids)
    features, kept = rolls_to_windows(generated, model.roll)
    wanted = np.repeat(np.arange(len(genres)), per_genre)[kept]
    overlap, spread = {}, {}
    for g, genre in enumerate(genres):
        mine = [f for f, w in zip(features, wanted) if w == g]
        real = [f for f, y in zip(val_features, val_ids) if y == g]
        if len(mine) >= 2 and len(real) >= 2:
            overlap[genre] = overlapping_areas(mine, real, seed=seed)
        if mine and real:
            spread[genre] = {"generated": float(np.mean([f["velocity_spread"] for f in mine])),
                             "real": float(np.mean([f["velocity_spread"] for f in real]))}
    report = {"judge_real_held_out": per_genre_accuracy(judge.predict(val_features), val_ids, genres),
              "control": per_genre_accuracy(judge.predict(features), wanted, genres) if len(features) else {},
              "empty_segments": int(len(generated) - len(kept)), "overlap": overlap, "velocity_spread": spread,
              "windows": {"train": len(train_features), "held_out": len(val_features)}}
    return report, judge


def transfer_into(table: dict[str, dict[str, float]], genres: list[str]) -> dict[str, float]:
    """Per target genre, the mean share over the sources of a source x target transfer table (NaN for a target no
    source was moved to)."""
    shares = {g: [row[g] for row in table.values() if g in row] for g in genres}
    return {g: float(np.mean(found)) if found else float("nan") for g, found in shares.items()}


def format_report(report: dict) -> str:
    """The evaluation as a plain-text table."""
    genres = report["genres"]
    r, real = report["reconstruction"], report["classifier_real_held_out"]
    lines = [f"model {report['model']} on {report['data']}",
             f"held-out reconstruction ({int(r['segments'])} segments, posterior mode, threshold 0.5): "
             f"onset F1 {r['onset_f1']:.3f}, sustain F1 {r['sustain_f1']:.3f}, KL {r['kl']:.1f} nats, "
             f"-ELBO {r['nelbo']:.1f} nats per segment, {int(r['active_units'])} active units",
             "",
             f"genre accuracy (classifier trained on real training pieces; share assigned to the wanted genre; "
             f"generation with classifier-free guidance {report.get('guidance', 0.0)})"]
    columns = ["real held-out"] + [f"generated {t}" for t in report["genre_control"]] + ["transfer into"]
    width = max(len(g) for g in genres + ["overall", "balanced (mean)"]) + 2
    lines.append("".join([" " * width] + [f"{c:>16}" for c in columns]))
    conv_into = transfer_into(report["transfer"]["table"], genres)

    def cells(values):
        return "".join(f"{v:>16.1%}" if v == v else f"{'-':>16}" for v in values)

    for g in genres:
        values = [real["per_genre"].get(g, float("nan"))]
        values += [c["per_genre"].get(g, float("nan")) for c in report["genre_control"].values()]
        values.append(conv_into[g])
        lines.append(f"{g:<{width}}" + cells(values))
    lines.append(f"{'overall':<{width}}" + cells([real["accuracy"]] + [c["accuracy"] for c in
                                                  report["genre_control"].values()] + [report["transfer"]["accuracy"]]))
    lines.append(f"{'balanced (mean)':<{width}}" + cells([real["balanced"]] + [c["balanced"] for c in
                                                          report["genre_control"].values()] + [float("nan")]))
    kept = report["transfer"].get("kept")
    if kept:
        lines.append(f"transfer keeps a sustain IoU of {kept['transferred']:.3f} with its source (the target genre's "
                     f"own samples: {kept['target_samples']:.3f})")
    ns = report["note_statistics"]
    lines += ["", f"note statistics (read from the notes with pretty_midi; a gradient-boosted judge trained on "
                  f"{ns['windows']['train']} real training windows of 4 bars, "
                  f"{ns['judge_real_held_out']['accuracy']:.1%} "
                  f"right on {ns['windows']['held_out']} held-out ones; generated at T={ns['temperature']:g}, "
                  f"{ns['empty_segments']} empty)",
              f"{'':<{width}}{'real held-out':>16}{'control':>16}{'transfer into':>16}{'mean OA':>16}"
              f"{'velocity spread':>20}"]
    control = (ns["control"] or {}).get("per_genre", {})
    note_transfer = report["transfer"].get("notes", {})
    notes_into = transfer_into(note_transfer.get("table", {}), genres)
    for g in genres:
        oa = f"{ns['overlap'][g]['mean']:>16.3f}" if g in ns["overlap"] else f"{'-':>16}"
        vs = ns.get("velocity_spread", {}).get(g)
        spread = f"{vs['generated']:>9.1f} vs {vs['real']:<6.1f}" if vs else f"{'-':>20}"
        lines.append(f"{g:<{width}}" + cells([ns["judge_real_held_out"]["per_genre"].get(g, float("nan")),
                                              control.get(g, float("nan")),
                                              notes_into[g]])
                     + oa + spread)
    if ns["control"]:
        overall = [ns["judge_real_held_out"]["accuracy"], ns["control"]["accuracy"],
                   note_transfer.get("accuracy", float("nan"))]
        lines.append(f"{'overall':<{width}}" + cells(overall))
    n = report["novelty"]
    lines += ["", f"novelty: largest sustain IoU with any training segment (generated at T={n['temperature']:g}, "
                  f"{n['generated']['segments']} segments; held-out real segments for reference)"]
    for name, key in (("generated", "generated"), ("held-out real", "held_out_real")):
        v = n[key]
        lines.append(f"  {name:<14} max {v['max']:.3f}   mean {v['mean']:.3f}   share > 0.8: {v['share_above_0.8']:.1%}")
    form = report.get("form")
    if form:
        lines += ["", f"form: share of bar pairs that repeat (sustain IoU >= {form['threshold']:g}) in "
                      f"{form['bars']}-bar pieces, generated against held-out windows"]
        for g, row in form["per_genre"].items():
            lines.append(f"  {g:<{width}} generated {row['generated']:.3f} ({row['generated_pieces']})   "
                         f"real {row['real']:.3f} ({row['real_pieces']})")
    lines.append(f"({report['seconds']:.0f} s)")
    return "\n".join(lines)


def write_report(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return path
