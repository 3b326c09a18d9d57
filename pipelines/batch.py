"""The batch job: archived logs → incidents and STIX bundles, on Beam's local runner.

Wiring only; each stage is a composite transform in ``transforms/``. The same transforms
run in the streaming job, which swaps the file list for unbounded sources.
"""
from __future__ import annotations

import glob
import os
import shutil
import time
from dataclasses import dataclass
from typing import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.assembly import assemble
from pipelines.config import Config, resolve_sources
from transforms.export import ExportIncidents, WriteDeadLetters, write_counts
from transforms.parse import COUNTS, DEAD, EVENTS, InputFile, ParseSources

COUNTS_FILE = "_counts.json"
# FnApiRunner: Beam's fastest local runner. The default DirectRunner first tries to fetch
# Prism from the internet at run time (BEAM_ON_FLINK.md), so it is named explicitly.
DEFAULT_BEAM_ARGS = ("--runner=FnApiRunner",)


@dataclass(frozen=True)
class RunResult:
    out_dir: str
    wall_seconds: float
    input_files: int


def input_files(cfg: Config) -> list[InputFile]:
    return [
        InputFile(s.name, s.format, path, s.timezone, s.mapping)
        for s in resolve_sources(cfg)
        for path in s.files
    ]


def build(p: beam.Pipeline, cfg: Config, files: list[InputFile], out_dir: str) -> None:
    """The batch ends around the shared stages (``pipelines/assembly.py``): a file list in,
    sorted files out once the input is exhausted."""
    parsed = (
        p
        | "List input files" >> beam.Create(files, reshuffle=False)
        | "Read and parse" >> ParseSources()
    )
    stages = assemble(cfg, parsed[EVENTS], parsed[DEAD])
    stages.incidents | "Export" >> ExportIncidents(cfg, out_dir)
    stages.dead_letters | "Dead letters" >> WriteDeadLetters(out_dir)
    (
        parsed[COUNTS]
        | "Collect record counts" >> beam.combiners.ToList()
        | "Write record counts" >> beam.Map(write_counts, os.path.join(out_dir, COUNTS_FILE))
    )


def _no_embedded_state_cache() -> None:
    """Turn off the in-process runner's 100 MB user-state cache. Its state already lives in
    memory, so the cache saves little, while weighing every value it caches (an objsize
    deep size of the correlation and stateful detections' state) cost ~8 % of a 1M-event run
    (bench/run_bench.py, four interleaved pairs: 164-174k events/s without the cache,
    138-163k with it). An external SDK harness runs without this cache by default
    (``max_cache_memory_usage_mb`` is 0), so state behaves the same either way."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.STATE_CACHE_SIZE_MB = 0


def run_batch(cfg: Config, out_dir: str, beam_args: Sequence[str] = ()) -> RunResult:
    """Run the whole batch job; outputs replace any earlier run's in ``out_dir``."""
    stale_profiles = [os.path.basename(d) for d in glob.glob(os.path.join(out_dir, "stix-*"))]
    for stale in ("stix", "deadletter", "reports", *stale_profiles):
        shutil.rmtree(os.path.join(out_dir, stale), ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)
    files = input_files(cfg)
    options = PipelineOptions([*DEFAULT_BEAM_ARGS, *beam_args])
    _no_embedded_state_cache()
    started = time.perf_counter()
    with beam.Pipeline(options=options) as p:
        build(p, cfg, files, out_dir)
    return RunResult(out_dir, time.perf_counter() - started, len(files))
