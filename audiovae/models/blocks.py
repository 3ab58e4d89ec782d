"""Building blocks every model shares: FiLM-conditioned residual blocks over time and stages of them."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def norm_groups(channels: int) -> int:
    """GroupNorm groups: 8 where the channels divide by 8, else one group (LayerNorm over channels)."""
    return 8 if channels % 8 == 0 else 1


class FiLMResBlock(nn.Module):
    """x + conv2(silu([norm2](conv1(silu(film(norm1(x))))))) over time. x: Tensor[B, C, T] -> same shape.

    conv1 is dilated (receptive field grows with ``dilation``); ``cond_dim`` 0 builds no FiLM (unconditional).
    ``norm_between`` adds the second GroupNorm before conv2: the mel VAE uses it, the MIDI CVAE was trained
    without it. FiLM: h * (1 + scale) + shift with (scale, shift) = Linear(cond). Model folders written before
    the blocks were shared named the MIDI block's first norm ``norm``; that name is mapped on load.
    """

    def __init__(self, channels: int, cond_dim: int, dilation: int = 1, *, norm_between: bool = True):
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_groups(channels), channels)
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.GroupNorm(norm_groups(channels), channels) if norm_between else nn.Identity()
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * channels) if cond_dim else None
        if self.film is not None:  # start as an unconditioned block: conditioning is learned, not imposed
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        if self.film is not None and cond is not None:
            scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv1(F.silu(h))
        return x + self.conv2(F.silu(self.norm2(h)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix + "norm.")]:
            state_dict[prefix + "norm1." + key[len(prefix + "norm."):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Stage(nn.Module):
    """``num_blocks`` FiLM residual blocks at one time resolution, dilations 1, 2, 4, ...: Tensor[B, C, T] in and
    out."""

    def __init__(self, channels: int, num_blocks: int, cond_dim: int, *, norm_between: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(FiLMResBlock(channels, cond_dim, 2**i, norm_between=norm_between)
                                    for i in range(num_blocks))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, cond)
        return x
