"""A Kafka topic as an unbounded source whose watermark follows record event time.

Written the way Beam's Java ``KafkaIO`` reads (its ``ReadFromKafkaDoFn``), as splittable
DoFns over the ``confluent-kafka`` consumer, so it runs on any portable runner without a
Java expansion service:

- ``_PartitionsFn`` lists the topic's partitions every ``partition_refresh`` seconds and
  emits one descriptor per partition not seen before (new partitions are picked up);
- ``_ReadPartitionFn`` reads one partition: its restriction is an offset range, each
  message's offset is claimed before its records are emitted, only checkpoint splits are
  taken (one reader per partition), and the remainder is deferred ``poll_interval`` when
  the partition has nothing new. One call consumes up to ``batch_records`` messages (or
  what arrives within ``READ_BUDGET``), parses them by the source's format
  (``transforms/kafka_parse.py``, as file blocks are) and emits one Arrow table: every
  downstream step pays per element, not per record.

Event time and watermark follow the spool source's rules (``transforms/spool.py``): a
partition's own watermark is the newest record time it has read minus the source's
out-of-orderness, only forward; records more than allowed lateness behind it are ``late``
dead letters. A partition with nothing left to read (at its high-water mark, as the broker
says) does not hold the job back: it follows the newest record time of its source's other
partitions; after ``idle_timeout`` without a message, on the stream clock or the wall
clock (``spool.idle_target``), it follows that clock − out-of-orderness. Each partition
reports (``ManualWatermarkEstimator``) the minimum of these over every partition of the
job's Kafka sources (``kafka_state.stage_watermark``: Prism takes a stage's watermark from
the bundle it finished last). A message with the header
``cranewatch-end`` ends its partition (as an ``END`` file ends a spool); once every
partition has ended, the source has.

Restarts and the consumer group's offsets: see ``transforms/kafka_state.py``.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration, Timestamp

from transforms.kafka_parse import Message, MessageParser
from transforms.kafka_state import (
    BatchRecord, PartitionMark, ReadLog, replay_start, run_marks, safe_start, source_newest, stage_watermark,
    write_mark, write_source_watermark,
)
from transforms.coders import EventTableCoder  # noqa: F401 - registers the table coder
from transforms.model import DeadLetter
from transforms.parse import DEAD
from transforms.spool import _split_late, _time_bounds, _Watermarks, idle_target, stream_clock

log = logging.getLogger("cranewatch.kafka")
END_HEADER = "cranewatch-end"
OPEN_END = sys.maxsize  # an unbounded partition's offset range ends here
COMMIT_EVERY = 2.0  # seconds between a partition's group offset commits
READ_BUDGET = 1.0  # seconds one process call reads before handing back to the runner


@dataclass(frozen=True)
class KafkaSource:
    """One configured source's topic and its event-time settings (seconds)."""

    source: str
    format: str
    bootstrap: str
    topic: str
    group: str
    state_dir: str  # <output>/_stream
    timezone: str = "UTC"
    mapping: Optional[str] = None
    out_of_orderness: float = 300.0
    allowed_lateness: float = 3600.0
    horizon: float = 5400.0  # correlation gap + allowed lateness: what a restart replays
    idle_timeout: float = 7200.0
    poll_interval: float = 0.5
    start: str = "earliest"
    max_message_bytes: int = 1 << 20
    batch_records: int = 20000
    partition_refresh: float = 10.0
    settings: tuple[tuple[str, str], ...] = ()  # librdkafka settings (never a credential)
    secrets: tuple[tuple[str, str, str], ...] = ()  # (librdkafka key, "file" | "env", where it is)


@dataclass(frozen=True)
class KafkaPartition:
    spec: KafkaSource
    partition: int


# -- consumers: one per partition per worker process ----------------------------------------

def consumer_config(spec: KafkaSource) -> dict[str, Any]:
    """librdkafka settings with the credentials read now, from their file or variable."""
    conf: dict[str, Any] = {
        "bootstrap.servers": spec.bootstrap, "group.id": spec.group, "enable.auto.commit": False,
        "enable.auto.offset.store": False, "auto.offset.reset": spec.start, "fetch.wait.max.ms": 100,
        "queued.min.messages": 100000, "enable.partition.eof": False,
        "fetch.message.max.bytes": max(1 << 20, spec.max_message_bytes + 1024),
        "receive.message.max.bytes": max(100 << 20, 2 * spec.max_message_bytes + (1 << 20)),
        "logger": log,
    }
    conf.update(dict(spec.settings))
    for key, kind, where in spec.secrets:
        if kind == "env":
            value = os.environ.get(where)
            if value is None:
                raise ValueError(f"source {spec.source}: environment variable {where} (for {key}) is not set")
        else:
            try:
                with open(where, encoding="utf-8") as fh:
                    value = fh.read().strip()
            except OSError as exc:
                raise ValueError(f"source {spec.source}: cannot read {where} (for {key}): {exc.strerror}") from None
        conf[key] = value
    return conf


_LOCK = threading.Lock()
_CONSUMERS: dict[tuple[str, str, int], Any] = {}
_NEXT: dict[tuple[str, str, int], Optional[int]] = {}  # the offset the consumer reads next
_PARTITION: dict[tuple[str, str, int], dict[str, Any]] = {}  # newest, last_new, committed, committed_at


def _key(spec: KafkaSource, partition: int) -> tuple[str, str, int]:
    return (spec.state_dir, spec.source, partition)


def _consumer(spec: KafkaSource, partition: int) -> Any:
    from confluent_kafka import Consumer

    key = _key(spec, partition)
    with _LOCK:
        if key not in _CONSUMERS:
            _CONSUMERS[key] = Consumer(consumer_config(spec))
            _NEXT[key] = None
        return _CONSUMERS[key]


def _seek(spec: KafkaSource, partition: int, offset: int) -> Any:
    from confluent_kafka import TopicPartition

    consumer = _consumer(spec, partition)
    key = _key(spec, partition)
    if _NEXT.get(key) != offset:
        consumer.assign([TopicPartition(spec.topic, partition, offset)])
        _NEXT[key] = offset
    return consumer


def _retrying(call: Any, what: str, patience: float = 60.0) -> Any:
    """``call()`` again while the broker answers with a transient error (a group
    coordinator still being elected on a fresh broker, a leader moving)."""
    from confluent_kafka import KafkaException

    deadline = time.time() + patience
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            transient = err is not None and hasattr(err, "retriable") and (
                err.retriable() or err.name() in ("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS",
                                                   "COORDINATOR_NOT_AVAILABLE", "_TIMED_OUT", "_TRANSPORT"))
            if not transient or time.time() >= deadline:
                raise
            log.info("%s: %s; retrying", what, err)
            time.sleep(0.5)


def start_offset(spec: KafkaSource, partition: int) -> int:
    """Where reading a partition begins (``transforms/kafka_state.py``)."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(spec, partition)
    tp = TopicPartition(spec.topic, partition)
    low, high = _retrying(lambda: consumer.get_watermark_offsets(tp, timeout=10), "partition bounds")
    done = ReadLog.of(spec.state_dir, spec.source).end(partition)
    if done is not None:
        start = replay_start(spec.state_dir, spec.horizon)
        if start == -math.inf:
            return low
        seek_ms = int(max(0.0, start - spec.out_of_orderness) * 1000)
        found = _retrying(lambda: consumer.offsets_for_times([TopicPartition(spec.topic, partition, seek_ms)],
                                                             timeout=10)[0].offset, "offsets_for_times")
        return max(low, min(done, found if found >= 0 else done))
    committed = _retrying(lambda: consumer.committed([tp], timeout=10)[0].offset, "committed offsets")
    if committed >= 0:
        return max(low, committed)
    return low if spec.start == "earliest" else high


def commit(spec: KafkaSource, partition: int, offset: int) -> None:
    from confluent_kafka import TopicPartition

    consumer = _consumer(spec, partition)
    _retrying(lambda: consumer.commit(offsets=[TopicPartition(spec.topic, partition, offset)], asynchronous=False),
              "offset commit", patience=5.0)


def commit_read(spec: KafkaSource) -> dict[int, int]:
    """After the job has finished and the sinks have written everything: commit the end of
    what was read in every partition."""
    from confluent_kafka import Consumer, TopicPartition

    read = ReadLog(ReadLog.of(spec.state_dir, spec.source).path)
    ends = {p: read.end(p) for p in read.batches}
    offsets = [TopicPartition(spec.topic, p, e) for p, e in sorted(ends.items()) if e is not None]
    if offsets:
        consumer = Consumer(consumer_config(spec))
        try:
            _retrying(lambda: consumer.commit(offsets=offsets, asynchronous=False), "offset commit")
        finally:
            consumer.close()
    return {p: e for p, e in ends.items() if e is not None}


# -- partitions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Known:
    partitions: frozenset = frozenset()
    done: bool = False


class _KnownTracker(RestrictionTracker):
    """Claims are successor restrictions (the partitions emitted so far); checkpoints only."""

    def __init__(self, restriction: _Known):
        self._r = restriction

    def current_restriction(self) -> _Known:
        return self._r

    def current_progress(self) -> RestrictionProgress:
        return RestrictionProgress(fraction=1.0 if self._r.done else 0.0)

    def try_claim(self, position: _Known) -> bool:
        if self._r.done:
            return False
        self._r = position
        return True

    def try_split(self, fraction_of_remainder: float) -> Any:
        if fraction_of_remainder != 0 or self._r.done:
            return None
        primary, residual = replace(self._r, done=True), self._r
        self._r = primary
        return primary, residual

    def check_done(self) -> None:
        if not self._r.done:
            raise ValueError(f"partition list not done: {self._r}")

    def is_bounded(self) -> bool:
        return False


class _KnownRestrictions(RestrictionProvider):
    def initial_restriction(self, element: KafkaSource) -> _Known:
        return _Known()

    def create_tracker(self, restriction: _Known) -> _KnownTracker:
        return _KnownTracker(restriction)

    def restriction_size(self, element: KafkaSource, restriction: _Known) -> int:
        return 1

    def split(self, element: KafkaSource, restriction: _Known) -> Iterator[_Known]:
        yield restriction

    def truncate(self, element: KafkaSource, restriction: _Known) -> None:
        return None


def list_partitions(spec: KafkaSource) -> list[int]:
    consumer = _consumer(spec, -1)
    try:
        meta = consumer.list_topics(spec.topic, timeout=5).topics.get(spec.topic)
    except Exception as exc:  # noqa: BLE001 - the broker unreachable for now: the next look retries
        log.warning("source %s: cannot list partitions of %s: %s", spec.source, spec.topic, exc)
        return []
    if meta is None or meta.error is not None:
        return []
    return sorted(meta.partitions)


class _PartitionsFn(beam.DoFn):
    """Emit each partition of the topic once, as it appears; end when every one has ended.
    Once a partition is known its own watermark never holds the job: the readers' do."""

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        spec: KafkaSource,
        tracker: Any = beam.DoFn.RestrictionParam(_KnownRestrictions()),
        estimator: Any = beam.DoFn.WatermarkEstimatorParam(_Watermarks()),
    ) -> Iterator[KafkaPartition]:
        r: _Known = tracker.current_restriction()
        found = [p for p in list_partitions(spec) if p not in r.partitions]
        if found:
            if not tracker.try_claim(replace(r, partitions=r.partitions | set(found))):
                return
            known = run_marks(spec.state_dir, spec.source)
            for p in found:
                if p not in known:  # holds the job's watermark until the partition is read
                    write_mark(spec.state_dir, spec.source, p, PartitionMark(None, None, False, False, time.time()))
                yield KafkaPartition(spec, p)
            r = tracker.current_restriction()
        read = ReadLog.of(spec.state_dir, spec.source)
        if r.partitions and all(read.ended(p) for p in r.partitions):
            estimator.set_watermark(MAX_TIMESTAMP)
            tracker.try_claim(replace(r, done=True))
            return
        if r.partitions:  # before the first partition is listed, the source holds the job
            estimator.set_watermark(MAX_TIMESTAMP)
        tracker.defer_remainder(Duration.of(spec.partition_refresh))


# -- reading a partition ------------------------------------------------------------------

class _OffsetTracker(OffsetRestrictionTracker):
    """Offset ranges claimed per message; only checkpoint splits (one reader a partition)."""

    def try_split(self, fraction_of_remainder: float) -> Any:
        return super().try_split(0) if fraction_of_remainder == 0 else None

    def is_bounded(self) -> bool:
        return False


class _Offsets(RestrictionProvider):
    def initial_restriction(self, element: KafkaPartition) -> OffsetRange:
        read = ReadLog.of(element.spec.state_dir, element.spec.source)
        if read.ended(element.partition):
            end = read.end(element.partition) or 0
            return OffsetRange(end, end)
        return OffsetRange(start_offset(element.spec, element.partition), OPEN_END)

    def create_tracker(self, restriction: OffsetRange) -> _OffsetTracker:
        return _OffsetTracker(restriction)

    def restriction_size(self, element: KafkaPartition, restriction: OffsetRange) -> int:
        return 1

    def split(self, element: KafkaPartition, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield restriction

    def truncate(self, element: KafkaPartition, restriction: OffsetRange) -> None:
        return None


def _state(spec: KafkaSource, partition: int, start: int) -> dict[str, Any]:
    """The partition's reading in this process. A restart that replays starts from no
    newest time: the watermark follows the replayed records, so none of them arrives
    behind it (their detection timers fire in order, as in the first run)."""
    key = _key(spec, partition)
    with _LOCK:
        if key not in _PARTITION:
            read = ReadLog.of(spec.state_dir, spec.source)
            times = [b.max_time for b in read.batches.get(partition, []) if b.max_time is not None]
            replaying = start < read.recorded_end.get(partition, -1)
            _PARTITION[key] = {"newest": max(times) if times and not replaying else None, "last_new": time.time(),
                               "own": None, "committed": None, "committed_at": 0.0}
        return _PARTITION[key]


def _late_letters(spec: KafkaSource, late: pa.Table, watermark: float) -> list[DeadLetter]:
    return [DeadLetter(spec.source, row["raw_ref"], f"late: record time {row['time'].isoformat()} is more than "
                       f"allowed_lateness ({spec.allowed_lateness:g} s) behind the source watermark",
                       row["raw"] or "", late=True)
            for row in late.select(["time", "raw_ref", "raw"]).to_pylist()]


class _ReadPartitionFn(beam.DoFn):
    """Read one partition in batches, hold its watermark at newest − bound (module doc)."""

    def __init__(self, sources: tuple[str, ...]):
        self.sources = sources  # every Kafka source of the job: the stage's watermark is theirs

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        part: KafkaPartition,
        tracker: Any = beam.DoFn.RestrictionParam(_Offsets()),
        estimator: Any = beam.DoFn.WatermarkEstimatorParam(_Watermarks()),
    ) -> Iterator[Any]:
        spec, p = part.spec, part.partition
        r: OffsetRange = tracker.current_restriction()
        read = ReadLog.of(spec.state_dir, spec.source)
        if r.start >= r.stop:  # ended in an earlier run
            write_mark(spec.state_dir, spec.source, p, PartitionMark(None, math.inf, True, True, time.time()))
            return
        st = _state(spec, p, r.start)
        replay_end = read.recorded_end.get(p, -1)  # offsets below it were read before a restart
        parser = MessageParser(spec.source, spec.format, spec.topic, p, spec.timezone, spec.mapping,
                               spec.max_message_bytes)
        consumer = _seek(spec, p, r.start)
        key = _key(spec, p)
        deadline = time.time() + READ_BUDGET
        got = ended = stopped = False
        end_offset: Optional[int] = None
        fresh: list[Message] = []  # parsed, recorded and emitted together: one table a call
        while time.time() < deadline and not (ended or stopped) and len(fresh) < spec.batch_records:
            msgs = consumer.consume(spec.batch_records - len(fresh), timeout=0.02 if got else 0.1)
            claimed: list[Message] = []
            for m in msgs:
                if m.error() is not None:
                    log.warning("source %s: partition %d: %s", spec.source, p, m.error())
                    continue
                if not tracker.try_claim(m.offset()):
                    stopped = True
                    break
                _NEXT[key] = m.offset() + 1
                if any(k == END_HEADER for k, _ in (m.headers() or ())):
                    ended = True
                    end_offset = m.offset()
                    break
                kind, ts = m.timestamp()
                claimed.append(Message(m.offset(), m.value(), ts if kind != 0 else None))
            if stopped:
                _NEXT[key] = None  # consumed past the claim: seek again next time
            if not msgs:
                break
            got = True
            replays = [m for m in claimed if m.offset < replay_end]
            if replays:
                yield from self._replay(spec, read, parser, p, replays, st)
            fresh += [m for m in claimed if m.offset >= replay_end]
        if fresh or ended:
            yield from self._read(spec, read, parser, p, fresh, st, ended, end_offset)
        now = time.time()
        if ended:
            st["own"] = math.inf
            self._mark(spec, p, st, ended=True, caught_up=True)
            estimator.set_watermark(MAX_TIMESTAMP)
            tracker.try_claim(OPEN_END - 1)
            return
        self._advance(spec, p, consumer, estimator, st, got, now)
        if now - st["committed_at"] >= COMMIT_EVERY:
            st["committed_at"] = now
            offset = read.needed_from(p, safe_start(spec.state_dir, spec.horizon))
            if offset is not None and offset != st["committed"]:
                try:
                    commit(spec, p, offset)
                    st["committed"] = offset
                except Exception as exc:  # noqa: BLE001 - a commit that fails is retried at the next one
                    log.warning("source %s: partition %d: offset commit failed: %s", spec.source, p, exc)
        if not got:
            tracker.defer_remainder(Duration.of(spec.poll_interval))
        else:
            tracker.defer_remainder(Duration.of(0))

    def _replay(self, spec: KafkaSource, read: ReadLog, parser: MessageParser, p: int,
                msgs: list[Message], st: dict[str, Any]) -> Iterator[pa.Table]:
        """Records read before a restart: only the replay horizon's, not counted again."""
        start = replay_start(spec.state_dir, spec.horizon)
        groups: dict[Optional[float], list[Message]] = {}
        for m in msgs:
            b = read.batch_of(p, m.offset)
            groups.setdefault(b.read_watermark if b is not None else None, []).append(m)
        for wm, ms in groups.items():
            for table in parser.parse(ms).tables:
                on_time, _ = _split_late(table, wm - spec.allowed_lateness if wm is not None else None)
                if start > -math.inf:
                    on_time, _ = _split_late(on_time, start)
                if on_time.num_rows:
                    hi = _time_bounds([on_time])[1]
                    if hi is not None:
                        st["newest"] = hi if st["newest"] is None else max(st["newest"], hi)
                    yield on_time

    def _read(self, spec: KafkaSource, read: ReadLog, parser: MessageParser, p: int, msgs: list[Message],
              st: dict[str, Any], ended: bool, end_offset: Optional[int]) -> Iterator[Any]:
        wm = st["own"]  # lateness is measured against the partition's own watermark
        got = parser.parse(msgs)
        threshold = wm - spec.allowed_lateness if wm is not None else None
        tables, dead, late_n = [], list(got.dead), 0
        # One element for the whole read: each downstream step pays per element, not per row.
        for table in [pa.concat_tables(got.tables)] if got.tables else []:
            on_time, late = _split_late(table, threshold)
            if late.num_rows:
                dead.extend(_late_letters(spec, late, wm))
                late_n += late.num_rows
            if on_time.num_rows:
                tables.append(on_time)
        lo, hi = _time_bounds(tables)
        first = msgs[0].offset if msgs else end_offset
        last = end_offset if end_offset is not None else msgs[-1].offset
        read.add(BatchRecord(p, first, last, got.read, got.parsed - late_n, got.dead_lettered + late_n, late_n,
                             got.skipped, lo, hi, wm, time.time(), ended))  # before emitting
        if msgs:
            st["last_new"] = time.time()
        if hi is not None:
            st["newest"] = hi if st["newest"] is None else max(st["newest"], hi)
        yield from tables
        for dl in dead:
            yield pvalue.TaggedOutput(DEAD, dl)

    def _advance(self, spec: KafkaSource, p: int, consumer: Any, estimator: Any, st: dict[str, Any],
                 got: bool, now: float) -> None:
        from confluent_kafka import TopicPartition

        # Caught up: nothing left below the partition's high-water mark, as the broker says
        # now (the consumer's cached mark is from its last fetch: more may have come since,
        # and a consumer just assigned may not have fetched yet).
        position = _NEXT.get(_key(spec, p))
        tp = TopicPartition(spec.topic, p)
        high = -1
        try:
            if got:
                _, high = consumer.get_watermark_offsets(tp, cached=True)
            if position is not None and (high < 0 or position >= high):
                _, high = consumer.get_watermark_offsets(tp, timeout=2)
        except Exception:  # noqa: BLE001 - unknown for now: not caught up
            high = -1
        caught_up = high >= 0 and position is not None and position >= high
        target = st["newest"] - spec.out_of_orderness if st["newest"] is not None else None
        if caught_up:  # nothing left to read: follow the source's other partitions
            newest = source_newest(spec.state_dir, spec.source)
            if newest is not None:
                target = max(target if target is not None else -math.inf, newest - spec.out_of_orderness)
        clock = stream_clock(spec.state_dir, now) if spec.idle_timeout > 0 else None
        if clock is not None and st.get("clock_at") != st["last_new"]:  # a new message (or the first look)
            st["clock_new"] = max(clock, min(st["newest"], now)) if st["newest"] is not None else clock
            st["clock_at"] = st["last_new"]
        moved = idle_target(spec.idle_timeout, spec.out_of_orderness, st["last_new"], st.get("clock_new"), now, clock)
        idle = moved is not None
        if moved is not None:  # no new message for idle_timeout (stream clock or wall clock)
            target = max(target if target is not None else -math.inf, moved)
        if target is not None and (st["own"] is None or target > st["own"]):
            st["own"] = target
        self._mark(spec, p, st, ended=False, caught_up=caught_up, idle=idle)
        # What the runner is told: the minimum over the job's partitions (module doc).
        low = stage_watermark(spec.state_dir, self.sources)
        current = estimator.current_watermark()
        if low is not None and low > -math.inf:
            wm = MAX_TIMESTAMP if low == math.inf else Timestamp.of(low)
            if current is None or wm > current:
                estimator.set_watermark(wm)

    @staticmethod
    def _mark(spec: KafkaSource, p: int, st: dict[str, Any], ended: bool, caught_up: bool, idle: bool = False) -> None:
        write_mark(spec.state_dir, spec.source, p, PartitionMark(st["newest"], st["own"], ended, caught_up, time.time()))
        marks = run_marks(spec.state_dir, spec.source)
        values = [m.watermark for m in marks.values()]
        low = None if any(v is None for v in values) else min(values)
        all_ended = bool(marks) and all(m.ended for m in marks.values())
        write_source_watermark(spec.state_dir, spec.source, math.inf if all_ended else low,
                               source_newest(spec.state_dir, spec.source), idle, all_ended)


class ReadKafka(beam.PTransform):
    """Kafka sources → tagged outputs ``events`` (Arrow tables) and ``dead_letters``."""

    def __init__(self, sources: list[KafkaSource]):
        super().__init__()
        self.sources = sources

    def expand(self, p: beam.pvalue.PBegin) -> pvalue.DoOutputsTuple:
        return (
            p
            | "Kafka topics" >> beam.Create(self.sources, reshuffle=False)
            | "Watch topic partitions" >> beam.ParDo(_PartitionsFn())
            | "Read partitions in batches" >> beam.ParDo(_ReadPartitionFn(tuple(s.source for s in self.sources)))
            .with_output_types(pa.Table).with_outputs(DEAD, main="events")  # tables: EventTableCoder
        )
