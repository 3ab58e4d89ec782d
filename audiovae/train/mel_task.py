"""The mel VAE task: AudioFolder data, the beta-VAE loss on log-mels, validation metrics, samples, latent stats."""
from __future__ import annotations

from pathlib import Path

import torch

from ..audio.io import write_wav
from ..audio.plots import save_mel_png
from ..models.mel_vae import MelVAE
from ..audio.reconstruction import evaluate_clips, mel_spectral_convergence
from ..models.posterior import beta_at, kl_with_free_bits
from ..checkpoint import unwrap
from .task import Task


class MelTask(Task):
    name = "mel_vae"
    monitor = ("val/spectral_convergence", "min")  # the figure train.stop_on_plateau watches
    model_class = MelVAE  # built from the recipe's [model], the data's genres and the recipe's front end

    def build_datasets(self):
        from ..data.audio_folder import AudioFolder

        d = self.recipe.data
        path, cache_dir = self.data_location()
        self.train_set, self.val_set = AudioFolder.splits(
            path, cache_dir=cache_dir, mel_config=self.recipe.mel_config, val_fraction=d.val_fraction,
            crop_frames=d.crop_frames, labels=d.labels, normalization=d.normalization, min_seconds=d.min_seconds,
            workers=d.workers, seed=self.recipe.train.seed, split_group=d.split_group,
            length_weighted=d.length_weighted, progress=self.progress)
        self.genres = list(self.train_set.genres) if d.labels else []
        return self.train_set, self.val_set

    def report(self) -> str:
        return self.train_set.report.summary()

    def build_model(self) -> MelVAE:
        args = dict(self.recipe.model)
        args.update(genres=self.genres, frontend=self.recipe.mel_config)
        return self.model_class(**args)

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        mel, genre = batch
        plain = unwrap(model)
        x_hat, posterior = model(mel, genre if plain.conditions else None)
        frames = mel.shape[-1]
        lc = self.recipe.loss
        beta = beta_at(step, beta=lc.beta, warmup_steps=lc.beta_warmup_steps)
        nll = plain.reconstruction_nll(mel, x_hat).mean() / frames
        kl = posterior.kl()
        kl_term = kl_with_free_bits(kl, lc.free_bits) / frames
        loss = nll + beta * kl_term
        out = {"loss/recon_nll": nll, "loss/kl": kl.flatten(1).sum(1).mean() / frames,
               "loss/logmel_l1": (mel - x_hat.float()).abs().mean()}
        if lc.spectral_weight > 0:
            sc = mel_spectral_convergence(mel, x_hat).mean()
            loss = loss + lc.spectral_weight * sc
            out["loss/spectral_convergence"] = sc
        out["loss"] = loss
        out["stats/beta"] = torch.tensor(beta)
        return out

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        return evaluate_clips(unwrap(model), self.val_set.eval_items())

    @torch.no_grad()
    def save_samples(self, model, step: int, folder: Path) -> None:
        from ..audio.inversion import GriffinLim

        model = unwrap(model)
        mel_config = self.recipe.mel_config
        vocoder = GriffinLim(mel_config).to(next(model.parameters()).device)
        for i, (name, mel, genre) in zip(range(2), self.val_set.eval_items()):
            x = mel.to(next(model.parameters()).device).unsqueeze(0)
            cond = torch.tensor([genre], device=x.device) if model.conditions and genre >= 0 else None
            x_hat = model.decode(model.encode(x, cond).mode(), cond, frames=x.shape[-1])
            stem = Path(str(name)).stem
            save_mel_png(folder / f"{i}_{stem}.png", [x[0], x_hat[0]], ["input", f"reconstruction (step {step})"],
                         frames_per_second=mel_config.frames_per_second)
            write_wav(folder / f"{i}_{stem}_reconstruction.wav", vocoder(x_hat[0].float()).cpu().numpy(),
                      mel_config.sample_rate)

    def anomaly_calibration(self, model) -> dict | None:
        from ..scoring import held_out_calibration

        return held_out_calibration(unwrap(model), self.val_set)

    @torch.no_grad()
    def latent_stats(self, model) -> dict:
        """Channel mean/std over all latent frames of the training clips and per-genre centroids (time-averaged
        posterior means), encoded with the "no genre" condition so genres are comparable in one space."""
        model = unwrap(model)
        device = next(model.parameters()).device
        frames, per_genre = [], {}
        for _, mel, genre in self.train_set.eval_items():
            mean = model.encode(mel.to(device).unsqueeze(0)).mean[0]  # [C, T']
            frames.append(mean.transpose(0, 1).cpu())
            if genre >= 0 and self.genres:
                per_genre.setdefault(self.genres[genre], []).append(mean.mean(1).cpu())
        pooled = torch.cat(frames)
        return {"mean": pooled.mean(0).tolist(), "std": pooled.std(0).tolist(), "frames": int(pooled.shape[0]),
                "centroids": {g: torch.stack(v).mean(0).tolist() for g, v in sorted(per_genre.items())}}
