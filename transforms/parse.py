"""Read and parse: every configured file → event batches, dead letters and record counts.

One element per input file; a file is read in blocks and parsed by its source's format
module. Nothing is dropped: each data record becomes an event row or a dead letter, and
the per-source counts (read = parsed + dead-lettered) leave as a third output so the run
summary can prove it.
"""
from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator, TypeVar

import apache_beam as beam
from apache_beam import pvalue

from pipelines.progress import note_records
from transforms.model import DeadLetter
from transforms.parsers import PARSERS, iter_results
from transforms.parsers.base import ParseContext
from transforms.read import DEFAULT_LIMITS, Limits

EVENTS, DEAD, COUNTS = "events", "dead_letters", "counts"
T = TypeVar("T")


@dataclass(frozen=True)
class InputFile:
    source: str
    format: str
    path: str
    timezone: str = "UTC"
    mapping: str | None = None  # a mapped source's mapping block, as JSON


@dataclass(frozen=True)
class Counts:
    read: int = 0
    parsed: int = 0
    dead_lettered: int = 0
    files: int = 0
    skipped: int = 0  # records of recognised sibling logs this format does not read

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.read + other.read,
            self.parsed + other.parsed,
            self.dead_lettered + other.dead_lettered,
            self.files + other.files,
            self.skipped + other.skipped,
        )


def parse_file(item: InputFile, limits: Limits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Yield event tables, then ``("dead", DeadLetter)`` items, then ``("counts", Counts)``.

    A file that cannot be read (missing, truncated archive, past a bound) still ends in
    counts: where reading stopped is one dead-lettered record naming the reason. The broad
    ``except`` is the last safety net (the read layer already turns failures into dead
    letters): nothing raised while parsing one file may fail the run.
    """
    parser = PARSERS[item.format]
    ctx = ParseContext(item.source, item.timezone, item.mapping)
    counts = Counts(files=1)
    next_line = 1
    try:
        results = iter_results(parser, item.path, ctx, limits=limits)
        for result, next_line in (ahead(results) if _large(item.path) else results):
            counts = counts + Counts(result.records, result.events.num_rows, len(result.dead_letters),
                                     skipped=result.skipped)
            note_records(result.records, item.path)  # the run's progress display (pipelines/progress.py)
            if result.events.num_rows:
                yield result.events
            for dl in result.dead_letters:
                yield ("dead", dl)
    except Exception as exc:  # noqa: BLE001
        reason = f"unreadable file, stopped at line {next_line}: {type(exc).__name__}: {exc}"
        yield ("dead", DeadLetter(item.source, f"{item.path}:{next_line}", reason, ""))
        counts = counts + Counts(1, 0, 1)
    yield ("counts", (item.source, counts))


#: Files from this size on disk are read ahead (``ahead``); a smaller one is read in a
#: block or two, where a thread would cost more than it overlaps.
AHEAD_MIN_BYTES = 1 << 20


def _large(path: str) -> bool:
    try:
        return os.path.getsize(path) >= AHEAD_MIN_BYTES
    except OSError:  # unreadable: the read layer reports it
        return False


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the consumer.

    The consumer of a file's parse results is the next pipeline step, fused into the same
    thread (enrichment and detection); reading ahead lets the next block's gunzip and Arrow
    parsing, which release the GIL, run on the machine's other core meanwhile. Order and
    exceptions are as if ``items`` ran here; stopping early stops and closes it."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="cranewatch-parse-ahead", daemon=True)
    worker.start()
    try:
        while True:
            more, value = out.get()
            if more:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        stop.set()
        worker.join()


class _ParseFileFn(beam.DoFn):
    def __init__(self, limits: Limits) -> None:
        self._limits = limits

    def process(self, item: InputFile) -> Iterator[Any]:
        for out in parse_file(item, self._limits):
            if isinstance(out, tuple) and out[0] == "dead":
                yield pvalue.TaggedOutput(DEAD, out[1])
            elif isinstance(out, tuple) and out[0] == "counts":
                yield pvalue.TaggedOutput(COUNTS, out[1])
            else:
                yield out


class ParseSources(beam.PTransform):
    """Input files → tagged outputs ``events`` (Arrow tables), ``dead_letters``, ``counts``;
    ``limits`` bound the reading of each file (config ``limits:``)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__()
        self._limits = limits

    def expand(self, files: beam.PCollection) -> pvalue.DoOutputsTuple:
        return files | "Parse file blocks" >> beam.ParDo(_ParseFileFn(self._limits)).with_outputs(
            DEAD, COUNTS, main=EVENTS
        )
