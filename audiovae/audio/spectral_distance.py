"""How far one waveform is from another, measured on spectra: the vocoder's training loss and its benchmark.

Multi-resolution STFT distance (Yamamoto et al. 2020, Parallel WaveGAN): at each of several (n_fft, hop)
resolutions, spectral convergence ||S - S_hat||_F / ||S||_F plus the mean |log S - log S_hat| of the
magnitudes; the distance is the mean over resolutions of their sum. Log-mel L1 is the mean absolute difference of
the front end's natural-log mels.
"""
from __future__ import annotations

import torch

from ..errors import ParameterError

RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) in samples; Hann window of n_fft
MAGNITUDE_FLOOR = 1e-5  # magnitudes are clamped here before the log (the mel front end's floor)


def _magnitude(waveform: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(waveform, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    return torch.view_as_real(spec).pow(2).sum(-1).clamp_min(MAGNITUDE_FLOOR ** 2).sqrt()


def stft_distances(estimate: torch.Tensor, target: torch.Tensor, resolutions=RESOLUTIONS
                   ) -> dict[str, torch.Tensor]:
    """Per-item multi-resolution STFT figures of ``estimate`` against ``target``, both Tensor[B, samples].

    Returns {"spectral_convergence", "log_magnitude_l1", "mrstft"}, each Tensor[B], averaged over resolutions;
    "mrstft" is their sum. Differentiable in ``estimate``.
    """
    if estimate.shape != target.shape or estimate.dim() != 2:
        raise ParameterError(f"estimate and target must both be [B, samples] of one shape, got "
                             f"{tuple(estimate.shape)} and {tuple(target.shape)}")
    sc = estimate.new_zeros(estimate.shape[0])
    log_l1 = estimate.new_zeros(estimate.shape[0])
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft, device=estimate.device)
        s_hat = _magnitude(estimate.float(), n_fft, hop, window)
        s = _magnitude(target.float(), n_fft, hop, window)
        sc = sc + torch.linalg.vector_norm((s - s_hat).flatten(1), dim=1) / torch.linalg.vector_norm(
            s.flatten(1), dim=1).clamp_min(1e-8)
        log_l1 = log_l1 + (s.log() - s_hat.log()).abs().flatten(1).mean(1)
    sc, log_l1 = sc / len(resolutions), log_l1 / len(resolutions)
    return {"spectral_convergence": sc, "log_magnitude_l1": log_l1, "mrstft": sc + log_l1}


def log_mel_l1(estimate: torch.Tensor, target: torch.Tensor, frontend) -> torch.Tensor:
    """Per-item mean |log-mel(estimate) - log-mel(target)|; waveforms Tensor[B, samples], ``frontend`` a
    MelFrontend. Returns Tensor[B]."""
    return (frontend(estimate) - frontend(target)).abs().flatten(1).mean(1)
