"""Log-mel preprocessing throughput of an audio folder, the cost of a no-op rerun, and memory-mapped crop reads.

    python benchmarks/preprocess.py --data /work/shared/data/audio_genres --workers 2

The cache goes to a fresh temporary directory (removed afterwards) unless ``--cache`` names one; with an
existing cache the first pass measures only what is new.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiovae.data import AudioFolder, preprocess_audio_folder  # noqa: E402


def measure(data: Path, cache: Path, workers: int, crop_frames: int, progress: bool) -> list[tuple[str, str]]:
    start = time.perf_counter()
    clips, report = preprocess_audio_folder(data, cache_dir=cache, workers=workers, progress=progress)
    first = time.perf_counter() - start
    start = time.perf_counter()
    _, rerun = preprocess_audio_folder(data, cache_dir=cache, workers=workers, progress=False)
    noop = time.perf_counter() - start

    dataset = AudioFolder(data, cache_dir=cache, split="all", crop_frames=crop_frames, workers=workers,
                          progress=False)
    torch.manual_seed(0)
    reads = max(2000, len(dataset))
    start = time.perf_counter()
    for i in torch.randint(len(dataset), (reads,)).tolist():
        dataset[i]
    read_s = time.perf_counter() - start

    audio_s = sum(c.seconds for c in clips)
    cache_mb = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20
    return [
        ("audio files found", f"{report.used + len(report.skipped)}"),
        ("clips used / skipped", f"{report.used} / {len(report.skipped)}"),
        ("converted in first pass", f"{report.converted}"),
        ("audio seconds (used clips)", f"{audio_s:.0f}"),
        (f"first pass wall s (workers={workers})", f"{first:.2f}"),
        ("audio s per wall s", f"{audio_s / first:.0f}"),
        ("no-op rerun wall s", f"{noop:.3f} (converted {rerun.converted})"),
        ("cache size MiB (float16)", f"{cache_mb:.1f}"),
        (f"random {crop_frames}-frame crops per s (mmap)", f"{reads / read_s:.0f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/audio_genres"), help="audio folder")
    parser.add_argument("--workers", type=int, default=2, help="preprocessing processes (0: in-process)")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (default: a temporary one)")
    parser.add_argument("--crop-frames", type=int, default=128)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    cache = args.cache or Path(tempfile.mkdtemp(prefix="audiovae-bench-cache-"))
    try:
        rows = measure(args.data, cache, args.workers, args.crop_frames, not args.no_progress)
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure':<{width}}  value\n{'-' * width}  -----")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
