"""The data scripts in recipes/data without their optional packages: arguments, the output-folder guard, atomic
writes, names and selection order, the instrument table, the messages when music21 / FluidSynth / a SoundFont are
missing (simulated with monkeypatch), and make_examples end to end on a tiny synthetic folder."""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from audiovae.data import AudioFolder
from audiovae.errors import AudioVAEError

SCRIPTS = Path(__file__).resolve().parents[1] / "recipes" / "data"


def load_script(name: str):
    """Import recipes/data/<name>.py as a module (it imports its sibling _common.py by name)."""
    spec = importlib.util.spec_from_file_location(f"datascript_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


bm = load_script("build_midi_genres")
ra = load_script("render_audio_genres")
mx = load_script("make_examples")
common = sys.modules["_common"]


class _RefuseImport:
    """A sys.meta_path finder that makes ``import <name>`` fail the way a missing shared library does."""

    def __init__(self, name: str, message: str):
        self.name, self.message = name, message

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise ImportError(self.message)
        return None


# --- the output folder and atomic writes -------------------------------------------------------------------
def test_out_dir_is_created_or_must_be_empty_unless_resume(tmp_path):
    fresh = common.prepare_out_dir(tmp_path / "new" / "out", resume=False)
    assert fresh.is_dir()
    assert common.prepare_out_dir(fresh, resume=False) == fresh  # empty: fine
    (fresh / ".hidden").write_text("x")
    with pytest.raises(AudioVAEError, match="is not empty; pass --resume"):
        common.prepare_out_dir(fresh, resume=False)
    assert common.prepare_out_dir(fresh, resume=True) == fresh
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioVAEError, match="is not a folder"):
        common.prepare_out_dir(tmp_path / "file", resume=True)


def test_build_refuses_a_non_empty_out_before_reading_the_corpus(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    (out / "irish_fiddle").mkdir(parents=True)
    monkeypatch.setattr(bm, "require_music21", lambda: (None, None, None, None))  # never reached: refused first
    monkeypatch.setattr(bm, "shuffled_sources", lambda _: pytest.fail("the corpus was read"))
    assert bm.main(["--out", str(out), "--max-per-genre", "2"]) == 1
    assert "is not empty; pass --resume" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["irish_fiddle"]


def test_render_refuses_a_non_empty_out(tmp_path, monkeypatch, capsys):
    midi = tmp_path / "midi" / "irish_fiddle"
    midi.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.ogg").write_bytes(b"")
    monkeypatch.setattr(ra, "require_fluidsynth", lambda soundfont: Path(soundfont))
    assert ra.main(["--midi", str(tmp_path / "midi"), "--out", str(out), "--soundfont", "x.sf2"]) == 1
    assert "is not empty; pass --resume" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["old.ogg"]


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    def broken(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        common.write_atomic(tmp_path / "a.mid", broken)
    assert list(tmp_path.iterdir()) == []
    path = common.write_bytes_atomic(tmp_path / "a.mid", b"MThd")
    assert path.read_bytes() == b"MThd" and [p.name for p in tmp_path.iterdir()] == ["a.mid"]
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others like any file open() makes (umask 022)


def test_skip_log_counts_per_genre_and_reason():
    log = common.SkipLog(examples=1)
    assert log.summary() == "nothing skipped"
    log.add("jazz", "parse error", "a.krn: ValueError: bad")
    log.add("jazz", "parse error", "b.krn: ValueError: worse")
    log.add("folk", "silent", "c.mid@0s")
    text = log.summary()
    assert log.total == 3 and "skipped 3:" in text
    assert "  jazz: parse error: 2" in text and "  folk: silent: 1" in text
    assert "a.krn" in text and "b.krn" not in text


# --- build_midi_genres --------------------------------------------------------------------------------------
def test_build_arguments():
    args = bm.parse_args(["--out", "o"])
    assert args.genres == list(bm.GENRES) and args.max_per_genre is None and not args.resume
    args = bm.parse_args(["--out", "o", "--max-per-genre", "3", "--genres", "irish_fiddle", "german_folk",
                          "irish_fiddle", "--resume"])
    assert args.max_per_genre == 3 and args.genres == ["irish_fiddle", "german_folk"] and args.resume
    for bad in (["--out", "o", "--max-per-genre", "0"], ["--out", "o", "--genres", "jazz"], []):
        with pytest.raises(SystemExit):
            bm.parse_args(bad)


def test_help_explains_every_option(capsys):
    for script in (bm, ra, mx):
        with pytest.raises(SystemExit):
            script.parse_args(["--help"])
        text = capsys.readouterr().out
        options = [a for action in script.build_parser()._actions for a in action.option_strings]
        assert all(o in text for o in options)
    assert "pip install music21" in bm.build_parser().format_help()


def test_missing_music21_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(common.MissingDependencyError, match=r"Install it with: pip install music21"):
        bm.require_music21()
    assert bm.main(["--out", str(tmp_path / "out")]) == 1
    assert "pip install music21" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_file_names_follow_the_shared_data_set():
    root = "/site-packages/music21/corpus"
    assert bm.output_name("baroque_chorale", f"{root}/bach/bwv10.7.mxl", 0, collection=False) == "bwv10.7_000.mid"
    assert bm.output_name("irish_fiddle", f"{root}/oneills1850/0201-0300.abc", 17,
                          collection=True) == "0201-0300_017.mid"
    assert bm.output_name("classical_quartet", f"{root}/beethoven/opus18no1/movement1.mxl", 0,
                          collection=False) == "beethoven_opus18no1_movement1.mid"
    assert bm.output_name("classical_quartet", f"{root}/beethoven/opus133.mxl", 0,
                          collection=False) == "corpus_beethoven_opus133.mid"
    assert bm.output_name("medieval_trecento", f"{root}/trecento/PMFC_01-Lugentium siccentur.xml", 0,
                          collection=False) == "corpus_trecento_PMFC_01-Lugentium_siccentur.mid"
    assert bm.output_name("medieval_trecento", f"{root}/trecento/x.xml", 2, collection=True) == \
        "corpus_trecento_x_002.mid"


def test_selection_order_is_one_seeded_shuffle_over_all_genres():
    listing = {c: [f"/c/{c}/{i:02d}.krn" for i in range(12)] for g in bm.GENRES.values() for c in g.composers}
    listing["bach"] += ["/c/bach/a.rntxt"]
    order = bm.shuffled_sources(lambda composer: reversed(listing[composer]))
    assert list(order) == list(bm.GENRES)
    rng = random.Random(0)
    for genre, spec in bm.GENRES.items():
        expected = sorted(p for c in spec.composers for p in listing[c])
        rng.shuffle(expected)
        assert order[genre] == expected
    assert "/c/bach/a.rntxt" not in bm.selected("baroque_chorale", order["baroque_chorale"])
    quartets = bm.selected("classical_quartet", order["classical_quartet"])
    assert quartets == [] and len(bm.selected("medieval_trecento", order["medieval_trecento"])) == 12


# --- render_audio_genres ------------------------------------------------------------------------------------
def test_instrument_table_matches_general_midi_and_the_midi_genres():
    assert set(ra.INSTRUMENTS) == set(bm.GENRES)
    for genre, (program, name) in ra.INSTRUMENTS.items():
        gm = pretty_midi.program_to_instrument_name(program).lower()
        assert gm.startswith(name), (genre, program, gm)
    args = ra.parse_args(["--midi", "m", "--out", "o", "--instrument", "jazz=65", "--instrument", "irish_fiddle=41"])
    assert args.instruments["jazz"] == 65 and args.instruments["irish_fiddle"] == 41
    assert args.instruments["german_folk"] == 21
    for bad in ("jazz", "jazz=", "jazz=128", "=5", "jazz=sax"):
        with pytest.raises(SystemExit):
            ra.parse_args(["--midi", "m", "--out", "o", "--instrument", bad])


def test_render_arguments_and_default_soundfont(monkeypatch):
    monkeypatch.delenv(ra.SOUNDFONT_ENV, raising=False)
    args = ra.parse_args(["--midi", "m", "--out", "o"])
    assert (args.sample_rate, args.seconds, args.clips_per_genre) == (22050, 15.0, 50)
    assert args.soundfont == "/usr/share/sounds/sf2/FluidR3_GM.sf2" and args.genres is None
    monkeypatch.setenv(ra.SOUNDFONT_ENV, "/fonts/gm.sf2")
    args = ra.parse_args(["--midi", "m", "--out", "o", "--max-per-genre", "3", "--workers", "0"])
    assert args.soundfont == "/fonts/gm.sf2" and args.clips_per_genre == 3 and args.workers == 0
    assert ra.parse_args(["--midi", "m", "--out", "o", "--soundfont", "x.sf2"]).soundfont == "x.sf2"
    for bad in (["--seconds", "4"], ["--clips-per-genre", "0"], ["--workers", "-1"], ["--sample-rate", "100"]):
        with pytest.raises(SystemExit):
            ra.parse_args(["--midi", "m", "--out", "o", *bad])


def test_missing_pyfluidsynth_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    with pytest.raises(common.MissingDependencyError, match=r"pip install pyfluidsynth.*apt-get install fluidsynth"):
        ra.require_fluidsynth(tmp_path / "gm.sf2")
    assert ra.main(["--midi", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "pip install pyfluidsynth" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_fluidsynth_library_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "fluidsynth", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RefuseImport("fluidsynth", "Couldn't find the FluidSynth library.")]
                        + sys.meta_path)
    with pytest.raises(common.MissingDependencyError,
                       match=r"cannot load the FluidSynth library .*apt-get install fluidsynth"):
        ra.require_fluidsynth(tmp_path / "gm.sf2")


def test_missing_soundfont_says_what_to_install(tmp_path, monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "fluidsynth", types.ModuleType("fluidsynth"))  # the package itself is there
    with pytest.raises(common.MissingDependencyError,
                       match=r"no SoundFont at .*gm\.sf2.*apt-get install fluid-soundfont-gm.*--soundfont"):
        ra.require_fluidsynth(tmp_path / "gm.sf2")
    font = tmp_path / "real.sf2"
    font.write_bytes(b"RIFF")
    assert ra.require_fluidsynth(font) == font


def test_genre_order_and_windows(tmp_path):
    folder = tmp_path / "midi" / "jazz"
    folder.mkdir(parents=True)
    for name in ("c.mid", "a.mid", "b.MID", "notes.txt"):
        (folder / name).write_bytes(b"")
    files = ra.genre_files(tmp_path / "midi", "jazz")
    expected = sorted(folder / n for n in ("a.mid", "b.MID", "c.mid"))
    random.Random("jazz").shuffle(expected)
    assert files == expected
    ends = {files[0]: 70.0, files[1]: 20.0}  # files[2] was unreadable: no end time
    got = [(w.source.name, w.offset_index, w.t0, w.target.name)
           for w in ra.windows(files, ends, tmp_path / "out", seconds=15.0)]
    a, b = files[0], files[1]
    assert got == [(a.name, 0, 0.0, f"{a.stem}_0.ogg"), (b.name, 0, 0.0, f"{b.stem}_0.ogg"),
                   (a.name, 1, 30.0, f"{a.stem}_1.ogg"), (a.name, 2, 60.0, f"{a.stem}_2.ogg")]


def test_excerpt_moves_the_window_onto_one_instrument():
    pm = pretty_midi.PrettyMIDI()
    piano, drums = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=0, is_drum=True)
    piano.notes = [pretty_midi.Note(90, 60, 0.0, 1.0), pretty_midi.Note(80, 62, 1.5, 3.0),
                   pretty_midi.Note(70, 64, 4.5, 9.0), pretty_midi.Note(60, 65, 6.0, 7.0)]
    drums.notes = [pretty_midi.Note(100, 36, 2.0, 2.5)]
    pm.instruments += [piano, drums]
    cut = ra.excerpt(pm, 40, 2.0, 3.0)  # window [2, 5) s
    assert len(cut.instruments) == 1 and cut.instruments[0].program == 40
    notes = [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in cut.instruments[0].notes]
    assert notes == [(62, 0.0, 1.0), (64, 2.5, 4.0)]  # the long note is cut 1 s after the window


# --- make_examples ------------------------------------------------------------------------------------------
def test_loudest_window_and_finish():
    sr = 1000
    wav = np.full(10 * sr, 0.01)
    wav[6 * sr:7 * sr] = 0.5
    start, rms = mx.loudest_window(wav, window=2 * sr, hop=100)
    assert 5 * sr <= start <= 6 * sr and rms == pytest.approx(np.sqrt((0.5**2 * sr + 0.01**2 * sr) / (2 * sr)))
    assert mx.loudest_window(wav[:500], window=2 * sr, hop=100)[0] == 0
    out = mx.finish(wav[start:start + 2 * sr], sample_rate=sr)
    assert out.dtype == np.float32 and np.abs(out).max() == pytest.approx(mx.PEAK)
    assert out[0] == 0.0 and abs(out[-1]) < 0.01


def test_make_examples_cuts_one_held_out_clip_per_genre(make_audio_folder, tmp_path, capsys):
    rendered = make_audio_folder({"folk": 6, "jazz": 6}, name="rendered")
    real = make_audio_folder({"rock": 6}, name="real")
    out = tmp_path / "examples"
    assert mx.main(["--data", str(rendered), "--data", str(real), "--licence", "CC0 rendered", "--licence",
                    "CC BY-SA real", "--out", str(out), "--seconds", "0.5", "--workers", "0", "--no-progress"]) == 0
    _, val = AudioFolder.splits([rendered, real], cache_dir=tmp_path / "cache", workers=0, progress=False)
    held_out = {f"{root.name}/{c.rel}" for c in val.clips for root in (rendered, real)
                if c.path.is_relative_to(root)}
    readme = (out / "README.md").read_text()
    for genre in ("folk", "jazz", "rock"):
        clip = out / f"{genre}.ogg"
        wav, rate = sf.read(str(clip), dtype="float32")
        assert rate == 22050 and wav.ndim == 1 and len(wav) == int(0.5 * 22050)
        assert 0.7 < np.abs(wav).max() < 1.2  # peak 0.89 before the lossy Ogg Vorbis encoding
        row = next(line for line in readme.splitlines() if line.startswith(f"| {genre}.ogg |"))
        assert row.split(" | ")[1] in held_out
    assert "- `rendered/`: CC0 rendered" in readme and "- `real/`: CC BY-SA real" in readme
    assert "3 examples" in capsys.readouterr().out
    assert not list(out.glob(".*"))
    with pytest.raises(SystemExit):
        mx.main(["--data", str(rendered), "--data", str(real), "--out", str(out)])  # one licence per folder
