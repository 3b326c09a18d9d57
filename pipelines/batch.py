"""The batch job: archived logs → incidents and STIX bundles, on Beam's local runner.

Wiring only; each stage is a composite transform in ``transforms/``. The same transforms
run in the streaming job, which swaps the file list for unbounded sources.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import apache_beam as beam

from pipelines.assembly import assemble
from pipelines.beam_options import ViewCachingOptions
from pipelines.beam_local import memoized_dofn_specs, short_state_sampling
from pipelines.config import Config, resolve_sources
from transforms.export import COUNTS_FILE, WriteRunFiles
from transforms.parse import COUNTS, DEAD, EVENTS, InputFile, ParseSources

# FnApiRunner: Beam's fastest local runner. The default DirectRunner first tries to fetch
# Prism from the internet at run time (BEAM_ON_FLINK.md), so it is named explicitly.
DEFAULT_BEAM_ARGS = ("--runner=FnApiRunner",)


@dataclass(frozen=True)
class RunResult:
    out_dir: str
    wall_seconds: float
    input_files: int
    run_id: str = ""
    summary: dict[str, Any] | None = None  # as written to summary.json


def input_files(cfg: Config) -> list[InputFile]:
    return [
        InputFile(s.name, s.format, path, s.timezone, s.mapping)
        for s in resolve_sources(cfg)
        for path in s.files
    ]


#: How much more parsing a compressed file's byte holds than a plain one's, roughly: a
#: gzipped Zeek log took 1.9x the time per byte on disk of a plain one (10M-record bench).
COMPRESSED_WORK = {".gz": 2, ".zst": 2, ".bz2": 2}


def largest_first(files: list[InputFile]) -> list[InputFile]:
    """The files in the order the parse step should start them: the most work first.

    The parse step runs two files at a time (``transforms/parse.py``); a large file
    started last would run alone at the end with a core idle. Work is estimated from the
    size on disk. Ties keep the configured order. Which file is parsed when changes no
    output: every output is sorted or keyed."""
    def work(f: InputFile) -> int:
        try:
            size = os.path.getsize(f.path)
        except OSError:
            return 0
        return size * COMPRESSED_WORK.get(os.path.splitext(f.path)[1].lower(), 1)

    return sorted(files, key=work, reverse=True)


def build(p: beam.Pipeline, cfg: Config, files: list[InputFile], out_dir: str) -> None:
    """The batch ends around the shared stages (``pipelines/assembly.py``): a file list in,
    sorted files out once the input is exhausted."""
    parsed = (
        p
        | "List input files" >> beam.Create(largest_first(files), reshuffle=False)
        | "Read and parse" >> ParseSources(cfg.limits.read_limits())
    )
    stages = assemble(cfg, parsed[EVENTS], parsed[DEAD])
    ({"incidents": stages.incidents, "dead_letters": stages.dead_letters, "counts": parsed[COUNTS]}
     | "Export" >> WriteRunFiles(cfg, out_dir))


def _no_embedded_state_cache() -> None:
    """Turn off the in-process runner's 100 MB user-state cache. Its state already lives in
    memory, so the cache saves little, while weighing every value it caches (an objsize
    deep size of the correlation and stateful detections' state) cost ~8 % of a 1M-event run
    (bench/run_bench.py, four interleaved pairs: 164-174k events/s without the cache,
    138-163k with it). An external SDK harness runs without this cache by default
    (``max_cache_memory_usage_mb`` is 0), so state behaves the same either way."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.STATE_CACHE_SIZE_MB = 0


@contextlib.contextmanager
def _loaded_objects_frozen() -> Iterator[None]:
    """Leave the objects loaded before the pipeline runs (modules, Beam, the config: over a
    million) out of the garbage collector's full collections while it runs. They outlive
    the run, yet each full collection walked them all again (~0.1 s each on the 1M corpus),
    and the export's forked processes (``transforms/forked.py``) copied the memory pages
    such a walk touches. ``gc.freeze`` is the standard library's tool for this; they are
    unfrozen afterwards, so a process that runs many pipelines (the tests) never keeps a
    run's garbage for good. A caller that froze objects itself keeps its own policy."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_batch(cfg: Config, out_dir: str, beam_args: Sequence[str] = (), progress: Any = None,
              before_commit: Callable[[str, dict[str, Any]], None] | None = None,
              keep: tuple[str, ...] = ()) -> RunResult:
    """Run the whole batch job; its outputs replace an earlier run's in ``out_dir`` all at once.

    Everything (the summary too) is written to a staging folder and swapped in at the end
    (``pipelines/outputs.py``), so ``out_dir`` never holds half a run, and a second run into
    the same folder stops with the PID of the first. ``progress`` (``pipelines/progress.py``)
    is told the input files and stopped when the pipeline ends; ``before_commit(staging
    folder, summary)`` may add files that belong to the run (a report) before the swap;
    ``keep``: entries of ``out_dir`` that are not the run's and move into the new folder.
    """
    from pipelines.outputs import OutputRun
    from pipelines.summary import build_summary, write_summary

    with OutputRun(out_dir, keep) as staging:
        files = input_files(cfg)
        options = ViewCachingOptions([*DEFAULT_BEAM_ARGS, *beam_args])
        _no_embedded_state_cache()
        short_state_sampling()
        memoized_dofn_specs()
        started = time.perf_counter()
        if progress is not None:
            progress.start(files)
        try:
            with _loaded_objects_frozen(), beam.Pipeline(options=options) as p:
                build(p, cfg, files, staging.path)
        finally:
            if progress is not None:
                progress.stop()
        staged = RunResult(staging.path, time.perf_counter() - started, len(files), staging.run_id)
        previous = os.listdir(staging.full) if os.path.isdir(staging.full) else []
        own = [os.path.join(staging.full, e) for e in previous if e not in keep]  # the previous run's files
        summary = build_summary(cfg, staged, exclude=(staging.path, *own))
        write_summary(summary, staging.path)
        if before_commit is not None:
            before_commit(staging.path, summary)
        staging.commit()
    return dataclasses.replace(staged, out_dir=out_dir, summary=summary)
