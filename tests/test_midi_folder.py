from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from midi_fixtures import (write_corrupt, write_drums_only, write_empty, write_high_resolution, write_piece,
                           write_truncated)

from audiovae.data.midi_folder import MidiFolder, split_pieces
from audiovae.errors import AudioVAEError, ConfigError, ParameterError
from audiovae.midi import RollConfig

CONFIG = RollConfig(segment_bars=2)  # 32 steps: each 8-bar piece gives 4 segments


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    for i in range(3):
        write_piece(root / "jazz", f"tune{i}.mid", base_pitch=60, seed=i)
        write_piece(root / "folk" / "sub", f"song{i}.midi", base_pitch=50, seed=10 + i)
    write_empty(root / "jazz")
    write_drums_only(root / "folk")
    write_corrupt(root / "folk")
    write_truncated(root / "jazz")
    (root / "jazz" / "notes.txt").write_text("not MIDI")
    return root


def listing(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def make(root, cache, **kwargs):
    return MidiFolder(root, cache_dir=cache, config=CONFIG, progress=False, **kwargs)


def test_scan_reports_skips_and_labels(data_dir, tmp_path):
    data = make(data_dir, tmp_path / "cache", split="all")
    report = data.report
    assert data.genres == ("folk", "jazz")
    assert len(report.used) == 6 and len(report.skipped) == 4
    assert report.counts == {"no notes": 1, "drums only": 1, "not a MIDI file / corrupt": 2}
    assert {p for p, _ in report.skipped} == {"jazz/empty.mid", "folk/drums.mid", "folk/corrupt.mid",
                                              "jazz/truncated.mid"}
    assert "jazz/truncated.mid" in report.summary() and "6 MIDI files used, 4 skipped" in report.summary()
    assert data.segments.dtype == bool and data.segments.shape[1:] == (2, 32, 88)
    assert len(data.segments) == len(data.genre_ids) == len(data.piece_ids)
    for path, genre in zip(np.array(data.piece_paths)[data.piece_ids], data.genre_ids):
        assert data.genres[genre] == path.split("/")[0]
    assert data.segments_per_genre() == {"folk": 12, "jazz": 12}
    roll, genre = data[0]
    assert roll.dtype == torch.float32 and roll.shape == (2, 32, 88) and genre.dtype == torch.int64


def test_retimed_files_are_used_and_reported_also_from_the_cache(data_dir, tmp_path):
    write_high_resolution(data_dir / "jazz")
    for _ in range(2):  # converted, then read back from the cache
        report = make(data_dir, tmp_path / "cache", split="all").report
        assert "jazz/long.mid" in report.used
        assert report.retimed == [("jazz/long.mid", "re-timed from 10080 to 480 ticks per quarter")]
        assert "used after re-timing to 480 ticks per quarter" in report.summary()
    assert report.cached == len(report.used) + len(report.skipped)


def test_split_by_piece_is_disjoint_and_covers_each_genre(data_dir, tmp_path):
    train = make(data_dir, tmp_path / "cache", split="train", val_fraction=0.1)
    val = train.with_split("val")
    assert not set(train.piece_paths) & set(val.piece_paths)
    assert sorted(train.piece_paths + val.piece_paths) == sorted(train.report.used)
    assert set(val.genre_ids.tolist()) == {0, 1}  # each genre has >= 2 pieces, so each gets a validation piece
    assert set(train.genre_ids.tolist()) == {0, 1}
    assert len(train) + len(val) == 24
    again = make(data_dir, tmp_path / "cache", split="val", val_fraction=0.1)
    assert again.piece_paths == val.piece_paths


def test_split_pieces_fraction():
    paths = [f"g/{i}.mid" for i in range(2000)]
    val = split_pieces(paths, np.zeros(2000, dtype=np.int64), val_fraction=0.2)
    assert 0.17 < val.mean() < 0.23
    assert not split_pieces(paths, np.zeros(2000, dtype=np.int64), val_fraction=0.0).any()
    with pytest.raises(ParameterError):
        split_pieces(paths, np.zeros(2000, dtype=np.int64), val_fraction=1.0)


def test_cache_reuse_and_changed_file(data_dir, tmp_path):
    cache = tmp_path / "cache"
    first = make(data_dir, cache, split="all")
    assert (first.report.converted, first.report.cached) == (10, 0)
    second = make(data_dir, cache, split="all")
    assert (second.report.converted, second.report.cached) == (0, 10)
    np.testing.assert_array_equal(second.segments, first.segments)
    changed = write_piece(data_dir / "jazz", "tune0.mid", bars=12, seed=99)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = make(data_dir, cache, split="all")
    assert (third.report.converted, third.report.cached) == (1, 9)
    tune0 = third.piece_paths.index("jazz/tune0.mid")
    assert (third.piece_ids == tune0).sum() == 6  # 12 bars now


def test_nothing_written_into_data_folder(data_dir, tmp_path):
    before = listing(data_dir)
    make(data_dir, tmp_path / "cache", split="all")
    make(data_dir, tmp_path / "cache", split="train", transpose=3)[0]
    assert listing(data_dir) == before
    with pytest.raises(ConfigError, match="outside"):
        make(data_dir, data_dir / "cache")
    assert listing(data_dir) == before


def test_workers_match_in_process(data_dir, tmp_path):
    serial = make(data_dir, tmp_path / "c0", split="all", workers=0)
    parallel = make(data_dir, tmp_path / "c2", split="all", workers=2)
    assert parallel.report.converted == 10 and parallel.report.skipped == serial.report.skipped
    np.testing.assert_array_equal(parallel.segments, serial.segments)


def test_loose_files_need_use_genres_false(tmp_path):
    root = tmp_path / "flat"
    write_piece(root, "a.mid", seed=1)
    write_piece(root / "g", "b.mid", seed=2)
    with pytest.raises(ConfigError, match="genre subfolder"):
        make(root, tmp_path / "cache")
    data = make(root, tmp_path / "cache", split="all", use_genres=False)
    assert data.genres == () and set(data.genre_ids.tolist()) == {-1}


def test_nothing_usable_raises(tmp_path):
    root = tmp_path / "bad"
    write_corrupt(root / "g")
    write_empty(root / "g")
    with pytest.raises(AudioVAEError, match="no usable MIDI file"):
        make(root, tmp_path / "cache")


def test_transposition_keeps_notes_in_range(tmp_path):
    root = tmp_path / "edge"
    config = RollConfig(segment_bars=2, pitch_low=55, pitch_high=70)  # notes span 55..65: up to +5 fits
    write_piece(root / "g", "a.mid", base_pitch=60, seed=3)
    write_piece(root / "g", "b.mid", base_pitch=60, seed=4)
    data = MidiFolder(root, cache_dir=tmp_path / "cache", config=config, split="all", progress=False)
    train = data.with_split("train", transpose=12)
    torch.manual_seed(0)
    shifts = set()
    for _ in range(20):
        for i in range(len(train)):
            item = train[i][0].numpy().astype(bool)
            original = train.segments[i]
            assert item.any()
            active = np.flatnonzero(original[1].any(axis=0))
            shift = int(np.flatnonzero(item[1].any(axis=0)).min() - active.min())
            expected = np.zeros_like(original)  # shifted without wrap-around
            expected[..., max(shift, 0):config.num_pitches + min(shift, 0)] = \
                original[..., max(-shift, 0):config.num_pitches - max(shift, 0)]
            np.testing.assert_array_equal(item, expected)
            assert -12 <= shift <= 12
            shifts.add(shift)
    assert len(shifts) > 3
    with pytest.raises(ParameterError):
        data.with_split("val", transpose=2)
