"""End-to-end training on a tiny model: bad files skipped, kill -9 + resume, DDP with 2 CPU processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import pytest

import audiovae
from audiovae.errors import AudioVAEError
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
    assert config["model_args"]["frontend"]["sample_rate"] == 22050
    assert config["training"]["stop_reason"] == "max steps (12)"
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/spectral_convergence" in l for l in lines) and any("loss/kl" in l for l in lines)
    assert "opt/lr" in lines[0] and not any("stats/lr" in l for l in lines)
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("stopped: max steps (12); validation: val/logmel_l1="), last_line
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


def _sets(*overrides: str) -> list[str]:
    return sum([["--set", s] for s in overrides], [])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_time_limit_stops_both_ranks_at_the_same_step(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 3, "b": 3})
    run = tmp_path / "run"
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "audiovae",
         "train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(run), "--no-progress",
         *_sets("train.time_limit_minutes=0.2", "train.max_steps=100000", "train.threads=1", "train.schedule=time",
                "train.checkpoint_every=100000", *FAST)],
        capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, timeout=180)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((run / "model" / "config.json").read_text())["training"]
    assert training["processes"] == 2
    # "time" makes the learning rate follow the clock, so equal weights also mean the ranks agreed on the clock.
    checksums = training["rank_weight_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert training["stop_reason"] == f"time limit (0.2 min) at step {training['steps']}"
    assert 11.5 <= training["train_seconds"] < 12.0 + 5.0  # the last step may end just short of the limit
    assert took < 12.0 + 45.0, f"the run took {took:.0f} s for a 12 s limit"
    assert result.stdout.strip().splitlines()[-1].startswith(f"stopped: {training['stop_reason']}; validation: ")


def _cli_with_prelude(path: Path, prelude: str) -> Path:
    """A script that runs ``prelude`` (test-only patches), then the audiovae command line with its arguments."""
    path.write_text("import sys\n" + prelude + "from audiovae.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return path


@pytest.mark.slow
def test_torchrun_ranks_agree_on_the_clock_even_when_theirs_disagree(tmp_path, make_audio_folder):
    """Rank 1's clock runs 1.5x fast. Each rank deciding from its own clock would leave rank 1 at the time limit
    while rank 0 goes on training, and both would wait forever in different collectives."""
    data = make_audio_folder({"a": 3, "b": 3})
    script = _cli_with_prelude(tmp_path / "fast_clock_rank1.py",
                               "import os, time\n"
                               "if os.environ['RANK'] == '1':\n"
                               "    real = time.monotonic\n"
                               "    t0 = real()\n"
                               "    time.monotonic = lambda: t0 + 1.5 * (real() - t0)\n")
    run = tmp_path / "run"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
             "train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(run), "--no-progress",
             *_sets("train.time_limit_minutes=0.1", "train.max_steps=100000", "train.threads=1",
                    "train.schedule=time", "train.checkpoint_every=100000", *FAST)],
            capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the ranks hang: they did not agree on when the time limit was reached")
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((run / "model" / "config.json").read_text())["training"]
    checksums = training["rank_weight_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]  # the same learning rates too
    assert training["stop_reason"] == f"time limit (0.1 min) at step {training['steps']}"


@pytest.mark.slow
def test_an_error_on_rank_0_alone_stops_every_rank(tmp_path, make_audio_folder):
    """Rank 0's validation raises; rank 1 must learn of it at the next step and stop with a message that points
    at rank 0, instead of waiting in (or crashing out of) a collective that rank 0 will never join.

    The two ranks are started by hand with torchrun's environment rather than by torchrun, so each rank's exit
    status and stderr can be checked and no agent kills a rank that would otherwise be left waiting.
    """
    data = make_audio_folder({"a": 3, "b": 3})
    script = _cli_with_prelude(tmp_path / "failing_rank0.py",
                               "from audiovae.train import mel_task\n"
                               "def validate(self, model):\n"
                               "    raise RuntimeError(f'validation exploded on rank {self.dist.rank}')\n"
                               "mel_task.MelTask.validate = validate\n")
    args = ["train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(data), "--out", str(tmp_path / "run"),
            "--no-progress", *_sets("train.max_steps=100", "train.val_every=3", "train.sample_every=0",
                                    "train.threads=1")]
    common = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
              "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=os.environ | common | {"RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(2)]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("a rank was still running 120 s after rank 0's validation failed: it hangs")
    (out0, err0), (out1, err1) = outputs
    assert procs[0].returncode != 0 and procs[1].returncode != 0, (err0[-2000:], err1[-2000:])
    assert "RuntimeError: validation exploded on rank 0" in err0
    assert "stopped: error: RuntimeError: validation exploded on rank 0" in out0
    assert "rank 0 failed near step 3" in err1 and "Traceback" not in err1
    assert not (tmp_path / "run" / "model").exists()


def test_time_schedule_ends_at_the_minimum_learning_rate(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 2, "b": 2})
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [
        f'data.path="{data}"', "train.threads=1", "train.schedule=time", "train.time_limit_minutes=0.05",
        "train.max_steps=100000", "train.log_every=5", "train.checkpoint_every=100000", *FAST])
    lines = []
    train(recipe, tmp_path / "run", progress=False, log=lines.append)
    training = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["training"]
    assert training["stop_reason"] == f"time limit (0.05 min) at step {training['steps']}"
    assert 2.5 <= training["train_seconds"] < 3.0 + 2.0  # the last step may end just short of the limit
    logged = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = [(l["step"], l["opt/lr"]) for l in logged if "opt/lr" in l]
    assert lrs[-1][0] == training["steps"]  # the last step is logged even off the log_every grid
    assert lrs[-1][1] == pytest.approx(recipe.train.lr * recipe.train.lr_min_ratio, rel=1e-9)
    after_warmup = [lr for step, lr in lrs if step > recipe.train.warmup_steps]
    assert len(after_warmup) > 3 and after_warmup == sorted(after_warmup, reverse=True)
    assert after_warmup[0] > 0.5 * recipe.train.lr  # it starts near the peak: the decay follows the clock
    assert lines[-1].startswith(f"stopped: {training['stop_reason']}; validation: val/logmel_l1=")


def test_plateau_stops_after_n_validations_without_improvement(tmp_path, make_audio_folder, monkeypatch):
    from audiovae.train import mel_task

    data = make_audio_folder({"a": 2, "b": 2})
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [
        f'data.path="{data}"', "train.threads=1", "train.max_steps=50", "train.val_every=2",
        "train.stop_on_plateau=2", "train.sample_every=0", "train.checkpoint_every=100"])
    monkeypatch.setattr(mel_task.MelTask, "validate", lambda self, model: {"val/spectral_convergence": 0.5})
    lines = []
    train(recipe, tmp_path / "run", progress=False, log=lines.append)
    training = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["training"]
    reason = "plateau (2 validations without improvement of val/spectral_convergence)"
    # step 2 sets the best figure; steps 4 and 6 do not beat it
    assert (training["stop_reason"], training["steps"]) == (reason, 6)
    assert lines[-1] == f"stopped: {reason}; validation: val/spectral_convergence=0.5"
    assert audiovae.load(tmp_path / "run" / "checkpoints").checkpoint_path.name == "step_00000006"


def test_plateau_resets_when_the_figure_improves(tmp_path, make_audio_folder, monkeypatch):
    from audiovae.train import mel_task

    data = make_audio_folder({"a": 2, "b": 2})
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [
        f'data.path="{data}"', "train.threads=1", "train.max_steps=12", "train.val_every=2",
        "train.stop_on_plateau=2", "train.sample_every=0", "train.checkpoint_every=100"])
    figures = iter([0.9, 0.9, 0.8, 0.8, 0.7, 0.6, 0.6])  # never two stale validations in a row
    monkeypatch.setattr(mel_task.MelTask, "validate",
                        lambda self, model: {"val/spectral_convergence": next(figures, 0.5)})
    train(recipe, tmp_path / "run", progress=False, log=lambda *_: None)
    training = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["training"]
    assert (training["stop_reason"], training["steps"]) == ("max steps (12)", 12)


def test_resumed_time_schedule_continues_from_the_saved_clock(tmp_path, make_audio_folder):
    data = make_audio_folder({"a": 2, "b": 2})
    common = [f'data.path="{data}"', "train.threads=1", "train.schedule=time", "train.max_steps=100000",
              "train.log_every=5", "train.checkpoint_every=100000", *FAST]
    run = tmp_path / "run"
    train(load_recipe(RECIPES / "mel_vae_tiny.toml", [*common, "train.time_limit_minutes=0.05"]), run,
          progress=False, log=lambda *_: None)
    first = json.loads((run / "model" / "config.json").read_text())["training"]
    lines = []
    began = time.monotonic()
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [*common, "train.time_limit_minutes=0.1"])
    train(recipe, run, resume_run=True, progress=False, log=lines.append)
    took = time.monotonic() - began
    assert f"resumed {run} at step {first['steps']}" in lines
    second = json.loads((run / "model" / "config.json").read_text())["training"]
    assert second["stop_reason"] == f"time limit (0.1 min) at step {second['steps']}"
    assert second["steps"] > first["steps"]
    assert took < 6.0 - first["train_seconds"] + 4.0  # the second session only ran the time left
    logged = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    resumed_lrs = [l["opt/lr"] for l in logged if "opt/lr" in l and l["step"] > first["steps"]]
    # half the 6 s were used before the resume: the decay goes on from about its midpoint, not from the peak
    assert 0.35 * recipe.train.lr < resumed_lrs[0] < 0.75 * recipe.train.lr
    assert resumed_lrs[-1] == pytest.approx(recipe.train.lr * recipe.train.lr_min_ratio, rel=1e-9)


def test_plateau_needs_a_task_that_names_its_figure(tmp_path, make_audio_folder, monkeypatch):
    from audiovae.train import mel_task

    monkeypatch.setattr(mel_task.MelTask, "monitor", None)
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [f'data.path="{tmp_path}"', "train.stop_on_plateau=3"])
    with pytest.raises(AudioVAEError, match="train.stop_on_plateau"):
        train(recipe, tmp_path / "run", progress=False, log=lambda *_: None)


def test_plateau_without_the_watched_figure_is_a_clear_error(tmp_path, make_audio_folder, monkeypatch):
    from audiovae.train import mel_task

    data = make_audio_folder({"a": 2, "b": 2})
    monkeypatch.setattr(mel_task.MelTask, "validate", lambda self, model: {"val/other": 1.0})
    recipe = load_recipe(RECIPES / "mel_vae_tiny.toml", [f'data.path="{data}"', "train.threads=1",
                                                         "train.stop_on_plateau=1", "train.sample_every=0"])
    lines = []
    with pytest.raises(AudioVAEError, match=r"watches val/spectral_convergence, but validation gave only \['val/other'\]"):
        train(recipe, tmp_path / "run", progress=False, log=lines.append)
    assert lines[-1].startswith("stopped: error: train.stop_on_plateau watches val/spectral_convergence")


def test_moving_average_weights_are_validated_published_and_resumed(tmp_path, make_audio_folder):
    from safetensors.torch import load_file

    from audiovae.train.checkpoint import load_train_state

    data = make_audio_folder({"a": 2, "b": 2})
    common = [f'data.path="{data}"', "train.threads=1", "train.ema_decay=0.9", "train.checkpoint_every=4", *FAST]
    run = tmp_path / "run"
    train(load_recipe(RECIPES / "mel_vae_tiny.toml", common), run, progress=False, log=lambda *_: None)
    final = load_file(str(run / "model" / "model.safetensors"))
    last = audiovae.load(run / "checkpoints").checkpoint_path
    live = load_file(str(last / "model.safetensors"))
    saved_ema = load_train_state(last)["ema"]
    assert json.loads((run / "model" / "config.json").read_text())["training"]["weights"] == "moving average"
    for key, value in saved_ema.items():
        assert torch.equal(final[key], value), key  # the published model is the average
    assert any(not torch.equal(final[k], live[k]) for k in saved_ema)  # which is not the last step's weights
    longer = load_recipe(RECIPES / "mel_vae_tiny.toml", common + ["train.max_steps=16"])
    train(longer, run, resume_run=True, progress=False, log=lambda *_: None)
    resumed = load_train_state(audiovae.load(run / "checkpoints").checkpoint_path)["ema"]
    assert set(resumed) == set(saved_ema) and any(not torch.equal(resumed[k], saved_ema[k]) for k in resumed)


def test_one_run_trains_on_several_folders(tmp_path, make_audio_folder):
    first = make_audio_folder({"organ": 2, "violin": 2}, name="first")
    second = make_audio_folder({"violin": 2, "voice": 2}, name="second")
    result = _run_cli("train", str(RECIPES / "mel_vae_tiny.toml"), "--data", str(first), "--data", str(second),
                      "--out", str(tmp_path / "run"), "--no-progress", *_sets("train.threads=1", *FAST))
    assert result.returncode == 0, result.stderr
    assert audiovae.load(tmp_path / "run").conditions == ["organ", "violin", "voice"]
    resolved = (tmp_path / "run" / "recipe.resolved.toml").read_text()
    assert str(first.resolve()) in resolved and str(second.resolve()) in resolved
