"""Code files: a VQ model's integer tokens of one clip as a .npy that says which model wrote them.

The array is int32 [num_codebooks, T'] (T' latent frames) in a one-field structured dtype: field ``code``, whose
title is JSON naming the format, the model class, ``codebook_size``, ``num_codebooks``, a fingerprint of the
codebooks (SHA-1 of their float32 values), the latent frame rate and the genre the clip was encoded with. It loads
without pickle (``np.load(path)["code"]`` gives the plain integers). :func:`read_codes` refuses a file whose codebook
size, number of codebooks or codebooks differ from the model's, naming the file and the difference.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from ._atomic import atomic_file
from .errors import AudioVAEError

FORMAT = "audiovae-codes"


def codebook_fingerprint(model) -> str:
    """SHA-1 (16 hex digits) of the model's codebooks as float32, stage by stage."""
    digest = hashlib.sha1()
    for stage in model.quantiser.stages:
        digest.update(stage.codebook.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _facts(model, genre: str | None, frames: int | None) -> dict:
    return {"format": FORMAT, "model_class": type(model).__name__, "codebook_size": model.codebook_size,
            "num_codebooks": model.num_codebooks, "codebooks": codebook_fingerprint(model),
            "latent_frames_per_second": model.frontend.frames_per_second / model.time_downsample, "genre": genre,
            "frames": frames}


def write_codes(path: str | os.PathLike, codes: torch.Tensor, model, *, genre: str | None = None,
                frames: int | None = None) -> Path:
    """Write codes LongTensor[num_codebooks, T'] of ``model`` to ``path`` (.npy), atomically. ``genre``: the
    condition the clip was encoded with; ``frames``: its length in mel frames (decoding trims to it)."""
    codes = model.check_codes(codes[None])[0].cpu().numpy()
    if frames is not None and model.latent_frames(frames) != codes.shape[1]:
        raise AudioVAEError(f"{frames} mel frames make {model.latent_frames(frames)} latent frames, not {codes.shape[1]}")
    dtype = np.dtype([((json.dumps(_facts(model, genre, frames), sort_keys=True), "code"), "<i4")])
    array = np.zeros(codes.shape, dtype=dtype)
    array["code"] = codes
    path = Path(path)
    with atomic_file(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
    return path


def read_codes(path: str | os.PathLike, model) -> tuple[torch.Tensor, dict]:
    """(codes LongTensor[num_codebooks, T'], the file's facts: genre, frames, ...) from a file written by
    :func:`write_codes` for this model; AudioVAEError naming the file when it is not a code file or was written for
    other codebooks."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AudioVAEError(f"{path}: cannot read a codes .npy: {exc}") from exc
    fields = array.dtype.fields or {}
    title = fields.get("code", (None, None, None))[2] if "code" in fields else None
    try:
        facts = json.loads(title) if title else {}
    except json.JSONDecodeError:
        facts = {}
    if facts.get("format") != FORMAT:
        raise AudioVAEError(f"{path} is not an audiovae codes file (written by `audiovae codes`): it does not say "
                            "which model's codebooks its numbers index")
    differences = [f"{key} {facts.get(key)} (this model: {value})" for key, value in
                   (("codebook_size", model.codebook_size), ("num_codebooks", model.num_codebooks))
                   if facts.get(key) != value]
    if differences:
        raise AudioVAEError(f"{path} holds codes of another model: {', '.join(differences)}")
    if facts.get("codebooks") != codebook_fingerprint(model):
        raise AudioVAEError(f"{path} holds codes of another model: its codebooks (fingerprint {facts.get('codebooks')}) "
                            f"are not this model's ({codebook_fingerprint(model)}), so its numbers would index "
                            "different sounds")
    codes = array["code"]
    if codes.ndim != 2:
        raise AudioVAEError(f"{path}: codes must be [num_codebooks, frames], got shape {codes.shape}")
    frames = facts.get("frames")
    if frames is not None and model.latent_frames(int(frames)) != codes.shape[1]:
        raise AudioVAEError(f"{path} says the clip had {frames} mel frames, which do not make its {codes.shape[1]} "
                            "latent frames")
    return torch.from_numpy(codes.astype(np.int64)), facts
