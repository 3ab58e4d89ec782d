"""Anomaly scores: how badly a trained model explains an input, as its negative ELBO per input frame.

score(x) = ( -log p(x | z = mode of q(z|x)) + KL(q(z|x) || p(z)) ) / frames, in nats per frame,
with the reconstruction term from the model's own likelihood (``model.reconstruction_nll``: Laplace per log-mel bin
for mel VAEs, Bernoulli per roll cell for the MIDI CVAE), the KL against the model's prior (``model.latent_kl``)
and frames the input's length (``model.frames_of``: mel frames, or grid steps of a roll segment). Taking z at the
posterior mode rather than sampling makes the score deterministic. Higher means stranger: scores rank inputs of
one model against each other; they do not compare across models. Files are read by :mod:`audiovae.scoring`.

For defects inside a recording (clipping, dropouts, noise bursts) a mel model has a second, calibrated map, one
value per latent frame (:func:`frame_terms`, :func:`calibrate`, :func:`calibrated_map`, :func:`flagged_spans`): three
terms that, unlike the ELBO, do not rise and fall with how busy the music is, in standard deviations above the
model's own held-out windows. For whole recordings that are not music at all (steady noise), which every short
window explains well, a slower term follows how the latent moves over several seconds (:meth:`Calibration.motion`).
Mains hum, which the model reconstructs and predicts well, is measured from the waveform instead
(:mod:`audiovae.audio.hum`) and standardised against the same held-out recordings (:meth:`Calibration.hum_score`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..device import model_device
from ..errors import ParameterError


@torch.no_grad()
def anomaly_map(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per latent frame: Tensor[B, T'] nats, T' = the latent's frames (``model.to_sequence``; about
    21.5 per second for the mel VAE, one per grid step for the MIDI CVAE).

    Each latent frame gets the reconstruction NLL of the input frames it covers (``model.frame_nll`` at the
    posterior mode; the last frame also covers any remainder) plus its KL against the model's prior (given the
    earlier frames, for a learned prior). The map sums to the negative ELBO of the input.
    """
    x = x.to(model_device(model))
    posterior = model.encode(x, cond)
    frames = model.frames_of(x)
    nll = model.frame_nll(x, model.decode(posterior.mode(), cond, frames=frames))  # [B, frames]
    kl = model.to_sequence(model.latent_kl(posterior, cond)).float().sum(-1)  # [B, T']
    return per_latent_frame(nll.float(), kl.shape[1]) + kl


def per_latent_frame(values: torch.Tensor, latent_frames: int, *, mean: bool = False) -> torch.Tensor:
    """Input-frame values Tensor[..., frames] -> Tensor[..., latent_frames]: each latent frame gets the sum (or with
    ``mean`` the mean) of the ceil(frames / latent_frames) input frames it covers; the last takes what is left."""
    frames = values.shape[-1]
    per = -(-frames // latent_frames)
    pad = per * latent_frames - frames
    sums = torch.nn.functional.pad(values, (0, pad)).reshape(*values.shape[:-1], latent_frames, per).sum(-1)
    if not mean:
        return sums
    counts = torch.full((latent_frames,), float(per), device=values.device)
    counts[-1] -= pad
    return sums / counts.clamp_min(1.0)


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per input frame: Tensor[B], nats per frame (see the module docstring).

    x: a batch of model inputs (log-mel Tensor[B, n_mels, frames], or rolls Tensor[B, 2, S, P]); cond: the genre
    condition for conditional models (None = the "no genre" condition). The model should be in eval mode.
    """
    return anomaly_map(model, x, cond).sum(1) / model.frames_of(x)


# --- defects inside a recording: frame terms, calibration, flagged spans ----------------------------------------
# The negative ELBO misses defects inside music: its reconstruction term follows how busy the music is, and a
# learned temporal prior finds a steady defect (hum, stationary noise) as predictable as steady music. The map
# therefore adds three terms per latent frame, each averaged over a short window and expressed in standard
# deviations of the model's own held-out windows (see :class:`FrameTerms`); on damaged copies of held-out real
# recordings this finds clipping, dropouts and noise bursts that the KL alone or the ELBO miss (benchmarks/anomaly.py
# and the README give the figures).
WINDOW_SECONDS = 0.25
MOTION_SECONDS = 8.0       # the stretch over which the latent's motion is measured (see Calibration.motion)
EDGE_SECONDS = 0.5         # context mirrored in at both ends of an input (see frame_terms)
FALSE_ALARM_SHARE = 2e-3   # the default threshold is exceeded by this share of the held-out windows
CALIBRATION_VERSION = 3
# How much each standardised term counts (surprise, misfit, bias). Real music's surprise is spiky (every strong onset
# is a surprise), so it counts half; the bias counts most, as it is the only term that tells clipping and
# band-limiting apart from busy music. Chosen on damaged copies of held-out tracks of music_real and audio_genres
# (benchmarks/anomaly.py; equal weights: clipping AUROC 0.89 / 0.90 instead of 0.93 / 0.98).
TERM_WEIGHTS = (0.5, 1.0, 1.5)


@dataclass
class FrameTerms:
    """What a model makes of each latent frame of an input (T' latent frames, ``model.to_sequence``):

    surprise Tensor[B, T']: KL(q(z_t | x) || p(z_t | z_<t, cond)) in nats, how unexpected the frame's code is given
        the frames before it (the ELBO's KL term; the negative log-likelihood of the codes for a VQ model).
    misfit Tensor[B, T']: the reconstruction NLL of the input frames it covers minus their NLL under a background
        model that predicts each mel bin from the bin below it (Laplace, the model's own scale), in nats: a likelihood
        ratio against a model that knows only that spectra are smooth, which cancels how busy the music is (Ren et
        al. 2019; Serra et al. 2020 correct for input complexity the same way, with a compressor as background).
    bias Tensor[B, n_mels, T']: the mean signed reconstruction error x - x_hat per mel bin (log-mel units). Busy
        music gives large errors of either sign; a defect gives errors of one sign that persist (the energy of
        clipping or noise that the model cannot produce, the silence of a dropout it fills in).
    code Tensor[B, D, T']: the latent at the posterior mode, one D-vector per latent frame (the quantised vector for a
        VQ model), for :func:`latent_motion`. ``windowed`` leaves it as it is.
    """

    surprise: torch.Tensor
    misfit: torch.Tensor
    bias: torch.Tensor
    code: torch.Tensor

    def windowed(self, width: int) -> "FrameTerms":
        averaged = (moving_average(term, width) for term in (self.surprise, self.misfit, self.bias))
        return FrameTerms(*averaged, self.code)


def spectral_background_nll(x: torch.Tensor, scale: float) -> torch.Tensor:
    """-log p(x) per frame of log-mel Tensor[B, n_mels, frames] under the background model: bin b ~ Laplace(x[b - 1],
    scale), bin 0 ~ Laplace(x[0], scale) (known). Tensor[B, frames] nats, comparable to a Laplace ``frame_nll``."""
    steps = (x[:, 1:] - x[:, :-1]).abs().sum(1) / scale
    return steps + x.shape[1] * math.log(2 * scale)


@torch.no_grad()
def frame_terms(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> FrameTerms:
    """:class:`FrameTerms` of a batch of log-mels Tensor[B, n_mels, frames] under a mel model (eval mode).

    The input is mirrored at both ends by up to ``EDGE_SECONDS`` before encoding and the mirrored frames are dropped
    again, so the first and last frames are scored with context like the others (with the zero padding of the
    convolutions and no past for the prior, they scored 1-2 standard deviations high)."""
    x = x.to(model_device(model)).float()
    step = model.time_downsample
    frames = model.frames_of(x)
    pad = min(round(EDGE_SECONDS * model.frontend.frames_per_second), frames - 1) // step * step
    padded = torch.nn.functional.pad(x, (pad, pad), mode="reflect") if pad else x
    posterior = model.encode(padded, cond)
    code = posterior.mode()
    x_hat = model.decode(code, cond, frames=padded.shape[-1]).float()
    surprise = model.to_sequence(model.latent_kl(posterior, cond)).float().sum(-1)  # [B, T' + 2 pad / step]
    latent_frames = surprise.shape[1]
    misfit = model.frame_nll(padded, x_hat).float() - spectral_background_nll(padded, model.recon_scale)
    keep = slice(pad // step, latent_frames - pad // step)
    return FrameTerms(surprise[:, keep], per_latent_frame(misfit, latent_frames)[:, keep],
                      per_latent_frame(padded - x_hat, latent_frames, mean=True)[..., keep],
                      model.to_sequence(code).float().transpose(1, 2)[..., keep])


def latent_motion(code: torch.Tensor, width: int) -> torch.Tensor:
    """How much each latent channel moves: the log standard deviation over time of code Tensor[B, D, T'] in every
    full window of ``width`` latent frames, Tensor[B, D, T' - width + 1] (Tensor[B, D, 1], the whole input, when it
    is shorter than one window)."""
    if code.shape[-1] > width:
        code = code.unfold(-1, width, 1)  # [B, D, windows, width]
    else:
        code = code[..., None, :]
    return code.double().std(-1, correction=0).clamp_min(1e-6).log().float()


def moving_average(values: torch.Tensor, width: int) -> torch.Tensor:
    """Centred moving average over the last axis, same length (the window shrinks at the edges)."""
    if width <= 1 or values.shape[-1] <= 1:
        return values
    width = min(width, values.shape[-1])
    kernel = torch.ones(1, 1, width, dtype=values.dtype, device=values.device)
    flat = values.reshape(-1, 1, values.shape[-1])
    pad = (width // 2, width - 1 - width // 2)
    sums = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, pad), kernel)
    counts = torch.nn.functional.conv1d(torch.nn.functional.pad(torch.ones_like(flat), pad), kernel)
    return (sums / counts).reshape(values.shape)


def latent_rate(model) -> float:
    """Latent frames per second of an audio model: its front end's frame rate over its time_downsample."""
    return model.frontend.frames_per_second / model.time_downsample


def window_frames(model, seconds: float = WINDOW_SECONDS) -> int:
    """Latent frames in ``seconds`` for an audio model, else 1 (one frame per grid step of a MIDI model)."""
    if getattr(model, "frontend", None) is None:
        return 1
    return max(1, round(seconds * latent_rate(model)))


@dataclass(frozen=True)
class Calibration:
    """How a model's held-out windows score, so that a map value of 3 means "3 standard deviations above typical".

    window: latent frames each term is averaged over. surprise, misfit: (mean, std) of the windowed term over the
    held-out windows; bias_mean, bias_std: the same per mel bin for the windowed bias. weights: how much each
    standardised term counts in their sum (the bias as the mean over bins of its per-bin standard scores); total:
    (mean, std) of that sum over the held-out windows, which standardises the map once more. threshold: the
    calibrated score above which a span is flagged (by default the value that ``FALSE_ALARM_SHARE`` of the held-out
    windows exceed). motion_*: the same for :meth:`motion`. hum: (mean, std) of the held-out recordings' mains-hum
    strengths (:func:`audiovae.audio.hum.mains_hum`, nats, one per 10 s window) and hum_threshold the standard score
    that ``FALSE_ALARM_SHARE`` of them exceed (at least 1); None when calibrated without waveforms. windows,
    recordings: how much it saw.
    """

    window: int
    surprise: tuple[float, float]
    misfit: tuple[float, float]
    bias_mean: tuple[float, ...]
    bias_std: tuple[float, ...]
    weights: tuple[float, float, float]
    total: tuple[float, float]
    threshold: float
    motion_window: int
    motion_mean: tuple[float, ...]
    motion_std: tuple[float, ...]
    motion_total: tuple[float, float]
    motion_threshold: float
    windows: int
    recordings: int
    hum: tuple[float, float] | None = None
    hum_threshold: float | None = None
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "Calibration":
        """ConfigError for a calibration written by an older version (it standardised another map)."""
        if values.get("version") != CALIBRATION_VERSION:
            from ..errors import ConfigError

            raise ConfigError("the model's anomaly calibration was written by an older version of audiovae for an "
                              "older anomaly map; run `audiovae calibrate MODEL --data DIR` (the folders it was "
                              "trained on) to renew it")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})

    def standardise(self, terms: FrameTerms) -> torch.Tensor:
        """Windowed :class:`FrameTerms` -> the calibrated map Tensor[B, T'] (standard deviations above typical)."""
        device = terms.surprise.device
        mean = torch.tensor(self.bias_mean, device=device)[:, None]
        std = torch.tensor(self.bias_std, device=device)[:, None]
        summed = _summed_scores(terms, self.surprise, self.misfit, mean, std, self.weights)
        return (summed - self.total[0]) / self.total[1]

    def motion(self, terms: FrameTerms) -> torch.Tensor:
        """How unlike held-out music the latent moves, Tensor[B]: the largest over the input's windows of
        ``motion_window`` frames of the mean over channels of the squared standard score of each channel's log
        standard deviation, standardised by ``motion_total``. Steady noise or a test tone barely moves the latent
        in any channel, a cut or a splice moves it too much; music sits in between. A typicality test over a
        stretch of frames (Nalisnick et al. 2019) rather than a likelihood: every short window of steady noise is
        explained well."""
        device = terms.code.device
        mean = torch.tensor(self.motion_mean, device=device)[:, None]
        std = torch.tensor(self.motion_std, device=device)[:, None]
        spread = _motion_spread(latent_motion(terms.code, self.motion_window), mean, std)
        return ((spread - self.motion_total[0]) / self.motion_total[1]).amax(-1)

    def hum_score(self, hum) -> tuple[float, float] | None:
        """The strongest mains hum of a recording (:class:`audiovae.audio.hum.MainsHum`) in standard deviations
        above the held-out recordings' windows, and its frequency in Hz; None without a hum calibration or without
        a measured hum (``hum`` None)."""
        if self.hum is None or hum is None:
            return None
        worst = int(hum.strength.argmax())
        return (float(hum.strength[worst]) - self.hum[0]) / self.hum[1], float(hum.frequency[worst])

    def on_map_scale(self, value, term_threshold: float):
        """A whole-recording term's ``value`` (:meth:`motion`, :meth:`hum_score`) rescaled so that it reaches
        ``threshold`` where the term reaches its own ``term_threshold`` (``motion_threshold``, ``hum_threshold``):
        at the same held-out false-alarm rate as the map (a recording's score is the largest of its map's peak and
        these)."""
        return value * (self.threshold / term_threshold)


def _summed_scores(terms: FrameTerms, surprise, misfit, bias_mean, bias_std, weights) -> torch.Tensor:
    return (weights[0] * (terms.surprise - surprise[0]) / surprise[1]
            + weights[1] * (terms.misfit - misfit[0]) / misfit[1]
            + weights[2] * ((terms.bias - bias_mean) / bias_std).mean(-2))


def _motion_spread(motion: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Log spreads Tensor[..., D, windows] (:func:`latent_motion`) -> the mean over the D channels of their squared
    standard scores, Tensor[..., windows]; mean, std: Tensor[D, 1]."""
    return (((motion - mean) / std) ** 2).mean(-2)


def _mean_std(values: torch.Tensor, dim=None) -> tuple:
    values = values.double()
    mean = values.mean() if dim is None else values.mean(dim)
    count = values.numel() if dim is None else values.shape[dim]
    if count < 2:  # one value alone has no spread: take 1
        return mean, torch.ones_like(mean)
    return mean, (values.std() if dim is None else values.std(dim)).clamp_min(1e-6)


@torch.no_grad()
def calibrate(model, inputs, *, window_seconds: float = WINDOW_SECONDS, threshold: float | None = None,
              weights: tuple[float, float, float] = TERM_WEIGHTS, hum_strengths=None) -> Calibration:
    """Calibration from held-out inputs: an iterable of (log-mel Tensor[1, n_mels, frames], cond or None), e.g.
    whole recordings. ``window_seconds``: how long a stretch each term averages over (shorter finds short defects
    more precisely and flags more clean music); ``threshold``: the default threshold to store (None: the score that
    ``FALSE_ALARM_SHARE`` of these windows exceed); ``weights``: of the surprise, misfit and bias terms;
    ``hum_strengths``: the mains-hum strengths float[windows] of the same recordings' waveforms
    (:func:`audiovae.audio.hum.mains_hum`), one array per recording, or None for no hum term."""
    if window_seconds <= 0:
        raise ParameterError(f"the window must be positive, got {window_seconds} s")
    width = window_frames(model, window_seconds)
    seen = [frame_terms(model, x, cond).windowed(width) for x, cond in inputs]
    if not seen:
        raise ParameterError("calibration needs at least one held-out input")
    pooled = FrameTerms(*(torch.cat([getattr(t, name)[0].cpu() for t in seen], -1)
                          for name in ("surprise", "misfit", "bias", "code")))
    surprise, misfit = _mean_std(pooled.surprise), _mean_std(pooled.misfit)
    bias_mean, bias_std = _mean_std(pooled.bias, dim=1)
    summed = _summed_scores(pooled, surprise, misfit, bias_mean.float()[:, None], bias_std.float()[:, None], weights)
    total = _mean_std(summed)
    if threshold is None:
        standard = ((summed.double() - total[0]) / total[1]).numpy()
        threshold = float(np.quantile(standard, 1 - FALSE_ALARM_SHARE))
    floats = lambda pair: tuple(float(v) for v in pair)  # noqa: E731
    motion_window = max(2, round(MOTION_SECONDS * latent_rate(model)))
    motion = torch.cat([latent_motion(t.code.cpu(), motion_window)[0] for t in seen], -1)  # [D, windows]
    motion_mean, motion_std = _mean_std(motion, dim=1)
    spread = _motion_spread(motion.double(), motion_mean[:, None], motion_std[:, None])
    motion_total = _mean_std(spread)
    motion_threshold = _false_alarm_threshold((spread - motion_total[0]) / motion_total[1])
    hum = hum_threshold = None
    if hum_strengths is not None:
        strengths = torch.from_numpy(np.concatenate([np.asarray(h, dtype=np.float64) for h in hum_strengths]))
        hum = _mean_std(strengths)
        hum_threshold = round(_false_alarm_threshold((strengths - hum[0]) / hum[1]), 2)
        hum = floats(hum)
    return Calibration(window=width, surprise=floats(surprise), misfit=floats(misfit),
                       bias_mean=floats(bias_mean), bias_std=floats(bias_std), weights=floats(weights),
                       total=floats(total), threshold=round(threshold, 2),
                       motion_window=motion_window, motion_mean=floats(motion_mean), motion_std=floats(motion_std),
                       motion_total=floats(motion_total), motion_threshold=round(motion_threshold, 2),
                       windows=int(summed.numel()), recordings=len(seen), hum=hum, hum_threshold=hum_threshold)


def _false_alarm_threshold(standard: torch.Tensor) -> float:
    """The standard score that ``FALSE_ALARM_SHARE`` of held-out values exceed, at least 1 SD: with a handful of
    held-out windows the quantile says little."""
    return max(1.0, float(np.quantile(standard.double().numpy(), 1 - FALSE_ALARM_SHARE)))


@torch.no_grad()
def calibrated_map(model, x: torch.Tensor, calibration: Calibration, cond: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """How far each window of log-mels Tensor[B, n_mels, frames] is above the model's typical held-out window, in
    standard deviations: Tensor[B, T'] (one value per latent frame, the window centred on it)."""
    return calibrated_scores(model, x, calibration, cond)[0]


@torch.no_grad()
def calibrated_scores(model, x: torch.Tensor, calibration: Calibration, cond: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The calibrated map Tensor[B, T'] (:func:`calibrated_map`) and the motion score Tensor[B]
    (:meth:`Calibration.motion`) of log-mels Tensor[B, n_mels, frames], from one pass through the model."""
    terms = frame_terms(model, x, cond).windowed(calibration.window)
    return calibration.standardise(terms), calibration.motion(terms)


def flagged_spans(scores: torch.Tensor, threshold: float, frames_per_second: float, *, merge_gap: float = 0.25
                  ) -> list[tuple[float, float, float]]:
    """Runs of a calibrated map Tensor[T'] above ``threshold`` as (start s, end s, peak score), in time order;
    runs less than ``merge_gap`` seconds apart are one span (a defect whose score dips for a frame is one defect)."""
    above = (scores > threshold).tolist()
    runs, start = [], None
    for t, flag in enumerate(above + [False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            runs.append([start, t])
            start = None
    merged = []
    for run in runs:
        if merged and (run[0] - merged[-1][1]) / frames_per_second < merge_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(a / frames_per_second, b / frames_per_second, float(scores[a:b].max())) for a, b in merged]
