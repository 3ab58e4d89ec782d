"""Waveform discriminators for adversarial vocoder training (a recipe switch, meant for GPU runs).

Multi-period (HiFi-GAN, Kong et al. 2020): the waveform folded into [samples / p, p] for each period p, 2-D
convolutions along time per phase. Multi-resolution (UnivNet, Jang et al. 2021, as used by Vocos): 2-D
convolutions over the STFT magnitude at several resolutions. Each sub-discriminator returns its logits and the
feature maps after every layer (for the feature-matching loss).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

PERIODS = (2, 3, 5, 7, 11)
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)


def _stack(layers: nn.ModuleList, out: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """2-D conv layers with leaky ReLU, then the logit layer: (logits Tensor[B, ...], every layer's output)."""
    features = []
    for layer in layers:
        x = nn.functional.leaky_relu(layer(x), 0.1)
        features.append(x)
    x = out(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: int):
        super().__init__()
        self.period = period
        sizes = [1, width, 4 * width, 16 * width, 32 * width]
        self.layers = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0))) for a, b in zip(sizes, sizes[1:]))
        self.out = weight_norm(nn.Conv2d(sizes[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """waveform Tensor[B, samples] -> (logits Tensor[B, ...], feature maps)."""
        pad = (-waveform.shape[-1]) % self.period
        x = nn.functional.pad(waveform, (0, pad), mode="reflect") if pad else waveform
        return _stack(self.layers, self.out, x.reshape(x.shape[0], 1, -1, self.period))


class ResolutionDiscriminator(nn.Module):
    def __init__(self, n_fft: int, hop: int, width: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.layers = nn.ModuleList([
            weight_norm(nn.Conv2d(1, width, (7, 5), (2, 2), padding=(3, 2))),
            weight_norm(nn.Conv2d(width, width, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(width, width, (5, 3), (2, 2), padding=(2, 1))),
            weight_norm(nn.Conv2d(width, width, 3, (2, 1), padding=1)),
            weight_norm(nn.Conv2d(width, width, 3, (2, 2), padding=1)),
        ])
        self.out = weight_norm(nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(waveform.float(), self.n_fft, self.hop, window=self.window, center=True,
                          return_complex=True).abs()
        return _stack(self.layers, self.out, torch.log1p(spec)[:, None])  # [B, 1, bins, frames]


class WaveformDiscriminators(nn.Module):
    """All sub-discriminators; ``width`` scales their channels (32 is HiFi-GAN's multi-period size)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.members = nn.ModuleList([PeriodDiscriminator(p, width) for p in PERIODS]
                                     + [ResolutionDiscriminator(n, h, width) for n, h in RESOLUTIONS])

    def forward(self, waveform: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [member(waveform) for member in self.members]


def adversarial_losses(discriminators: WaveformDiscriminators, real: torch.Tensor, fake: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    """Least-squares GAN losses for one optimizer over generator and discriminators together.

    "discriminator": (1 - D(real))^2 + D(fake)^2 with the fake detached, so it only trains D.
    "generator": (1 - D(fake))^2 and "feature_matching" (L1 of the feature maps, real ones detached), computed
    with D's parameters detached (torch.func.functional_call), so they only train the generator. Each is the mean
    over sub-discriminators. real, fake: Tensor[B, samples].
    """
    frozen = {name: p.detach() for name, p in discriminators.named_parameters()}
    frozen |= dict(discriminators.named_buffers())
    d_loss = real.new_zeros(())
    for (real_logits, _), (fake_logits, _) in zip(discriminators(real), discriminators(fake.detach())):
        d_loss = d_loss + ((1 - real_logits) ** 2).mean() + (fake_logits ** 2).mean()
    g_loss, fm_loss = real.new_zeros(()), real.new_zeros(())
    with torch.no_grad():
        real_out = torch.func.functional_call(discriminators, frozen, (real,))
    fake_out = torch.func.functional_call(discriminators, frozen, (fake,))
    for (_, real_features), (fake_logits, fake_features) in zip(real_out, fake_out):
        g_loss = g_loss + ((1 - fake_logits) ** 2).mean()
        fm_loss = fm_loss + sum((r - f).abs().mean() for r, f in zip(real_features, fake_features)) / len(fake_features)
    count = len(discriminators.members)
    return {"discriminator": d_loss / count, "generator": g_loss / count, "feature_matching": fm_loss / count}
