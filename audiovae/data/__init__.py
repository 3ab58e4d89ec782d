"""Datasets over a user's folder: scanning, genre labels from subfolders, on-disk feature caches, splits."""
from .audio_folder import AudioFolder, split_by_file, split_by_group
from .mel_cache import CachedClip, ScanReport, cache_location, preprocess_audio_folder
from .midi_folder import MidiFolder, scan_midi_folder, split_pieces

__all__ = ["AudioFolder", "CachedClip", "ScanReport", "cache_location", "preprocess_audio_folder", "split_by_file",
           "split_by_group", "MidiFolder", "scan_midi_folder", "split_pieces"]
