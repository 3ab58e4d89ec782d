"""Command-line arguments that several `audiovae` verbs share, defined once, and the model loading they drive."""
from __future__ import annotations

import argparse


def add_model(p: argparse.ArgumentParser, kind: str = "") -> None:
    what = f"{kind} model" if kind else "model"
    p.add_argument("model", help=f"{what}: a model folder, a run folder, or a bundled name "
                   "(default-mel, default-midi, default-vocoder)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (the GPU when present) "
                   "[default: auto]")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default) [default: 0]")


def add_genre(p: argparse.ArgumentParser, flag: str = "--genre", *, required: bool = False,
              what: str = "genre condition") -> None:
    default = "" if required else " [default: no genre]"
    p.add_argument(flag, required=required, help=f"{what}: a genre name, or a mixture such as "
                   f"baroque_chorale=0.7,irish_fiddle=0.3{default}")


def add_seed(p: argparse.ArgumentParser, *, what: str = "random seed") -> None:
    p.add_argument("--seed", type=int, default=0, help=f"{what} [default: 0]")


def add_temperature(p: argparse.ArgumentParser, default: float, *, what: str = "prior scale") -> None:
    p.add_argument("--temperature", type=float, default=default, help=f"{what} [default: {default:g}]")


def add_guidance(p: argparse.ArgumentParser) -> None:
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight >= 0: decode with "
                   "l_genre + w * (l_genre - l_nogenre); larger = more typical of the genre [default: the model's]")


def add_decoding(p: argparse.ArgumentParser) -> None:
    """What every verb that decodes and vocodes audio takes: the genre to decode with, the vocoder, and the
    device."""
    add_genre(p)
    add_vocoder(p)
    add_device(p)


def add_vocoder(p: argparse.ArgumentParser, *, iterations: bool = True) -> None:
    """--vocoder, and (with ``iterations``) Griffin-Lim's --n-iter."""
    p.add_argument("--vocoder", default="auto", help="how log-mels become sound: griffin-lim, default-vocoder "
                   "(the bundled neural vocoder), a vocoder folder you trained (recipes/vocoder.toml), or auto: "
                   "default-vocoder when it was trained on the model's mel front end, else griffin-lim "
                   "[default: auto]")
    if iterations:
        p.add_argument("--n-iter", type=int, default=64, help="Griffin-Lim iterations (with --vocoder griffin-lim) "
                       "[default: 64]")


def add_midi_writing(p: argparse.ArgumentParser) -> None:
    """What every verb that writes MIDI takes: guidance, tempo, instrument, velocity, pictures and previews,
    compute."""
    add_guidance(p)
    p.add_argument("--tempo", type=float, help="tempo in quarter notes per minute [default: per genre]")
    p.add_argument("--program", type=int, help="General MIDI program 0-127 [default: per genre]")
    p.add_argument("--velocity", type=int, help="play every note at this MIDI velocity, 1-127 [default: the "
                   "velocities the model gives, or 90 for a model without dynamics]")
    p.add_argument("--png", action="store_true", help="also write a piano-roll picture next to each .mid")
    p.add_argument("--preview", action="store_true", help="also write a preview .wav next to each .mid "
                   "(FluidSynth with $AUDIOVAE_SOUNDFONT when available, else a built-in synth)")
    add_threads(p)
    add_device(p)


def load_model_for(args: argparse.Namespace, modality: str):
    """The model named by ``args.model`` on ``args.device`` (after setting ``args.threads`` when the verb has
    it); a clear error when it is not a ``modality`` ("audio" or "midi") model."""
    import torch

    from .checkpoint import load

    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    return load(args.model, device=getattr(args, "device", "cpu"), modality=modality)
