"""The vocoder task: waveform crops of any audio folder, multi-resolution STFT and log-mel losses, validation on
held-out recordings against Griffin-Lim's starting point (the true mel), samples to listen to.

The mel the vocoder learns from is computed on the fly from each crop by the recipe's front end, exactly as the
mel VAE's cache computes it (same normalisation, same STFT), so a vocoder trained here pairs with a mel VAE
trained on the same ``[mel]`` section.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..audio.features import MelFrontend
from ..audio.io import write_wav
from ..audio.plots import save_mel_png
from ..audio.spectral_distance import log_mel_l1, stft_distances
from ..checkpoint import unwrap
from ..errors import ConfigError
from ..models.discriminators import adversarial_losses
from ..models.vocoder import MelVocoder
from .task import Task

VAL_SECONDS = 10.0  # each held-out recording is validated on one excerpt this long, from its middle


class VocoderTask(Task):
    name = "vocoder"
    monitor = ("val/mrstft", "min")

    def build_datasets(self):
        from ..data.waveform_crops import WaveformCrops

        d, mel = self.recipe.data, self.recipe.mel_config
        path, cache_dir = self.data_location()
        self.train_set, self.val_set, self._report = WaveformCrops.splits(
            path, cache_dir=cache_dir, mel_config=mel, segment_samples=d.crop_frames * mel.hop_length,
            val_fraction=d.val_fraction, labels=d.labels, normalization=d.normalization,
            min_seconds=d.min_seconds, workers=d.workers, seed=self.recipe.train.seed, split_group=d.split_group,
            progress=self.progress)
        self.val_excerpts = self.val_set.excerpts(VAL_SECONDS, mel.sample_rate)
        return self.train_set, self.val_set

    def report(self) -> str:
        return (f"{self._report}\nvocoder data: {len(self.train_set.files)} training recordings, "
                f"{len(self.val_excerpts)} held out ({VAL_SECONDS:g} s excerpts for validation)")

    def build_model(self) -> MelVocoder:
        args = dict(self.recipe.model)
        if self.recipe.loss.adversarial:
            args.setdefault("discriminator_width", 32)
            if args["discriminator_width"] < 1:
                raise ConfigError("loss.adversarial needs model.discriminator_width >= 1 (32 is HiFi-GAN's size)")
        return MelVocoder(frontend=self.recipe.mel_config, **args)

    def _frontend(self, device: torch.device) -> MelFrontend:
        if getattr(self, "_frontend_module", None) is None or self._frontend_device != device:
            self._frontend_module = MelFrontend(self.recipe.mel_config).to(device)
            self._frontend_device = device
        return self._frontend_module

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        waveform = batch
        frontend = self._frontend(waveform.device)
        with torch.no_grad():
            mel = frontend(waveform)
        estimate = model(mel).float()
        lc = self.recipe.loss
        stft = {k: v.mean() for k, v in stft_distances(estimate, waveform).items()}
        mel_l1 = log_mel_l1(estimate, waveform, frontend).mean()
        loss = lc.stft_weight * stft["mrstft"] + lc.mel_weight * mel_l1
        out = {"loss/mrstft": stft["mrstft"], "loss/spectral_convergence": stft["spectral_convergence"],
               "loss/log_magnitude_l1": stft["log_magnitude_l1"], "loss/logmel_l1": mel_l1}
        if lc.adversarial:
            gan = adversarial_losses(unwrap(model).discriminators, waveform, estimate)
            loss = (loss + gan["discriminator"] + lc.adversarial_weight * gan["generator"]
                    + lc.feature_weight * gan["feature_matching"])
            out |= {f"loss/{k}": v for k, v in gan.items()}
        return out | {"loss": loss}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        """Mean figures over the held-out excerpts, each vocoded from its own true log-mel."""
        model = unwrap(model)
        device = next(model.parameters()).device
        frontend = self._frontend(device)
        totals: dict[str, float] = {}
        for _, waveform in self.val_excerpts:
            figures = vocoder_figures(model, frontend, waveform.to(device))
            for key, value in figures.items():
                totals[key] = totals.get(key, 0.0) + value
        count = max(len(self.val_excerpts), 1)
        return {f"val/{k}": v / count for k, v in totals.items()} | {"val/recordings": float(len(self.val_excerpts))}

    @torch.no_grad()
    def save_samples(self, model, step: int, folder: Path) -> None:
        """Two held-out excerpts: the real audio, the vocoded audio and both mels in one picture."""
        model = unwrap(model)
        device = next(model.parameters()).device
        mel_config = self.recipe.mel_config
        frontend = self._frontend(device)
        for i, (path, waveform) in zip(range(2), self.val_excerpts):
            target = waveform.to(device)[None]
            estimate = model(frontend(target))
            stem = Path(str(path)).stem
            save_mel_png(folder / f"{i}_{stem}.png", [frontend(target)[0], frontend(estimate)[0]],
                         ["real", f"vocoded (step {step})"], frames_per_second=mel_config.frames_per_second)
            write_wav(folder / f"{i}_{stem}_real.wav", target[0].cpu().numpy(), mel_config.sample_rate)
            write_wav(folder / f"{i}_{stem}_vocoded.wav", estimate[0].cpu().numpy(), mel_config.sample_rate)


@torch.no_grad()
def vocoder_figures(vocoder, frontend: MelFrontend, waveform: torch.Tensor) -> dict[str, float]:
    """How well ``vocoder`` (log-mel [B, n_mels, F] -> [B, samples]) rebuilds ``waveform`` Tensor[samples] from its
    true log-mel: {"mrstft", "spectral_convergence", "log_magnitude_l1", "logmel_l1"}. The waveform is cut to a
    whole number of hops so input and output line up sample for sample."""
    hop = frontend.config.hop_length
    target = waveform[: (waveform.shape[-1] // hop) * hop][None].float()
    estimate = vocoder(frontend(target)).float()
    estimate = torch.nn.functional.pad(estimate, (0, target.shape[-1] - estimate.shape[-1]))[:, :target.shape[-1]]
    figures = {k: float(v[0]) for k, v in stft_distances(estimate, target).items()}
    figures["logmel_l1"] = float(log_mel_l1(estimate, target, frontend)[0])
    return figures
