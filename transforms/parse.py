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
import pyarrow as pa
from apache_beam import pvalue

from pipelines.progress import note_records
from transforms.coders import EventTableCoder  # noqa: F401 - registers the table coder
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


def _put(out: queue.Queue, stop: threading.Event, entry: tuple[bool, Any]) -> bool:
    """Put ``entry`` (``(True, item)``, ``(False, None)`` at the end, ``(False, exc)``) for
    the consumer, waiting while the queue is full; False once ``stop`` is set (the consumer
    left), so a producer thread never blocks for ever."""
    while not stop.is_set():
        try:
            out.put(entry, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the consumer.

    The consumer of a file's parse results is the next pipeline step, fused into the same
    thread (enrichment and detection); reading ahead lets the next block's gunzip and Arrow
    parsing, which release the GIL, run on the machine's other core meanwhile. Order and
    exceptions are as if ``items`` ran here; stopping early stops and closes it."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if not _put(out, stop, (True, item)):
                    return
            _put(out, stop, (False, None))
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            _put(out, stop, (False, exc))
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
    """Files of a bundle parsed ``width`` at a time, each on a thread of its own.

    One file's parsing is a sequence (its header and protocol state run through it), so
    the work is spread over files: while the fused steps after parsing (enrichment,
    detection) run on the bundle's thread, the machine's other cores gunzip and run Arrow on
    the next files, which release the GIL. The files' outputs interleave; nothing
    downstream depends on their order (stateful detection and correlation sort by event
    time), and every file still ends in its counts."""

    def __init__(self, limits: Limits, width: int = 2) -> None:
        self._limits = limits
        self._width = width

    def start_bundle(self) -> None:
        self._out: queue.Queue = queue.Queue(maxsize=4 * self._width)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = 0

    def _start(self, item: InputFile) -> None:
        def work() -> None:
            try:
                for out in parse_file(item, self._limits):
                    if not _put(self._out, self._stop, (True, out)):
                        return
                _put(self._out, self._stop, (False, None))
            except BaseException as exc:  # noqa: BLE001 - raised again on the bundle's thread
                _put(self._out, self._stop, (False, exc))

        thread = threading.Thread(target=work, name="cranewatch-parse-file", daemon=True)
        self._threads.append(thread)
        self._running += 1
        thread.start()

    def _next(self, wait: bool) -> Iterator[Any]:
        """Outputs already queued (``wait``: at least until one more file has ended)."""
        while self._running:
            try:
                more, value = self._out.get(block=wait)
            except queue.Empty:
                return
            if more:
                yield value
            elif value is None:
                self._running -= 1
                if wait:
                    return
            else:
                raise value

    def process(self, item: InputFile) -> Iterator[Any]:
        while self._running >= self._width:
            yield from map(_tagged, self._next(wait=True))
        self._start(item)
        yield from map(_tagged, self._next(wait=False))

    def finish_bundle(self) -> Iterator[Any]:
        try:
            while self._running:
                for out in self._next(wait=True):
                    yield _windowed(out)
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join()

    def teardown(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


def _tagged(out: Any) -> Any:
    if isinstance(out, tuple) and out[0] == "dead":
        return pvalue.TaggedOutput(DEAD, out[1])
    if isinstance(out, tuple) and out[0] == "counts":
        return pvalue.TaggedOutput(COUNTS, out[1])
    return out


def _windowed(out: Any) -> Any:
    """An output of ``finish_bundle``: it needs its window and timestamp spelled out (those
    of the batch's file list, which ``beam.Create`` puts in the global window at the minimum
    timestamp, as ``process``'s outputs have them)."""
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import MIN_TIMESTAMP
    from apache_beam.utils.windowed_value import WindowedValue

    tagged = _tagged(out)
    if isinstance(tagged, pvalue.TaggedOutput):
        return pvalue.TaggedOutput(tagged.tag, WindowedValue(tagged.value, MIN_TIMESTAMP, (GlobalWindow(),)))
    return WindowedValue(tagged, MIN_TIMESTAMP, (GlobalWindow(),))


class ParseSources(beam.PTransform):
    """Input files → tagged outputs ``events`` (Arrow tables), ``dead_letters``, ``counts``;
    ``limits`` bound the reading of each file (config ``limits:``)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__()
        self._limits = limits

    def expand(self, files: beam.PCollection) -> pvalue.DoOutputsTuple:
        # Typed, so the tables get ``EventTableCoder`` (transforms/coders.py), not pickle.
        return files | "Parse file blocks" >> beam.ParDo(_ParseFileFn(self._limits)).with_output_types(
            pa.Table).with_outputs(DEAD, COUNTS, main=EVENTS)
