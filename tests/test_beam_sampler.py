"""A bundle's state sampler stops within its short period (pipelines/beam_sampler.py)."""
from __future__ import annotations

import time

from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from pipelines.beam_sampler import SAMPLING_PERIOD_MS, short_state_sampling


def test_a_long_running_sampler_stops_within_the_short_period() -> None:
    assert short_state_sampling() and short_state_sampling()  # applies, and again is a no-op
    sampler = statesampler.StateSampler("test-step", CounterFactory())
    assert sampler.sampling_period_ms == SAMPLING_PERIOD_MS
    sampler.start()
    try:
        time.sleep(1.0)  # long enough for Beam's default period to have grown to ~200 ms
    finally:
        started = time.perf_counter()
        sampler.stop()
    assert time.perf_counter() - started < 0.15  # Beam's default would wait up to 0.2 s here
    assert statesampler.StateSampler("other", CounterFactory(), 50).sampling_period_ms == 50
