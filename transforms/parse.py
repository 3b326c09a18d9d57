"""Read and parse: every configured file → event batches, dead letters and record counts.

One element per input file; a file is read in blocks and parsed by its source's format
module. Nothing is dropped: each data record becomes an event row or a dead letter, and
the per-source counts (read = parsed + dead-lettered) leave as a third output so the run
summary can prove it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
from apache_beam import pvalue

from pipelines.progress import note_records
from transforms.model import DeadLetter
from transforms.parsers import PARSERS, iter_results
from transforms.parsers.base import ParseContext
from transforms.read import DEFAULT_LIMITS, Limits

EVENTS, DEAD, COUNTS = "events", "dead_letters", "counts"


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
        for result, next_line in iter_results(parser, item.path, ctx, limits=limits):
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
