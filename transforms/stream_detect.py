"""The stateful detections' keyed stage for streaming: findings leave close to event time.

The batch stage (``detect._StatefulFn``) flushes a key's pending candidates when the
watermark passes the *latest* of them: few timer rounds when the whole input is there at
once, but a finding can then leave long after its event time, and correlation may already
have closed the incident it belongs to. Here every candidate arms a timer for its
``BUCKET``-second bucket of event time (a dynamic timer tag per bucket, so all due buckets
fire in one round), and each firing runs the detections up to its bucket's end. A finding
therefore leaves at most ``BUCKET`` seconds of event time after the record that raised it,
and correlation waits that long past an incident's close before closing it
(``CorrelateIncidents(close_slack=BUCKET)``), so it closes with the same members as batch.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from detections.api import KeyState
from pipelines.config import Config
from transforms.detect import CLOCK, Detector, _Pending, ms_ceil
from transforms.model import Finding
from transforms.state_guard import Guard, new_stage_id

BUCKET = 5.0  # seconds of event time per flush timer


def _bucket_end(t: float) -> float:
    return math.ceil(t / BUCKET) * BUCKET


class StreamingStatefulFn(beam.DoFn):
    """Keyed by detection (and shard), like the batch stage; one timer per due bucket."""

    STATE = ReadModifyWriteStateSpec("state", PickleCoder())  # _Pending
    ARMED = ReadModifyWriteStateSpec("armed", PickleCoder())  # bucket ends with a timer set
    VERSION = ReadModifyWriteStateSpec("version", PickleCoder())  # transforms/state_guard.py
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.stage_id = new_stage_id()  # see transforms/state_guard.py

    def setup(self) -> None:
        self.detector = Detector(self.cfg)

    @staticmethod
    def _arm(flush: Any, armed: set[float], t: float) -> None:
        end = _bucket_end(t)
        if end not in armed:
            armed.add(end)
            flush.set(ms_ceil(end), dynamic_timer_tag=repr(end))

    def process(
        self,
        element: tuple[str, tuple[str, dict[str, Any]]],
        state: Any = beam.DoFn.StateParam(STATE),
        armed_state: Any = beam.DoFn.StateParam(ARMED),
        version: Any = beam.DoFn.StateParam(VERSION),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        key, (state_key, event) = element
        with Guard(version, self.stage_id, key) as guard:
            state, armed_state = guard.bind("state", state), guard.bind("armed", armed_state)
            st: _Pending = state.read() or _Pending()
            armed: set[float] = armed_state.read() or set()
            t = event["time"].timestamp()
            if event.get(CLOCK):  # how far the input reaches: absence timers up to it may fire
                st.seen = max(st.seen if st.seen is not None else t, t)
                for ks in st.keys.values():
                    if ks.timer is not None and ks.timer <= t:
                        self._arm(flush, armed, ks.timer)
            else:
                st.events.append((state_key, event))
                self._arm(flush, armed, t)
            state.write(st)
            armed_state.write(armed)
        return iter(())

    @on_timer(FLUSH)
    def on_flush(
        self,
        fire_ts: Any = beam.DoFn.TimestampParam,
        tag: Any = beam.DoFn.DynamicTimerTagParam,
        key: Any = beam.DoFn.KeyParam,
        state: Any = beam.DoFn.StateParam(STATE),
        armed_state: Any = beam.DoFn.StateParam(ARMED),
        version: Any = beam.DoFn.StateParam(VERSION),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        with Guard(version, self.stage_id, key) as guard:
            state, armed_state = guard.bind("state", state), guard.bind("armed", armed_state)
            until = float(tag)
            armed: set[float] = armed_state.read() or set()
            armed.discard(until)
            st: _Pending = state.read() or _Pending()
            ready: dict[str, list[dict[str, Any]]] = {}
            rest = []
            for k, e in st.events:
                if e["time"].timestamp() <= until:
                    ready.setdefault(k, []).append(e)
                else:
                    rest.append((k, e))
            found: list[Finding] = []
            if ready or any(ks.timer is not None and ks.timer <= until for ks in st.keys.values()):
                st.events = rest
                due = [k for k, ks in st.keys.items() if ks.timer is not None and ks.timer <= until]
                for k in sorted(set(ready) | set(due)):
                    ks = st.keys.setdefault(k, KeyState())
                    found += self.detector.advance(k, ks, ready.get(k, []), until, st.seen)
                    if not ks.data and ks.timer is None:
                        del st.keys[k]
                covered = st.seen if st.seen is not None else float("-inf")
                for k, ks in st.keys.items():  # detection timers need a bucket of their own
                    if ks.timer is not None and (ks.timer <= covered or not self.detector.needs_horizon(k)):
                        self._arm(flush, armed, ks.timer)
                state.write(st)
            armed_state.write(armed)
        for f in found:
            yield beam.window.TimestampedValue(f, fire_ts)
