"""End-to-end training on a tiny model: bad files skipped, kill -9 + resume, DDP with 2 CPU processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import audiovae
from audiovae.train.config import load_recipe
from audiovae.train.loop import train
from conftest import write_clip

RECIPES = Path(__file__).parent.parent / "recipes"
FAST = ["train.sample_every=0", "train.val_every=1000"]


def _folder_with_bad_files(root: Path) -> Path:
    for genre in ("organ", "violin"):
        for i in range(3):
            write_clip(root / genre / f"{genre}{i}.wav", seconds=1.5, kind=["sine", "chirp", "noise"][i], seed=i)
    (root / "organ" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(64))
    (root / "violin" / "notes.wav").write_text("this is a text file renamed .wav\n")
    write_clip(root / "organ" / "blip.wav", seconds=0.1, kind="sine")
    write_clip(root / "violin" / "quiet.wav", seconds=2.0, kind="silence")
    return root


def _snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "audiovae", *args], capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": "1"}, **kwargs)


def test_trains_on_the_rest_and_reports_each_bad_file(tmp_path):
    data = _folder_with_bad_files(tmp_path / "data")
    before = _snapshot(data)
    result = _run_cli("train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(tmp_path / "run"),
                      "--no-progress", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    for name, reason in [("corrupt.wav", "unreadable"), ("notes.wav", "unreadable"), ("blip.wav", "too short"),
                         ("quiet.wav", "silent")]:
        line = next((l for l in log.splitlines() if name in l), "")
        assert reason in line, f"{name} not reported as {reason!r} in:\n{log}"
    assert _snapshot(data) == before  # the user's folder is never written to
    model = audiovae.load(tmp_path / "run")
    assert model.conditions == ["organ", "violin"]
    assert set(model.latent_stats["centroids"]) == {"organ", "violin"}
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["training"]["steps"] == 12
    assert config["frontend"]["sample_rate"] == 22050
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/spectral_convergence" in l for l in lines) and any("loss/kl" in l for l in lines)
    assert list((tmp_path / "run" / "samples" / "final").glob("*.png"))


def test_nothing_usable_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    (data / "x").mkdir(parents=True)
    (data / "x" / "bad.wav").write_text("not audio")
    result = _run_cli("train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "bad.wav" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_same_step_count(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 3, "b": 3})
    common = ["--data", str(data), "--no-progress", "--set", "train.max_steps=60", "--set", "train.checkpoint_every=5",
              "--set", "train.threads=1", "--set", "train.val_every=1000", "--set", "train.sample_every=0"]
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "audiovae", "train", str(RECIPES / "mel_vae_tiny.toml"),
                             "--out", str(run), *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints" / "LATEST").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model").exists(), "the run finished before it could be killed; make it longer"
    resumed = _run_cli("train", "--out", str(run), "--resume", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["training"]["steps"] == 60
    assert audiovae.load(run / "checkpoints").checkpoint_path.name == "step_00000060"


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_with_identical_weights(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 3, "b": 3})
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "audiovae", "train",
         str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(tmp_path / "run"), "--no-progress",
         "--set", "train.max_steps=6", "--set", "train.threads=1", *sum([["--set", s] for s in FAST], [])],
        capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["training"]
    assert training["processes"] == 2
    checksums = training["rank_weight_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, make_audio_folder, monkeypatch):
    from audiovae.train import mel_task
    from audiovae.train.loop import TrainingDiverged

    data = make_audio_folder({"a": 2, "b": 2})
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [f'data.path="{data}"', "train.threads=1", "train.max_nonfinite=3", *FAST])
    original = mel_task.MelTask.losses

    def poisoned(self, model, batch, step):
        out = original(self, model, batch, step)
        if step >= 5:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(mel_task.MelTask, "losses", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(recipe, tmp_path / "run", progress=False, log=lambda *_: None)
    latest = audiovae.load(tmp_path / "run")  # the last good checkpoint is intact and loads
    assert np.isfinite(np.concatenate([p.detach().numpy().ravel() for p in latest.parameters()])).all()
