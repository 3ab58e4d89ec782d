"""The learning-rate schedule as a function: warm-up, cosine midpoint and end, over steps or over the time limit."""
import math

import pytest

from audiovae.train.config import TrainConfig
from audiovae.train.schedule import learning_rate, schedule_progress

LR, RATIO = 1e-3, 0.1
MIDPOINT = LR * (RATIO + (1 - RATIO) / 2)


def steps_config(**kw) -> TrainConfig:
    return TrainConfig(**({"lr": LR, "lr_min_ratio": RATIO, "warmup_steps": 10, "max_steps": 111} | kw))


def time_config(**kw) -> TrainConfig:
    return steps_config(**({"schedule": "time", "time_limit_minutes": 2.0, "max_steps": 1_000_000} | kw))


def test_steps_schedule_warms_up_then_decays_to_the_minimum_on_the_last_step():
    t = steps_config()
    assert learning_rate(t, step=0) == pytest.approx(LR / 10)
    assert learning_rate(t, step=9) == pytest.approx(LR)
    assert learning_rate(t, step=10) == pytest.approx(LR)  # the decay starts at the peak
    assert learning_rate(t, step=60) == pytest.approx(MIDPOINT)  # halfway through steps 10 .. 110
    assert learning_rate(t, step=110) == pytest.approx(LR * RATIO)  # step max_steps - 1 is the last one
    assert learning_rate(t, step=110, train_seconds=1e6) == learning_rate(t, step=110)  # the clock is ignored


def test_time_schedule_follows_the_clock_not_the_step_count():
    t = time_config()
    assert learning_rate(t, step=0, train_seconds=0.0) == pytest.approx(LR / 10)  # warm-up ramp, in steps
    assert learning_rate(t, step=50, train_seconds=0.0) == pytest.approx(LR)
    assert learning_rate(t, step=50, train_seconds=60.0) == pytest.approx(MIDPOINT)  # 1 of 2 minutes
    assert learning_rate(t, step=50_000, train_seconds=60.0) == pytest.approx(MIDPOINT)  # the step does not matter
    assert learning_rate(t, step=50, train_seconds=120.0) == pytest.approx(LR * RATIO)
    assert learning_rate(t, step=50, train_seconds=500.0) == pytest.approx(LR * RATIO)  # past the limit: clamped


def test_time_schedule_last_step_is_at_the_minimum_whatever_the_clock():
    t = time_config()
    assert learning_rate(t, step=900, train_seconds=119.0, last=True) == LR * RATIO
    assert learning_rate(t, step=900, train_seconds=119.0) > LR * RATIO


def test_time_schedule_follows_max_steps_when_that_ends_the_run_first():
    t = time_config(max_steps=1000)
    assert schedule_progress(t, step=500, train_seconds=6.0) == pytest.approx(0.5)
    assert learning_rate(t, step=500, train_seconds=6.0) == pytest.approx(MIDPOINT)
    assert schedule_progress(t, step=100, train_seconds=90.0) == pytest.approx(0.75)


def test_time_warmup_ramp_multiplies_the_cosine_so_the_curve_is_continuous():
    t = time_config(warmup_steps=4)
    cosine = RATIO + (1 - RATIO) * 0.5 * (1 + math.cos(math.pi * 0.25))
    assert learning_rate(t, step=1, train_seconds=30.0) == pytest.approx(LR * 0.5 * cosine)
    assert learning_rate(t, step=3, train_seconds=30.0) == pytest.approx(LR * cosine)


def test_no_warmup():
    assert learning_rate(steps_config(warmup_steps=0), step=0) == pytest.approx(LR)
    assert learning_rate(time_config(warmup_steps=0), step=0, train_seconds=0.0) == pytest.approx(LR)
