"""Cut the demo's example clips: one busy excerpt per genre from the mel VAE's held-out recordings.

    python recipes/data/make_examples.py --data ../shared/data/audio_genres --data ../shared/data/music_real \
        --licence "..." --licence "..." --out audiovae/assets/examples

The held-out recordings are the validation split the training run used: the recipe's data settings and seed go
to AudioFolder.splits, the very function training calls, with the same folders, so no example was seen in
training (the folders are scanned into a log-mel cache first: --cache reuses a run's cache, else a temporary one
is filled and removed). For each genre the script reads every held-out recording, takes the --seconds window
with the highest RMS (hop 0.1 s; the loudest passage is where most voices play), fades its ends over 10 ms,
peak-normalises it to 0.89 and writes `<genre>.ogg` (Ogg Vorbis, mono, --sample-rate Hz; `.wav` when this
libsndfile has no Ogg support), plus a README.md saying where each clip comes from and under what licence (one
--licence per --data, in order); a data folder's LICENSES/ files (copyright notices) are copied to out/LICENSES/.
Files are written atomically; existing examples of the same name are replaced.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

from _common import run_main, write_atomic, write_bytes_atomic  # noqa: E402
from audiovae.errors import AudioVAEError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = REPO / "recipes" / "mel_vae.toml"
SECONDS = 10.0
SAMPLE_RATE = 22050
HOP_SECONDS = 0.1
FADE_SECONDS = 0.01
PEAK = 0.89  # Ogg Vorbis overshoots the peak by a few percent: decoded clips stay below 1.0
LICENCE = ("Rendered from MIDI exported from the music21 corpus (music21 is BSD-3-Clause; the scores are believed "
           "public domain, their encodings public domain or used by permission, see music21's README), "
           "synthesised with FluidSynth and the FluidR3 General MIDI SoundFont (MIT licence).")


@dataclass(frozen=True)
class Excerpt:
    """The chosen window: ``source`` (path relative to the data folder), ``offset`` and ``seconds`` in s,
    ``rms`` of the window before normalisation, ``audio`` float32 [samples] ready to write."""

    genre: str
    source: str
    offset: float
    seconds: float
    rms: float
    audio: np.ndarray


def loudest_window(wav: np.ndarray, *, window: int, hop: int) -> tuple[int, float]:
    """``(start sample, rms)`` of the ``window``-sample span of ``wav`` (float [samples]) with the highest RMS,
    starts on multiples of ``hop``; a clip shorter than ``window`` is one span from 0. The first of equals wins."""
    if len(wav) <= window:
        return 0, float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    energy = np.concatenate([[0.0], np.cumsum(np.square(wav, dtype=np.float64))])
    starts = np.arange(0, len(wav) - window + 1, hop)
    means = (energy[starts + window] - energy[starts]) / window
    best = int(np.argmax(means))
    return int(starts[best]), float(np.sqrt(max(means[best], 0.0)))


def finish(wav: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Short linear fades at both ends (no click where the cut falls mid-note), then peak PEAK; float32."""
    out = wav.astype(np.float64, copy=True)
    fade = min(int(FADE_SECONDS * sample_rate), len(out) // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        out[:fade] *= ramp
        out[len(out) - fade:] *= ramp[::-1]
    peak = float(np.abs(out).max()) if out.size else 0.0
    return (out * (PEAK / peak) if peak > 0 else out).astype(np.float32)


def held_out_clips(data: list[Path], *, recipe: Path, cache: Path, workers: int, progress: bool
                   ) -> dict[str, list[Path]]:
    """Held-out source files per genre, as the recipe's training run split the ``data`` folders."""
    from audiovae.data import AudioFolder
    from audiovae.train.config import read_toml_tree, recipe_from_tree

    r = recipe_from_tree(read_toml_tree(recipe))
    if r.task != "mel_vae":
        raise AudioVAEError(f"--recipe {recipe} is a {r.task} recipe; the examples follow a mel_vae recipe's split")
    _, val = AudioFolder.splits(data, cache_dir=cache, mel_config=r.mel_config, val_fraction=r.data.val_fraction,
                                crop_frames=r.data.crop_frames, labels=True, normalization=r.data.normalization,
                                min_seconds=r.data.min_seconds, workers=workers, seed=r.train.seed,
                                split_group=r.data.split_group, progress=progress)
    by_genre: dict[str, list[Path]] = {g: [] for g in val.genres}
    for clip in val.clips:
        by_genre[clip.genre].append(clip.path)
    missing = [g for g, paths in by_genre.items() if not paths]
    if missing:
        raise AudioVAEError(f"no held-out clip for {', '.join(missing)} (raise data.val_fraction in the recipe)")
    return by_genre


def source_name(path: Path, data: list[Path]) -> str:
    """``path`` as "<data folder name>/<path inside it>"."""
    root = next(root for root in data if path.is_relative_to(root))
    return f"{root.name}/{path.relative_to(root).as_posix()}"


def pick_excerpt(genre: str, paths: list[Path], *, data: list[Path], seconds: float, sample_rate: int) -> Excerpt:
    """The loudest ``seconds`` window over all ``paths`` (read mono at ``sample_rate``), finished for the demo."""
    from audiovae.audio.io import read_audio

    window, hop = int(round(seconds * sample_rate)), int(round(HOP_SECONDS * sample_rate))
    best = None
    for path in paths:
        wav, _ = read_audio(path, sample_rate=sample_rate)
        start, rms = loudest_window(wav, window=window, hop=hop)
        if best is None or rms > best[2]:
            best = (path, start, rms, wav[start:start + window])
    path, start, rms, cut = best
    return Excerpt(genre=genre, source=source_name(path, data), offset=start / sample_rate,
                   seconds=len(cut) / sample_rate, rms=rms, audio=finish(cut, sample_rate=sample_rate))


def write_excerpt(excerpt: Excerpt, out: Path, *, sample_rate: int) -> Path:
    """``out/<genre>.ogg`` (Ogg Vorbis), or ``.wav`` (16-bit) when libsndfile cannot write Ogg."""
    import soundfile as sf

    if "OGG" in sf.available_formats():
        path, fmt, subtype = out / f"{excerpt.genre}.ogg", "OGG", "VORBIS"
    else:
        path, fmt, subtype = out / f"{excerpt.genre}.wav", "WAV", "PCM_16"
    return write_atomic(path, lambda tmp: sf.write(tmp, excerpt.audio, sample_rate, format=fmt, subtype=subtype))


def readme(rows: list[tuple[Excerpt, Path]], *, data: list[Path], recipe: Path, licences: list[str],
           seconds: float) -> str:
    """The examples folder's README.md: what the clips are, where each comes from, the licences."""
    names = ", ".join(f"`{root.name}/`" for root in data)
    command = " ".join(f"--data path/to/{root.name}" for root in data)
    lines = [
        "# Example clips for the demo",
        "",
        f"One excerpt of about {seconds:g} s per genre, used as the demo's examples "
        "(`audiovae.examples.example_clips()`). Each comes from a recording the bundled mel VAE held out in "
        f"training (the validation split of {names} under `{recipe.name}`'s data settings and seed), cut where its "
        "RMS is highest, faded over 10 ms at both ends and peak-normalised. Made by",
        "",
        "```",
        f"python recipes/data/make_examples.py {command} --out audiovae/assets/examples",
        "```",
        "",
        "| clip | source | offset (s) | length (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {path.name} | {e.source} | {e.offset:.1f} | {e.seconds:.1f} |" for e, path in rows]
    lines += ["", "Licences:", ""]
    lines += [f"- `{root.name}/`: {licence}" for root, licence in zip(data, licences)]
    return "\n".join(lines + [""])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="audio folder with one subfolder per genre; repeat it for several (as training did)")
    parser.add_argument("--out", type=Path, required=True, help="folder for <genre>.ogg and README.md")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE,
                        help="the mel recipe the model was trained with: its data settings and train.seed fix the "
                             f"held-out split (default {DEFAULT_RECIPE.relative_to(REPO)})")
    parser.add_argument("--cache", type=Path, default=None,
                        help="log-mel cache folder to reuse (e.g. the training run's cache; default: a temporary "
                             "one, removed at the end)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help=f"excerpt length (default {SECONDS:g})")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE, help=f"Hz (default {SAMPLE_RATE})")
    parser.add_argument("--workers", type=int, default=2, help="processes for the cache scan (0: in-process)")
    parser.add_argument("--licence", action="append", default=None,
                        help="licence note of the clips of one --data folder for README.md, in --data order "
                             "(default for a single folder: that of the open audio_genres data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.seconds > 0 or args.sample_rate < 8000 or args.workers < 0:
        parser.error("--seconds must be > 0, --sample-rate >= 8000 and --workers >= 0")
    args.licence = args.licence or ([LICENCE] if len(args.data) == 1 else [])
    if len(args.licence) != len(args.data):
        parser.error(f"give one --licence per --data folder ({len(args.data)} folders, {len(args.licence)} licences)")
    return args


def run(args: argparse.Namespace) -> list[tuple[Excerpt, Path]]:
    """Pick, write and describe the examples; returns ``(excerpt, written path)`` per genre."""
    data = [folder.resolve() for folder in args.data]
    cache = args.cache or Path(tempfile.mkdtemp(prefix="audiovae-examples-cache-"))
    try:
        held_out = held_out_clips(data, recipe=args.recipe, cache=cache, workers=args.workers,
                                  progress=not args.no_progress)
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for genre, paths in held_out.items():
        excerpt = pick_excerpt(genre, paths, data=data, seconds=args.seconds, sample_rate=args.sample_rate)
        path = write_excerpt(excerpt, args.out, sample_rate=args.sample_rate)
        rows.append((excerpt, path))
        print(f"{path.name}: {excerpt.source} from {excerpt.offset:.1f} s ({excerpt.seconds:.1f} s, RMS "
              f"{excerpt.rms:.3f}; chosen among {len(paths)} held-out clips)")
    for notice in sorted(f for root in data if (root / "LICENSES").is_dir() for f in (root / "LICENSES").iterdir()
                         if f.is_file()):
        write_bytes_atomic(args.out / "LICENSES" / notice.name, notice.read_bytes())
    text = readme(rows, data=data, recipe=args.recipe, licences=args.licence, seconds=args.seconds)
    write_bytes_atomic(args.out / "README.md", text.encode())
    size = sum(path.stat().st_size for _, path in rows)
    print(f"{len(rows)} examples, {size / 1024:.0f} KiB, in {args.out}")
    return rows


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
