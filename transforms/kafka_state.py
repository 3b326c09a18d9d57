"""What the Kafka source records of its reading, for restarts, commits and the summary.

Every batch of a partition's messages is recorded (``<out>/_stream/kafka/<source>.jsonl``:
partition, first and last offset, record counts, event-time span, the watermark it was read
under) before its records are emitted, as the spool source records finished files. From
that record:

- a restart resumes each partition after its last recorded offset, and first replays the
  records of the correlation horizon (the same replay start as the spool source: the job's
  watermark at the stop minus gap + allowed lateness, moved back to the first finding of
  every incident overlapping it), found with ``offsets_for_times``;
- the consumer group's committed offset of a partition is the first offset a restart would
  still need: the first recorded batch holding a record at or after the replay start of
  now, or the end of what was read once the job has finished and the sinks have written.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from transforms.spool import RUN_STARTED, _recorded_watermark, horizon_start, stop_watermark


@dataclass(frozen=True)
class BatchRecord:
    """One read batch of one partition."""

    partition: int
    first: int  # offsets, inclusive
    last: int
    read: int
    parsed: int
    dead_lettered: int
    late: int
    skipped: int
    min_time: Optional[float]  # epoch seconds of its emitted records
    max_time: Optional[float]
    read_watermark: Optional[float]
    at: float  # wall clock
    ended: bool = False  # the end marker was in this batch


def batches_path(state_dir: str, source: str) -> str:
    return os.path.join(state_dir, "kafka", f"{source}.jsonl")


def partition_path(state_dir: str, source: str, partition: int) -> str:
    return os.path.join(state_dir, "kafka", source, f"p{partition}.json")


class ReadLog:
    """The recorded batches of one source (one instance per process and file)."""

    _by_path: dict[str, "ReadLog"] = {}
    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.batches: dict[int, list[BatchRecord]] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = BatchRecord(**json.loads(line))
                    except (ValueError, TypeError):
                        continue  # a line cut by a kill: its batch is read again
                    self.batches.setdefault(rec.partition, []).append(rec)
        # read before this process started: a restart's replay and nothing new
        self.recorded_end = {p: max(b.last for b in bs) + 1 for p, bs in self.batches.items()}

    @classmethod
    def of(cls, state_dir: str, source: str) -> "ReadLog":
        path = batches_path(state_dir, source)
        with cls._lock:
            if path not in cls._by_path:
                cls._by_path[path] = cls(path)
            return cls._by_path[path]

    def add(self, rec: BatchRecord) -> None:
        with self.lock:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(rec), sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.batches.setdefault(rec.partition, []).append(rec)

    def end(self, partition: int) -> Optional[int]:
        """The offset after the last one recorded for ``partition`` (None: nothing read)."""
        bs = self.batches.get(partition)
        return max(b.last for b in bs) + 1 if bs else None

    def ended(self, partition: int) -> bool:
        return any(b.ended for b in self.batches.get(partition, ()))

    def batch_of(self, partition: int, offset: int) -> Optional[BatchRecord]:
        bs = sorted(self.batches.get(partition, ()), key=lambda b: b.first)
        i = bisect.bisect_right([b.first for b in bs], offset) - 1
        return bs[i] if i >= 0 and bs[i].first <= offset <= bs[i].last else None

    def needed_from(self, partition: int, start: float) -> Optional[int]:
        """The first offset of the first batch with a record at or after ``start``."""
        firsts = [b.first for b in self.batches.get(partition, ()) if b.max_time is not None and b.max_time >= start]
        return min(firsts) if firsts else self.end(partition)

    def totals(self) -> dict[str, int]:
        out = {"read": 0, "parsed": 0, "dead_lettered": 0, "late": 0, "skipped": 0, "batches": 0}
        for bs in self.batches.values():
            for b in bs:
                out["batches"] += 1
                for k in ("read", "parsed", "dead_lettered", "late", "skipped"):
                    out[k] += getattr(b, k)
        return out


def replay_start(state_dir: str, horizon: float) -> float:
    """Where a restart's replay begins: the job's watermark when it stopped − horizon."""
    from transforms.stream_sinks import incident_spans

    return horizon_start(stop_watermark(state_dir), horizon, incident_spans(state_dir))


def safe_start(state_dir: str, horizon: float) -> float:
    """The replay start a restart would use if the job stopped now."""
    from transforms.stream_sinks import incident_spans

    return horizon_start(_recorded_watermark(state_dir), horizon, incident_spans(state_dir))


@dataclass
class PartitionMark:
    """A partition's newest record time and watermark, shared with its source's other
    partitions (an idle one follows them) and the summary."""

    newest: Optional[float]
    watermark: Optional[float]  # epoch seconds; math.inf once ended
    ended: bool
    caught_up: bool
    at: float


def write_mark(state_dir: str, source: str, partition: int, mark: PartitionMark) -> None:
    path = partition_path(state_dir, source, partition)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({k: ("+inf" if v == math.inf else v) for k, v in asdict(mark).items()}, fh)
    os.replace(tmp, path)


def write_source_watermark(state_dir: str, source: str, watermark: Optional[float], newest: Optional[float],
                           idle: bool, ended: bool) -> None:
    """The source's watermark (the minimum over its partitions) where the spool sources
    keep theirs (``transforms/spool.py``): the summary and a restart's replay read it. Each
    writer uses its own temporary name: the partitions of a source write it concurrently."""
    import datetime as dt

    from transforms.spool import watermark_path

    path = watermark_path(state_dir, source)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    value = None if watermark is None else "+inf" if watermark == math.inf else \
        dt.datetime.fromtimestamp(watermark, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"watermark": value, "newest_record": newest, "idle": idle, "ended": ended}, fh, sort_keys=True)
    os.replace(tmp, path)


def read_marks(state_dir: str, source: str) -> dict[int, PartitionMark]:
    directory = os.path.join(state_dir, "kafka", source)
    out: dict[int, PartitionMark] = {}
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if not (name.startswith("p") and name.endswith(".json")):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                raw: dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            continue
        raw = {k: (math.inf if v == "+inf" else v) for k, v in raw.items()}
        out[int(name[1:-5])] = PartitionMark(**raw)
    return out


def run_marks(state_dir: str, source: str) -> dict[int, PartitionMark]:
    """The marks written in this run (an earlier run's are no reading of this one)."""
    return {p: m for p, m in read_marks(state_dir, source).items() if m.at >= RUN_STARTED}


def source_newest(state_dir: str, source: str) -> Optional[float]:
    """The newest record time any partition of the source has read in this run."""
    values = [m.newest for m in run_marks(state_dir, source).values() if m.newest is not None]
    return max(values) if values else None


def stage_watermark(state_dir: str, sources: Sequence[str]) -> Optional[float]:
    """The minimum watermark over every partition of every Kafka source of the job (None
    while a source has no partition listed yet or a partition has no watermark yet).

    Prism sets a splittable DoFn stage's output watermark from the residuals of the bundle
    it finished last, not from the minimum over all pending restrictions: a partition read
    in a bundle of its own would move the job's watermark past records other partitions
    have not read yet. So every partition reports this minimum, which is right whichever
    bundle ran last (a runner that takes the minimum itself gets the same value)."""
    low = math.inf
    for source in sources:
        marks = run_marks(state_dir, source)
        if not marks:
            return None
        for m in marks.values():
            if m.watermark is None:
                return None
            low = min(low, m.watermark)
    return low
