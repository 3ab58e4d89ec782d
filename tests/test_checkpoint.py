import json

import pytest
import torch

import audiovae
from audiovae.errors import ConfigError
from audiovae.models import MelVAE
from audiovae.train.checkpoint import (load_train_state, resolve_checkpoint, save_run_checkpoint,
                                       write_model_folder)

TINY = dict(frontend={"n_mels": 8}, hidden=8, latent_channels=2, blocks_per_stage=1)


def test_run_checkpoints_keep_the_newest_and_resolve_latest(tmp_path):
    model = MelVAE(**TINY)
    opt = torch.optim.AdamW(model.parameters())
    for step in (1, 2, 3):
        save_run_checkpoint(tmp_path, model, step=step, keep=2,
                            train_state={"optimizer": opt.state_dict(), "state": {"step": step}})
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_00000002", "step_00000003"]
    assert resolve_checkpoint(tmp_path).name == "step_00000003"
    assert load_train_state(resolve_checkpoint(tmp_path))["state"]["step"] == 3
    assert not list(tmp_path.rglob("*.tmp*"))


def test_rewrite_replaces_a_folder_whole(tmp_path):
    first, second = MelVAE(**TINY), MelVAE(**TINY)
    write_model_folder(tmp_path / "m", first)
    write_model_folder(tmp_path / "m", second)
    loaded = audiovae.load(tmp_path / "m")
    for a, b in zip(loaded.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a model"):
        audiovae.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigError, match="not an audiovae model"):
        audiovae.load(tmp_path)


def test_train_state_loads_with_weights_only(tmp_path):
    model = MelVAE(**TINY)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 8, 8))[0].sum().backward()
    opt.step()
    folder = save_run_checkpoint(tmp_path, model, step=1, train_state={
        "optimizer": opt.state_dict(), "state": {"step": 1}, "rng": {"torch": torch.get_rng_state()}})
    state = torch.load(folder / "train_state.pt", weights_only=True)
    fresh = torch.optim.AdamW(MelVAE(**TINY).parameters())
    fresh.load_state_dict(state["optimizer"])
    assert state["state"]["step"] == 1


def test_written_files_follow_the_umask_not_temp_file_modes(tmp_path):
    import stat

    from audiovae._atomic import _UMASK
    from audiovae.audio.io import write_wav

    folder = write_model_folder(tmp_path / "m", MelVAE(**TINY))
    wav = write_wav(tmp_path / "a.wav", torch.zeros(100).numpy(), 8000)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~_UMASK
    for path in [*folder.iterdir(), wav]:  # temporary files start as 0600
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_UMASK, path


def test_bundled_names_resolve_to_the_package_and_unknown_ones_fail(tmp_path, monkeypatch):
    from audiovae import pretrained

    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "models")
    write_model_folder(tmp_path / "models" / "default-mel", MelVAE(**TINY))
    assert resolve_checkpoint("default-mel") == tmp_path / "models" / "default-mel"
    assert isinstance(audiovae.load("default-mel"), MelVAE)
    with pytest.raises(ConfigError, match="default-midi.*missing"):
        audiovae.load("default-midi")
    with pytest.raises(ConfigError, match="bundled: default-mel, default-midi"):
        pretrained.bundled_model_path("default-piano")
    monkeypatch.chdir(tmp_path)
    write_model_folder(tmp_path / "default-midi", MelVAE(**TINY))  # a local folder of that name wins
    assert resolve_checkpoint("default-midi").resolve() == (tmp_path / "default-midi").resolve()
