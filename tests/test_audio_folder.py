"""AudioFolder and its log-mel cache: skips with reasons, resumable and incremental caching, splits, crops, mmap."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE_RATE, write_clip

from audiovae.audio.features import MelConfig, MelFrontend
from audiovae.audio.io import normalize, read_audio
from audiovae.data import AudioFolder, cache_location, preprocess_audio_folder, split_by_file, split_by_group
from audiovae.data import audio_folder as audio_folder_module
from audiovae.data import mel_cache
from audiovae.errors import AudioVAEError, ConfigError, ParameterError


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def preprocess(root, cache, **kwargs):
    kwargs = {"workers": 0, "progress": False, **kwargs}
    return preprocess_audio_folder(root, cache_dir=cache, **kwargs)


@pytest.fixture
def bad_folder(make_audio_folder, rng):
    """jazz/ and rock/ with 3 good clips each, plus one of every kind of bad file."""
    root = make_audio_folder({"jazz": 3, "rock": 3})
    (root / "jazz" / "corrupt.wav").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (root / "rock" / "notes.wav").write_text("these are my notes, not audio\n")
    write_clip(root / "rock" / "blip.wav", seconds=0.1)
    write_clip(root / "jazz" / "quiet.wav", seconds=1.0, kind="silence")
    write_clip(root / "loose.wav", seconds=1.0)
    write_clip(root / "jazz" / ".hidden.wav", seconds=1.0)
    (root / "readme.txt").write_text("not audio")
    return root


def test_bad_files_are_skipped_with_reasons(bad_folder, tmp_path):
    before = snapshot(bad_folder)
    clips, report = preprocess(bad_folder, tmp_path / "cache")

    assert sorted(c.rel for c in clips) == ["jazz/jazz_0.wav", "jazz/jazz_2.wav", "jazz/live/jazz_1.wav",
                                            "rock/live/rock_1.wav", "rock/rock_0.wav", "rock/rock_2.wav"]
    assert report.used == 6 and report.genres == ["jazz", "rock"]
    reasons = dict(report.skipped)
    assert set(reasons) == {"jazz/corrupt.wav", "rock/notes.wav", "rock/blip.wav", "jazz/quiet.wav", "loose.wav"}
    assert reasons["jazz/corrupt.wav"].startswith("unreadable (")
    assert reasons["rock/notes.wav"].startswith("unreadable (")
    assert reasons["rock/blip.wav"] == "too short (0.10 s < 0.50 s)"
    assert reasons["jazz/quiet.wav"].startswith("silent (peak 0.0e+00")
    assert reasons["loose.wav"].startswith("no genre (")
    assert report.counts_by_reason() == {"no genre": 1, "silent": 1, "too short": 1, "unreadable": 2}
    summary = report.summary()
    assert all(rel in summary for rel in reasons) and "skipped, unreadable: 2" in summary
    assert {c.genre_id for c in clips if c.genre == "rock"} == {1}

    clips, report = preprocess(bad_folder, tmp_path / "cache", labels=False, min_seconds=0.05)
    assert "loose.wav" in {c.rel for c in clips} and "rock/blip.wav" in {c.rel for c in clips}
    assert {c.genre_id for c in clips} == {-1} and report.genres == []
    assert report.converted == 1  # only loose.wav was new; verdicts on the bad files came from the cache
    assert snapshot(bad_folder) == before


def test_nothing_usable_is_an_error(tmp_path, rng):
    root = tmp_path / "audio"
    (root / "jazz").mkdir(parents=True)
    with pytest.raises(AudioVAEError, match="no audio files"):
        preprocess(root, tmp_path / "cache")
    (root / "jazz" / "corrupt.wav").write_bytes(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    write_clip(root / "jazz" / "quiet.wav", seconds=1.0, kind="silence")
    with pytest.raises(AudioVAEError, match="nothing usable") as caught:
        preprocess(root, tmp_path / "cache")
    assert "jazz/corrupt.wav: unreadable" in str(caught.value) and "jazz/quiet.wav: silent" in str(caught.value)
    with pytest.raises(ConfigError, match="inside the data folder"):
        preprocess(root, root / "cache")
    assert not (root / "cache").exists()


def test_unchanged_folder_does_no_work_and_changed_files_are_redone(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 3, "rock": 3})
    cache = tmp_path / "cache"
    assert preprocess(root, cache)[1].converted == 6
    clips, report = preprocess(root, cache)
    assert (report.converted, report.cached, report.used) == (0, 6, 6)

    touched, rewritten = root / "jazz" / "jazz_0.wav", root / "rock" / "rock_2.wav"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    write_clip(rewritten, seconds=2.5, kind="noise")
    clips, report = preprocess(root, cache)
    assert report.converted == 2
    new = next(c for c in clips if c.rel == "rock/rock_2.wav")
    assert new.seconds == pytest.approx(2.5) and np.load(new.mel_path).shape == (new.frames, 80)
    assert preprocess(root, cache)[1].converted == 0


def test_front_end_and_normalisation_key_the_cache(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 2})
    cache = tmp_path / "cache"
    preprocess(root, cache)
    small = MelConfig(n_mels=40, f_max=None)
    clips, report = preprocess(root, cache, mel_config=small)
    assert report.converted == 2 and np.load(clips[0].mel_path).shape[1] == 40
    assert preprocess(root, cache, normalization="loudness")[1].converted == 2
    # the same front end spelled differently (a dict, an int f_max) shares the cache
    assert preprocess(root, cache, mel_config={"f_max": 8000})[1].converted == 0
    locations = {cache_location(root, cache_dir=cache, mel_config=c, normalization=n)
                 for c, n in [(MelConfig(), "peak"), (small, "peak"), (MelConfig(), "loudness")]}
    assert len(locations) == 3 and all(loc.is_dir() for loc in locations)


class _Killed(BaseException):
    """Stands in for the process being killed mid-pass (not an Exception, so nothing catches it)."""


def test_interrupted_pass_resumes(make_audio_folder, tmp_path, monkeypatch):
    root = make_audio_folder({"jazz": 4, "rock": 4})
    cache = tmp_path / "cache"
    real_call = mel_cache._Converter.__call__
    calls = []

    def dies_after_three(self, source, target):
        if len(calls) == 3:
            raise _Killed
        calls.append(source)
        return real_call(self, source, target)

    monkeypatch.setattr(mel_cache._Converter, "__call__", dies_after_three)
    with pytest.raises(_Killed):
        preprocess(root, cache)
    monkeypatch.setattr(mel_cache._Converter, "__call__", real_call)
    assert preprocess(root, cache)[1].converted == 5

    index = cache_location(root, cache_dir=cache, mel_config=MelConfig(), normalization="peak") / "index.jsonl"
    with open(index, "a") as f:
        f.write('{"rel": "jazz/jaz')  # a line cut short by a kill
    assert preprocess(root, cache)[1].converted == 0
    write_clip(root / "jazz" / "jazz_0.wav", seconds=1.5, kind="chirp")
    assert preprocess(root, cache)[1].converted == 1
    assert preprocess(root, cache)[1].converted == 0  # the line after the cut one was read back intact


def test_unexpected_failures_are_reported_and_retried(make_audio_folder, tmp_path, monkeypatch):
    root = make_audio_folder({"jazz": 3})
    real_call = mel_cache._Converter.__call__

    def fails_on_first(self, source, target):
        if source.endswith("jazz_0.wav"):
            raise RuntimeError("decoder exploded")
        return real_call(self, source, target)

    monkeypatch.setattr(mel_cache._Converter, "__call__", fails_on_first)
    clips, report = preprocess(root, tmp_path / "cache")
    assert dict(report.skipped) == {"jazz/jazz_0.wav": "failed (RuntimeError: decoder exploded)"}
    monkeypatch.setattr(mel_cache._Converter, "__call__", real_call)
    clips, report = preprocess(root, tmp_path / "cache")
    assert (report.converted, report.used) == (1, 3)


def test_worker_processes_match_in_process(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 2, "rock": 2})
    pooled, report = preprocess(root, tmp_path / "pooled", workers=2)
    local, _ = preprocess(root, tmp_path / "local", workers=0)
    assert report.converted == 4
    assert preprocess(root, tmp_path / "pooled", workers=2)[1].converted == 0
    for a, b in zip(pooled, local):
        assert a.rel == b.rel
        np.testing.assert_array_equal(np.load(a.mel_path), np.load(b.mel_path))


def test_split_is_by_file_disjoint_and_deterministic(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 5, "rock": 5, "solo": 1, "duo": 2})
    cache = tmp_path / "cache"
    train, val = AudioFolder.splits(root, cache_dir=cache, val_fraction=0.2, workers=0, progress=False)
    train_rels, val_rels = {c.rel for c in train.clips}, {c.rel for c in val.clips}
    assert not train_rels & val_rels and len(train_rels | val_rels) == 13
    for genre in ("jazz", "rock", "duo"):
        assert any(r.startswith(genre) for r in val_rels) and any(r.startswith(genre) for r in train_rels)
    assert "solo/solo_0.wav" in train_rels
    again = AudioFolder(root, cache_dir=cache, split="val", val_fraction=0.2, workers=0, progress=False)
    assert [c.rel for c in again.clips] == [c.rel for c in val.clips] and again.report.converted == 0
    everything = AudioFolder(root, cache_dir=cache, split="all", workers=0, progress=False)
    assert len(everything) == 13
    no_val = split_by_file(everything.clips, val_fraction=0.0)
    assert len(no_val[0]) == 13 and no_val[1] == []
    reseeded = [split_by_file(everything.clips, val_fraction=0.5, seed=7)[1] for _ in range(2)]
    assert reseeded[0] == reseeded[1]


def test_crops_shapes_padding_and_genre_ids(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 3, "rock": 3})
    cache = tmp_path / "cache"
    train, val = AudioFolder.splits(root, cache_dir=cache, crop_frames=32, val_fraction=0.3, workers=0,
                                    progress=False)
    assert train.genres == val.genres == ["jazz", "rock"]
    for i, clip in enumerate(train.clips):
        mel, genre = train[i]
        assert mel.shape == (80, 32) and mel.dtype == torch.float32 and genre.dtype == torch.int64
        assert int(genre) == train.genres.index(clip.rel.split("/")[0])
    torch.manual_seed(0)
    crops = torch.stack([train[0][0] for _ in range(8)])
    assert not all(torch.equal(crops[0], c) for c in crops[1:])
    assert torch.equal(val[0][0], val[0][0])

    batch_mel, batch_genre = next(iter(torch.utils.data.DataLoader(train, batch_size=3)))
    assert batch_mel.shape == (3, 80, 32) and batch_genre.shape == (3,)

    long = AudioFolder(root, cache_dir=cache, split="all", crop_frames=300, workers=0, progress=False)
    shortest = min(range(len(long)), key=lambda i: long.clips[i].frames)
    mel, _ = long[shortest]
    frames = long.clips[shortest].frames
    assert frames == MelConfig().num_frames(SAMPLE_RATE) < 300
    assert torch.all(mel[:, frames:] == MelConfig().log_silence)
    assert torch.equal(mel[:, :frames], torch.from_numpy(np.asarray(long.mel(shortest), dtype=np.float32)))


def test_eval_items_are_whole_clips_matching_the_front_end(make_audio_folder, tmp_path):
    root = make_audio_folder({"jazz": 3})
    dataset = AudioFolder(root, cache_dir=tmp_path / "cache", split="all", workers=0, progress=False)
    frontend = MelFrontend()
    items = list(dataset.eval_items())
    assert [path for path, _, _ in items] == [c.path for c in dataset.clips]
    for path, mel, genre in items:
        wav, _ = read_audio(path, sample_rate=SAMPLE_RATE)
        expected = frontend(torch.from_numpy(normalize(wav, mode="peak")))
        assert mel.shape == expected.shape and genre == 0
        assert torch.max(torch.abs(mel - expected)) < 4e-3  # float16 storage


def test_items_are_read_through_memory_maps(make_audio_folder, tmp_path, monkeypatch):
    root = make_audio_folder({"jazz": 2})
    dataset = AudioFolder(root, cache_dir=tmp_path / "cache", split="all", crop_frames=16, workers=0,
                          progress=False)
    mapped = dataset.mel(0)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable and mapped.dtype == np.float16
    assert mapped.shape == (80, dataset.clips[0].frames) and mapped.base.flags.c_contiguous  # time-major file
    np.testing.assert_array_equal(mapped, np.load(dataset.clips[0].mel_path).T)  # the recorded header offset
    modes = []
    real_memmap = np.memmap

    def spy(*args, **kwargs):
        modes.append(kwargs.get("mode"))
        return real_memmap(*args, **kwargs)

    monkeypatch.setattr(audio_folder_module.np, "memmap", spy)
    dataset[1]
    list(dataset.eval_items())
    assert modes == ["r", "r", "r"]


def test_user_folder_is_never_written(bad_folder, tmp_path):
    before = snapshot(bad_folder)
    cache = tmp_path / "cache"
    train, val = AudioFolder.splits(bad_folder, cache_dir=cache, workers=0, progress=False)
    train[0], val[0], list(val.eval_items())
    write_clip(tmp_path / "elsewhere.wav", seconds=1.0)
    AudioFolder(bad_folder, cache_dir=cache, mel_config=MelConfig(n_mels=32), workers=0, progress=False)
    assert snapshot(bad_folder) == before
    assert not any(p.suffix in (".npy", ".jsonl", ".json", ".tmp") for p in bad_folder.rglob("*"))


def test_split_by_recording_keeps_each_recording_on_one_side(tmp_path):
    root = tmp_path / "music"
    for genre in ("rock", "ambient"):
        for song in range(6):
            for part in range(3):  # three clips cut from one recording
                write_clip(root / genre / f"song{song}" / f"song{song}_part{part}.wav", seconds=0.6, seed=song)
    cache = tmp_path / "cache"
    for group, key in [("parent", lambda rel: rel.rsplit("/", 1)[0]),
                       ("regex:(song\\d+)_part", lambda rel: rel.split("/")[0] + rel.rsplit("/", 1)[1][:5])]:
        train, val = AudioFolder.splits(root, cache_dir=cache, val_fraction=0.3, split_group=group, workers=0,
                                        progress=False)
        train_keys, val_keys = {key(c.rel) for c in train.clips}, {key(c.rel) for c in val.clips}
        assert val_keys and not train_keys & val_keys, group
        assert {c.genre for c in val.clips} == {"rock", "ambient"}
    by_file = split_by_group(train.clips + val.clips, val_fraction=0.3, group="file")[1]
    assert len({c.rel.rsplit("/", 1)[0] for c in by_file}) > 1
    with pytest.raises(ParameterError, match="data.split_group must be one of file, parent"):
        split_by_group(train.clips, val_fraction=0.3, group="track")
    with pytest.raises(ParameterError, match="not a valid regular expression"):
        split_by_group(train.clips, val_fraction=0.3, group="regex:(")


def test_several_folders_pool_their_clips_and_genres(make_audio_folder, tmp_path):
    first = make_audio_folder({"jazz": 2, "rock": 2}, name="first")
    second = make_audio_folder({"rock": 2, "folk": 2}, name="second")
    pooled = AudioFolder([first, second], cache_dir=tmp_path / "cache", split="all", workers=0, progress=False)
    assert pooled.genres == ["folk", "jazz", "rock"] and len(pooled) == 8
    for i, clip in enumerate(pooled.clips):
        assert pooled.genres[int(pooled[i][1])] == clip.genre == clip.rel.split("/")[0]
    assert "first" in pooled.report.summary() and "second" in pooled.report.summary()


def test_length_weighting_draws_long_recordings_more_often(tmp_path):
    root = tmp_path / "music"
    write_clip(root / "a" / "long.wav", seconds=8.0, seed=1)
    write_clip(root / "a" / "short.wav", seconds=1.0, seed=2)
    plain = AudioFolder(root, cache_dir=tmp_path / "cache", split="all", crop_frames=32, workers=0, progress=False)
    weighted = AudioFolder(root, cache_dir=tmp_path / "cache", split="all", crop_frames=32, length_weighted=True,
                           workers=0, progress=False)
    assert len(plain) == 2
    frames = {c.rel: c.frames for c in weighted.clips}
    assert len(weighted) == frames["a/long.wav"] // 32 + frames["a/short.wav"] // 32
    long_items = sum(weighted.clips[int(weighted._item_clip[i])].rel == "a/long.wav" for i in range(len(weighted)))
    assert long_items == frames["a/long.wav"] // 32


def test_training_crops_avoid_silence_when_they_can(tmp_path):
    root = tmp_path / "music"
    path = root / "a" / "gap.wav"
    path.parent.mkdir(parents=True)
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    wav = np.where(t < 3.0, 0.0, 0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # 3 s silence, then a tone
    import soundfile as sf
    sf.write(str(path), wav, SAMPLE_RATE)
    dataset = AudioFolder(root, cache_dir=tmp_path / "cache", split="all", crop_frames=16, workers=0, progress=False)
    torch.manual_seed(0)
    loud = sum(float(dataset[0][0].max()) > MelConfig().log_silence + 3 for _ in range(200))
    # a uniform crop is loud about 3 times in 10; four tries make that about 3 in 4
    assert loud > 120
