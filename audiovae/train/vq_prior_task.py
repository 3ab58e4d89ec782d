"""The second stage of a mel VQ-VAE: fit its categorical code prior on the frozen model's codes.

The trained VQ-VAE (``model.vae``: a run, a model folder) encodes every recording of its own training split once,
with its genre, into codes LongTensor[num_codebooks, T']. The prior (:class:`~audiovae.models.prior.CategoricalPrior`,
``model.prior_hidden`` GRU units) then learns -log p(codes | genre) by teacher forcing on random windows of
``model.window_frames`` latent frames; the genre is replaced by "no genre" with the VQ-VAE's ``cond_dropout`` (what
classifier-free guidance needs). The split is the first stage's (as in :mod:`audiovae.train.prior_task`), so
validation measures the prior on recordings neither stage has seen. The run's model/ is the VQ-VAE with the prior
attached (``prior = "categorical"``), its held-out anomaly calibration included.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..checkpoint import unwrap
from ..errors import ConfigError
from ..models.mel_vqvae import MelVQVAE
from .prior_task import MelPriorTask, with_fresh_prior

CODE_PRIOR_KEYS = ("vae", "prior_hidden", "prior_dropout", "window_frames", "guidance", "top_k")


class CodeWindows(torch.utils.data.Dataset):
    """Random windows of ``window`` latent frames of per-recording codes; items are ``(codes LongTensor[n, window],
    genre id)``. Recordings are drawn in proportion to their length; shorter ones repeat their last frame."""

    def __init__(self, recordings: list[tuple[torch.Tensor, int]], window: int):
        self.recordings, self.window = recordings, window
        counts = [max(1, codes.shape[-1] // window) for codes, _ in recordings]
        self.item_recording = np.repeat(np.arange(len(recordings)), counts)

    def __len__(self) -> int:
        return len(self.item_recording)

    def __getitem__(self, index: int):
        codes, genre = self.recordings[int(self.item_recording[index])]
        spare = codes.shape[-1] - self.window
        if spare < 0:
            codes = torch.cat([codes, codes[:, -1:].expand(-1, -spare)], 1)
            spare = 0
        start = int(torch.randint(spare + 1, ()).item())
        return codes[:, start:start + self.window], torch.tensor(genre, dtype=torch.int64)


class CodePriorTask(MelPriorTask):
    name = "mel_vqvae_prior"
    monitor = ("val/prior_nll_per_frame", "min")
    model_keys = CODE_PRIOR_KEYS
    first_stage = ("VQ-VAE", "runs/vq")

    def build_datasets(self):
        settings = self._settings()
        train_set, val_set = self._splits(settings)
        if not isinstance(self.vae, MelVQVAE):
            raise ConfigError(f"{settings['vae']} holds a {type(self.vae).__name__}; the code prior needs a MelVQVAE "
                              "(recipes/mel_vqvae.toml); a mel VAE's prior is recipes/mel_prior.toml")
        self.train_windows = CodeWindows(self._encode(train_set), int(settings.get("window_frames", 64)))
        self.val_codes = self._encode(val_set)
        return self.train_windows, self.val_codes

    @torch.no_grad()
    def _encode(self, dataset) -> list[tuple[torch.Tensor, int]]:
        out = []
        for _, mel, genre in dataset.eval_items():
            cond = torch.tensor([genre]) if self.vae.conditions and genre >= 0 else None
            out.append((self.vae.encode_codes(mel[None], cond)[0], genre))
        return out

    def report(self) -> str:
        frames = sum(codes.shape[-1] for codes, _ in self.train_windows.recordings)
        return (f"{self.train_report.summary()}\ncode prior data: {len(self.train_windows.recordings)} training "
                f"recordings ({frames} latent frames of {self.vae.num_codebooks} codes), {len(self.val_codes)} held out")

    def build_model(self) -> MelVQVAE:
        settings = self._settings()
        args = {"prior": "categorical"}
        args |= {k: settings[k] for k in ("prior_hidden", "prior_dropout", "guidance", "top_k") if k in settings}
        return with_fresh_prior(MelVQVAE, self.vae, args, source=settings["vae"], what="a VQ-VAE with a code prior")

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        codes, genre = batch
        plain = unwrap(model)
        plain.quantiser.eval()  # frozen: the codebooks never move in this stage
        nll = plain.code_nll(codes, genre if plain.conditions else None).mean()  # nats per latent frame
        return {"loss": nll / plain.num_codebooks, "loss/prior_nll_per_frame": nll}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        """-log p(codes | genre) per latent frame of the held-out recordings, nats, and in bits per code."""
        model = unwrap(model)
        total, frames = 0.0, 0
        for codes, genre in self.val_codes:
            cond = torch.tensor([genre]) if model.conditions and genre >= 0 else None
            total += float(model.code_nll(codes[None], cond).sum())
            frames += codes.shape[-1]
        nll = total / max(frames, 1)
        return {"val/prior_nll_per_frame": nll, "val/bits_per_code": nll / math.log(2) / model.num_codebooks,
                "val/recordings": float(len(self.val_codes))}
