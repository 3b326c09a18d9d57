"""Spool directories as an unbounded source whose watermark follows record event time.

Log shippers and Zeek's rotation drop finished files into a directory. Beam's
``MatchContinuously`` would do the watching, but its watermark follows the poll time (the
wall clock), so an hourly Zeek rotation or a replayed archive would arrive entirely late.
This source is a splittable DoFn that lists the directory itself (one restriction per
source, never split in two: two readers of one directory would double-read) and sets its
watermark by hand to the newest record time read minus the source's bounded
out-of-orderness. Beam takes the job's watermark as the minimum over sources.

The file rule: a file is read once, when its mtime and ctime are both at least ``settle``
seconds old (a file still being written, or just renamed in, waits); names starting with
``.`` or ``_`` are skipped (shippers' temporary names). A file named ``END`` ends the
source: its watermark goes to +infinity and, once every source has ended, the job finishes.

Idle sources (``idle_target``): a source with no new file for ``idle_timeout`` stops holding
the job back, its watermark following the stream's own clock (the newest record time any
source has read, ``stream_clock``) or, when the whole stream is quiet, the wall clock. The
stream clock is what makes idleness work for a replay and for sparse sources alike: a
source that logs a few records a day would otherwise hold every stateful finding and every
incident close until its next file.

Every finished file is recorded (``<out>/_stream/spool/<source>.jsonl``: name, record
counts, time span, the watermark it was read under), before its records are emitted. A
restarted job skips recorded files and first replays records from them (``replay_start``):
the correlation horizon and the stateful detections' state horizons behind the watermark at
the stop, which is every finished file while a detection keeps state without bound. So the
incidents open at the stop and the detections' keyed state are rebuilt as they were.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterator, Optional, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam import pvalue
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider, WatermarkEstimatorProvider
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration, Timestamp

from transforms.coders import EventTableCoder  # noqa: F401 - registers the table coder
from transforms.model import DeadLetter
from transforms.parse import DEAD, InputFile, parse_file
from transforms.read import DEFAULT_LIMITS, Limits

END_MARKER = "END"
STATE_DIR = "_stream"


@dataclass(frozen=True)
class SpoolSource:
    """One configured source's spool directory and its event-time settings (seconds)."""

    source: str
    format: str
    directory: str
    state_dir: str  # <output>/_stream
    timezone: str = "UTC"
    mapping: Optional[str] = None
    out_of_orderness: float = 300.0
    allowed_lateness: float = 3600.0
    horizon: float = math.inf  # event time a restart replays (pipelines.streaming.replay_horizon)
    idle_timeout: float = 7200.0
    settle: float = 2.0
    poll_interval: float = 0.5
    limits: Limits = DEFAULT_LIMITS  # the config's read bounds, as in batch (docs/limits.md)


@dataclass(frozen=True)
class FileRecord:
    """A finished spool file, as recorded for restarts and the running summary."""

    name: str
    size: int
    read: int
    parsed: int
    dead_lettered: int
    late: int
    min_time: Optional[float]  # epoch seconds of its records (None: no record parsed)
    max_time: Optional[float]
    read_watermark: Optional[float]  # the source watermark when it was read
    finished_at: float  # wall clock
    skipped: int = 0  # rows of recognised sibling logs the format does not read


class FinishedFiles:
    """The finished-file record of one source, on disk and in memory (one per process)."""

    _by_path: dict[str, "FinishedFiles"] = {}
    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path
        self.records: dict[str, FileRecord] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        try:
                            rec = FileRecord(**json.loads(line))
                        except (ValueError, TypeError):
                            continue  # a line cut by a kill: its file is read again
                        self.records[rec.name] = rec

    @classmethod
    def of(cls, spec: SpoolSource) -> "FinishedFiles":
        path = finished_path(spec.state_dir, spec.source)
        with cls._lock:
            if path not in cls._by_path:
                cls._by_path[path] = cls(path)
            return cls._by_path[path]

    def add(self, rec: FileRecord) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(rec), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[rec.name] = rec


def finished_path(state_dir: str, source: str) -> str:
    return os.path.join(state_dir, "spool", f"{source}.jsonl")


def watermark_path(state_dir: str, source: str) -> str:
    return os.path.join(state_dir, "watermark", f"{source}.json")


@dataclass(frozen=True)
class SpoolRestriction:
    """Where one source's reading stands. File names live in ``FinishedFiles`` (on disk),
    not here, so the restriction stays small however many files have gone by."""

    newest: float = -math.inf  # newest record time read (epoch seconds)
    last_new: float = field(default_factory=time.time)  # wall clock of the last new file
    clock_new: Optional[float] = None  # the stream clock (``stream_clock``) at the last new file
    replayed: bool = False  # the restart replay is done
    ended: bool = False  # END seen: nothing more will come
    done: bool = False  # this restriction's share of work is over (checkpointed or ended)
    own: Optional[float] = None  # this source's watermark (newest − bound, or idle), epoch s


class _SpoolTracker(RestrictionTracker):
    """Claims are whole successor restrictions (one per file read); only checkpoint splits."""

    def __init__(self, restriction: SpoolRestriction):
        self._r = restriction

    def current_restriction(self) -> SpoolRestriction:
        return self._r

    def current_progress(self) -> RestrictionProgress:
        return RestrictionProgress(fraction=1.0 if self._r.done else 0.0)

    def try_claim(self, position: SpoolRestriction) -> bool:
        if self._r.done:
            return False
        self._r = position
        return True

    def try_split(self, fraction_of_remainder: float) -> Any:
        if fraction_of_remainder != 0 or self._r.done or self._r.ended:
            return None  # a second reader of the directory would read files twice
        primary, residual = replace(self._r, done=True), replace(self._r, done=False)
        self._r = primary
        return primary, residual

    def check_done(self) -> None:
        if not self._r.done:
            raise ValueError(f"spool restriction not done: {self._r}")

    def is_bounded(self) -> bool:
        return False


class _SpoolRestrictions(RestrictionProvider):
    def initial_restriction(self, element: SpoolSource) -> SpoolRestriction:
        return SpoolRestriction()

    def create_tracker(self, restriction: SpoolRestriction) -> _SpoolTracker:
        return _SpoolTracker(restriction)

    def restriction_size(self, element: SpoolSource, restriction: SpoolRestriction) -> int:
        return 1

    def split(self, element: SpoolSource, restriction: SpoolRestriction) -> Iterator[SpoolRestriction]:
        yield restriction  # never split up front

    def truncate(self, element: SpoolSource, restriction: SpoolRestriction) -> None:
        return None  # drain: stop reading


class _Watermarks(WatermarkEstimatorProvider):
    def initial_estimator_state(self, element: SpoolSource, restriction: SpoolRestriction) -> None:
        return None

    def create_watermark_estimator(self, estimator_state: Any) -> ManualWatermarkEstimator:
        return ManualWatermarkEstimator(estimator_state)


def ready_files(spec: SpoolSource, finished: FinishedFiles, now: float) -> list[str]:
    """Names to read now, oldest first: settled, not temporary, not read before."""
    out: list[tuple[float, str]] = []
    try:
        entries = list(os.scandir(spec.directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        name = entry.name
        if name.startswith((".", "_")) or name in finished.records:
            continue
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue  # renamed away between listing and stat
        if not entry.is_file() or now - max(st.st_mtime, st.st_ctime) < spec.settle:
            continue
        out.append((st.st_mtime, name))
    out.sort()
    # END is read last: every file that had settled beside it comes first.
    names = [n for _, n in out]
    if END_MARKER in names:
        names.remove(END_MARKER)
        names.append(END_MARKER)
    return names


@dataclass
class _FileRead:
    tables: list[pa.Table]
    dead: list[DeadLetter]
    record: FileRecord


def _time_bounds(tables: list[pa.Table]) -> tuple[Optional[float], Optional[float]]:
    lo = hi = None
    for t in tables:
        mm = pc.min_max(t.column("time").cast(pa.int64()))  # microseconds
        if mm["min"].is_valid:
            a, b = mm["min"].as_py() / 1e6, mm["max"].as_py() / 1e6
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return lo, hi


def _split_late(table: pa.Table, threshold: Optional[float]) -> tuple[pa.Table, pa.Table]:
    """(on time, late): late rows are more than allowed lateness behind the watermark."""
    if threshold is None or table.num_rows == 0:
        return table, table.slice(0, 0)
    cut = pa.scalar(int(threshold * 1_000_000), pa.timestamp("us", tz="UTC"))
    late = pc.fill_null(pc.less(table.column("time"), cut), False)
    if not pc.any(late).as_py():
        return table, table.slice(0, 0)
    return table.filter(pc.invert(late)), table.filter(late)


def read_file(spec: SpoolSource, path: str, watermark: Optional[float], keep_from: Optional[float] = None) -> _FileRead:
    """Parse one spool file with the batch parse code; records more than allowed lateness
    behind ``watermark`` become ``late`` dead letters. ``keep_from`` (replays) drops rows
    older than it from the output."""
    tables: list[pa.Table] = []
    dead: list[DeadLetter] = []
    read = parsed = dead_lettered = late_n = skipped = 0
    threshold = watermark - spec.allowed_lateness if watermark is not None else None
    item = InputFile(spec.source, spec.format, path, spec.timezone, spec.mapping)
    for out in parse_file(item, spec.limits):
        if isinstance(out, tuple) and out[0] == "dead":
            dead.append(out[1])
        elif isinstance(out, tuple) and out[0] == "counts":
            c = out[1][1]
            read, parsed, dead_lettered, skipped = c.read, c.parsed, c.dead_lettered, c.skipped
        else:
            on_time, late = _split_late(out, threshold)
            for row in late.select(["time", "raw_ref", "raw"]).to_pylist():
                dead.append(DeadLetter(
                    spec.source, row["raw_ref"] or path,
                    f"late: record time {row['time'].isoformat()} is more than allowed_lateness "
                    f"({spec.allowed_lateness:g} s) behind the source watermark", row["raw"] or "", late=True))
            late_n += late.num_rows
            if keep_from is not None:
                on_time, _ = _split_late(on_time, keep_from)
            if on_time.num_rows:
                tables.append(on_time)
    lo, hi = _time_bounds(tables)
    record = FileRecord(os.path.basename(path), os.path.getsize(path), read, parsed - late_n,
                        dead_lettered + late_n, late_n, lo, hi, watermark, time.time(), skipped)
    return _FileRead(tables, dead, record)


_STOPPED: dict[str, Optional[float]] = {}
_STOPPED_LOCK = threading.Lock()


def stop_watermark(state_dir: str) -> Optional[float]:
    """The job's watermark when it stopped, read once per process (before any source of
    this run records a new one)."""
    with _STOPPED_LOCK:
        if state_dir not in _STOPPED:
            _STOPPED[state_dir] = _recorded_watermark(state_dir)
        return _STOPPED[state_dir]


RUN_STARTED = time.time()  # watermarks left by an earlier run of the job are not this run's reading


def _file_watermark(path: str) -> tuple[bool, Optional[float]]:
    """(written in this run, watermark in epoch seconds: inf once ended, None before the first)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False, None
    value = data.get("watermark")
    if not isinstance(data.get("at"), (int, float)) or data["at"] < RUN_STARTED:
        return False, None
    return True, None if value is None else _watermark_seconds(value)


def _watermark_seconds(value: str) -> float:
    """A watermark as a source's file spells it ("+inf" once ended, else RFC 3339) → epoch s."""
    return math.inf if value == "+inf" else dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def stage_watermark(state_dir: str, sources: Sequence[str]) -> Optional[float]:
    """The minimum watermark over the job's spool sources (None while one has none yet).

    Prism sets a splittable DoFn stage's output watermark from the residuals of the bundle
    it finished last, not from the minimum over every source's restriction: a source polled
    in a bundle of its own would move the job's watermark past records a slower source has
    not read yet (its stateful findings and incident closes then run ahead of that source).
    So every source reports this minimum, right whichever bundle ran last (a runner that
    takes the minimum itself gets the same value); Kafka sources do the same."""
    low = math.inf
    for source in sources:
        ok, value = _file_watermark(watermark_path(state_dir, source))
        if not ok or value is None:
            return None
        low = min(low, value)
    return low


def _recorded_watermark(state_dir: str) -> Optional[float]:
    """The minimum of the sources' last recorded watermarks (ended sources aside), None
    when some source had none yet."""
    values = []
    directory = os.path.join(state_dir, "watermark")
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                value = json.load(fh).get("watermark")
        except (OSError, ValueError):
            return None
        if value is None:
            return None
        values.append(_watermark_seconds(value))
    return min(values, default=math.inf)


def replay_start(spec: SpoolSource, finished: FinishedFiles, incident_spans: list[tuple[float, float]]) -> Optional[float]:
    """Where a restart's replay begins (epoch seconds; -inf: everything), or None when
    nothing was read before.

    ``spec.horizon`` (the correlation horizon plus the stateful detections' state horizons)
    behind the job's watermark at the stop (the same for every source), moved back to the first finding of every incident
    overlapping it (``incident_spans``: the (first, last) seen of the incidents the sinks
    wrote), so no incident is rebuilt from its tail only."""
    if not any(r.max_time is not None for r in finished.records.values()):
        return None
    return horizon_start(stop_watermark(spec.state_dir), spec.horizon, incident_spans)


def horizon_start(watermark: Optional[float], horizon: float, spans: list[tuple[float, float]]) -> float:
    """``watermark`` − ``horizon``, moved back to the first seen of every incident span
    overlapping it; -inf (everything) when there is no watermark. Shared by every source."""
    if watermark is None:
        return -math.inf
    start = watermark - horizon
    moved = True
    while moved:
        moved = False
        for first, last in spans:
            if first < start <= last:
                start, moved = first, True
    return start


def stream_clock(state_dir: str, now: float) -> Optional[float]:
    """The stream's own clock: the newest record time any source of the job has read (each
    source's watermark file, spool and Kafka alike), never past the wall clock (a device
    clock in the future must not make every other source's records late). For a live feed
    it runs just behind the wall clock; for a replay it is where the replay has got to."""
    directory = os.path.join(state_dir, "watermark")
    newest = None
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if not name.endswith(".json"):
            continue  # a writer's temporary file
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                value = json.load(fh).get("newest_record")
        except (OSError, ValueError):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            newest = value if newest is None else max(newest, value)
    return None if newest is None else min(newest, now)


def idle_target(idle_timeout: float, out_of_orderness: float, last_new: float, clock_new: Optional[float],
                now: float, clock: Optional[float]) -> Optional[float]:
    """Where an idle source's watermark goes, or None while it is not idle. ``last_new`` is
    the wall clock and ``clock_new`` the stream clock (``stream_clock``) at its last new file
    (or message); the Kafka source shares this rule.

    Idle: no new file for ``idle_timeout``, on the wall clock or on the stream clock,
    whichever passes first. The wall clock moves it to wall clock − out-of-orderness (the
    whole stream is quiet); the stream clock to stream clock − out-of-orderness (the other
    sources go on: a sparse source, such as S7comm that logs only when an engineer connects,
    stops holding the job back). Measured on the stream clock, a replayed archive goes idle
    at the same points of its record time as the live feed would, however fast it is
    replayed, and its idle sources follow the replay instead of jumping to today."""
    if idle_timeout <= 0:
        return None
    if now - last_new >= idle_timeout:
        return now - out_of_orderness
    if clock is not None and clock_new is not None and clock - clock_new >= idle_timeout:
        return clock - out_of_orderness
    return None


def _write_watermark(spec: SpoolSource, wm: Optional[Timestamp], newest: float, idle: bool, ended: bool) -> None:
    path = watermark_path(spec.state_dir, spec.source)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    value = None
    if wm is not None:
        value = "+inf" if wm >= MAX_TIMESTAMP else wm.to_utc_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"watermark": value, "newest_record": newest if newest > -math.inf else None,
                   "idle": idle, "ended": ended, "at": time.time()}, fh, sort_keys=True)
    os.replace(tmp, path)


class _ReadSpoolFn(beam.DoFn):
    """Poll one spool directory, read new files, hold the watermark at newest − bound (the
    minimum over the job's spool sources, see ``stage_watermark``)."""

    def __init__(self, sources: Sequence[str] = ()):
        self.sources = tuple(sources)  # every spool source of the job, by name

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        spec: SpoolSource,
        tracker: Any = beam.DoFn.RestrictionParam(_SpoolRestrictions()),
        estimator: Any = beam.DoFn.WatermarkEstimatorParam(_Watermarks()),
    ) -> Iterator[Any]:
        from transforms.stream_sinks import incident_spans

        finished = FinishedFiles.of(spec)
        r: SpoolRestriction = tracker.current_restriction()
        if not r.replayed:
            start = replay_start(spec, finished, incident_spans(spec.state_dir))
            times = [x.max_time for x in finished.records.values() if x.max_time is not None]
            newest = max([r.newest, *times]) if start is not None else r.newest
            ended = END_MARKER in finished.records
            # Claimed before a record is emitted: a checkpoint taken meanwhile resumes after
            # the replay, never repeating it (repeated records would double hit counts).
            if not tracker.try_claim(replace(r, replayed=True, newest=newest, ended=ended)):
                return
            r = tracker.current_restriction()
            for rec in sorted(finished.records.values(), key=lambda x: (x.min_time or 0, x.name)) if start is not None else ():
                if rec.max_time is None or rec.max_time < start or rec.name == END_MARKER:
                    continue
                path = os.path.join(spec.directory, rec.name)
                if not os.path.exists(path):
                    continue  # moved away since: its records cannot be replayed
                keep = start if start > -math.inf else None
                yield from read_file(spec, path, rec.read_watermark, keep_from=keep).tables
        now = time.time()
        clock = stream_clock(spec.state_dir, now) if spec.idle_timeout > 0 else None
        if clock is not None and r.clock_new is None:  # idleness on the stream clock counts from here
            if not tracker.try_claim(replace(r, clock_new=clock)):
                return
            r = tracker.current_restriction()
        names = [] if r.ended else ready_files(spec, finished, now)
        for name in names:
            wm = r.own if r.own is not None and r.own < math.inf else None
            if name == END_MARKER:
                finished.add(FileRecord(name, 0, 0, 0, 0, 0, None, None, wm, time.time()))
                r = replace(r, ended=True)
                break
            got = read_file(spec, os.path.join(spec.directory, name), wm)
            newest = max(r.newest, got.record.max_time or -math.inf)
            nxt = replace(r, newest=newest, last_new=now,
                          clock_new=None if clock is None else max(clock, min(newest, now)))
            if not tracker.try_claim(nxt):
                return
            finished.add(got.record)  # before emitting: a restart never reads it twice
            r = nxt
            yield from got.tables
            for dl in got.dead:
                yield pvalue.TaggedOutput(DEAD, dl)
        moved = idle_target(spec.idle_timeout, spec.out_of_orderness, r.last_new, r.clock_new, now, clock)
        idle = moved is not None
        if r.ended:
            _write_watermark(spec, MAX_TIMESTAMP, r.newest, False, True)
            self._hold_at_stage_minimum(spec, estimator, math.inf)
            tracker.try_claim(replace(r, done=True, own=math.inf))
            return
        target = r.newest - spec.out_of_orderness if r.newest > -math.inf else None
        if moved is not None:  # an idle source stops holding the job back (later old files may be late)
            target = max(target if target is not None else -math.inf, moved)
        own = r.own
        if target is not None and (own is None or target > own):
            own = target
            if not tracker.try_claim(replace(r, own=own)):
                return
            r = tracker.current_restriction()
        written, _ = _file_watermark(watermark_path(spec.state_dir, spec.source))
        if names or idle or not written:  # not written yet in this run: the other sources wait for it
            _write_watermark(spec, None if own is None else Timestamp.of(own), r.newest, idle, False)
        self._hold_at_stage_minimum(spec, estimator, own)
        tracker.defer_remainder(Duration.of(spec.poll_interval))

    def _hold_at_stage_minimum(self, spec: SpoolSource, estimator: Any, own: Optional[float]) -> None:
        """The estimator at the minimum over the job's spool sources (only forward)."""
        low = stage_watermark(spec.state_dir, self.sources) if self.sources else own
        if low is None:
            return
        wm = MAX_TIMESTAMP if low == math.inf else Timestamp.of(low)
        current = estimator.current_watermark()
        if current is None or wm > current:
            estimator.set_watermark(wm)


class ReadSpools(beam.PTransform):
    """Spool sources → tagged outputs ``events`` (Arrow tables) and ``dead_letters``."""

    def __init__(self, sources: list[SpoolSource]):
        super().__init__()
        self.sources = sources

    def expand(self, p: beam.pvalue.PBegin) -> pvalue.DoOutputsTuple:
        return (
            p
            | "Spool directories" >> beam.Create(self.sources, reshuffle=False)
            # Typed, so the tables get ``EventTableCoder`` (transforms/coders.py), not pickle.
            | "Poll and parse new files" >> beam.ParDo(_ReadSpoolFn([s.source for s in self.sources]))
            .with_output_types(pa.Table)
            .with_outputs(DEAD, main="events")
        )
