"""Shared by the benchmark scripts: the run header and the seeded corpus, generated once."""
from __future__ import annotations

import argparse
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


def corpus_args(description: str) -> argparse.Namespace:
    """``--events``, ``--seed`` and ``--out``: the options every corpus benchmark takes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    return ap.parse_args()


def _generator_fingerprint() -> str:
    """A hash of the generator's source: a cached corpus from other generator code is stale."""
    import glob
    import hashlib

    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(ROOT, "pipelines", "generate", "*.py"))):
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def cached_corpus(out: str, name: str, events: int, seed: int, benign_only: bool = False) -> str:
    """``out/<name>-<events>-seed<seed>``, generated on first use and reused after, as long
    as the generator's code is unchanged (else generated again)."""
    from pipelines.generate import generate

    corpus = os.path.join(out, f"{name}-{events}-seed{seed}")
    stamp = os.path.join(corpus, ".generator")
    fingerprint = _generator_fingerprint()
    fresh = os.path.exists(os.path.join(corpus, "truth.json")) and os.path.exists(stamp)
    if not fresh or open(stamp, encoding="utf-8").read() != fingerprint:
        started = time.perf_counter()
        generate(corpus, events=events, seed=seed, benign_only=benign_only)
        with open(stamp, "w", encoding="utf-8") as fh:
            fh.write(fingerprint)
        kind = "benign-only corpus" if benign_only else "corpus"
        print(f"generated {kind} in {time.perf_counter() - started:.1f} s: {corpus}")
    return corpus
