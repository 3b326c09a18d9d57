"""Shared by the benchmark scripts: the run header and the seeded corpus, generated once."""
from __future__ import annotations

import datetime as dt
import os
import platform
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def header() -> str:
    """Machine, date and versions, printed at the top of every benchmark run."""
    import apache_beam
    import pyarrow

    try:
        import duckdb

        duck = f", duckdb {duckdb.__version__}"
    except ImportError:
        duck = ""
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
        f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"python {platform.python_version()}, apache-beam {apache_beam.__version__}, "
        f"pyarrow {pyarrow.__version__}{duck}"
    )


def cached_corpus(out: str, name: str, events: int, seed: int, benign_only: bool = False) -> str:
    """``out/<name>-<events>-seed<seed>``, generated on first use and reused after."""
    from pipelines.generate import generate

    corpus = os.path.join(out, f"{name}-{events}-seed{seed}")
    if not os.path.exists(os.path.join(corpus, "truth.json")):
        started = time.perf_counter()
        generate(corpus, events=events, seed=seed, benign_only=benign_only)
        kind = "benign-only corpus" if benign_only else "corpus"
        print(f"generated {kind} in {time.perf_counter() - started:.1f} s: {corpus}")
    return corpus
