"""Log-mel front end on torchaudio. Its keyword arguments are its config, saved in every checkpoint."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .._torch import torch, torchaudio
from ..errors import ParameterError


@dataclass(frozen=True)
class MelConfig:
    """Mel front-end settings (defaults follow HiFi-GAN v1).

    sample_rate: Hz. n_fft, hop_length: samples. n_mels: bands. f_min, f_max: Hz (f_max None = Nyquist).
    power: 1.0 magnitude, 2.0 power. log_floor: magnitudes are clamped at this before the natural log.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0
    power: float = 1.0
    log_floor: float = 1e-5

    def __post_init__(self):
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ParameterError(f"mel settings must be positive: {self}")
        if self.hop_length > self.n_fft:
            raise ParameterError(f"hop_length {self.hop_length} exceeds n_fft {self.n_fft}")
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < (self.f_max or nyquist) <= nyquist:
            raise ParameterError(f"need 0 <= f_min < f_max <= sample_rate/2 ({nyquist} Hz), got {self.f_min}, {self.f_max}")
        if self.power not in (1.0, 2.0):
            raise ParameterError(f"power must be 1.0 (magnitude) or 2.0 (power), got {self.power}")
        if self.log_floor <= 0:
            raise ParameterError(f"log_floor must be positive, got {self.log_floor}")

    @classmethod
    def from_any(cls, value: "MelConfig | dict | None") -> "MelConfig":
        """A MelConfig from a MelConfig, a dict of its fields (as stored in JSON), or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ParameterError(f"unknown mel setting(s) {sorted(unknown)}; known: "
                                     f"{', '.join(f.name for f in fields(cls))}")
            return cls(**value)
        raise ParameterError(f"a mel front end is a MelConfig or a dict of its fields, got {type(value).__name__}")

    def to_dict(self) -> dict:
        """The fields as a dict: only for writing JSON or TOML."""
        return asdict(self)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames the front end yields for ``num_samples`` samples (centred STFT)."""
        return num_samples // self.hop_length + 1

    @property
    def log_silence(self) -> float:
        """The log-mel value of digital silence."""
        return math.log(self.log_floor)


class MelFrontend(torch.nn.Module):
    """Waveform -> natural-log mel spectrogram.

    MelFrontend(config: MelConfig | dict | None = None, **settings): a config, or its fields as keywords
    (``MelFrontend(power=2.0)``), or neither for the defaults.
    forward(waveform: Tensor[..., samples] in [-1, 1]) -> Tensor[..., n_mels, frames],
    ``log(clamp(mel, min=log_floor))`` with frames = samples // hop_length + 1 (centred, reflect-padded STFT,
    Hann window, Slaney mel scale and area normalisation as in librosa).
    """

    def __init__(self, config: MelConfig | dict | None = None, **settings):
        super().__init__()
        if config is not None and settings:
            raise ParameterError("give MelFrontend a config or keyword settings, not both")
        self.config = MelConfig.from_any(config if config is not None else settings)
        c = self.config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=c.sample_rate, n_fft=c.n_fft, win_length=c.n_fft, hop_length=c.hop_length,
            f_min=c.f_min, f_max=c.f_max, n_mels=c.n_mels, power=c.power, center=True, pad_mode="reflect",
            norm="slaney", mel_scale="slaney",
        )

    @property
    def mel_filters(self) -> torch.Tensor:
        """Tensor[n_fft // 2 + 1, n_mels]: the filterbank mapping linear bins to mel bands."""
        return self.mel.mel_scale.fb

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.mel(waveform.float())
        return torch.log(torch.clamp(mel, min=self.config.log_floor))
