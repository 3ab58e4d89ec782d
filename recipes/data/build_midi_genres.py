"""Build genre folders of real MIDI from the corpus that ships with music21 (the open `midi_genres` data set).

    pip install music21
    python recipes/data/build_midi_genres.py --out data/midi_genres                  # all six genres, 30+ min
    python recipes/data/build_midi_genres.py --out /tmp/m --max-per-genre 3 --genres irish_fiddle german_folk

One folder per genre, one .mid per piece or tune:

  folder                 music21 corpus                 what it is                                   at most
  baroque_chorale        bach (not the .rntxt analyses)  J. S. Bach four-part chorales               200
  renaissance_polyphony  palestrina                     Palestrina mass movements, 3-8 voices        200
  classical_quartet      haydn, mozart, beethoven       string quartet movements (.krn copies left)  200
  medieval_trecento      trecento                       14th-century ballate and madrigals           200
  irish_fiddle           oneills1850                    O'Neill's Music of Ireland (1850), tunes     400
  german_folk            essenFolksong                  Essen folk song collection, songs            400

Selection follows the shared data set's export: each genre's corpus paths are sorted, then shuffled by one
random.Random(0) in the order above (every genre is shuffled whether built or not, so --genres never changes a
selection), and taken in that order until the genre has its files. A collection file (O'Neill, Essen) holds many
tunes and gives one file each. Names follow the shared data too: `<file stem>_<index:03d>.mid`
(bwv10.7_000.mid, 0201-0300_017.mid), except classical_quartet and medieval_trecento, which join the last three
parts of the corpus path (beethoven_opus18no1_movement1.mid, corpus_trecento_Fava_Dicant_nunc_iudei.mid).
With music21 10.5.1 the files of the first four genres come out byte-identical to the shared folder's (it lacks a
dozen Bach chorales this build writes); its O'Neill and Essen tunes were drawn in an order this script cannot
recover, so those two folders hold other tunes of the same collections. Another music21 release may differ more.
Whole-quartet files (beethoven/opus18no4.mxl and the like) take minutes each to turn into MIDI.

Sources that music21 cannot parse or write are skipped and counted per reason (summary at the end), and a
second encoding of a piece already written in this build (a .mxl beside an .xml) is skipped as a duplicate.
Some written files are still refused by other readers (pretty_midi calls a few Palestrina files 'likely
corrupt'), as in any real collection: pipelines reading the folder must skip them. Every file is written
atomically. Licence: music21 is BSD-3-Clause; the scores are believed public domain, their encodings public
domain or used by permission (see music21's README).
"""
from __future__ import annotations

import argparse
import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

from _common import (SkipLog, prepare_out_dir, require_module, run_main, short_error,  # noqa: E402
                     write_bytes_atomic)
from audiovae.errors import AudioVAEError  # noqa: E402

INSTALL = "pip install music21"
SEED = 0
COLLECTION_SUFFIX = ".abc"  # one file, many tunes (a music21 Opus)


@dataclass(frozen=True)
class Genre:
    """composers: music21 corpus names. limit: files at most by default. path_parts: trailing corpus path parts
    in a file name (1: the stem plus a tune index; 3: the path, indexed only when one source holds several
    scores). skip_suffixes: source kinds left out (Roman-numeral analyses, second encodings)."""

    composers: tuple[str, ...]
    limit: int
    path_parts: int = 1
    skip_suffixes: tuple[str, ...] = (".rntxt",)


# the order is the order of the shuffles, so it fixes every genre's selection
GENRES: dict[str, Genre] = {
    "baroque_chorale": Genre(("bach",), 200),
    "renaissance_polyphony": Genre(("palestrina",), 200),
    "classical_quartet": Genre(("haydn", "mozart", "beethoven"), 200, path_parts=3,
                               skip_suffixes=(".rntxt", ".krn")),
    "medieval_trecento": Genre(("trecento",), 200, path_parts=3),
    "irish_fiddle": Genre(("oneills1850",), 400),
    "german_folk": Genre(("essenFolksong",), 400),
}


def require_music21():
    """The music21 modules this script uses ``(corpus, converter, stream, translate)``; MissingDependencyError
    saying ``pip install music21`` when it is not installed."""
    purpose = "build_midi_genres.py (it reads the corpus that ships with music21)"
    require_module("music21", INSTALL, purpose=purpose)
    from music21 import converter, corpus, stream
    from music21.midi import translate

    return corpus, converter, stream, translate


def shuffled_sources(list_composer) -> dict[str, list[str]]:
    """Every genre's corpus paths in selection order: sorted, then shuffled by one Random(SEED) in GENRES order.

    list_composer: ``name -> iterable of paths`` (music21's ``corpus.getComposer``). Returns all six genres.
    """
    rng = random.Random(SEED)
    order = {}
    for genre, spec in GENRES.items():
        paths = sorted(str(p) for composer in spec.composers for p in list_composer(composer))
        rng.shuffle(paths)
        order[genre] = paths
    return order


def output_name(genre: str, source: str, index: int, *, collection: bool) -> str:
    """The .mid file name of score ``index`` of ``source`` (see the module docstring).

    collection: the source holds several scores (an Opus), so path-style names get an index as well.
    """
    spec = GENRES[genre]
    parts = list(Path(source).parts[-spec.path_parts:])
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    base = "_".join(parts).replace(" ", "_")
    if spec.path_parts == 1 or collection:
        return f"{base}_{index:03d}.mid"
    return f"{base}.mid"


def selected(genre: str, sources: list[str]) -> list[str]:
    """``sources`` without the kinds this genre leaves out, order kept."""
    return [s for s in sources if not s.lower().endswith(GENRES[genre].skip_suffixes)]


@dataclass
class GenreResult:
    written: int = 0   # new files in this run
    kept: int = 0      # files already there (--resume)

    @property
    def total(self) -> int:
        return self.written + self.kept


def build_genre(genre: str, sources: list[str], out: Path, *, limit: int, resume: bool, skips: SkipLog,
                music21, progress: bool = True) -> GenreResult:
    """Write up to ``limit`` files of ``genre`` from ``sources`` (in order) into ``out/genre``."""
    from tqdm import tqdm

    _, converter, stream, translate = music21
    folder = out / genre
    folder.mkdir(parents=True, exist_ok=True)
    result, names = GenreResult(), set()
    bar = tqdm(total=limit, desc=genre, unit="file", disable=not progress, leave=True)

    def kept_from_before(name: str) -> bool:
        """With --resume, a file already in the folder counts toward the limit and is not written again."""
        if not (resume and (folder / name).is_file()):
            return False
        names.add(name)
        result.kept += 1
        bar.update()
        return True

    for source in selected(genre, sources):
        if result.total >= limit:
            break
        label = "/".join(Path(source).parts[-2:])
        bar.set_postfix_str(label, refresh=False)
        collection = source.lower().endswith(COLLECTION_SUFFIX)
        first = output_name(genre, source, 0, collection=collection)
        if not collection and first not in names and kept_from_before(first):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = converter.parse(source)
        except Exception as exc:  # music21 raises many unrelated types on malformed scores
            skips.add(genre, "parse error", f"{label}: {short_error(exc)}")
            continue
        scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
        for index, score in enumerate(scores):
            if result.total >= limit:
                break
            name = output_name(genre, source, index, collection=collection or len(scores) > 1)
            if name in names:
                skips.add(genre, "duplicate encoding", f"{label} -> {name}")
                continue
            if kept_from_before(name):
                continue
            names.add(name)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = translate.streamToMidiFile(score).writestr()
            except Exception as exc:  # as above: a score music21 read but cannot turn into MIDI
                skips.add(genre, "MIDI write error", f"{label} #{index}: {short_error(exc)}")
                continue
            write_bytes_atomic(folder / name, data)
            result.written += 1
            bar.update()
    bar.close()
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; it must not exist or be empty (unless --resume). Gets one subfolder "
                             "per genre.")
    parser.add_argument("--max-per-genre", type=int, default=None, metavar="N",
                        help="at most N files per genre (default: each genre's own limit in the table above)")
    parser.add_argument("--genres", nargs="+", default=list(GENRES), choices=list(GENRES), metavar="GENRE",
                        help=f"genres to build (default: all): {', '.join(GENRES)}")
    parser.add_argument("--resume", action="store_true",
                        help="continue a build in a non-empty --out: files already there are kept and count "
                             "toward the limits (single-score sources whose file exists are not parsed again)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_per_genre is not None and args.max_per_genre < 1:
        parser.error(f"--max-per-genre must be >= 1, got {args.max_per_genre}")
    args.genres = list(dict.fromkeys(args.genres))
    return args


def run(args: argparse.Namespace) -> dict[str, GenreResult]:
    """Build the folders ``args`` asks for; prints a summary; returns per-genre results."""
    music21 = require_music21()
    out = prepare_out_dir(args.out, resume=args.resume)
    order = shuffled_sources(music21[0].getComposer)
    skips, results = SkipLog(), {}
    for genre in args.genres:
        limit = GENRES[genre].limit if args.max_per_genre is None else args.max_per_genre
        results[genre] = build_genre(genre, order[genre], out, limit=limit, resume=args.resume, skips=skips,
                                     music21=music21, progress=not args.no_progress)
    for genre, r in results.items():
        print(f"{genre}: {r.total} files ({r.written} written, {r.kept} already there)")
    print(skips.summary())
    if not any(r.total for r in results.values()):
        raise AudioVAEError(f"no MIDI file could be written to {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
