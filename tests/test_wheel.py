"""The built wheel carries the bundled models, and they load from outside the source tree."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = """
import sys, audiovae
assert audiovae.__file__.startswith(sys.argv[1]), audiovae.__file__
from audiovae.midi.generate import generate_pieces
midi = audiovae.load("default-midi")
piece = generate_pieces(midi, n=1, bars=8, genre=midi.conditions[0], seed=0)[0]
mel = audiovae.load("default-mel")
print(type(midi).__name__, type(mel).__name__, int(piece[1].sum()))
"""


@pytest.mark.slow
def test_wheel_holds_the_models_and_loads_them_outside_the_repo(tmp_path):
    source, dist = tmp_path / "source", tmp_path / "dist"  # build from a copy: the checkout stays untouched
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "audiovae", source / "audiovae", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("audiovae-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("default-mel", "default-midi"):
        for file in ("config.json", "model.safetensors", "MODEL_CARD.md"):
            assert f"audiovae/assets/models/{model}/{file}" in names
    assert any(name.startswith("audiovae/assets/examples/") for name in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    run = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    kind_midi, kind_mel, notes = run.stdout.split()
    assert (kind_midi, kind_mel) == ("PianoRollCVAE", "MelVAE") and int(notes) > 0
