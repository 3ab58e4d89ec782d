"""The MIDI verbs of the `audiovae` command: generate-midi, transfer-midi, evaluate-midi."""
from __future__ import annotations

import re
from pathlib import Path

from .. import cli_args as shared
from ..errors import AudioVAEError, ConfigError


def _tempo_program(args, model, cond) -> tuple[float, int]:
    from .generate import genre_defaults

    tempo, program = genre_defaults(model, cond)
    if args.tempo is not None:
        if args.tempo <= 0:
            raise AudioVAEError(f"--tempo must be > 0, got {args.tempo}")
        tempo = args.tempo
    return tempo, program if args.program is None else args.program


def cmd_generate_midi(args) -> int:
    import sys

    from .generate import empty_message, empty_pieces, generate_pieces, parse_genre, save_piece

    model = shared.load_model_for(args, "midi")
    cond = parse_genre(model, args.genre)
    tempo, program = _tempo_program(args, model, cond)
    rolls = generate_pieces(model, n=args.n, bars=args.bars, genre=cond, temperature=args.temperature,
                            continuity=args.continuity, seed=args.seed, guidance=args.guidance, repeats=args.repeats)
    label = re.sub(r"[^A-Za-z0-9_.+-]+", "+", args.genre or "nogenre").strip("+")
    out = Path(args.out)
    empty = empty_pieces(rolls)
    if empty:
        names = ", ".join(f"{label}_{i:03d}" for i in empty)
        print(f"{empty_message(len(empty), len(rolls))} Not written: {names}.", file=sys.stderr)
    for i, roll in enumerate(rolls):
        if i not in empty:
            save_piece(roll, out / f"{label}_{i:03d}", config=model.roll, tempo=tempo,
                       program=program, png=args.png, preview=args.preview, velocity=args.velocity,
                       title=f"{args.genre or 'no genre'} #{i} (T={args.temperature:g})")
    written = len(rolls) - len(empty)
    if written:
        print(f"wrote {written} pieces of {args.bars} bars ({args.genre or 'no genre'}, {tempo:g} bpm, program "
              f"{program}) to {out}")
    return 0 if written else 1


def cmd_transfer_midi(args) -> int:
    from .generate import parse_genre, read_roll, save_piece, transfer_roll

    model = shared.load_model_for(args, "midi")
    target = parse_genre(model, args.to)
    if target is None:
        raise ConfigError("--to needs a genre")
    source = parse_genre(model, getattr(args, "from"))
    out = Path(args.out)
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ConfigError(f"--out must end in .mid or .midi, got {out}")
    roll, source_tempo = read_roll(model, args.input)
    out_roll = transfer_roll(model, roll, to=target, source=source, temperature=args.temperature, seed=args.seed,
                             guidance=args.guidance)
    _, program = _tempo_program(args, model, target)
    tempo = args.tempo if args.tempo is not None else source_tempo
    if not out_roll[:2].any():
        raise AudioVAEError(f"the transfer of {args.input} to {args.to} is empty; nothing was written. The model may "
                            "be under-trained; try another --guidance or a model trained longer.")
    paths = save_piece(out_roll, out.parent / out.stem, config=model.roll,
                       tempo=tempo, program=program, png=args.png, preview=args.preview, velocity=args.velocity,
                       title=f"{Path(args.input).name} -> {args.to}")
    if paths[0] != out:
        paths[0] = paths[0].replace(out)
    bars = roll.shape[1] / model.roll.steps_per_bar
    print(f"wrote {paths[0]} ({bars:.1f} bars, {getattr(args, 'from') or 'no genre'} -> {args.to}, {tempo:g} bpm)")
    return 0


def cmd_evaluate_midi(args) -> int:
    from .classify import evaluate_model, format_report, write_report

    model = shared.load_model_for(args, "midi")
    temperatures = tuple(float(t) for t in args.temperatures.split(","))
    report = evaluate_model(model, args.data, cache_dir=args.cache, classifier_path=args.classifier,
                            retrain_classifier=args.retrain_classifier, classifier_steps=args.classifier_steps,
                            per_genre=args.per_genre, transfer_per_genre=args.transfer_per_genre,
                            temperatures=temperatures, seed=args.seed, guidance=args.guidance,
                            form_bars=args.form_bars, form_pieces=args.form_pieces)
    print(format_report(report))
    if args.json:
        print(f"wrote {write_report(report, args.json)}")
    return 0


def register_midi_verbs(verbs) -> None:
    """Add generate-midi, transfer-midi and evaluate-midi to the `audiovae` sub-command parser."""
    p = verbs.add_parser("generate-midi", help="generate MIDI pieces for a genre (or a genre mix)",
                         description="Sample pieces from a trained MIDI model. Pieces longer than one segment are "
                         "decoded from a smoothly varying latent path (see --continuity) and joined without gaps.")
    shared.add_model(p, "MIDI")
    shared.add_genre(p, what="genre of the pieces")
    p.add_argument("--n", type=int, default=4, help="how many pieces [default: 4]")
    p.add_argument("--bars", type=int, default=8, help="length of each piece in bars [default: 8]")
    shared.add_temperature(p, 0.8)
    p.add_argument("--continuity", type=float, default=0.5, help="latent correlation between consecutive "
                   "segments, 0 (independent) to <1 [default: 0.5]")
    p.add_argument("--repeats", type=float, help="probability that a 4-bar segment repeats an earlier one of the "
                   "piece, 0-1 [default: the genre's own rate in its training pieces, e.g. AABB fiddle tunes]")
    shared.add_seed(p)
    p.add_argument("--out", required=True, help="folder for GENRE_NNN.mid (and .png/.wav)")
    shared.add_midi_writing(p)
    p.set_defaults(func=cmd_generate_midi)

    p = verbs.add_parser("transfer-midi", help="re-decode a MIDI file under another genre",
                         description="Encode each segment of a MIDI file (with --from's genre, else 'no genre'), "
                         "map it to its prior noise and decode that noise as the --to genre, with the target's "
                         "guidance on its prior and decoder as generation applies it (--guidance to change). The "
                         "output keeps the input's length and tempo (--tempo overrides it); --program defaults to "
                         "the target genre's instrument.")
    shared.add_model(p, "MIDI")
    p.add_argument("input", help="MIDI file to transfer")
    shared.add_genre(p, "--to", required=True, what="target genre")
    shared.add_genre(p, "--from", what="genre of the input, if known")
    shared.add_temperature(p, 0.0, what="0 = posterior mode; > 0 samples around it")
    shared.add_seed(p, what="random seed for --temperature > 0")
    p.add_argument("--out", required=True, help="MIDI file to write (.mid)")
    shared.add_midi_writing(p)
    p.set_defaults(func=cmd_transfer_midi)

    p = verbs.add_parser("evaluate-midi", help="measure reconstruction, genre control, transfer and novelty",
                         description="Train (or reuse) a genre classifier on the real training pieces of the model's "
                         "split, then report held-out reconstruction F1 and KL, genre-control accuracy of generated "
                         "segments per temperature next to the classifier's accuracy on real held-out segments, "
                         "transfer accuracy, and overlap with the nearest training segment.")
    shared.add_model(p, "MIDI")
    p.add_argument("--data", required=True, help="the MIDI folder the model was trained on (genre subfolders)")
    p.add_argument("--cache", help="segment cache folder [default: the run's cache]")
    p.add_argument("--classifier", help="classifier checkpoint folder [default: RUN/classifier]")
    p.add_argument("--retrain-classifier", action="store_true", help="train the classifier again even if saved")
    p.add_argument("--classifier-steps", type=int, default=1500, help="classifier training steps [default: 1500]")
    p.add_argument("--per-genre", type=int, default=200, help="generated segments per genre and temperature "
                   "[default: 200]")
    p.add_argument("--transfer-per-genre", type=int, default=100, help="held-out segments per source genre to "
                   "transfer [default: 100]")
    p.add_argument("--temperatures", default="0.5,0.8,1.0", help="comma-separated [default: 0.5,0.8,1.0]")
    p.add_argument("--form-bars", type=int, default=16, help="length of the pieces whose repetition structure is "
                   "compared with held-out pieces [default: 16]")
    p.add_argument("--form-pieces", type=int, default=20, help="generated pieces per genre for that [default: 20]")
    shared.add_seed(p)
    p.add_argument("--json", help="also write the report as JSON here")
    shared.add_guidance(p)
    shared.add_threads(p)
    p.set_defaults(func=cmd_evaluate_midi)
