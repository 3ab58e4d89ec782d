"""Mel spectrogram -> waveform: the Vocoder protocol, mel-filterbank inversion and fast Griffin-Lim.

All transforms here match MelFrontend's STFT: Hann window of n_fft samples, centred frames, reflect padding.
Spectrogram layouts are ``[..., n_fft // 2 + 1, frames]`` (linear) and ``[..., n_mels, frames]`` (mel), like
torch.stft and librosa. Everything runs in float32 on the device of its input (GPU when there).
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from .._torch import torch
from ..errors import ParameterError
from .features import MelConfig, MelFrontend

_INITS = ("phase_locked", "zeros", "random")


@runtime_checkable
class Vocoder(Protocol):
    """Anything that turns natural-log mels back into sound: GriffinLim, or the neural MelVocoder
    (audiovae.models.vocoder).

    ``__call__(log_mel: Tensor[B, n_mels, frames] or [n_mels, frames])`` returns a float32 waveform
    ``Tensor[B, samples]`` or ``[samples]`` at ``sample_rate`` Hz, roughly in [-1, 1] (not clipped).
    """

    sample_rate: int

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor: ...


def mel_to_linear(log_mel: torch.Tensor, *, mel_config: MelConfig, mel_filters: torch.Tensor,
                  n_iter: int = 30) -> torch.Tensor:
    """Invert a natural-log mel spectrogram to a non-negative linear magnitude.

    log_mel: Tensor[..., n_mels, frames], natural log of mel magnitude (or power when mel_config.power is 2).
    mel_filters: Tensor[n_fft // 2 + 1, n_mels], MelFrontend.mel_filters for the same config.
    Returns Tensor[..., n_fft // 2 + 1, frames], linear STFT magnitude (>= 0, float32).

    The filterbank is wide (n_fft // 2 + 1 unknowns, n_mels equations), so many spectra fit. We start from
    the pseudo-inverse clamped at 0 and run ``n_iter`` multiplicative updates that minimise the generalised
    KL divergence D(mel || F^T x) over x >= 0 (Lee & Seung 2001; two small matmuls each). KL weighs quiet
    bands by their relative error, so the result's log-mel matches far better than a least-squares (NNLS)
    fit. On 8 real 15 s clips (HiFi-GAN config, one CPU core, ~3.5 ms per update) 30 updates take the
    spectral convergence against the true |STFT| from 0.316 to 0.263 (least-squares multiplicative updates:
    0.277) and the mean |log-mel error| on bands within 10 nats of the peak from 0.18 to 0.0014 (0.042).
    After 32 Griffin-Lim iterations the waveform's SC against the true |STFT| is 0.265 (pseudo-inverse: 0.328).
    librosa.feature.inverse.mel_to_stft (NNLS by L-BFGS-B) stops at the clamped pseudo-inverse here and takes
    seconds. Bins outside the filterbank's support (above f_max, below f_min) carry no information and come
    out as 0. For power 2.0 configs the fit is a power spectrum and its square root is returned.
    """
    n_bins, n_mels = mel_filters.shape
    if log_mel.dim() < 2 or log_mel.shape[-2] != n_mels:
        raise ParameterError(
            f"expected a log-mel spectrogram shaped [..., {n_mels}, frames] (n_mels={n_mels} of the mel config), "
            f"got shape {tuple(log_mel.shape)}; was it made with a different mel config?")
    if n_bins != mel_config.n_fft // 2 + 1 or n_mels != mel_config.n_mels:
        raise ParameterError(
            f"mel_filters shape {tuple(mel_filters.shape)} does not match the mel config "
            f"(n_fft={mel_config.n_fft}, n_mels={mel_config.n_mels}); pass MelFrontend(config).mel_filters")
    if n_iter < 0:
        raise ParameterError(f"n_iter must be >= 0, got {n_iter}")
    filters = mel_filters.to(device=log_mel.device, dtype=torch.float32)
    lo, hi = _support(filters)
    bands = filters.sum(dim=0) > 0  # with many mels and a short FFT some filters hold no bin at all
    fb = filters[lo:hi][:, bands]                           # [bins in support, used bands]
    fb_t = fb.T.contiguous()
    mel = torch.exp(log_mel.float())[..., bands, :]
    lin = torch.clamp(torch.linalg.pinv(fb_t) @ mel, min=0)
    if n_iter:
        # Zeros would stay zero under multiplicative updates; the floor also keeps values that the updates
        # shrink from turning subnormal, which slows CPU arithmetic tenfold. It is far below any log floor.
        floor = 1e-12 * float(mel.max())
        lin.clamp_(min=floor)
        bin_weight = fb.sum(dim=1, keepdim=True)            # > 0 inside the support
        for _ in range(n_iter):
            ratio = mel / (fb_t @ lin)
            lin.mul_(fb @ ratio).div_(bin_weight).clamp_(min=floor)
    if mel_config.power == 2.0:
        lin.sqrt_()
    out = lin.new_zeros(*lin.shape[:-2], n_bins, lin.shape[-1])
    out[..., lo:hi, :] = lin
    return out


def _support(filters: torch.Tensor) -> tuple[int, int]:
    """[lo, hi): the range of linear bins with any filterbank weight."""
    used = torch.nonzero(filters.sum(dim=1) > 0).flatten()
    if used.numel() == 0:
        raise ParameterError("the mel filterbank is all zeros; check f_min/f_max against n_fft and sample_rate")
    return int(used[0]), int(used[-1]) + 1


class CentredSTFT:
    """Preallocated STFT(ISTFT(spec)) round trip for fixed (batch, frames, n_fft, hop_length).

    Computes what torch.stft(torch.istft(spec, center=True), center=True, pad_mode="reflect") does with a
    Hann window, about twice as fast on CPU: the window-square envelope is computed once (torch.istft redoes
    it every call, with a slow col2im overlap-add), and the signal and frame buffers are reused:
    irfft -> windowed overlap-add into a padded buffer -> divide by the envelope -> rewrite the reflect
    padding in place -> strided frame view -> window -> rfft. Layout is [B, frames, bins] so every FFT runs
    over contiguous memory.
    """

    def __init__(self, batch: int, frames: int, *, n_fft: int, hop_length: int, device: torch.device):
        self.n_fft, self.hop, self.frames = n_fft, hop_length, frames
        self.pad = n_fft // 2
        self.padded_len = (frames - 1) * hop_length + n_fft
        self.core_len = (frames - 1) * hop_length  # the centred signal, as torch.istft returns it
        self.window = torch.hann_window(n_fft, device=device)
        self.synthesis_window = self.window / n_fft  # irfft runs unnormalised (norm="forward")
        self.signal = torch.zeros(batch, self.padded_len, device=device)
        self.frame_buf = torch.empty(batch, frames, n_fft, device=device)  # analysis frames
        self.framed = self.signal.as_strided((batch, frames, n_fft), (self.padded_len, hop_length, 1))
        # Overlap-add in blocks of g = gcd(n_fft, hop) samples: frame f, block r lands on signal block
        # f * (hop / g) + r, a strided slice, so the whole overlap-add is n_fft / g vectorised adds.
        self.block = math.gcd(n_fft, hop_length)
        envelope = torch.zeros(1, self.padded_len, device=device)
        self._overlap_add((self.window ** 2).expand(1, frames, n_fft), envelope)
        envelope = envelope[0, self.pad:]
        if float(envelope[:self.core_len].min()) < 1e-6:
            raise ParameterError(
                f"hop_length {hop_length} is too large for n_fft {n_fft}: Hann windows do not overlap enough "
                "to invert the STFT; use hop_length <= n_fft / 2 (n_fft / 4 is usual)")
        # Past the core (only read when a longer output is asked for) torch.istft's 1e-11 rule applies.
        self.inv_envelope = torch.where(envelope > 1e-11, envelope.reciprocal(), 0.0)

    def _overlap_add(self, frames: torch.Tensor, out: torch.Tensor) -> None:
        """out[b, f * hop + n] += frames[b, f, n]; out must be zeroed, frames [B, F, n_fft]."""
        g, step = self.block, self.hop // self.block
        blocks = out.view(out.shape[0], -1, g)
        parts = frames.reshape(frames.shape[0], self.frames, -1, g)
        stop = (self.frames - 1) * step + 1
        for r in range(self.n_fft // g):
            blocks[:, r:r + stop:step].add_(parts[:, :, r])

    def _inverse(self, spec: torch.Tensor, samples: int) -> torch.Tensor:
        """ISTFT into the padded buffer; returns the view of its first ``samples`` centred samples."""
        sig = self.signal
        # out= would make torch.fft copy from a temporary (~30% slower on CPU); new outputs are cheaper.
        frames = torch.fft.irfft(spec, n=self.n_fft, norm="forward").mul_(self.synthesis_window)
        sig.zero_()
        self._overlap_add(frames, sig)
        return sig[:, self.pad:self.pad + samples].mul_(self.inv_envelope[:samples])

    def project(self, spec: torch.Tensor) -> torch.Tensor:
        """STFT(ISTFT(spec)); spec and the result: complex Tensor[B, frames, n_fft // 2 + 1]."""
        pad, end, sig = self.pad, self.pad + self.core_len, self.signal
        self._inverse(spec, self.core_len)
        sig[:, :pad].copy_(sig[:, pad + 1:2 * pad + 1].flip(-1))
        sig[:, end:].copy_(sig[:, end - pad - 1:end - 1].flip(-1))
        torch.mul(self.framed, self.window, out=self.frame_buf)
        return torch.fft.rfft(self.frame_buf)

    def waveform(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """torch.istft(spec, center=True, length=length) as a new Tensor[B, length]."""
        available = min(length, self.padded_len - self.pad)
        wav = self._inverse(spec, available).clone()
        return torch.nn.functional.pad(wav, (0, length - available)) if length > available else wav


def griffin_lim(magnitude: torch.Tensor, *, n_fft: int, hop_length: int, n_iter: int = 32,
                momentum: float = 0.99, init: str = "phase_locked", seed: int | None = None,
                length: int | None = None) -> torch.Tensor:
    """Recover a waveform from a linear STFT magnitude with fast Griffin-Lim (Perraudin et al. 2013).

    magnitude: Tensor[..., n_fft // 2 + 1, frames], |STFT| (not power), any leading batch dims.
    n_fft, hop_length: samples; the STFT is MelFrontend's (Hann window, centred, reflect padding).
    n_iter: projection rounds. momentum: FGLA acceleration in [0, 1.5); 0 is plain Griffin-Lim.
    init: starting phase. "phase_locked" (default): phase-vocoder phases with identity phase locking, see
    _phase_locked_init; "zeros": zero phase (librosa's init=None); "random": uniform phase from ``seed``
    (librosa's default; seed None draws a fresh one).
    length: output samples (trim or zero-pad the final inverse STFT); None gives (frames - 1) * hop_length.
    Returns float32 Tensor[..., samples] on magnitude's device.

    The update is librosa's and torchaudio's form of FGLA: c = STFT(ISTFT(x)), x = S * phase(c - m/(1+m) c_prev).
    The iterations run at the natural length (frames - 1) * hop_length; ``length`` applies to the final
    inverse (librosa also trims inside the loop; the difference is confined to the last hop).
    """
    _check_gl_args(magnitude, n_fft=n_fft, hop_length=hop_length, n_iter=n_iter, momentum=momentum,
                   init=init, length=length)
    lead, (n_bins, n_frames) = magnitude.shape[:-2], magnitude.shape[-2:]
    device = magnitude.device
    target = magnitude.detach().reshape(-1, n_bins, n_frames).transpose(1, 2).to(torch.float32).contiguous()
    stft = CentredSTFT(target.shape[0], n_frames, n_fft=n_fft, hop_length=hop_length, device=device)

    spec = _initial_spectrum(target, init=init, seed=seed, n_fft=n_fft, hop_length=hop_length)
    spec_r, previous_r = torch.view_as_real(spec), torch.zeros_like(torch.view_as_real(spec))
    re, im = spec_r[..., 0], spec_r[..., 1]
    scale = torch.empty_like(target)
    tiny = torch.finfo(torch.float32).tiny
    beta = momentum / (1 + momentum)
    for _ in range(n_iter):
        rebuilt_r = torch.view_as_real(stft.project(spec))
        torch.add(rebuilt_r, previous_r, alpha=-beta, out=spec_r)
        # spec *= target / |spec| on real views: complex abs() is several times slower, and complex * real
        # first converts the real factor to a complex copy.
        torch.mul(re, re, out=scale).addcmul_(im, im).clamp_(min=tiny).rsqrt_().mul_(target)
        re.mul_(scale)
        im.mul_(scale)
        previous_r = rebuilt_r

    wav = stft.waveform(spec, length if length is not None else stft.core_len)
    return wav.reshape(*lead, wav.shape[-1])


def _initial_spectrum(target: torch.Tensor, *, init: str, seed: int | None, n_fft: int,
                      hop_length: int) -> torch.Tensor:
    """Complex Tensor[B, frames, bins]: ``target`` magnitudes with the starting phase ``init`` asks for."""
    if init == "zeros":
        return torch.complex(target, torch.zeros_like(target))
    if init == "random":
        gen = torch.Generator(device=target.device)
        gen.manual_seed(seed) if seed is not None else gen.seed()
        phase = torch.rand(target.shape, generator=gen, device=target.device) * (2 * math.pi)
    else:
        phase = _phase_locked_init(target, n_fft=n_fft, hop_length=hop_length)
    return torch.complex(target * torch.cos(phase), target * torch.sin(phase))  # faster than torch.polar


def _phase_locked_init(magnitude: torch.Tensor, *, n_fft: int, hop_length: int) -> torch.Tensor:
    """Starting phase (radians) for magnitude Tensor[B, frames, bins] from a stationary-sinusoid model.

    Each frame's spectral peaks (local maxima of |S| over bins) give a frequency by parabolic interpolation
    of the log magnitude; every bin takes the frequency of its nearest peak (identity phase locking, Laroche &
    Dolson 1999) and its phase is that frequency integrated over frames (hop_length samples each), plus the
    phase a Hann-windowed sinusoid has in bin k of a frame-start-referenced STFT: (n_fft/2) * omega - pi * k.
    On 12 real 5 s clips this start gives 32-iteration FGLA a mean spectral convergence of 0.049, against
    0.076 from zero phase and 0.075 from librosa's random phase (0.035 / 0.040 / 0.049 at 100 iterations).
    """
    n_bins = magnitude.shape[-1]
    omega = _locked_frequencies(magnitude) * (2 * math.pi / n_fft)  # radians per sample
    bins = torch.arange(n_bins, device=magnitude.device)
    advance = torch.remainder(omega * hop_length, 2 * math.pi)
    phase = torch.cumsum(advance, dim=-2).add_(omega, alpha=n_fft / 2).sub_(bins, alpha=math.pi)
    return torch.remainder(phase, 2 * math.pi)


def _locked_frequencies(magnitude: torch.Tensor) -> torch.Tensor:
    """Tensor[B, frames, bins]: for every bin, the fractional bin position of its frame's nearest peak.

    Peaks are local maxima over bins; their position is refined by parabolic interpolation of the log
    magnitude (exact for a Gaussian window, within a few hundredths of a bin for Hann). Bins of a frame
    without peaks keep their own centres.
    """
    n_bins = magnitude.shape[-1]
    floor = 1e-5 * magnitude.amax(dim=(-2, -1), keepdim=True) + torch.finfo(torch.float32).tiny
    log_mag = torch.log(magnitude + floor)
    left, mid, right = log_mag[..., :-2], log_mag[..., 1:-1], log_mag[..., 2:]
    peak = torch.zeros_like(log_mag, dtype=torch.bool)
    torch.logical_and(mid > left, mid >= right, out=peak[..., 1:-1])
    offset = torch.zeros_like(log_mag)  # only read at peaks, where the curvature is strictly negative
    offset[..., 1:-1] = (left - right).mul_(0.5).div_((left - mid).add_(right - mid)).clamp_(-0.5, 0.5)
    bins = torch.arange(n_bins, device=magnitude.device, dtype=torch.int32)
    prev_peak = torch.cummax(torch.where(peak, bins, -n_bins), dim=-1).values
    next_peak = torch.where(peak, bins, 2 * n_bins).flip(-1).cummin(dim=-1).values.flip(-1)
    nearest = torch.where(bins - prev_peak <= next_peak - bins, prev_peak, next_peak)
    nearest = torch.where((nearest < 0) | (nearest >= n_bins), bins, nearest).long()
    return torch.gather(offset, -1, nearest).add_(nearest)


def _check_gl_args(magnitude, *, n_fft, hop_length, n_iter, momentum, init, length) -> None:
    if not isinstance(magnitude, torch.Tensor) or magnitude.is_complex() or not magnitude.is_floating_point():
        raise ParameterError("magnitude must be a real floating-point tensor (|STFT|, not the complex STFT)")
    if n_fft <= 0 or n_fft % 2:
        raise ParameterError(f"n_fft must be a positive even number of samples, got {n_fft}")
    if not 0 < hop_length <= n_fft:
        raise ParameterError(f"hop_length must be in (0, n_fft={n_fft}], got {hop_length}")
    if magnitude.dim() < 2 or magnitude.shape[-2] != n_fft // 2 + 1:
        raise ParameterError(
            f"magnitude must be shaped [..., n_fft // 2 + 1 = {n_fft // 2 + 1}, frames] for n_fft={n_fft}, "
            f"got {tuple(magnitude.shape)}")
    if magnitude.numel() and float(magnitude.min()) < 0:
        raise ParameterError("magnitude has negative values: pass |STFT| (a log spectrogram needs exp first)")
    if (magnitude.shape[-1] - 1) * hop_length <= n_fft // 2:
        raise ParameterError(
            f"{magnitude.shape[-1]} frames are too few for a centred STFT with n_fft={n_fft}, hop={hop_length}: "
            f"need more than {n_fft // 2 // hop_length + 1} frames")
    if n_iter < 0:
        raise ParameterError(f"n_iter must be >= 0, got {n_iter}")
    if not 0 <= momentum < 1.5:
        raise ParameterError(f"momentum must be in [0, 1.5) (0.99 is usual; above 1 can diverge), got {momentum}")
    if init not in _INITS:
        raise ParameterError(f"init must be one of {_INITS}, got {init!r}")
    if length is not None and length <= 0:
        raise ParameterError(f"length must be a positive number of samples, got {length}")


def spectral_convergences(target_mag: torch.Tensor, waveform: torch.Tensor, *, n_fft: int,
                          hop_length: int) -> torch.Tensor:
    """Per-item spectral convergence ||S - |STFT(y)|||_F / ||S||_F (0 is perfect, lower is better).

    target_mag: Tensor[..., n_fft // 2 + 1, frames], linear magnitude S. waveform: Tensor[..., samples] with
    the same leading dims and samples // hop_length + 1 == frames. Returns float32 Tensor[...] (0-dim for
    a single item). The STFT is MelFrontend's (Hann, centred, reflect padding).
    """
    n_bins, n_frames = target_mag.shape[-2:]
    if n_bins != n_fft // 2 + 1 or target_mag.shape[:-2] != waveform.shape[:-1]:
        raise ParameterError(
            f"target_mag {tuple(target_mag.shape)} and waveform {tuple(waveform.shape)} do not pair up: need "
            f"[..., {n_fft // 2 + 1}, frames] and [..., samples] with the same leading dims")
    wav = waveform.detach().to(target_mag.device, torch.float32)
    spec = torch.stft(wav.reshape(-1, wav.shape[-1]), n_fft, hop_length,
                      window=torch.hann_window(n_fft, device=wav.device), center=True, pad_mode="reflect",
                      return_complex=True).abs()
    if spec.shape[-1] != n_frames:
        raise ParameterError(
            f"waveform of {wav.shape[-1]} samples gives {spec.shape[-1]} frames, target has {n_frames}; "
            f"pass length=(frames - 1) * hop_length or the original length when synthesising")
    target = target_mag.detach().reshape(-1, n_bins, n_frames).float()
    num = torch.linalg.vector_norm(target - spec, dim=(-2, -1))
    den = torch.linalg.vector_norm(target, dim=(-2, -1)).clamp(min=torch.finfo(torch.float32).tiny)
    return (num / den).reshape(target_mag.shape[:-2])


def spectral_convergence(target_mag: torch.Tensor, waveform: torch.Tensor, *, n_fft: int, hop_length: int) -> float:
    """||S - |STFT(y)|||_F / ||S||_F over the whole (possibly batched) input, as a Python float.

    Shapes as in spectral_convergences; for a batch the norms run over all items together.
    """
    n_bins, n_frames = target_mag.shape[-2:]
    per_item = spectral_convergences(target_mag, waveform, n_fft=n_fft, hop_length=hop_length).reshape(-1)
    weights = torch.linalg.vector_norm(target_mag.detach().reshape(-1, n_bins * n_frames).float(), dim=-1)
    total = torch.linalg.vector_norm(weights)
    if float(total) == 0:
        return float(per_item.mean())
    return float(torch.sqrt(torch.sum((per_item * weights) ** 2)) / total)


class GriffinLim(torch.nn.Module):
    """Vocoder: natural-log mel -> waveform by mel-filterbank inversion and fast Griffin-Lim.

    GriffinLim(mel_config: MelConfig | dict, *, n_iter=32, momentum=0.99); the filterbank is a buffer, so
    ``.to(device)`` moves it and the inversion runs there.
    forward(log_mel: Tensor[B, n_mels, frames] or [n_mels, frames]) -> float32 Tensor[B, samples] or
    [samples] with samples = (frames - 1) * hop_length, roughly in [-1, 1] (not clipped).
    """

    def __init__(self, mel_config: MelConfig | dict, *, n_iter: int = 32, momentum: float = 0.99):
        super().__init__()
        frontend = MelFrontend(MelConfig.from_any(mel_config))
        if n_iter < 0 or not 0 <= momentum < 1.5:
            raise ParameterError(f"need n_iter >= 0 and 0 <= momentum < 1.5, got n_iter={n_iter}, momentum={momentum}")
        self.mel_config = frontend.config
        self.sample_rate = self.mel_config.sample_rate
        self.n_iter, self.momentum = n_iter, momentum
        self.register_buffer("mel_filters", frontend.mel_filters.detach().clone().float())

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        c = self.mel_config
        if log_mel.dim() not in (2, 3):
            raise ParameterError(
                f"log_mel must be [n_mels, frames] or [B, n_mels, frames], got shape {tuple(log_mel.shape)}")
        linear = mel_to_linear(log_mel.to(self.mel_filters.device), mel_config=c, mel_filters=self.mel_filters)
        return griffin_lim(linear, n_fft=c.n_fft, hop_length=c.hop_length, n_iter=self.n_iter,
                           momentum=self.momentum)

    def extra_repr(self) -> str:
        return f"n_iter={self.n_iter}, momentum={self.momentum}, mel_config={self.mel_config}"
