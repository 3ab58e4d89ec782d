import math

import pytest
import torch

from audiovae.models.posterior import DiagonalGaussian, active_units, beta_at, kl_with_free_bits


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, logvar = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    q = DiagonalGaussian(mean, logvar)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(q.kl(), reference, atol=1e-5)
    assert torch.allclose(q.kl_per_item(), reference.flatten(1).sum(1), atol=1e-4)


def test_logvar_is_clamped_so_sampling_stays_finite():
    q = DiagonalGaussian(torch.zeros(2, 3), torch.tensor([[1e4, -1e4, 0.0]] * 2))
    assert torch.isfinite(q.sample()).all() and torch.isfinite(q.kl()).all()


def test_sample_temperature_and_mode():
    q = DiagonalGaussian(torch.full((1000, 2), 3.0), torch.zeros(1000, 2))
    assert torch.equal(q.sample(0.0), q.mode())
    g = torch.Generator().manual_seed(0)
    draws = q.sample(0.5, generator=g)
    assert abs(float(draws.std()) - 0.5) < 0.05
    assert torch.equal(q.sample(0.5, generator=torch.Generator().manual_seed(0)), draws)


def test_free_bits_floor_each_channel():
    kl = torch.zeros(4, 3, 10)
    kl[:, 0] = 2.0  # one informative channel, two collapsed ones
    assert float(kl_with_free_bits(kl, 0.0)) == pytest.approx(2.0 * 10)
    assert float(kl_with_free_bits(kl, 0.5)) == pytest.approx((2.0 + 0.5 + 0.5) * 10)
    assert float(kl_with_free_bits(torch.full((4, 3), 0.1), 0.25)) == pytest.approx(0.75)


def test_active_units_counts_channels_that_vary():
    means = torch.zeros(50, 4, 6)
    means[:, 1] = torch.randn(50, 6)
    assert active_units(means) == 1


def test_beta_warmup_is_linear():
    assert beta_at(0, beta=2.0, warmup_steps=100) == 0.0
    assert beta_at(50, beta=2.0, warmup_steps=100) == pytest.approx(1.0)
    assert beta_at(500, beta=2.0, warmup_steps=100) == 2.0
    assert beta_at(0, beta=2.0, warmup_steps=0) == 2.0
    assert math.isclose(DiagonalGaussian(torch.zeros(1, 1), torch.zeros(1, 1)).log_prob(torch.zeros(1, 1))[0],
                        -0.5 * math.log(2 * math.pi), rel_tol=1e-6)
