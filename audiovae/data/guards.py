"""Checks shared by the data folders."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def ensure_cache_outside(root: Path, cache_dir: Path) -> None:
    """Refuse a cache inside the user's data folder: nothing is ever written there."""
    root, cache = Path(root).resolve(), Path(cache_dir).resolve()
    if cache == root or root in cache.parents:
        raise ConfigError(f"cache_dir {cache_dir} lies inside the data folder {root}; choose a cache directory "
                          "outside it (nothing is ever written into the data folder)")
