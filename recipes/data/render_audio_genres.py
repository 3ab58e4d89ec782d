"""Render genre folders of MIDI to audio clips with a General MIDI SoundFont (the open `audio_genres` data set).

    pip install pyfluidsynth            # or: pip install 'audiovae[synth]'
    apt-get install fluidsynth fluid-soundfont-gm
    python recipes/data/render_audio_genres.py --midi data/midi_genres --out data/audio_genres
    python recipes/data/render_audio_genres.py --midi data/midi_genres --out /tmp/a --clips-per-genre 3

Each genre is played by one General MIDI instrument, so genre shows in timbre as well as in style:

  genre                  GM program (0-based)
  baroque_chorale        19  church organ
  renaissance_polyphony  52  choir aahs
  classical_quartet      48  string ensemble
  medieval_trecento      74  recorder
  irish_fiddle           40  violin
  german_folk            21  accordion

(--instrument GENRE=PROGRAM adds a genre or changes one.) Clips are 22050 Hz mono Ogg Vorbis of up to --seconds
(15 s; a piece that ends sooner gives a shorter clip, never one under 5 s), peak-normalised to 0.9, named
`<midi stem>_<k>.ogg` for the k-th offset. A genre's files are shuffled by random.Random(genre name), so the
selection does not depend on which other genres are rendered; clips are taken from each piece in that order at
offset 0 s, then from every piece again at 2 x --seconds, 4 x --seconds, ... (8 offsets at most), until the
genre has --clips-per-genre clips: a genre with few pieces gets several clips from its long ones. All notes of
a piece are moved onto the genre's instrument (drums are left out) and the notes that sound in the window are
cut out, shifted to start at 0 and synthesised by FluidSynth. This reproduces the shared audio_genres folder.

MIDI files pretty_midi cannot read, and windows that render silent or shorter than 5 s, are skipped and counted
per reason (summary at the end). Every clip is written atomically; --resume continues an interrupted run
(clips already there count and are not rendered again). The SoundFont FluidR3_GM is MIT-licensed.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

from _common import (MissingDependencyError, SkipLog, prepare_out_dir, run_main, short_error,  # noqa: E402
                     write_atomic)
from audiovae.errors import AudioVAEError  # noqa: E402

# General MIDI program numbers (0-based) and what they are
INSTRUMENTS: dict[str, tuple[int, str]] = {
    "baroque_chorale": (19, "church organ"),
    "renaissance_polyphony": (52, "choir aahs"),
    "classical_quartet": (48, "string ensemble"),
    "medieval_trecento": (74, "recorder"),
    "irish_fiddle": (40, "violin"),
    "german_folk": (21, "accordion"),
}
SAMPLE_RATE = 22050
SECONDS = 15.0
CLIPS_PER_GENRE = 50
MAX_OFFSETS = 8          # offsets 0, 2s, 4s, ... 14s of --seconds s
MIN_SECONDS = 5.0        # shorter windows are skipped
SILENT_PEAK = 1e-3       # windows whose rendered peak is below this are skipped
PEAK = 0.9
SOUNDFONT_ENV = "AUDIOVAE_SOUNDFONT"
DEBIAN_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
MIDI_SUFFIXES = (".mid", ".midi")


def default_soundfont() -> str:
    """$AUDIOVAE_SOUNDFONT when set, else Debian's fluid-soundfont-gm file."""
    return os.environ.get(SOUNDFONT_ENV) or DEBIAN_SOUNDFONT


def require_fluidsynth(soundfont: str | os.PathLike) -> Path:
    """Check that pyfluidsynth, the FluidSynth library and ``soundfont`` are all there; returns the SoundFont path.

    Raises MissingDependencyError saying what to install: the Python package (pip install pyfluidsynth), the
    shared library (apt-get install fluidsynth) or a SoundFont (apt-get install fluid-soundfont-gm, --soundfont,
    $AUDIOVAE_SOUNDFONT).
    """
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth on import)
    except ModuleNotFoundError as exc:
        if exc.name != "fluidsynth":
            raise
        raise MissingDependencyError(
            "render_audio_genres.py synthesises with FluidSynth through the Python package pyfluidsynth, which is "
            "not installed. Install it with: pip install pyfluidsynth (or pip install 'audiovae[synth]'), and the "
            "FluidSynth library with: apt-get install fluidsynth") from exc
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            f"pyfluidsynth is installed but cannot load the FluidSynth library ({exc}). Install it with: "
            "apt-get install fluidsynth (Debian/Ubuntu; it brings libfluidsynth), brew install fluid-synth "
            "(macOS)") from exc
    path = Path(soundfont).expanduser()
    if not path.is_file():
        raise MissingDependencyError(
            f"no SoundFont at {path}. Install a General MIDI SoundFont (Debian/Ubuntu: apt-get install "
            f"fluid-soundfont-gm, which puts FluidR3_GM.sf2 at {DEBIAN_SOUNDFONT}), or name one with --soundfont "
            f"PATH or ${SOUNDFONT_ENV}")
    return path


def parse_instrument(text: str) -> tuple[str, int]:
    """``"jazz=65"`` -> ("jazz", 65); argparse type for --instrument (GM programs 0-127)."""
    genre, sep, program = text.partition("=")
    try:
        value = int(program)
    except ValueError:
        value = -1
    if not sep or not genre or not 0 <= value <= 127:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GENRE=PROGRAM with a General MIDI program 0-127")
    return genre, value


def genre_files(midi_root: Path, genre: str) -> list[Path]:
    """The genre's MIDI files (directly in its folder) in selection order: sorted, then shuffled by Random(genre)."""
    files = sorted(p for p in (midi_root / genre).iterdir() if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    random.Random(genre).shuffle(files)
    return files


def excerpt(pm, program: int, t0: float, seconds: float):
    """A PrettyMIDI holding the notes of ``pm`` that sound in [t0, t0 + seconds) s, all on ``program``, shifted to
    start at 0 s (notes that run on are cut 1 s after the window so they release naturally); drums dropped."""
    import pretty_midi

    out = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        new = pretty_midi.Instrument(program=program)
        new.notes = [pretty_midi.Note(n.velocity, n.pitch, max(n.start, t0) - t0, min(n.end, t0 + seconds + 1.0) - t0)
                     for n in inst.notes if n.end > t0 and n.start < t0 + seconds]
        out.instruments.append(new)
    return out


@dataclass(frozen=True)
class Window:
    """One candidate clip: ``source`` from ``t0`` s, the ``offset_index``-th offset, written to ``target``."""

    source: Path
    offset_index: int
    t0: float
    target: Path


def windows(files: list[Path], end_times: dict[Path, float], out_folder: Path, *, seconds: float
            ) -> Iterator[Window]:
    """Candidate clips in selection order: every piece at offset 0, then every piece at 2 x seconds, ...;
    a piece that ends less than MIN_SECONDS after an offset gives no window there."""
    for k in range(MAX_OFFSETS):
        t0 = k * 2 * seconds
        for f in files:
            if f in end_times and end_times[f] >= t0 + MIN_SECONDS:
                yield Window(f, k, t0, out_folder / f"{f.stem}_{k}.ogg")


def read_end_time(path: Path) -> tuple[Path, float | None, str]:
    """``(path, end time in s, "")``, or ``(path, None, error)`` when pretty_midi cannot read the file."""
    import pretty_midi

    try:
        return path, float(pretty_midi.PrettyMIDI(str(path)).get_end_time()), ""
    except Exception as exc:  # pretty_midi/mido raise many types on malformed files
        return path, None, short_error(exc)


def render_window(window: Window, *, program: int, seconds: float, sample_rate: int, soundfont: str,
                  resume: bool) -> tuple[str, object]:
    """Render one window. Returns ("kept", None) for a clip already there (resume), ("audio", float32 [samples]
    at sample_rate, peak PEAK), or ("skip", (reason, detail))."""
    import pretty_midi

    if resume and window.target.is_file():
        return "kept", None
    try:
        pm = pretty_midi.PrettyMIDI(str(window.source))
        y = excerpt(pm, program, window.t0, seconds).fluidsynth(fs=sample_rate, synthesizer=soundfont,
                                                                normalize=False)
    except Exception as exc:  # FluidSynth or pretty_midi failing on one file must not stop the run
        return "skip", ("render error", f"{window.source.name}@{window.t0:g}s: {short_error(exc)}")
    y = np.asarray(y, dtype=np.float64)[: int(seconds * sample_rate)]
    if len(y) < MIN_SECONDS * sample_rate:
        return "skip", (f"shorter than {MIN_SECONDS:g} s", f"{window.source.name}@{window.t0:g}s")
    peak = float(np.abs(y).max())
    if not np.isfinite(peak) or peak < SILENT_PEAK:
        return "skip", ("silent", f"{window.source.name}@{window.t0:g}s")
    return "audio", (PEAK * y / peak).astype(np.float32)


def write_ogg(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    write_atomic(path, lambda tmp: sf.write(tmp, audio, sample_rate, format="OGG", subtype="VORBIS"))


@dataclass
class GenreResult:
    written: int = 0   # new clips in this run
    kept: int = 0      # clips already there (--resume)

    @property
    def total(self) -> int:
        return self.written + self.kept


def _in_order(pool, fn, items, window_size: int) -> Iterator:
    """``fn(item)`` for each item, results in order, at most ``window_size`` submitted ahead (in-process when
    ``pool`` is None). Closing the iterator early cancels what has not started."""
    if pool is None:
        for item in items:
            yield fn(item)
        return
    pending = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window_size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


class _Render:
    """Picklable ``window -> (window, *render_window(window, **settings))`` for the worker pool."""

    def __init__(self, **settings):
        self.settings = settings

    def __call__(self, window: Window):
        return (window, *render_window(window, **self.settings))


def render_genre(midi_root: Path, out: Path, genre: str, *, program: int, clips: int, seconds: float,
                 sample_rate: int, soundfont: str, resume: bool, skips: SkipLog, pool=None, workers: int = 0,
                 progress: bool = True) -> GenreResult:
    """Render up to ``clips`` clips of ``genre`` into ``out/genre`` (see the module docstring for the order).

    pool: a ProcessPoolExecutor with ``workers`` processes, or None to render in this process.
    """
    from tqdm import tqdm

    ahead = 2 * max(workers, 1)
    files = genre_files(midi_root, genre)
    end_times = {}
    for path, end, error in _in_order(pool, read_end_time, files, 4 * ahead):
        if end is None:
            skips.add(genre, "unreadable MIDI", f"{path.name}: {error}")
        else:
            end_times[path] = end
    folder = out / genre
    folder.mkdir(parents=True, exist_ok=True)
    result = GenreResult()
    render = _Render(program=program, seconds=seconds, sample_rate=sample_rate, soundfont=soundfont, resume=resume)
    results = _in_order(pool, render, windows(files, end_times, folder, seconds=seconds), ahead)
    with tqdm(total=clips, desc=genre, unit="clip", disable=not progress) as bar:
        for window, status, payload in results:
            bar.set_postfix_str(window.target.name, refresh=False)
            if status == "skip":
                skips.add(genre, *payload)
                continue
            if status == "audio":
                write_ogg(window.target, payload, sample_rate)
                result.written += 1
            else:
                result.kept += 1
            bar.update()
            if result.total >= clips:
                break
    results.close()
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--midi", type=Path, required=True,
                        help="MIDI root with one subfolder of .mid files per genre (e.g. from build_midi_genres.py)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; it must not exist or be empty (unless --resume). Gets one subfolder "
                             "per genre.")
    parser.add_argument("--soundfont", default=None, metavar="SF2",
                        help=f"General MIDI SoundFont (default: ${SOUNDFONT_ENV}, else {DEBIAN_SOUNDFONT})")
    parser.add_argument("--genres", nargs="+", default=None, metavar="GENRE",
                        help="genres to render (default: every subfolder of --midi that has an instrument)")
    parser.add_argument("--instrument", type=parse_instrument, action="append", default=[], metavar="GENRE=PROGRAM",
                        help="play GENRE with General MIDI program PROGRAM (0-based; repeatable)")
    parser.add_argument("--clips-per-genre", "--max-per-genre", dest="clips_per_genre", type=int,
                        default=CLIPS_PER_GENRE, metavar="N", help=f"clips per genre (default {CLIPS_PER_GENRE})")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help=f"clip length in seconds (default {SECONDS:g}; at least {MIN_SECONDS:g})")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE, help=f"Hz (default {SAMPLE_RATE})")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="rendering processes (0: in this process; default: 2 or the number of CPUs if fewer)")
    parser.add_argument("--resume", action="store_true",
                        help="continue in a non-empty --out: clips already there count and are not rendered again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments; ``args.instruments`` is the table with --instrument applied and
    ``args.soundfont`` the SoundFont path to use."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.clips_per_genre < 1:
        parser.error(f"--clips-per-genre must be >= 1, got {args.clips_per_genre}")
    if not args.seconds >= MIN_SECONDS:
        parser.error(f"--seconds must be >= {MIN_SECONDS:g}, got {args.seconds}")
    if args.sample_rate < 8000:
        parser.error(f"--sample-rate must be >= 8000 Hz, got {args.sample_rate}")
    if args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    args.instruments = {genre: program for genre, (program, _) in INSTRUMENTS.items()} | dict(args.instrument)
    args.soundfont = args.soundfont or default_soundfont()
    return args


def pick_genres(midi_root: Path, requested: list[str] | None, instruments: dict[str, int]) -> list[str]:
    """The genres to render: ``requested`` (each must be a subfolder with an instrument), else every subfolder
    of ``midi_root`` that has one, sorted. Raises AudioVAEError naming what is missing."""
    if not midi_root.is_dir():
        raise AudioVAEError(f"--midi {midi_root} is not a folder")
    folders = sorted(p.name for p in midi_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if requested is None:
        genres = [g for g in folders if g in instruments]
        if not genres:
            raise AudioVAEError(f"no genre subfolder of {midi_root} has an instrument (found: "
                                f"{', '.join(folders) or 'none'}); known: {', '.join(instruments)}; add one with "
                                "--instrument GENRE=PROGRAM")
        return genres
    for genre in requested:
        if genre not in folders:
            raise AudioVAEError(f"--genres {genre}: no such subfolder in {midi_root} (found: "
                                f"{', '.join(folders) or 'none'})")
        if genre not in instruments:
            raise AudioVAEError(f"--genres {genre}: no instrument for it; known: {', '.join(instruments)}; add one "
                                "with --instrument GENRE=PROGRAM")
    return list(dict.fromkeys(requested))


def run(args: argparse.Namespace) -> dict[str, GenreResult]:
    """Render what ``args`` asks for; prints a summary; returns per-genre results."""
    soundfont = str(require_fluidsynth(args.soundfont))
    genres = pick_genres(args.midi, args.genres, args.instruments)
    out = prepare_out_dir(args.out, resume=args.resume)
    skips, results = SkipLog(), {}
    pool = ProcessPoolExecutor(args.workers) if args.workers > 0 else None
    try:
        for genre in genres:
            results[genre] = render_genre(args.midi, out, genre, program=args.instruments[genre],
                                          clips=args.clips_per_genre, seconds=args.seconds,
                                          sample_rate=args.sample_rate, soundfont=soundfont, resume=args.resume,
                                          skips=skips, pool=pool, workers=args.workers,
                                          progress=not args.no_progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    for genre, r in results.items():
        short = "" if r.total >= args.clips_per_genre else f" (fewer than {args.clips_per_genre}: the pieces ran out)"
        print(f"{genre}: {r.total} clips ({r.written} rendered, {r.kept} already there){short}")
    print(skips.summary())
    if not any(r.total for r in results.values()):
        raise AudioVAEError(f"no clip could be rendered into {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
