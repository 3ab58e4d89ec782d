"""How well an audio model reconstructs whole held-out clips: spectral convergence and L1 of the log-mel, KL and
negative ELBO."""
from __future__ import annotations

import torch

from ..errors import AudioVAEError
from ..models.posterior import active_units


def mel_spectral_convergence(mel: torch.Tensor, mel_hat: torch.Tensor) -> torch.Tensor:
    """||exp(x) - exp(x_hat)||_F / ||exp(x)||_F per item. mel, mel_hat: Tensor[B, n_mels, frames] log-mel -> [B].

    The estimate is clamped at log-magnitude 12 (far above any normalised clip's peak) so an untrained decoder's
    large outputs cannot overflow float32 to inf.
    """
    target, estimate = mel.float().exp(), mel_hat.float().clamp_max(12.0).exp()
    return torch.linalg.vector_norm((target - estimate).flatten(1), dim=1) / torch.linalg.vector_norm(
        target.flatten(1), dim=1).clamp_min(1e-8)


@torch.no_grad()
def clip_metrics(model, mel: torch.Tensor, genre: int = -1) -> tuple[dict[str, float], torch.Tensor]:
    """Reconstruction of one whole clip through the posterior mode: ({"logmel_l1", "spectral_convergence",
    "kl_per_latent_frame" (nats), "nelbo_per_frame" (nats)}, posterior mean Tensor[C, T']).

    mel: log-mel Tensor[n_mels, frames]; genre: its condition id for conditional models (-1 = unknown).
    """
    device = next(model.parameters()).device
    x = mel.to(device).unsqueeze(0)
    cond = torch.tensor([genre], device=device) if model.conditions and genre >= 0 else None
    posterior = model.encode(x, cond)
    x_hat = model.decode(posterior.mode(), cond, frames=x.shape[-1])
    kl = float(model.latent_kl(posterior, cond).sum())
    return ({"logmel_l1": float((x - x_hat).abs().mean()),
             "spectral_convergence": float(mel_spectral_convergence(x, x_hat)[0]),
             "kl_per_latent_frame": kl / posterior.mean.shape[-1],
             "nelbo_per_frame": (float(model.reconstruction_nll(x, x_hat)[0]) + kl) / x.shape[-1]},
            posterior.mean[0])


@torch.no_grad()
def evaluate_clips(model, clips) -> dict[str, float]:
    """Held-out reconstruction of whole clips (see :func:`clip_metrics`), averaged over clips, as "val/..."
    figures, plus the number of active latent channels and of clips.

    clips: iterable of (name, log-mel Tensor[n_mels, frames], genre_id).
    """
    sums: dict[str, float] = {}
    means = []
    for _, mel, genre in clips:
        figures, mean = clip_metrics(model, mel, genre)
        for key, value in figures.items():
            sums[key] = sums.get(key, 0.0) + value
        means.append(mean.transpose(0, 1).cpu())  # [T', C]
    if not means:
        raise AudioVAEError("no clips to evaluate")
    out = {f"val/{key}": value / len(means) for key, value in sums.items()}
    return out | {"val/active_units": float(active_units(torch.cat(means))), "val/clips": float(len(means))}
