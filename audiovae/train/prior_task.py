"""The second stage of a mel VAE: fit its genre-conditioned temporal prior on the frozen model's latents.

The trained VAE (``model.vae`` in the recipe: a run, a model folder or a bundled name) encodes every recording of
its own training split once, with its genre, into the posterior's mean and log-variance per latent frame. The
prior (:class:`~audiovae.models.prior.TemporalPrior`, ``model.prior_hidden`` GRU units) then learns
-log p(z | genre) by teacher forcing on windows of ``model.window_frames`` latent frames, z drawn from the
posterior each step; the genre is replaced by "no genre" with the VAE's ``cond_dropout``, which is what
classifier-free guidance needs. Encoder and decoder stay exactly as trained. The split is the VAE's (its saved
recipe's data settings and seed), so validation measures the prior on recordings neither stage has seen. The
run's model/ is the VAE with the prior attached (``prior = "autoregressive"``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.io import write_wav
from ..audio.plots import save_mel_png
from ..checkpoint import load, read_config, resolve, unwrap
from ..errors import ConfigError
from ..models.mel_vae import MelVAE
from .task import Task

PRIOR_KEYS = ("vae", "prior_hidden", "window_frames", "guidance")


def with_fresh_prior(model_class, vae, prior_args: dict, *, source, what: str):
    """A ``model_class`` built like the frozen first stage ``vae`` plus ``prior_args``, holding ``vae``'s weights
    and latent statistics, with only its new ``latent_prior`` trainable (ConfigError naming ``source`` when the
    weights do not fit ``what``)."""
    model = model_class(**(dict(vae.init_args) | prior_args))
    missing, unexpected = model.load_state_dict(vae.state_dict(), strict=False)
    if unexpected or any(not k.startswith("latent_prior.") for k in missing):
        raise ConfigError(f"{source} does not fit {what}: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("latent_prior."))
    model.latent_stats = vae.latent_stats
    return model


class LatentWindows(torch.utils.data.Dataset):
    """Random windows of ``window`` latent frames from per-recording posteriors; items are
    ``(mean Tensor[C, window], logvar Tensor[C, window], genre id)``. Recordings are drawn in proportion to
    their length (one item per window of frames); shorter ones are padded by repeating their last frame."""

    def __init__(self, posteriors: list[tuple[torch.Tensor, torch.Tensor, int]], window: int):
        self.posteriors, self.window = posteriors, window
        counts = [max(1, mean.shape[-1] // window) for mean, _, _ in posteriors]
        self.item_recording = np.repeat(np.arange(len(posteriors)), counts)

    def __len__(self) -> int:
        return len(self.item_recording)

    def __getitem__(self, index: int):
        mean, logvar, genre = self.posteriors[int(self.item_recording[index])]
        spare = mean.shape[-1] - self.window
        if spare < 0:
            pad = (0, -spare)
            mean = torch.nn.functional.pad(mean[None], pad, mode="replicate")[0]
            logvar = torch.nn.functional.pad(logvar[None], pad, mode="replicate")[0]
            spare = 0
        start = int(torch.randint(spare + 1, ()).item())
        window = slice(start, start + self.window)
        return mean[:, window], logvar[:, window], torch.tensor(genre, dtype=torch.int64)


class MelPriorTask(Task):
    name = "mel_prior"
    monitor = ("val/prior_nll_per_frame", "min")
    model_keys = PRIOR_KEYS          # what [model] of the recipe may hold
    first_stage = ("mel VAE", "runs/mel")  # what model.vae names, and an example

    def _settings(self) -> dict:
        settings = dict(self.recipe.model)
        unknown = set(settings) - set(self.model_keys)
        if unknown or not settings.get("vae"):
            what, example = self.first_stage
            raise ConfigError(f"[model] of a {self.name} recipe takes {', '.join(self.model_keys)} (vae required: "
                              f"the trained {what}, e.g. --set model.vae={example}); got {sorted(settings)}")
        return settings

    def build_datasets(self):
        from ..models.mel_vqvae import MelVQVAE

        settings = self._settings()
        train_set, val_set = self._splits(settings)
        if isinstance(self.vae, MelVQVAE):
            raise ConfigError(f"{settings['vae']} is a VQ-VAE: its prior over codes is recipes/mel_vqvae_prior.toml")
        window = int(settings.get("window_frames", 64))
        self.train_windows = LatentWindows(self._encode(train_set), window)
        self.val_posteriors = self._encode(val_set)
        return self.train_windows, self.val_posteriors

    def _splits(self, settings: dict):
        """Load the first stage (``self.vae``) and split the data as it was split: (train_set, val_set)."""
        from ..data.audio_folder import AudioFolder

        self.vae = load(settings["vae"], modality="audio")
        trained = (read_config(resolve(settings["vae"])).get("recipe") or {})
        d, seed = trained.get("data", {}), trained.get("train", {}).get("seed", 0)
        path, cache_dir = self.data_location()
        train_set, val_set = AudioFolder.splits(
            path, cache_dir=cache_dir, mel_config=self.vae.frontend, val_fraction=d.get("val_fraction", 0.1),
            labels=bool(self.vae.conditions), normalization=d.get("normalization", "peak"),
            min_seconds=d.get("min_seconds", 0.5), workers=self.recipe.data.workers, seed=seed,
            split_group=d.get("split_group", "file"), progress=self.progress)
        if self.vae.conditions and list(train_set.genres) != list(self.vae.conditions):
            raise ConfigError(f"the data's genres {train_set.genres} differ from the VAE's {self.vae.conditions}")
        self.genres, self.train_report, self.val_set = list(self.vae.conditions), train_set.report, val_set
        return train_set, val_set

    @torch.no_grad()
    def _encode(self, dataset) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        out = []
        for _, mel, genre in dataset.eval_items():
            cond = torch.tensor([genre]) if self.vae.conditions and genre >= 0 else None
            posterior = self.vae.encode(mel[None], cond)
            out.append((posterior.mean[0], posterior.logvar[0], genre))
        return out

    def report(self) -> str:
        frames = sum(mean.shape[-1] for mean, _, _ in self.train_windows.posteriors)
        return (f"{self.train_report.summary()}\nprior data: {len(self.train_windows.posteriors)} training "
                f"recordings ({frames} latent frames), {len(self.val_posteriors)} held out")

    def build_model(self) -> MelVAE:
        settings = self._settings()
        args = {"prior": "autoregressive"} | {k: settings[k] for k in ("prior_hidden", "guidance") if k in settings}
        return with_fresh_prior(MelVAE, self.vae, args, source=settings["vae"], what="a mel VAE with a prior")

    def _nll_per_frame(self, model, mean, logvar, genre, *, sample: bool) -> torch.Tensor:
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        cond = genre if model.conditions else None
        c = model.embed_condition(cond, z.shape[0], z.device)
        return -model.latent_prior.log_prob(model.to_sequence(z), c).mean()

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        mean, logvar, genre = batch
        nll = self._nll_per_frame(unwrap(model), mean, logvar, genre, sample=True)
        return {"loss": nll / mean.shape[1], "loss/prior_nll_per_frame": nll}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        """-log p(z | genre) per latent frame of the held-out recordings (z = their posterior means), nats."""
        model = unwrap(model)
        total, frames = 0.0, 0
        for mean, logvar, genre in self.val_posteriors:
            nll = self._nll_per_frame(model, mean[None], logvar[None], torch.tensor([genre]), sample=False)
            total, frames = total + float(nll) * mean.shape[-1], frames + mean.shape[-1]
        return {"val/prior_nll_per_frame": total / max(frames, 1), "val/recordings": float(len(self.val_posteriors))}

    @torch.no_grad()
    def save_samples(self, model, step: int, folder: Path) -> None:
        """A 6 s sample per genre (temperature 1, the model's guidance), as a mel picture and audio (the bundled
        neural vocoder when it fits the model's front end, else Griffin-Lim)."""
        from ..inference import mel_to_waveform
        from ..latent import prior_samples

        model = unwrap(model)
        config = model.frontend
        frames = config.num_frames(6 * config.sample_rate)
        for i, genre in enumerate(self.genres or [None]):
            cond = torch.tensor([i]) if genre is not None else None
            z = prior_samples(model, 1, seed=step + i, frames=model.latent_frames(frames), cond=cond,
                              guidance=model.guidance)
            mel = model.decode(z, cond, frames=frames)[0]
            save_mel_png(folder / f"{genre or 'sample'}.png", [mel], [f"{genre or 'no genre'} (step {step})"],
                         frames_per_second=config.frames_per_second)
            write_wav(folder / f"{genre or 'sample'}.wav", mel_to_waveform(model, mel), config.sample_rate)

    def latent_stats(self, model) -> dict:
        return self.vae.latent_stats

    def anomaly_calibration(self, model) -> dict | None:
        from ..scoring import held_out_calibration

        return held_out_calibration(unwrap(model), self.val_set)
