"""The in-process runner's adjustments (pipelines/beam_local.py) keep Beam's behaviour."""
from __future__ import annotations

import time

from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from pipelines.beam_local import SAMPLING_PERIOD_MS, memoized_dofn_specs, short_state_sampling


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


def test_dofn_specs_are_read_once_per_dofn_and_stay_right() -> None:
    import apache_beam as beam
    from apache_beam.coders import VarIntCoder
    from apache_beam.transforms import userstate

    class Counting(beam.DoFn):
        COUNT = userstate.BagStateSpec("count", VarIntCoder())

        def process(self, kv, count=beam.DoFn.StateParam(COUNT)):
            yield kv

    class Plain(beam.DoFn):
        reads = 0

        def process(self, x):
            yield x

        def __dir__(self):  # Beam lists a DoFn's methods to find its specs
            type(self).reads += 1
            return super().__dir__()

    assert memoized_dofn_specs() and memoized_dofn_specs()
    stateful, plain = Counting(), Plain()
    specs = userstate.get_dofn_specs(stateful)
    assert [s.name for s in specs[0]] == ["count"] and not specs[1]
    specs[0].clear()  # a caller changing its copy changes nothing for the next one
    assert userstate.is_stateful_dofn(stateful) and not userstate.is_stateful_dofn(plain)
    for _ in range(3):
        assert userstate.get_dofn_specs(plain) == (set(), set())
    assert Plain.reads == 1
    assert userstate.get_dofn_specs(Counting())[0] and not userstate.get_dofn_specs(Plain())[0]
    assert Plain.reads == 2  # a new object is read afresh
