"""The example clips shipped inside the package: one 10 s excerpt per genre of the open audio_genres data
(rendered) and music_real (real recordings), each from a recording the bundled mel VAE held out in training
(``audiovae/assets/examples/``; its README.md says where each comes from and under what licence, LICENSES/ holds
the copyright notices). The demo offers them as Blend examples; ``recipes/data/make_examples.py`` makes them.
"""
from __future__ import annotations

from pathlib import Path

from .audio.io import is_audio_path

EXAMPLES_DIR = Path(__file__).parent / "assets" / "examples"


def examples_dir() -> Path:
    """The folder of the bundled example clips (it may be missing from a trimmed installation)."""
    return EXAMPLES_DIR


def example_clips(*, max_seconds: float | None = None, folder: Path | None = None) -> list[Path]:
    """The bundled clips (``<genre>.ogg``), sorted by name; [] when the folder is missing.

    max_seconds: leave out clips longer than this many seconds (and any file soundfile cannot read).
    folder: look here instead of :func:`examples_dir`.
    """
    folder = examples_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    clips = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_audio_path(p))
    if max_seconds is None:
        return clips
    import soundfile as sf

    kept = []
    for path in clips:
        try:
            seconds = sf.info(str(path)).duration
        except (sf.LibsndfileError, RuntimeError):
            continue
        if seconds <= max_seconds:
            kept.append(path)
    return kept
