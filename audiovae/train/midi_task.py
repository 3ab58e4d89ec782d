"""The MIDI task: MidiFolder segments, the Bernoulli beta-VAE loss of PianoRollCVAE, validation F1 and KL,
sample rolls per genre, latent stats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import AudioVAEError
from ..midi.pianoroll import RollConfig
from ..models.pianoroll_cvae import PianoRollCVAE
from ..checkpoint import unwrap
from ..midi.reconstruction import batches, reconstruction_metrics
from ..models.posterior import beta_at, kl_with_free_bits
from .config import Recipe
from .task import Task

LATENT_STATS_MAX_SEGMENTS = 8192  # latent stats use an even subsample of the training segments beyond this


def roll_config_from(recipe: Recipe) -> RollConfig:
    """The piano-roll grid of a recipe's [data] section."""
    d = recipe.data
    return RollConfig(steps_per_quarter=d.steps_per_quarter, pitch_low=d.pitch_low, pitch_high=d.pitch_high,
                      segment_bars=d.segment_bars, beats_per_bar=d.beats_per_bar)


def hop_steps_from(recipe: Recipe) -> int:
    """Segment hop in grid steps: data.hop_bars bars (0 = one segment length, no overlap)."""
    d = recipe.data
    if d.hop_bars < 0:
        raise AudioVAEError(f"data.hop_bars must be >= 0, got {d.hop_bars}")
    return (d.hop_bars or d.segment_bars) * d.beats_per_bar * d.steps_per_quarter


class MidiTask(Task):
    name = "midi_cvae"
    monitor = ("val/nelbo", "min")  # the figure train.stop_on_plateau watches

    def build_datasets(self):
        from ..data.midi_folder import MidiFolder

        d = self.recipe.data
        path, cache_dir = self.data_location()
        if not isinstance(path, str):
            raise AudioVAEError(f"the MIDI task trains on one folder; data.path lists {len(path)}: {path}")
        self.roll_config = roll_config_from(self.recipe)
        self.train_set = MidiFolder(path, cache_dir=cache_dir, split="train", val_fraction=d.val_fraction,
                                    config=self.roll_config, hop_steps=hop_steps_from(self.recipe),
                                    transpose=d.transpose, workers=d.workers, use_genres=d.labels,
                                    progress=self.progress, velocity=bool(self.recipe.model.get("velocity", False)))
        self.val_set = self.train_set.with_split("val")
        self.genres = list(self.train_set.genres) if d.labels else []
        return self.train_set, self.val_set

    def report(self) -> str:
        lines = [self.train_set.report.summary(),
                 f"segments: {len(self.train_set)} training ({len(self.train_set.piece_paths)} pieces), "
                 f"{len(self.val_set)} validation ({len(self.val_set.piece_paths)} pieces)"]
        if self.genres:
            val_counts = self.val_set.segments_per_genre()
            lines += [f"  {g}: {n} training, {val_counts[g]} validation segments"
                      for g, n in self.train_set.segments_per_genre().items()]
        return "\n".join(lines)

    def build_model(self) -> PianoRollCVAE:
        args = dict(self.recipe.model)
        args.update(genres=self.genres, roll=self.roll_config.to_dict())
        return PianoRollCVAE(**args)

    def losses(self, model, batch, step: int) -> dict[str, torch.Tensor]:
        roll, genre = batch
        plain = unwrap(model)
        cond = genre if plain.conditions else None
        logits, posterior = model(roll, cond)
        lc = self.recipe.loss
        beta = beta_at(step, beta=lc.beta, warmup_steps=lc.beta_warmup_steps)
        nll = plain.reconstruction_nll(roll, logits).mean()
        kl = plain.latent_kl(posterior, cond)
        loss = nll + beta * kl_with_free_bits(kl, lc.free_bits)
        return {"loss": loss, "loss/recon_nll": nll, "loss/kl": kl.sum(1).mean(), "stats/beta": torch.tensor(beta)}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        if len(self.val_set) == 0:
            return {}
        return reconstruction_metrics(unwrap(model), self.val_set.segments, self.val_set.genre_ids,
                                      velocities=self.val_set.velocities)

    @torch.no_grad()
    def save_samples(self, model, step: int, folder: Path) -> None:
        """Two 8-bar pieces per genre (temperature 0.8, fixed seed) as .mid and .png, plus one validation
        segment and its reconstruction."""
        from ..midi.generate import generate_pieces, save_piece
        from ..midi.render import save_roll_png

        model = unwrap(model)
        bars = 2 * self.roll_config.segment_bars
        for name in self.genres or [None]:
            rolls = generate_pieces(model, n=2, bars=bars, genre=name, temperature=0.8, seed=step)
            for i, roll in enumerate(rolls):
                save_piece(roll, folder / f"{name or 'sample'}_{i}", config=self.roll_config, genre=name, png=True)
        if len(self.val_set):
            x, genre = self.val_set[0]
            device = next(model.parameters()).device
            cond = genre[None].to(device) if model.conditions else None
            probs = model.probabilities(model.encode(x[None].to(device), cond).mode(), cond)[0].cpu().numpy()
            from ..midi.pianoroll import clean_roll, join_segments

            both = join_segments(np.stack([clean_roll(x.numpy()), clean_roll(probs)]))
            save_roll_png(both, folder / "reconstruction.png", config=self.roll_config,
                          title=f"validation segment | reconstruction (step {step})")

    @torch.no_grad()
    def latent_stats(self, model) -> dict:
        """Mean/std of the posterior means over training segments (an even subsample of at most
        LATENT_STATS_MAX_SEGMENTS) and per-genre centroids, encoded with the "no genre" condition so all genres
        live in one comparable space; and each genre's voice count, longest and shortest usual note, steady voices,
        onset grid, velocity levels and segment repeat rate (generation keeps to them)."""
        model = unwrap(model)
        device = next(model.parameters()).device
        segments, genre_ids = self.train_set.segments, self.train_set.genre_ids
        velocities = self.train_set.velocities if model.velocity else None
        if len(segments) > LATENT_STATS_MAX_SEGMENTS:
            pick = np.linspace(0, len(segments) - 1, LATENT_STATS_MAX_SEGMENTS).astype(np.int64)
            segments, genre_ids = segments[pick], genre_ids[pick]
            velocities = None if velocities is None else velocities[pick]
        means = torch.cat([model.encode(x.to(device)).mean.cpu()
                           for x, _ in batches(segments, genre_ids, velocities=velocities)])
        centroids = {g: means[torch.from_numpy(genre_ids == i)].mean(0).tolist()
                     for i, g in enumerate(self.genres) if (genre_ids == i).any()}
        from ..midi.pianoroll import longest_notes, onset_grids, velocity_levels, voice_counts
        from ..midi.voicing import shortest_notes, steady_voices

        data = self.train_set
        return {"mean": means.mean(0).tolist(), "std": means.std(0).tolist(), "segments": int(len(means)),
                "centroids": centroids, "voices": voice_counts(data.segments, data.genre_ids, self.genres),
                "longest_note": longest_notes(segments, genre_ids, self.genres),
                "shortest_note": shortest_notes(segments, genre_ids, self.genres),
                "steady_voices": steady_voices(segments, genre_ids, self.genres),
                "onset_grid": onset_grids(segments, genre_ids, self.genres, self.roll_config.steps_per_quarter),
                "velocity_levels": velocity_levels(data.velocities, data.genre_ids, self.genres),
                "repeats": self.segment_repeats()}

    def segment_repeats(self) -> dict[str, float]:
        """Each genre's share of 4-bar segments that repeat an earlier one of their piece (audiovae.midi.form)."""
        from ..midi.form import segment_repeats

        data = self.train_set
        hop = max(1, self.roll_config.segment_steps // hop_steps_from(self.recipe))
        return segment_repeats(data.segments, data.piece_ids, data.genre_ids, self.genres, hop=hop)
