"""The `audiovae` command. Each verb is a small function; `audiovae VERB --help` explains every flag."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli_args as shared
from .errors import AudioVAEError

EPILOG = "Docs and recipes: see README.md. Every verb takes --help."


# --- preprocess ----------------------------------------------------------------------------------------------
def cmd_preprocess(args) -> int:
    from .train.config import load_recipe, recipe_from_tree

    recipe = load_recipe(args.recipe, args.set) if args.recipe else recipe_from_tree({"task": args.kind})
    if recipe.task == "mel_vae":
        from .data.audio_folder import preprocess_audio_folder

        d = recipe.data
        _, report = preprocess_audio_folder(args.data, cache_dir=args.cache, mel_config=recipe.mel_config,
                                            normalization=d.normalization, labels=d.labels,
                                            min_seconds=d.min_seconds, workers=args.workers, progress=True)
    else:
        from .data.midi_folder import scan_midi_folder
        from .train.midi_task import hop_steps_from, roll_config_from

        # The same grid and hop as training, so `train --set data.cache_dir=CACHE` finds every file converted.
        report = scan_midi_folder(args.data, cache_dir=args.cache, config=roll_config_from(recipe),
                                  hop_steps=hop_steps_from(recipe), workers=args.workers).report
    print(report.summary())
    return 0


# --- train ---------------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    import json

    from .train.config import apply_overrides, load_recipe, read_toml_tree, recipe_from_tree
    from .train.loop import train

    run_dir = Path(args.out)
    resolved = run_dir / "recipe.resolved.toml"
    overrides = list(args.set)
    if args.data:
        folders = [str(Path(d).resolve()) for d in args.data]
        overrides.append(f"data.path={json.dumps(folders[0] if len(folders) == 1 else folders)}")
    if args.resume and resolved.is_file():
        recipe = recipe_from_tree(apply_overrides(read_toml_tree(resolved), overrides))
    elif args.recipe:
        recipe = load_recipe(args.recipe, overrides)
    else:
        raise AudioVAEError(f"give a RECIPE (or --resume an existing run; {resolved} was not found)")
    if not args.resume and (run_dir / "checkpoints").exists():
        raise AudioVAEError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    train(recipe, run_dir, resume_run=args.resume, progress=not args.no_progress)
    return 0


# --- mel inference verbs -------------------------------------------------------------------------------------
def cmd_reconstruct(args) -> int:
    import torch

    from .audio.io import write_wav
    from .genres import genre_condition
    from .inference import clip_to_mel, mel_to_waveform, model_mel_config

    model = shared.load_model_for(args, "audio")
    with torch.no_grad():
        mel = clip_to_mel(model, args.input).unsqueeze(0)
        cond = genre_condition(model, args.genre)
        mel_hat = model.decode(model.encode(mel, cond).mode(), cond, frames=mel.shape[-1])[0]
        wav = mel_to_waveform(model, mel_hat, vocoder=args.vocoder, n_iter=args.n_iter)
    config = model_mel_config(model)
    write_wav(args.output, wav, config.sample_rate)
    if args.png:
        from .audio.plots import save_mel_png

        save_mel_png(args.png, [mel[0], mel_hat], ["input", "reconstruction"], frames_per_second=config.frames_per_second)
    print(f"wrote {args.output} ({len(wav) / config.sample_rate:.2f} s)")
    return 0


def cmd_sample(args) -> int:
    import torch

    from .audio.io import write_wav
    from .audio.plots import save_mel_png
    from .genres import genre_condition
    from .inference import mel_to_waveform, model_mel_config
    from .latent import prior_samples

    if args.n < 1 or args.seconds <= 0 or args.temperature < 0:
        raise AudioVAEError(f"need --n >= 1, --seconds > 0 and --temperature >= 0; got {args.n}, {args.seconds}, "
                            f"{args.temperature}")
    model = shared.load_model_for(args, "audio")
    config = model_mel_config(model)
    frames = config.num_frames(int(args.seconds * config.sample_rate))
    cond = genre_condition(model, args.genre)
    out = Path(args.out)
    guidance = model.guidance if args.guidance is None else args.guidance
    z = prior_samples(model, args.n, temperature=args.temperature, seed=args.seed,
                      frames=model.latent_frames(frames), cond=cond, guidance=guidance)
    with torch.no_grad():
        for i in range(args.n):
            mel = model.decode(z[i:i + 1], cond, frames=frames)[0]
            wav = mel_to_waveform(model, mel, vocoder=args.vocoder, n_iter=args.n_iter)
            write_wav(out / f"sample_{i:03d}.wav", wav, config.sample_rate)
            save_mel_png(out / f"sample_{i:03d}.png", [mel], [f"sample {i}"], frames_per_second=config.frames_per_second)
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_continue(args) -> int:
    import torch

    from .audio.io import write_wav
    from .genres import genre_condition
    from .inference import clip_to_mel, mel_to_waveform, model_mel_config

    if args.seconds <= 0 or args.temperature < 0:
        raise AudioVAEError(f"need --seconds > 0 and --temperature >= 0; got {args.seconds}, {args.temperature}")
    model = shared.load_model_for(args, "audio")
    if model.latent_prior is None:
        raise AudioVAEError(f"{args.model} has no learned prior to continue a clip with; fit one with "
                            "recipes/mel_prior.toml")
    config = model_mel_config(model)
    guidance = model.guidance if args.guidance is None else args.guidance
    with torch.no_grad():
        mel = clip_to_mel(model, args.input)[None]
        cond = genre_condition(model, args.genre)
        z = model.encode(mel, cond).mode()
        extra = model.latent_frames(config.num_frames(int(args.seconds * config.sample_rate)))
        generator = torch.Generator().manual_seed(args.seed)
        eps = torch.randn(1, z.shape[1], extra, generator=generator).to(z) * args.temperature
        z = torch.cat([z, model.latent_from_noise(eps, cond, guidance=guidance, prefix=z)], -1)
        out = model.decode(z, cond)[0]
        wav = mel_to_waveform(model, out, vocoder=args.vocoder, n_iter=args.n_iter)
    write_wav(args.out, wav, config.sample_rate)
    if args.png:
        from .audio.plots import save_mel_png

        save_mel_png(args.png, [out], [f"{Path(args.input).name} + {args.seconds:g} s continued"],
                     frames_per_second=config.frames_per_second)
    print(f"wrote {args.out} ({len(wav) / config.sample_rate:.1f} s: the clip, then {args.seconds:g} s from the prior)")
    return 0


def cmd_blend(args) -> int:
    import torch

    from .audio.io import write_wav
    from .genres import genre_condition
    from .inference import clip_to_mel, mel_to_waveform, model_mel_config
    from .latent import latent_blend

    if not 0.0 <= args.alpha <= 1.0:
        raise AudioVAEError(f"--alpha must be in [0, 1], got {args.alpha}")
    model = shared.load_model_for(args, "audio")
    with torch.no_grad():
        mel_a, mel_b = clip_to_mel(model, args.a), clip_to_mel(model, args.b)
        frames = min(mel_a.shape[-1], mel_b.shape[-1])
        cond = genre_condition(model, args.genre)
        # the posterior means: a Gaussian's mode; a VQ model's pre-quantisation vectors (the blend is quantised again)
        z_a = model.encode(mel_a[None, :, :frames], cond).mean[0]
        z_b = model.encode(mel_b[None, :, :frames], cond).mean[0]
        z, _ = latent_blend(model, z_a[None], z_b[None], args.alpha, method=args.method, cond_a=cond, cond_b=cond)
        mel = model.decode(z, cond, frames=frames)[0]
        wav = mel_to_waveform(model, mel, vocoder=args.vocoder, n_iter=args.n_iter)
    write_wav(args.out, wav, model_mel_config(model).sample_rate)
    print(f"wrote {args.out}")
    return 0


# --- VQ codes -------------------------------------------------------------------------------------------------
def _vq_model(args):
    """The VQ model named by ``args.model``; AudioVAEError when the folder holds another kind of model."""
    from .models.mel_vqvae import MelVQVAE

    model = shared.load_model_for(args, "audio")
    if not isinstance(model, MelVQVAE):
        raise AudioVAEError(f"{args.model} holds a {type(model).__name__}, which has no discrete codes; codes need a "
                            "VQ model (recipes/mel_vqvae.toml)")
    return model


def cmd_codes(args) -> int:
    import torch

    from .codes import write_codes
    from .genres import genre_condition
    from .inference import clip_to_mel

    model = _vq_model(args)
    with torch.no_grad():
        mel = clip_to_mel(model, args.input)[None]
        codes = model.encode_codes(mel, genre_condition(model, args.genre))[0]
    write_codes(args.out, codes, model, genre=args.genre, frames=mel.shape[-1])
    print(f"wrote {args.out}: {codes.shape[0]} x {codes.shape[1]} codes ({model.num_codebooks} codebook(s) of "
          f"{model.codebook_size}, {model.bits_per_second:.0f} bits/s)")
    return 0


def cmd_decode_codes(args) -> int:
    import torch

    from .audio.io import write_wav
    from .codes import read_codes
    from .genres import genre_condition
    from .inference import mel_to_waveform, model_mel_config

    model = _vq_model(args)
    codes, facts = read_codes(args.codes, model)
    genre = args.genre if args.genre is not None else facts.get("genre")
    with torch.no_grad():
        mel = model.decode_codes(codes[None], genre_condition(model, genre), frames=facts.get("frames"))[0]
        wav = mel_to_waveform(model, mel, vocoder=args.vocoder, n_iter=args.n_iter)
    config = model_mel_config(model)
    write_wav(args.output, wav, config.sample_rate)
    if args.png:
        from .audio.plots import save_mel_png

        save_mel_png(args.png, [mel], [f"decoded from {Path(args.codes).name}"],
                     frames_per_second=config.frames_per_second)
    print(f"wrote {args.output} ({len(wav) / config.sample_rate:.2f} s)")
    return 0


def cmd_score(args) -> int:
    import json

    from ._atomic import atomic_write_text
    from .checkpoint import load
    from .scoring import calibration_of, score_files

    model = load(args.model, device=args.device)
    if model.modality == "audio" and calibration_of(model) is not None:
        return _score_spans(model, args)
    if model.modality == "midi":
        return _score_bars(model, args)
    if args.png or args.csv or args.threshold is not None:
        raise AudioVAEError(f"--png, --csv and --threshold need an audio model with an anomaly calibration; "
                            f"{args.model} has none (`audiovae calibrate MODEL --data DIR` adds it)")
    results = score_files(model, args.files)
    scored = sorted((r for r in results if r[1] is not None), key=lambda r: -r[1])
    failed = [r for r in results if r[1] is None]
    width = max([len("file")] + [len(r[0]) for r in scored])
    print(f"{'rank':>4}  {'file':<{width}}  {'score':>10}   (negative ELBO, nats per frame; most anomalous first)")
    for rank, (path, score, _) in enumerate(scored, 1):
        print(f"{rank:>4}  {path:<{width}}  {score:>10.3f}")
    _print_failed([(path, reason) for path, _, reason in failed])
    if args.json:
        rows = [{"rank": rank, "path": p, "score": s} for rank, (p, s, _) in enumerate(scored, 1)]
        rows += [{"rank": None, "path": p, "score": None, "error": e} for p, _, e in failed]
        atomic_write_text(args.json, json.dumps({"model": str(args.model), "unit": "nats per frame", "files": rows},
                                                indent=2))
    if not scored:
        raise AudioVAEError(f"none of the {len(results)} files could be scored")
    return 0


def _print_failed(failed: list[tuple[str, str]]) -> None:
    if failed:
        print(f"not scored ({len(failed)}):")
        for path, reason in failed:
            print(f"  {path}: {reason}")


def _score_spans(model, args) -> int:
    """Calibrated scores and flagged spans of audio files (see audiovae.scoring.inspect_files)."""
    import csv
    import io
    import json

    from ._atomic import atomic_write_text
    from .latent.anomaly import latent_rate
    from .scoring import calibration_of, inspect_files

    calibration = calibration_of(model)
    threshold = calibration.threshold if args.threshold is None else args.threshold
    window = calibration.window / latent_rate(model)
    results = inspect_files(model, args.files, threshold=threshold)
    scored = sorted((r for r in results if r.error is None), key=lambda r: -r.score)
    width = max([len("file")] + [len(r.path) for r in scored])
    print(f"{'rank':>4}  {'file':<{width}}  {'score':>6}  flagged spans (score: standard deviations above the "
          f"model's typical held-out {window:.2g} s window; threshold {threshold:g}; most anomalous first)")
    for rank, r in enumerate(scored, 1):
        spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b, _ in r.spans)
        if r.whole:
            spans = f"the whole recording ({'; '.join(r.whole)})" + (spans and "; " + spans)
        print(f"{rank:>4}  {r.path:<{width}}  {r.score:>6.2f}  {spans or '-'}")
    _print_failed([(r.path, r.error) for r in results if r.error is not None])
    if args.png:
        from .audio.plots import anomaly_figure, save_figure

        folder, used = Path(args.png), set()
        for r in scored:
            name = Path(r.path).stem
            while name in used:
                name += "_"
            used.add(name)
            save_figure(anomaly_figure(r.mel, r.curve, r.spans, threshold=threshold,
                                       frames_per_second=model.frontend.frames_per_second,
                                       curve_rate=r.frames_per_second,
                                       title=Path(r.path).name + (f" (whole: {'; '.join(r.whole)})"
                                                                  if r.whole else "")),
                        folder / f"{name}_anomaly.png")
        print(f"wrote {len(scored)} pictures to {folder}")
    spans = [{"path": r.path, "start": round(a, 3), "end": round(b, 3), "peak": round(p, 3)}
             for r in scored for a, b, p in r.spans]
    if args.json:
        rows = [{"rank": rank, "path": r.path, "score": round(r.score, 3), "whole": r.whole,
                 "motion": round(r.motion, 3), "hum": None if r.hum is None else round(r.hum, 3), "hum_hz": r.hum_hz,
                 "spans": [{k: v for k, v in s.items() if k != "path"} for s in spans if s["path"] == r.path]}
                for rank, r in enumerate(scored, 1)]
        rows += [{"rank": None, "path": r.path, "score": None, "error": r.error} for r in results if r.error]
        atomic_write_text(args.json, json.dumps({
            "model": str(args.model), "threshold": threshold, "files": rows,
            "unit": f"standard deviations above the model's typical held-out {window:.2g} s window"}, indent=2))
    if args.csv:
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=["path", "start", "end", "peak", "kind"], lineterminator="\n")
        writer.writeheader()
        # a recording atypical as a whole is one row from its start to its end, peaking at its score
        seconds = lambda r: round(r.mel.shape[-1] / model.frontend.frames_per_second, 3)  # noqa: E731
        writer.writerows([{"path": r.path, "start": 0.0, "end": seconds(r), "peak": round(r.score, 3), "kind": "whole"}
                          for r in scored if r.whole] + [row | {"kind": "window"} for row in spans])
        atomic_write_text(args.csv, table.getvalue())
    if not scored:
        raise AudioVAEError(f"none of the {len(results)} files could be scored")
    return 0


def _score_bars(model, args) -> int:
    """Per-bar scores of MIDI files (see audiovae.scoring.inspect_midi)."""
    import json

    from ._atomic import atomic_write_text
    from .scoring import MIDI_THRESHOLD, inspect_files

    if args.png or args.csv:
        raise AudioVAEError("--png and --csv are for audio models; for MIDI files use --json (every bar's score)")
    threshold = MIDI_THRESHOLD if args.threshold is None else args.threshold
    results = inspect_files(model, args.files, threshold=threshold)
    scored = sorted((r for r in results if r.error is None), key=lambda r: -r.score)
    width = max([len("file")] + [len(r.path) for r in scored])
    print(f"{'rank':>4}  {'file':<{width}}  {'worst':>6}  flagged bars (score: robust standard deviations above the "
          f"piece's own typical bar; threshold {threshold:g}; most anomalous first)")
    for rank, r in enumerate(scored, 1):
        bars = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b, _ in r.flagged) or "-"
        print(f"{rank:>4}  {r.path:<{width}}  {r.score:>6.2f}  {bars}")
    _print_failed([(r.path, r.error) for r in results if r.error is not None])
    if args.json:
        rows = [{"rank": rank, "path": r.path, "score": round(r.score, 3),
                 "flagged_bars": [{"first": a, "last": b, "peak": round(p, 3)} for a, b, p in r.flagged],
                 "bar_scores_nats": [round(float(v), 2) for v in r.bar_scores]} for rank, r in enumerate(scored, 1)]
        rows += [{"rank": None, "path": r.path, "score": None, "error": r.error} for r in results if r.error]
        atomic_write_text(args.json, json.dumps({"model": str(args.model), "threshold": threshold, "files": rows,
                                                 "unit": "robust standard deviations above the piece's typical bar"},
                                                indent=2))
    if not scored:
        raise AudioVAEError(f"none of the {len(results)} files could be scored")
    return 0


# --- calibrate -----------------------------------------------------------------------------------------------
def cmd_calibrate(args) -> int:
    from .checkpoint import read_config, resolve, update_config
    from .data.audio_folder import AudioFolder
    from .latent.anomaly import FALSE_ALARM_SHARE
    from .scoring import held_out_calibration

    model = shared.load_model_for(args, "audio")
    folder = resolve(args.model)
    recipe = read_config(folder).get("recipe") or {}
    data, seed = recipe.get("data", {}), recipe.get("train", {}).get("seed", 0)
    _, held_out = AudioFolder.splits(args.data if len(args.data) > 1 else args.data[0], cache_dir=args.cache,
                                     mel_config=model.frontend, val_fraction=data.get("val_fraction", 0.1),
                                     labels=bool(model.conditions), normalization=data.get("normalization", "peak"),
                                     min_seconds=data.get("min_seconds", 0.5), seed=seed,
                                     split_group=data.get("split_group", "file"))
    calibration = held_out_calibration(model, held_out, window_seconds=args.window, threshold=args.threshold)
    if calibration is None:
        raise AudioVAEError("the split holds no held-out recordings to calibrate on; pass the folders the model was "
                            "trained on (its recipe's data.val_fraction must be > 0)")
    update_config(folder, {"anomaly_calibration": calibration})
    print(f"calibrated {folder} on {calibration['recordings']} held-out recordings ({calibration['windows']} "
          f"windows of {args.window:g} s); threshold {calibration['threshold']:g} standard deviations"
          + ("" if args.threshold is not None else
             f" (exceeded by {FALSE_ALARM_SHARE:.1%} of the held-out windows)")
          + f"; whole recordings: motion above {calibration['motion_threshold']:g} SD"
          + (f", mains hum above {calibration['hum_threshold']:g} SD" if calibration.get("hum") else ""))
    return 0


# --- export --------------------------------------------------------------------------------------------------
def cmd_export(args) -> int:
    from .checkpoint import load
    from .export import export_model
    from .inference import GRIFFIN_LIM, resolve_vocoder_choice, vocoder_for

    model = load(args.model, device="cpu")
    vocoder = None
    if getattr(model, "modality", None) == "audio":
        choice = resolve_vocoder_choice(model, args.vocoder)
        if choice == GRIFFIN_LIM:
            print("no neural vocoder fits this model's front end (or --vocoder griffin-lim was asked): exporting the "
                  "decoder only; Griffin-Lim is iterative and is not exported")
        else:
            vocoder = vocoder_for(model, choice)
    description = export_model(model, args.format, args.out, vocoder=vocoder)
    for name, graph in description["graphs"].items():
        print(f"wrote {Path(args.out) / graph['file']}: {' + '.join(graph['inputs'])} -> {graph['output']} "
              f"(checked against eager PyTorch: max |diff| {graph['checked_max_abs_diff']:.1e})")
    print(f"wrote {Path(args.out) / 'export.json'} (inputs, outputs, genres, mel front end)")
    return 0


# --- demo ----------------------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from .demo.app import build_demo, launch
    except ImportError as exc:
        raise AudioVAEError(f"the demo needs gradio ({exc}); install it with `pip install 'audiovae[demo]'`") from exc

    if args.max_seconds <= 0:
        raise AudioVAEError(f"--max-seconds must be > 0, got {args.max_seconds}")
    demo = build_demo(args.mel_model, args.midi_model, device=args.device, max_seconds=args.max_seconds,
                      vocoder=args.vocoder)
    launch(demo, host=args.host, port=args.port, share=args.share)
    return 0


# --- parser --------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiovae", description="Variational autoencoders for music and sound.",
                                     epilog=EPILOG)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"audiovae {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    p = verbs.add_parser("preprocess", help="scan a data folder and fill the feature cache",
                         description="Scan an audio (or MIDI) folder once and cache its features. Resumable: an "
                         "interrupted pass continues; an unchanged folder costs nothing. The data folder is only read.")
    p.add_argument("data", help="folder of audio files (genre subfolders give labels)")
    p.add_argument("--cache", required=True, help="cache folder (outside the data folder); pass the same as "
                   "data.cache_dir when training")
    p.add_argument("--recipe", help="recipe whose front end / grid to use [default: the built-in defaults]")
    p.add_argument("--kind", choices=("mel_vae", "midi_cvae"), default="mel_vae",
                   help="what the folder holds when no --recipe is given [default: mel_vae = audio]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes [default: 2]")
    p.set_defaults(func=cmd_preprocess)

    p = verbs.add_parser("train", help="train a model from a TOML recipe",
                         description="Train a recipe on a data folder into a run folder (checkpoints, metrics.jsonl, "
                         "sample PNG/WAV, final model in RUN/model). Runs under torchrun for several processes.")
    p.add_argument("recipe", nargs="?", help="TOML recipe, e.g. recipes/mel_vae.toml (optional with --resume)")
    p.add_argument("--data", action="append", help="data folder (sets data.path); repeat it to train an audio "
                   "model on several folders at once (genres pooled by subfolder name)")
    p.add_argument("--out", required=True, help="run folder to create (or to continue with --resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.max_steps=500 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("reconstruct", help="encode and decode an audio file",
                         description="Encode a clip to its latent (posterior mode), decode it and vocode it to WAV.")
    shared.add_model(p, "audio")
    p.add_argument("input", help="audio file (wav, flac, ogg, mp3, aiff)")
    p.add_argument("output", help="WAV file to write")
    p.add_argument("--png", help="also write input|reconstruction mel picture here")
    shared.add_decoding(p)
    p.set_defaults(func=cmd_reconstruct)

    p = verbs.add_parser("sample", help="generate audio from the prior",
                         description="Draw prior noise N(0, temperature^2 I), map it through the model's prior "
                         "(under --genre), decode and vocode it.")
    shared.add_model(p, "audio")
    p.add_argument("--n", type=int, default=4, help="how many clips [default: 4]")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each clip [default: 4]")
    shared.add_temperature(p, 1.0)
    shared.add_seed(p)
    shared.add_guidance(p)
    p.add_argument("--out", required=True, help="folder for sample_NNN.wav/.png")
    shared.add_decoding(p)
    p.set_defaults(func=cmd_sample)

    p = verbs.add_parser("continue", help="let the model's prior carry a clip on",
                         description="Encode a clip, then draw --seconds more latent frames from the model's learned "
                         "prior, each conditioned on everything before it (the clip first), and decode and vocode "
                         "the whole. Needs a model with a learned prior (recipes/mel_prior.toml).")
    shared.add_model(p, "audio")
    p.add_argument("input", help="audio file to continue")
    p.add_argument("--seconds", type=float, default=5.0, help="how much to add [default: 5]")
    shared.add_temperature(p, 1.0)
    shared.add_seed(p)
    shared.add_guidance(p)
    p.add_argument("--out", required=True, help="WAV file to write (the clip and its continuation)")
    p.add_argument("--png", help="also write the mel picture here")
    shared.add_decoding(p)
    p.set_defaults(func=cmd_continue)

    p = verbs.add_parser("blend", help="blend two clips by latent interpolation",
                         description="Encode A and B (cropped to the shorter), interpolate their latents frame by "
                         "frame, decode and vocode.")
    shared.add_model(p, "audio")
    p.add_argument("a", help="first audio file (alpha = 0)")
    p.add_argument("b", help="second audio file (alpha = 1)")
    p.add_argument("--alpha", type=float, default=0.5, help="0 = A, 1 = B [default: 0.5]")
    p.add_argument("--method", choices=("slerp", "lerp", "noise"), default="slerp",
                   help="slerp or lerp of the latents, or noise: slerp in the noise space of the model's learned "
                   "prior, for even steps [default: slerp]")
    p.add_argument("--out", required=True, help="WAV file to write")
    shared.add_decoding(p)
    p.set_defaults(func=cmd_blend)

    p = verbs.add_parser("codes", help="encode an audio file to a VQ model's integer codes",
                         description="Encode a clip with a VQ model (recipes/mel_vqvae.toml) and write its codes "
                         "[num_codebooks, latent frames] as .npy; the file records the model's codebook size and a "
                         "fingerprint of its codebooks, so decode-codes refuses it for another model.")
    shared.add_model(p, "VQ")
    p.add_argument("input", help="audio file (wav, flac, ogg, mp3, aiff)")
    p.add_argument("--out", required=True, help=".npy file to write")
    shared.add_genre(p)
    shared.add_device(p)
    p.set_defaults(func=cmd_codes)

    p = verbs.add_parser("decode-codes", help="turn a VQ model's codes back into sound",
                         description="Decode a codes .npy written by `audiovae codes` with the same model and vocode "
                         "it; codes of another model (other codebook size or codebooks) are refused.")
    shared.add_model(p, "VQ")
    p.add_argument("codes", help="codes .npy from `audiovae codes`")
    p.add_argument("output", help="WAV file to write")
    p.add_argument("--png", help="also write the mel picture here")
    p.add_argument("--genre", help="genre condition to decode with, a name or a mixture [default: the one the "
                   "codes were encoded with]")
    shared.add_vocoder(p)
    shared.add_device(p)
    p.set_defaults(func=cmd_decode_codes)

    p = verbs.add_parser("score", help="rank files by how anomalous the model finds them, and say where",
                         description="Anomaly scores, most anomalous first. For a mel model with an anomaly "
                         "calibration (every model trained by this version, and default-mel): each file's score is "
                         "its worst 0.25 s window in standard deviations above the model's typical held-out window "
                         "(the window's latent KL, its reconstruction error against a background model and its "
                         "systematic reconstruction error, see the README), or, when larger, how unlike music its "
                         "latent moves over 8 s (steady noise, test tones) or how strong a steady mains hum line "
                         "(50/60 Hz) is, each against the model's held-out recordings (the whole recording is flagged), "
                         "and "
                         "the time spans above --threshold are listed (--png draws them, --json/--csv write them). "
                         "MIDI models: each bar's negative ELBO against the piece's own typical bar, and the bars "
                         "above --threshold (--json: every bar). Older mel models without a calibration: the "
                         "negative ELBO per frame. Files that cannot be read are listed with the reason at the end.")
    shared.add_model(p)
    p.add_argument("files", nargs="+", help="audio files (mel models) or MIDI files (MIDI models)")
    p.add_argument("--threshold", type=float, help="flag windows (bars, for MIDI) scoring above this many "
                   "standard deviations [default: the model's calibration; MIDI: 8]")
    p.add_argument("--png", help="folder for one picture per file: the mel, the anomaly curve, the flagged spans")
    p.add_argument("--json", help="also write the ranking (and spans) as JSON here; per file: "
                   "score, whole (why the whole recording is flagged), motion and hum (SD), hum_hz, spans")
    p.add_argument("--csv", help="also write the flagged spans as CSV here (path, start, end, peak, kind: window, "
                   "or whole for a recording atypical as a whole)")
    shared.add_device(p)
    p.set_defaults(func=cmd_score)

    p = verbs.add_parser("calibrate", help="store how a mel model's anomaly scores run on held-out data",
                         description="Score the model's own held-out recordings (the split of its recipe, from the "
                         "folders it was trained on) and store the typical window score in its config.json, so "
                         "`audiovae score` reports standard deviations above typical and flags spans. Training "
                         "does this by itself; use it for models trained before, or to change the threshold.")
    shared.add_model(p, "audio")
    p.add_argument("--data", action="append", required=True, help="a folder the model was trained on (repeatable)")
    p.add_argument("--cache", default="/tmp/audiovae-cache", help="log-mel cache folder, outside the data "
                   "[default: /tmp/audiovae-cache]")
    p.add_argument("--threshold", type=float, help="the default threshold to store, in standard deviations "
                   "[default: the score that 0.2%% of the held-out windows exceed]")
    p.add_argument("--window", type=float, default=0.25, help="seconds the anomaly map averages over; longer flags "
                   "less clean music and misses more short defects (see the README) [default: 0.25]")
    shared.add_device(p)
    p.set_defaults(func=cmd_calibrate)

    p = verbs.add_parser("export", help="write a mel model's decoder and vocoder as TorchScript or ONNX",
                         description="Export for real-time hosts: a mel model's decoder (z and genre weights -> "
                         "log-mel) and its neural vocoder (log-mel -> waveform), or a vocoder alone, as TorchScript "
                         "(.pt) or ONNX (.onnx) graphs with dynamic batch and time axes, plus export.json describing "
                         "them. Each graph is run again after writing and checked against PyTorch (within 1e-4). "
                         "ONNX needs `pip install 'audiovae[export]'`.")
    shared.add_model(p)
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript",
                   help="graph format [default: torchscript]")
    p.add_argument("--out", required=True, help="folder to write (replaced whole if it exists)")
    shared.add_vocoder(p, iterations=False)
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("demo", help="open the Gradio demo in a browser",
                         description="Serve the demo page (Blend, MIDI by genre, Explore) on HOST:PORT. Models run on "
                         "the GPU when one is present. A model that cannot be loaded leaves its tabs with a message.")
    p.add_argument("--mel-model", action="append", help="audio model (mel VAE or any audio latent model): run or "
                   "checkpoint folder or bundled name; repeat it to offer a choice in the page [default: the bundled "
                   "default-mel]")
    p.add_argument("--midi-model", help="MIDI CVAE run or checkpoint folder [default: the bundled default-midi]")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 opens it to the network "
                   "[default: 127.0.0.1]")
    p.add_argument("--port", type=int, default=7860, help="port [default: 7860]")
    p.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link: anyone "
                   "with the link can use the demo (and upload files to this machine) while it runs")
    p.add_argument("--max-seconds", type=float, default=30.0, help="longest clip accepted, seconds [default: 30]")
    shared.add_vocoder(p, iterations=False)
    shared.add_device(p)
    p.set_defaults(func=cmd_demo)

    from .midi.cli import register_midi_verbs  # the MIDI verbs live beside their model family

    register_midi_verbs(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except AudioVAEError as exc:
        print(f"audiovae {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
