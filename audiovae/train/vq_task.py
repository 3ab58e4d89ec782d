"""The VQ-VAE task: the mel VAE's data and samples, a reconstruction + commitment loss, and codebook figures.

Loss per batch: the Laplace log-mel NLL per frame (the mel VAE's), ``loss.spectral_weight`` times the spectral
convergence of the mel magnitudes, and ``model.commitment`` times the commitment term ||z_e - sg(z_q)||^2. The
codebooks learn by EMA inside the model (audiovae.models.quantiser), not by gradient. Validation adds to the mel
VAE's held-out figures how the held-out recordings use the codebooks: the share of codes used, the perplexity
(and its share of K) and the share of dead codes (never used on them), averaged over the codebooks.
"""
from __future__ import annotations

import torch

from ..audio.reconstruction import evaluate_clips, mel_spectral_convergence
from ..checkpoint import unwrap
from ..models.mel_vqvae import MelVQVAE
from ..models.quantiser import code_statistics
from .mel_task import MelTask


class MelVQTask(MelTask):
    name = "mel_vqvae"
    monitor = ("val/spectral_convergence", "min")
    model_class = MelVQVAE

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        mel, genre = batch
        plain = unwrap(model)
        x_hat, posterior = model(mel, genre if plain.conditions else None)
        nll = plain.reconstruction_nll(mel, x_hat).mean() / mel.shape[-1]
        sc = mel_spectral_convergence(mel, x_hat).mean()
        loss = nll + self.recipe.loss.spectral_weight * sc + plain.commitment * posterior.commitment
        usage = code_statistics(posterior.codes.transpose(0, 1).flatten(1), plain.codebook_size)
        return {"loss": loss, "loss/recon_nll": nll, "loss/spectral_convergence": sc,
                "loss/commitment": posterior.commitment, "loss/logmel_l1": (mel - x_hat.float()).abs().mean(),
                "stats/batch_perplexity": torch.tensor(usage["perplexity"]),
                "stats/restarted_codes": torch.tensor(float(plain.quantiser.restarts))}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        model = unwrap(model)
        items = list(self.val_set.eval_items())
        figures = evaluate_clips(model, items)
        device = next(model.parameters()).device
        codes = []
        for _, mel, genre in items:
            cond = torch.tensor([genre], device=device) if model.conditions and genre >= 0 else None
            codes.append(model.encode_codes(mel.to(device)[None], cond)[0])  # [n, T']
        usage = code_statistics(torch.cat(codes, 1), model.codebook_size)
        return figures | {"val/codebook_usage": usage["usage"], "val/perplexity": usage["perplexity"],
                          "val/perplexity_ratio": usage["perplexity_ratio"], "val/dead_codes": usage["dead"],
                          "val/worst_perplexity_ratio": usage["worst_perplexity_ratio"],
                          "val/worst_dead_codes": usage["worst_dead"],
                          "val/bits_per_second": model.bits_per_second}

    def anomaly_calibration(self, model) -> dict | None:
        """None: under the uniform code prior every frame scores the same; the code-prior stage calibrates."""
        return None
