"""Copy a trained run's model into the package as a bundled default model, with a model card.

    python recipes/export_model.py RUN default-mel --data-name audio_genres \
        --retrain "audiovae train recipes/mel_vae.toml --data ../shared/data/audio_genres --out runs/mel"

RUN is a run folder (its model/ is used) or a checkpoint folder. The model lands in
audiovae/assets/models/NAME/ (config.json, model.safetensors, MODEL_CARD.md), replacing what was there in one
rename; its config.json is written in the current format. --eval adds the JSON report of `audiovae evaluate-midi ... --json` to the card.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiovae._atomic import atomic_dir  # noqa: E402
from audiovae.pretrained import BUNDLED_MODELS, MODELS_DIR  # noqa: E402
from audiovae.checkpoint import read_config  # noqa: E402
from audiovae.checkpoint import resolve as resolve_checkpoint  # noqa: E402


def _metrics_lines(config: dict, evaluation: dict | None) -> list[str]:
    training = config.get("training", {})
    lines = [f"- {key.removeprefix('val/')}: {value:.4g}" for key, value in training.get("validation", {}).items()]
    if evaluation:
        recon = evaluation["reconstruction"]
        lines += [f"- held-out onset F1 {recon['onset_f1']:.3f}, sustain F1 {recon['sustain_f1']:.3f}, "
                  f"KL {recon['kl']:.1f} nats per segment",
                  f"- genre classifier on real held-out segments: {evaluation['classifier_real_held_out']['accuracy']:.1%}"]
        lines += [f"- genre-control accuracy at {t}: {r['accuracy']:.1%}" for t, r in evaluation["genre_control"].items()]
        lines.append(f"- transfer into the target genre: {evaluation['transfer']['accuracy']:.1%}")
        novelty = evaluation["novelty"]["generated"]
        lines.append(f"- novelty: largest sustain IoU of a generated segment with any training segment "
                     f"{novelty['max']:.3f} (mean {novelty['mean']:.3f})")
        lines += _note_statistics_lines(evaluation)
    return lines


def _note_statistics_lines(evaluation: dict) -> list[str]:
    """The independent note-statistics judge's figures and the form table of an evaluate-midi report, per genre."""
    notes = evaluation.get("note_statistics")
    if not notes:
        return []
    from audiovae.midi.classify import transfer_into

    into = transfer_into(evaluation["transfer"].get("notes", {}).get("table", {}), evaluation["genres"])
    conv_into = transfer_into(evaluation["transfer"]["table"], evaluation["genres"])
    form = evaluation.get("form", {}).get("per_genre", {})
    lines = ["", f"Note statistics (an independent gradient-boosted judge on notes read with pretty_midi, "
                 f"{notes['judge_real_held_out']['accuracy']:.1%} right on real held-out windows; generated at "
                 f"T={notes['temperature']:g}):", "",
             "| genre | control (notes) | transfer into (notes / conv) | mean OA | velocity spread gen / real | "
             "repeating bar pairs gen / real |", "|---|---|---|---|---|---|"]
    for g in evaluation["genres"]:
        spread = notes.get("velocity_spread", {}).get(g, {})
        shape = form.get(g, {})
        lines.append(f"| {g} | {notes['control']['per_genre'].get(g, float('nan')):.1%} | "
                     f"{into[g]:.1%} / {conv_into[g]:.1%}"
                     f" | {notes['overlap'].get(g, {}).get('mean', float('nan')):.3f} | "
                     f"{spread.get('generated', float('nan')):.1f} / {spread.get('real', float('nan')):.1f} | "
                     f"{shape.get('generated', float('nan')):.3f} / {shape.get('real', float('nan')):.3f} |")
    lines.append(f"| overall | {notes['control']['accuracy']:.1%} | "
                 f"{evaluation['transfer'].get('notes', {}).get('accuracy', float('nan')):.1%} / "
                 f"{evaluation['transfer']['accuracy']:.1%} | | | |")
    return lines


def _training_line(config: dict) -> str:
    training = config.get("training", {})
    return (f"{training.get('steps')} steps, {training.get('train_seconds', 0) / 60:.1f} min on "
            f"{training.get('device')} x{training.get('processes', 1)}, "
            f"{training.get('nonfinite_steps', 0)} non-finite steps skipped, stopped by "
            f"{training.get('stop_reason', 'its end')}")


def first_stage(config: dict) -> dict | None:
    """The config of the VAE a second-stage (prior) run was fitted to, when the run is one."""
    recipe = config.get("recipe", {})
    if recipe.get("task") != "mel_prior":
        return None
    return read_config(resolve_checkpoint(recipe["model"]["vae"]))


def model_card(name: str, config: dict, *, data_name: str, retrain: str, evaluation: dict | None,
               extra: str) -> str:
    recipe = config.get("recipe", {})
    args = config.get("model_args", {})
    vae = first_stage(config)
    lines = [f"# {name}", "", BUNDLED_MODELS.get(name, ""), "",
             f"- class: `{config['model_class']}`; genres: {', '.join(args.get('genres', [])) or 'none'}",
             f"- data: `{data_name}` (see the README's data section), split by file/piece with "
             f"`data.val_fraction = {recipe.get('data', {}).get('val_fraction')}`",
             f"- training: {_training_line(config)}",
             f"- model arguments: `{json.dumps({k: v for k, v in args.items() if k not in ('frontend', 'roll')})}`",
             "", "## Held-out metrics", "", *_metrics_lines(config, evaluation), ""]
    if vae is not None:
        lines[len(lines) - 1:len(lines) - 1] = [
            "", "## First stage: the VAE the prior was fitted to", "",
            f"- training: {_training_line(vae)}", "- held-out validation of that stage:",
            *_metrics_lines(vae, None)]
    lines += ["## Reproduce", "", "```bash", retrain, "```", ""]
    if extra:
        lines += [extra, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder or checkpoint folder")
    parser.add_argument("name", choices=sorted(BUNDLED_MODELS), help="bundled model name")
    parser.add_argument("--data-name", required=True, help="name of the training data for the card")
    parser.add_argument("--retrain", required=True, help="the command that retrains this model (for the card)")
    parser.add_argument("--eval", help="evaluation report JSON (audiovae evaluate-midi --json) to include")
    parser.add_argument("--note", default="", help="extra text for the card")
    args = parser.parse_args()

    source = resolve_checkpoint(args.run)
    config = read_config(source)
    evaluation = json.loads(Path(args.eval).read_text()) if args.eval else None
    target = MODELS_DIR / args.name
    with atomic_dir(target) as staging:
        shutil.copy2(source / "model.safetensors", staging / "model.safetensors")
        # the current config format (read_config migrates older folders), each fact stated once
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        (staging / "MODEL_CARD.md").write_text(model_card(args.name, config, data_name=args.data_name,
                                                          retrain=args.retrain, evaluation=evaluation,
                                                          extra=args.note))
    size = sum(f.stat().st_size for f in target.iterdir()) / 1e6
    print(f"{source} -> {target} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
