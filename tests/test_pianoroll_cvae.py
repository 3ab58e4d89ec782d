from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from audiovae.errors import AudioVAEError
from audiovae.midi import RollConfig
from audiovae.midi.classify import classify, max_overlap, train_classifier
from audiovae.genres import UnknownGenreError
from audiovae.midi.generate import (decode_rolls, generate_pieces, guided_probabilities, latent_path,
                                    parse_genre, retarget_latent, roll_to_segments, transfer_roll)
from audiovae.checkpoint import load as load_model
from audiovae.checkpoint import model_class, write_model_folder
from audiovae.models.judges import GenreClassifier
from audiovae.models.pianoroll_cvae import PianoRollCVAE, roll_to_rows, rows_to_roll

ROLL = RollConfig(segment_bars=2, pitch_low=48, pitch_high=71)  # [2, 32, 24] segments
GENRES = ["folk", "jazz", "rock"]
CONFIGS = {
    "quarter-latents": dict(substeps=4, channels=[16], latent_dim=16),
    "two-stages": dict(substeps=2, channels=[8, 16], latent_dim=24, blocks_per_stage=2),
    "autoregressive-prior": dict(substeps=4, channels=[16], latent_dim=16, prior="autoregressive", prior_hidden=8),
}


def make_model(name="quarter-latents", genres=GENRES, seed=0) -> PianoRollCVAE:
    torch.manual_seed(seed)
    return PianoRollCVAE(roll=ROLL.to_dict(), genres=genres, cond_dim=4, **CONFIGS[name]).eval()


def random_rolls(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    onset = torch.rand(n, 32, 24, generator=g) < 0.05
    sustain = onset | (torch.rand(n, 32, 24, generator=g) < 0.1)
    return torch.stack([onset, sustain], 1).float()


def test_rows_round_trip():
    x = random_rolls(3)
    for substeps in (1, 2, 4):
        rows = roll_to_rows(x, substeps)
        assert rows.shape == (3, 2 * 24 * substeps, 32 // substeps)
        assert torch.equal(rows_to_roll(rows, 24, substeps), x)


@pytest.mark.parametrize("name", CONFIGS)
def test_shapes_and_likelihood(name):
    model = make_model(name)
    x, genre = random_rolls(4), torch.tensor([0, 1, 2, -1])
    posterior = model.encode(x, genre)
    assert model.latent_shape == (CONFIGS[name]["latent_dim"],)
    assert posterior.mean.shape == posterior.logvar.shape == (4, model.latent_dim)
    logits = model.decode(posterior.mode(), genre)
    assert logits.shape == (4, 2, 32, 24)
    probs = model.probabilities(posterior.mode(), genre)
    assert torch.allclose(probs, torch.sigmoid(logits)) and bool(((probs > 0) & (probs < 1)).all())
    nll = model.reconstruction_nll(x, logits)
    manual = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 4
    assert nll.shape == (4,) and torch.isclose(nll.mean(), manual)
    with pytest.raises(ValueError, match="expected rolls"):
        model.encode(torch.zeros(1, 2, 16, 24))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="must divide"):
        PianoRollCVAE(roll=ROLL.to_dict(), substeps=4, channels=[8] * 5, latent_dim=8)  # 32 steps, 4 * 2**4
    with pytest.raises(ValueError, match="multiple"):
        PianoRollCVAE(roll=ROLL.to_dict(), substeps=4, channels=[8], latent_dim=12)


def test_save_load_gives_the_same_outputs(tmp_path):
    model = make_model("two-stages")
    model.latent_stats = {"mean": [0.0] * model.latent_dim}
    folder = write_model_folder(tmp_path / "ckpt", model)
    loaded = load_model(folder)
    assert type(loaded) is PianoRollCVAE and loaded.roll == ROLL and loaded.conditions == GENRES
    assert loaded.latent_stats == model.latent_stats
    x, genre = random_rolls(3, seed=1), torch.tensor([2, 0, 1])
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(model.encode(x, genre).mean, loaded.encode(x, genre).mean)
        assert torch.equal(model.decode(z, genre), loaded.decode(z, genre))
        assert torch.equal(model.decode(z), loaded.decode(z))


def _randomize_prior(model: PianoRollCVAE) -> None:
    """An untrained prior is exactly N(0, I); give it a genre- and history-dependent output."""
    with torch.no_grad():
        model.latent_prior.out.weight.normal_(0.0, 0.3)
        model.latent_prior.out.bias.normal_(0.0, 0.3)
        model.genre_embedding.weight.normal_()


def test_autoregressive_prior_round_trip_and_kl():
    model = make_model("autoregressive-prior")
    x, genre = random_rolls(4), torch.tensor([0, 1, 2, -1])
    with torch.no_grad():
        posterior = model.encode(x, genre)
        # untrained: the prior is N(0, I), so z = eps and the KL is the standard closed form
        eps = torch.randn(4, model.latent_dim)
        assert torch.allclose(model.latent_from_noise(eps, genre), eps)
        assert torch.allclose(model.latent_kl(posterior, genre), posterior.kl(), atol=1e-6)
        _randomize_prior(model)
        z = model.latent_from_noise(eps, genre)
        assert not torch.allclose(z, eps)
        assert torch.allclose(model.noise_from_latent(z, genre), eps, atol=1e-4)
        assert not torch.allclose(model.latent_from_noise(eps, torch.tensor([1] * 4)), z)  # depends on the genre
        # the eval-mode KL equals -log p(z) + log q(z) terms computed by hand for position 0 (no history)
        kl = model.latent_kl(posterior, genre)
        mean, logvar = model.latent_prior.params(model.to_sequence(posterior.mean), model.embed_condition(genre, 4, "cpu"))
        q_mean = model.to_sequence(posterior.mean)[:, 0]
        q_logvar = model.to_sequence(posterior.logvar)[:, 0]
        manual = 0.5 * (logvar[:, 0] - q_logvar + (q_logvar.exp() + (q_mean - mean[:, 0]) ** 2) / logvar[:, 0].exp() - 1)
        assert torch.allclose(model.to_sequence(kl)[:, 0], manual, atol=1e-5)
    assert bool((kl >= -1e-5).all())


def test_prior_guidance_pushes_means_away_from_the_no_genre_prior():
    model = make_model("autoregressive-prior")
    _randomize_prior(model)
    zeros, genre = torch.zeros(3, model.latent_dim), torch.tensor([0, 1, 2])
    with torch.no_grad():
        plain = model.latent_from_noise(zeros, genre)
        free = model.latent_from_noise(zeros, None)
        guided = model.latent_from_noise(zeros, genre, guidance=2.0)
        # with eps = 0, z_t is the mean; position 0 has no history, so its guided mean is exact
        first = slice(0, None, model.latent_positions)
        assert torch.allclose(guided[:, first], plain[:, first] + 2.0 * (plain[:, first] - free[:, first]), atol=1e-5)
        assert torch.equal(model.latent_from_noise(zeros, None, guidance=2.0), free)  # nothing to guide toward


def test_autoregressive_prior_is_saved_and_retargets(tmp_path):
    model = make_model("autoregressive-prior")
    _randomize_prior(model)
    loaded = load_model(write_model_folder(tmp_path / "ckpt", model))
    eps = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(model.latent_from_noise(eps, torch.tensor([2])), loaded.latent_from_noise(eps, torch.tensor([2])))
        z = model.latent_from_noise(eps, torch.tensor([0, 0, 0]))
        moved = retarget_latent(model, z, torch.tensor([0]), torch.tensor([2]))
        assert torch.allclose(moved, model.latent_from_noise(eps, torch.tensor([2, 2, 2])), atol=1e-4)
        # with guidance, the transferred latent is the guided sample the target genre gives for the same noise
        guided = retarget_latent(model, z, torch.tensor([0]), torch.tensor([2]), guidance=2.0)
        assert torch.allclose(guided, model.latent_from_noise(eps, torch.tensor([2, 2, 2]), guidance=2.0), atol=1e-4)
        assert not torch.allclose(guided, moved, atol=1e-3)
    pieces = generate_pieces(model, n=2, bars=2, genre="jazz", seed=1)
    assert len(pieces) == 2 and pieces[0].shape == (2, 32, 24)


def test_condition_by_id_mixture_and_none():
    model = make_model()
    with torch.no_grad():  # make every genre row distinct from the others and from the "no genre" row
        model.genre_embedding.weight.copy_(torch.randn_like(model.genre_embedding.weight))
        for block in model.decoder.stages[0].blocks:
            block.film.weight.normal_()
    z = torch.randn(2, model.latent_dim)
    with torch.no_grad():
        by_id = model.decode(z, torch.tensor([1, 1]))
        one_hot = model.decode(z, torch.tensor([[0.0, 1.0, 0.0]] * 2))
        half = model.embed_condition(torch.tensor([[0.5, 0.5, 0.0]]), 1, "cpu")
        none = model.decode(z, None)
        unknown = model.decode(z, torch.tensor([-1, -1]))
        other = model.decode(z, torch.tensor([0, 0]))
    table = model.genre_embedding.weight
    assert torch.allclose(by_id, one_hot, atol=1e-5)
    assert torch.allclose(half[0], 0.5 * (table[0] + table[1]))
    assert torch.equal(none, unknown) and not torch.allclose(none, by_id) and not torch.allclose(other, by_id)
    with pytest.raises(ValueError, match="mixture weights"):
        model.embed_condition(torch.ones(1, 2), 1, "cpu")


def test_unconditional_model_ignores_condition():
    model = make_model(genres=[])
    assert model.conditions == [] and model.embed_condition(torch.tensor([0]), 1, "cpu") is None
    with pytest.raises(AudioVAEError, match="no genre conditions"):
        parse_genre(model, "folk")


def test_parse_genre_names_mixtures_and_errors():
    model = make_model()
    assert parse_genre(model, None) is None
    assert parse_genre(model, "jazz").tolist() == [1]
    weights = parse_genre(model, "folk=1, rock=3")
    assert weights.dtype == torch.float32 and torch.allclose(weights, torch.tensor([[0.25, 0.0, 0.75]]))
    with pytest.raises(UnknownGenreError, match="unknown genre 'polka'; this model knows: folk, jazz, rock"):
        parse_genre(model, "polka")
    with pytest.raises(UnknownGenreError, match="polka"):
        parse_genre(model, "folk=0.5,polka=0.5")
    with pytest.raises(AudioVAEError, match="not a number"):
        parse_genre(model, "folk=lots")
    with pytest.raises(AudioVAEError, match="no positive weight"):
        parse_genre(model, "folk=0,jazz=0")
    assert issubclass(UnknownGenreError, AudioVAEError)


def test_latent_path_keeps_prior_marginals_and_links_neighbours():
    z = latent_path(4000, 3, 8, temperature=0.5, continuity=0.6, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 3, 8)
    assert torch.allclose(z.std(dim=(0, 2)), torch.full((3,), 0.5), atol=0.02)
    correlation = torch.corrcoef(torch.stack([z[:, 0].flatten(), z[:, 1].flatten()]))[0, 1]
    assert abs(float(correlation) - 0.6) < 0.03
    with pytest.raises(AudioVAEError):
        latent_path(1, 2, 8, temperature=1.0, continuity=1.0, generator=torch.Generator())
    plain = latent_path(3, 4, 8, temperature=1.0, continuity=0.5, generator=torch.Generator().manual_seed(1))
    same = latent_path(3, 4, 8, temperature=1.0, continuity=0.5, generator=torch.Generator().manual_seed(1),
                       repeats=0.0)
    assert torch.equal(plain, same)
    always = latent_path(3, 4, 8, temperature=1.0, continuity=0.5, generator=torch.Generator().manual_seed(1),
                         repeats=1.0)
    assert torch.equal(always, always[:, :1].expand(-1, 4, -1))  # every segment repeats one before: all the first


def test_generate_pieces_lengths_and_clean_rolls():
    model = make_model()
    with torch.no_grad():
        model.conv_out.bias.fill_(0.5)  # an untrained model would stay silent; make cells likely
    pieces = generate_pieces(model, n=3, bars=3, genre="rock", temperature=1.0, seed=0)
    assert len(pieces) == 3
    for roll in pieces:
        assert roll.dtype == bool and roll.shape == (2, 3 * ROLL.steps_per_bar, 24)
        assert roll[1].any() and not (roll[0] & ~roll[1]).any()  # onsets imply sustain
    again = generate_pieces(model, n=3, bars=3, genre="rock", temperature=1.0, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(pieces, again))
    mixed = generate_pieces(model, n=1, bars=2, genre="folk=0.5,jazz=0.5", seed=0)
    assert mixed[0].shape == (2, 32, 24)


def test_transfer_keeps_length_and_silence():
    model = make_model()
    with torch.no_grad():
        model.conv_out.bias.fill_(0.5)
    roll = np.zeros((2, 70, 24), dtype=bool)  # 3 segments: notes, silence, notes (partial)
    roll[:, 0:8, 5] = True
    roll[:, 64:70, 7] = True
    segments = roll_to_segments(roll, 32)
    assert segments.shape == (3, 2, 32, 24) and not segments[1].any()
    out = transfer_roll(model, roll, to="jazz", source="folk")
    assert out.shape == roll.shape and out[:, :32].any() and not out[:, 32:64].any()


def test_transfer_guides_the_target_prior_like_generation():
    model = make_model("autoregressive-prior")
    _randomize_prior(model)
    model.guidance, model.genre_guidance = 1.0, {"jazz": 3.0}
    with torch.no_grad():
        model.conv_out.bias.zero_()  # cells near p = 0.5, so the latent decides which are on
    roll = random_rolls(1)[0].numpy() > 0.5
    default = transfer_roll(model, roll, to="jazz", source="folk")
    assert default[1].any()
    assert np.array_equal(default, transfer_roll(model, roll, to="jazz", source="folk", guidance=3.0))
    unguided = transfer_roll(model, roll, to="jazz", source="folk", guidance=0.0)
    assert not np.array_equal(default, unguided)


def test_classifier_learns_register_and_is_registered(tmp_path):
    assert model_class("GenreClassifier") is GenreClassifier and model_class("PianoRollCVAE") is PianoRollCVAE
    rng = np.random.default_rng(0)
    segments = np.zeros((60, 2, 32, 24), dtype=bool)
    genre_ids = np.repeat([0, 1], 30)
    for i, g in enumerate(genre_ids):  # genre 0 plays low notes, genre 1 high notes
        for start in range(0, 32, 4):
            pitch = rng.integers(0, 8) + 16 * g
            segments[i, :, start:start + 3, pitch] = True
            segments[i, 0, start + 1:start + 3, pitch] = False
    classifier = train_classifier(segments, genre_ids, genres=["low", "high"], roll=ROLL, steps=40, batch_size=16,
                                  transpose=1, channels=(8, 16), log=None)
    assert (classify(classifier, segments) == genre_ids).mean() > 0.9
    loaded = load_model(write_model_folder(tmp_path / "classifier", classifier))
    assert np.array_equal(classify(loaded, segments), classify(classifier, segments))


def test_max_overlap_is_sustain_iou():
    a = np.zeros((3, 2, 4, 4), dtype=bool)
    a[0, 1, 0, :2] = True           # 2 cells
    a[1, 1, 3, 3] = True            # disjoint from every reference
    a[2, 1, 0, :] = True            # 4 cells, 2 shared with reference 0
    refs = np.zeros((2, 2, 4, 4), dtype=bool)
    refs[0, 1, 0, :2] = True
    refs[1, 1, 1, :] = True
    np.testing.assert_allclose(max_overlap(a, refs, chunk=1), [1.0, 0.0, 0.5])


def test_classifier_free_guidance_moves_away_from_no_genre():
    model = make_model()
    with torch.no_grad():
        model.genre_embedding.weight.normal_()
        for block in model.decoder.stages[0].blocks:
            block.film.weight.normal_()
    z, genre = torch.randn(2, model.latent_dim), torch.tensor([1, 1])
    with torch.no_grad():
        plain, none = model.decode(z, genre), model.decode(z, None)
        assert torch.allclose(guided_probabilities(model, z, genre, 0.0), torch.sigmoid(plain))
        assert torch.allclose(guided_probabilities(model, z, genre, 2.0), torch.sigmoid(3 * plain - 2 * none), atol=1e-6)
        assert torch.allclose(guided_probabilities(model, z, None, 2.0), torch.sigmoid(none))  # nothing to guide toward
    model.guidance = 2.0  # the model's default is used when none is given
    probs = decode_rolls(model, z, genre)
    assert np.allclose(probs, torch.sigmoid(3 * plain - 2 * none).numpy(), atol=1e-6)
    with pytest.raises(AudioVAEError, match="guidance"):
        decode_rolls(model, z, genre, guidance=-1.0)
