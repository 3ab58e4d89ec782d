"""A small neural vocoder: natural-log mel -> waveform, Vocos-style (Siuzdenko 2023).

A ConvNeXt backbone runs at the mel frame rate and a linear head predicts, per frame, the log-magnitude and the
phase of every STFT bin; an inverse STFT with the front end's own window and hop makes the waveform. There are no
upsampling layers, so all the work happens at ~86 frames/s, which is what makes it fast on a CPU.

The inverse STFT is written out (an inverse real DFT, a Hann synthesis window, overlap-add in hop-sized blocks and
the window-square envelope) rather than calling torch.istft. With ``istft="fft"`` (the default) the DFT is
torch.fft.irfft; with ``istft="matmul"`` it is two matrix products with a stored cos/sin basis, which every ONNX
runtime can run (ONNX has no inverse FFT). Both give the same waveform to float32 rounding.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..audio.features import MelConfig, MelFrontend
from ..errors import ConfigError, ParameterError
from .base import saves_init_args

ISTFT_MODES = ("fft", "matmul")


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (kernel over frames) -> LayerNorm -> pointwise MLP -> layer scale, residual.
    x: Tensor[B, dim, frames] -> same shape."""

    def __init__(self, dim: int, hidden: int, kernel: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, hidden)
        self.project = nn.Linear(hidden, dim)
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x).transpose(1, 2)
        y = self.project(nn.functional.gelu(self.expand(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class InverseSTFT(nn.Module):
    """Centred inverse STFT with a Hann window: complex spectrum as (real, imag) Tensor[B, frames, n_fft//2+1]
    each -> waveform Tensor[B, (frames - 1) * hop_length], the samples ``torch.istft(center=True)`` returns.

    Needs n_fft to be a multiple of hop_length (the overlap-add adds n_fft / hop_length shifted copies).
    """

    def __init__(self, n_fft: int, hop_length: int, mode: str = "fft"):
        super().__init__()
        if n_fft % hop_length:
            raise ParameterError(f"the vocoder needs n_fft ({n_fft}) to be a multiple of hop_length ({hop_length})")
        if mode not in ISTFT_MODES:
            raise ParameterError(f"istft must be one of {ISTFT_MODES}, got {mode!r}")
        self.n_fft, self.hop, self.mode = n_fft, hop_length, mode
        window = torch.hann_window(n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        bins = n_fft // 2 + 1
        # irfft as a matrix: x[n] = sum_k w_k (Re_k cos(2 pi k n / N) - Im_k sin(2 pi k n / N)) / N, with
        # w_k = 1 for DC and Nyquist, 2 for the bins in between (their conjugate twins).
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        n = torch.arange(n_fft, dtype=torch.float64)[None, :]
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = weight[-1] = 1.0
        angle = 2 * math.pi * k * n / n_fft
        self.register_buffer("cos_basis", (weight * torch.cos(angle) / n_fft).float(), persistent=False)
        self.register_buffer("sin_basis", (-weight * torch.sin(angle) / n_fft).float(), persistent=False)
        # the forward DFT of a windowed frame, X_k = sum_n w[n] x[n] (cos - i sin)(2 pi k n / N), as one stack of
        # convolution kernels [2 * bins, 1, n_fft] (real parts, then imaginary parts): a single stored constant,
        # so an exported graph with many refinement rounds holds it once
        kernels = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()
        self.register_buffer("analysis_kernels", kernels.float()[:, None].contiguous(), persistent=False)

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """frames Tensor[B, F, n_fft] -> Tensor[B, (F - 1) * hop + n_fft], frame f added at sample f * hop."""
        batch, count, _ = frames.shape
        parts = self.n_fft // self.hop
        blocks = frames.reshape(batch, count, parts, self.hop)
        out = frames.new_zeros(batch, count + parts - 1, self.hop)
        for r in range(parts):
            out = out + nn.functional.pad(blocks[:, :, r], (0, 0, r, parts - 1 - r))
        return out.reshape(batch, -1)

    def analyse(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward STFT (centred, reflect padding, Hann): waveform Tensor[B, samples] -> (real, imag), each
        Tensor[B, samples // hop + 1, bins]; with mode "matmul" a strided convolution with the DFT basis."""
        if self.mode == "fft":
            spec = torch.stft(waveform, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
                              return_complex=True).transpose(1, 2)
            return spec.real, spec.imag
        pad = self.n_fft // 2
        padded = nn.functional.pad(waveform[:, None], (pad, pad), mode="reflect")
        both = nn.functional.conv1d(padded, self.analysis_kernels, stride=self.hop).transpose(1, 2)
        return both[..., : self.n_fft // 2 + 1], both[..., self.n_fft // 2 + 1:]

    def inverse_envelope(self, frames: int, like: torch.Tensor) -> torch.Tensor:
        """1 / the summed squared synthesis windows of ``frames`` frames, over the centred output: Tensor[1,
        (frames - 1) * hop]. It depends only on the frame count, so refinement rounds compute it once."""
        envelope = self.overlap_add((self.window * self.window).to(like.dtype).expand(1, frames, self.n_fft))
        pad = self.n_fft // 2
        return 1.0 / envelope[:, pad:envelope.shape[-1] - pad].clamp_min(1e-11)

    def forward(self, real: torch.Tensor, imag: torch.Tensor, inverse_envelope: torch.Tensor | None = None
                ) -> torch.Tensor:
        if self.mode == "fft":
            frames = torch.fft.irfft(torch.complex(real, imag), n=self.n_fft, dim=-1)
        else:
            frames = real @ self.cos_basis + imag @ self.sin_basis
        if inverse_envelope is None:
            inverse_envelope = self.inverse_envelope(real.shape[1], real)
        signal = self.overlap_add(frames * self.window)
        pad = self.n_fft // 2
        return signal[:, pad:signal.shape[-1] - pad] * inverse_envelope


def _two_taps(filters: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
    """A mel filterbank [bins, n_mels] whose every bin feeds at most two adjacent bands (Slaney and HTK
    triangles) as (first band, second band, first weight, second weight), each Tensor[bins] (weights [bins, 1]);
    None for a bank of another shape."""
    bins = torch.arange(filters.shape[0])
    used = filters > 0
    if int(used.sum(dim=1).max()) > 2:
        return None
    first = torch.argmax(used.int(), dim=1)
    second = (first + 1).clamp(max=filters.shape[1] - 1)
    w1 = filters[bins, first]
    w2 = torch.where(second > first, filters[bins, second], 0.0)
    rebuilt = torch.zeros_like(filters).index_put_((bins, first), w1, accumulate=True)
    rebuilt.index_put_((bins, second), w2, accumulate=True)
    if not torch.equal(rebuilt, filters):
        return None
    return first, second, w1[:, None].contiguous(), w2[:, None].contiguous()


@saves_init_args
class MelVocoder(nn.Module):
    """Natural-log mel -> waveform, for one mel front end.

    MelVocoder(frontend=MelConfig | dict, dim=192, hidden=576, layers=6, kernel=7, istft="fft", mel_refine=0,
    phase_refine=0, discriminator_width=0, train_rounds=0); recipes/vocoder.toml sets the sizes it trains.
    forward(log_mel: Tensor[B, n_mels, frames] or [n_mels, frames]) -> float32 Tensor[B, samples] or [samples],
    samples = (frames - 1) * hop_length at ``sample_rate`` Hz: the length GriffinLim gives, so a clip of
    k * hop_length samples comes back at its own length.

    The head predicts log-magnitude (clamped at log 100, as in Vocos) and a phase per bin; the phase enters only
    through cos and sin, so it needs no wrapping. ``mel_refine`` > 0 corrects each band's energy so the predicted
    spectrum's mel is the input's (:meth:`match_mel`; trained with the network). In eval mode ``phase_refine``
    rounds of :meth:`refine_phase` follow; in training ``train_rounds`` of them (differentiable, so the network
    learns a start that the rounds refine well: "unrolled" Griffin-Lim, as in Masuyama et al. 2019).
    ``discriminator_width`` > 0 adds the multi-period and multi-resolution discriminators that adversarial
    training (``loss.adversarial``) needs; they take no part in :meth:`forward`.
    """

    modality = "vocoder"

    def __init__(self, *, frontend: MelConfig | dict | None = None, dim: int = 192, hidden: int = 576,
                 layers: int = 6, kernel: int = 7, istft: str = "fft", mel_refine: int = 0, phase_refine: int = 0,
                 discriminator_width: int = 0, train_rounds: int = 0):
        super().__init__()
        self.mel_config = MelConfig.from_any(frontend)
        if min(mel_refine, phase_refine, train_rounds) < 0:
            raise ParameterError(f"mel_refine, phase_refine and train_rounds must be >= 0 iterations, got "
                                 f"{mel_refine}, {phase_refine}, {train_rounds}")
        if min(dim, hidden, layers) < 1 or kernel < 1 or kernel % 2 == 0:
            raise ParameterError(f"need dim, hidden, layers >= 1 and an odd kernel, got dim={dim}, hidden={hidden}, "
                                 f"layers={layers}, kernel={kernel}")
        c = self.mel_config
        self.sample_rate = c.sample_rate
        self.bins = c.n_fft // 2 + 1
        self.embed = nn.Conv1d(c.n_mels, dim, kernel, padding=kernel // 2)
        self.embed_norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden, kernel, layer_scale=1.0 / layers)
                                    for _ in range(layers))
        self.out_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 2 * self.bins)
        self.istft = InverseSTFT(c.n_fft, c.hop_length, istft)
        self.mel_refine, self.phase_refine, self.train_rounds = mel_refine, phase_refine, train_rounds
        self.discriminators = None
        if discriminator_width > 0:  # only for adversarial training; kept so the folder reloads as it trained
            from .discriminators import WaveformDiscriminators

            self.discriminators = WaveformDiscriminators(discriminator_width)
        filters = MelFrontend(c).mel_filters.detach().float()               # [bins, n_mels]
        used = torch.nonzero(filters.sum(dim=1) > 0).flatten()
        self.support = (int(used[0]), int(used[-1]) + 1)  # the bins any mel band sees; the rest are left alone
        filters = filters[self.support[0]:self.support[1]]
        self.register_buffer("filters", filters.contiguous(), persistent=False)       # [support bins, n_mels]
        self.register_buffer("filters_t", filters.T.contiguous(), persistent=False)   # [n_mels, support bins]
        self.register_buffer("bin_weight", filters.sum(dim=1), persistent=False)      # [support bins], > 0
        taps = _two_taps(filters)  # the sparse form the fast inference path uses, when the bank allows it
        self.has_taps = taps is not None
        for name, value in zip(("tap_first", "tap_second", "tap_w1", "tap_w2"), taps or (None,) * 4):
            self.register_buffer(name, value, persistent=False)  # buffers, so .to(device) moves them
        self.latent_stats: dict = {}

    def spectrum(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log_mel Tensor[B, n_mels, F] -> (real, imag) of the predicted STFT, each Tensor[B, F, bins]."""
        x = self.embed(log_mel)
        x = self.embed_norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        log_mag, phase = self.head(self.out_norm(x.transpose(1, 2))).split(self.bins, dim=-1)
        magnitude = torch.exp(log_mag.clamp(max=math.log(100.0)))
        if self.mel_refine:
            magnitude = self.match_mel(magnitude, log_mel)
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def match_mel(self, magnitude: torch.Tensor, log_mel: torch.Tensor) -> torch.Tensor:
        """Pull the predicted magnitude Tensor[B, F, bins] towards one whose mel is the input's, by
        ``mel_refine`` multiplicative updates of the generalised KL divergence D(mel || filters^T |S|) started
        from the prediction (the updates mel_to_linear runs from a pseudo-inverse). The network's detail inside
        each band, its bins outside the filterbank's support and its phase are kept; each band's energy is
        corrected. Bands at the front end's floor only cap the estimate at the floor (the truth is anywhere
        below it). Differentiable, so it can train with the network."""
        return self._match(magnitude, *self._mel_target(log_mel))

    def _mel_target(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target mel Tensor[B, F, n_mels], cap): cap is 1 on bands at the floor (the estimate may only fall
        there) and +inf elsewhere."""
        c = self.mel_config
        log_mel = log_mel.transpose(1, 2).float()
        at_floor = log_mel <= math.log(c.log_floor) + 1e-4
        return torch.exp(log_mel), torch.where(at_floor, 1.0, math.inf)

    def _match(self, magnitude: torch.Tensor, target: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
        lo, hi = self.support
        power = self.mel_config.power
        spec = magnitude[..., lo:hi]
        spec = spec.pow(power) if power != 1.0 else spec
        for _ in range(self.mel_refine):
            ratio = torch.minimum(target / (spec @ self.filters).clamp_min(1e-12), cap)
            spec = spec * ((ratio @ self.filters_t) / self.bin_weight)
        spec = spec.pow(1.0 / power) if power != 1.0 else spec
        return torch.cat([magnitude[..., :lo], spec, magnitude[..., hi:]], dim=-1)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        single = log_mel.dim() == 2
        if single:
            log_mel = log_mel.unsqueeze(0)
        if log_mel.dim() != 3 or log_mel.shape[1] != self.mel_config.n_mels:
            raise ParameterError(f"log_mel must be [B, {self.mel_config.n_mels}, frames] or "
                                 f"[{self.mel_config.n_mels}, frames] (n_mels of the vocoder's front end), got "
                                 f"{tuple(log_mel.shape)}")
        param = self.head.weight
        real, imag = self.spectrum(log_mel.to(param.device, param.dtype))
        rounds = self.train_rounds if self.training else self.phase_refine
        if rounds and self._fast_path_applies():
            waveform = self._refine_fast(real, imag, log_mel, rounds)
        else:
            if rounds:
                real, imag = self.refine_phase(real, imag, log_mel, rounds)
            waveform = self.istft(real, imag)
        return waveform[0] if single else waveform

    def _fast_path_applies(self) -> bool:
        """Inference in eager PyTorch with the FFT inverse: not training, no gradients, not being traced for
        export (the fast path preallocates buffers for one length, which a traced graph would keep)."""
        return (not self.training and not torch.is_grad_enabled() and self.istft.mode == "fft"
                and self.has_taps and not torch.jit.is_tracing() and not torch.jit.is_scripting())

    def refine_phase(self, real: torch.Tensor, imag: torch.Tensor, log_mel: torch.Tensor, rounds: int,
                     momentum: float = 0.99) -> tuple[torch.Tensor, torch.Tensor]:
        """``rounds`` rounds of alternating projections, started from the network's spectrum: onto the
        spectrograms of real signals (STFT of the inverse STFT, with fast Griffin-Lim's momentum, Perraudin et al.
        2013), then onto those whose mel is the input's (:meth:`match_mel`, magnitudes only). Unlike Griffin-Lim
        the magnitudes inside the mel's frequency range are not held, only their mel is, so the network's detail
        inside each band can move toward a consistent signal; above f_max (where the mel says nothing) the
        network's magnitudes are held. (real, imag) Tensor[B, F, bins] -> the same."""
        beta = momentum / (1 + momentum)
        held = torch.sqrt(real * real + imag * imag)  # outside the mel's support the network's magnitudes are held
        prev_real, prev_imag = torch.zeros_like(real), torch.zeros_like(imag)
        inverse_envelope = self.istft.inverse_envelope(real.shape[1], real)
        target, cap = self._mel_target(log_mel)
        lo, hi = self.support
        for _ in range(rounds):
            new_real, new_imag = self.istft.analyse(self.istft(real, imag, inverse_envelope))
            real, imag = new_real - beta * prev_real, new_imag - beta * prev_imag
            magnitude = torch.sqrt(real * real + imag * imag).clamp_min(1e-12)
            matched = self._match(magnitude, target, cap)[..., lo:hi]
            wanted = torch.cat([held[..., :lo], matched, held[..., hi:]], dim=-1)
            scale = wanted / magnitude
            real, imag = real * scale, imag * scale
            prev_real, prev_imag = new_real, new_imag
        return real, imag

    def _refine_fast(self, real: torch.Tensor, imag: torch.Tensor, log_mel: torch.Tensor, rounds: int,
                     momentum: float = 0.99) -> torch.Tensor:
        """:meth:`refine_phase` then the inverse STFT, computed the same way about twice as fast for inference:
        preallocated STFT round trips (audiovae.audio.inversion.CentredSTFT), real views of the complex
        spectrum, and the mel projection done with the filterbank's two taps per bin in a bins-major layout
        instead of dense matrix products. Returns the waveform Tensor[B, (F - 1) * hop]."""
        from ..audio.inversion import CentredSTFT

        batch, frames, _ = real.shape
        lo, hi = self.support
        c = self.mel_config
        stft = CentredSTFT(batch, frames, n_fft=c.n_fft, hop_length=c.hop_length, device=real.device)
        spec = torch.complex(real, imag)
        spec_r = torch.view_as_real(spec)
        held = spec.abs()
        target, cap = self._mel_target(log_mel)
        target = target.reshape(batch * frames, -1).T.contiguous()                 # [n_mels, N]
        cap = cap.reshape(batch * frames, -1).T.contiguous()
        first, second, w1, w2 = self.tap_first, self.tap_second, self.tap_w1, self.tap_w2
        power = c.power
        beta = momentum / (1 + momentum)
        previous_r = torch.zeros_like(spec_r)
        magnitude = torch.empty_like(held)
        for _ in range(rounds):
            rebuilt_r = torch.view_as_real(stft.project(spec))
            torch.add(rebuilt_r, previous_r, alpha=-beta, out=spec_r)
            re, im = spec_r[..., 0], spec_r[..., 1]
            torch.mul(re, re, out=magnitude).addcmul_(im, im).sqrt_().clamp_min_(1e-12)
            band = magnitude[..., lo:hi].reshape(batch * frames, -1).T.contiguous()  # [support bins, N]
            band = band.pow(power) if power != 1.0 else band
            for _ in range(self.mel_refine):
                estimate = torch.zeros_like(target).index_add_(0, first, band * w1).index_add_(0, second, band * w2)
                ratio = torch.minimum(target / estimate.clamp_min_(1e-12), cap)
                gain = ratio.index_select(0, first).mul_(w1).add_(ratio.index_select(0, second).mul_(w2))
                band = band * gain.div_(self.bin_weight[:, None])
            band = band.pow(1.0 / power) if power != 1.0 else band
            wanted = held.clone()
            wanted[..., lo:hi] = band.T.reshape(batch, frames, -1)
            spec_r.mul_(wanted.div_(magnitude).unsqueeze(-1))
            previous_r = rebuilt_r
        return stft.waveform(spec, (frames - 1) * c.hop_length)

    def check_pairs_with(self, mel_config: MelConfig, *, model_name: str = "the model", name: str = "the vocoder"
                         ) -> None:
        """ConfigError naming both front ends when ``mel_config`` is not the one this vocoder was trained on."""
        if MelConfig.from_any(mel_config) != self.mel_config:
            raise ConfigError(f"{name} was trained on a different mel front end than {model_name}: vocoder "
                              f"{self.mel_config} vs model {MelConfig.from_any(mel_config)}; use a vocoder "
                              "trained on the model's front end, or --vocoder griffin-lim")

    def extra_repr(self) -> str:
        return f"mel_config={self.mel_config}"
