"""Fuzz benchmark: the mutation suite of tests/test_fuzz.py at 100k records per format.

For every format (and Zeek's JSON variant) writes files of mutated records (half of them
mutated, every mutation kind) and checks each file exactly as the test suite does: no
exception, ``read`` = the record lines written, ``read = parsed + dead-lettered``, every
record line cited once. Parquet gets row-level type swaps. Prints, per format, records,
files, failures, seconds and records/s, with a clean (unmutated) reference parse of the same
record count timed in the same run, and the machine load.

    .venv/bin/python bench/fuzz_bench.py [--records 100000] [--per-file 1000] [--seed 1] [--formats ...]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from bench._corpus import header  # noqa: E402
from test_fuzz import SAMPLES, check_file, check_parquet, mutated_file, parquet_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000, help="mutated records per format")
    ap.add_argument("--per-file", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.5, help="share of records mutated")
    ap.add_argument("--formats", nargs="*", help="only these (default: every format)")
    args = ap.parse_args()
    print(header())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"{'format':24} {'records':>9} {'files':>6} {'dead':>8} {'fail':>5} {'s':>7} {'rec/s':>8} {'clean rec/s':>11}")
    failures_total = 0
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-bench-"))
    for key in args.formats or sorted(SAMPLES) + ["parquet"]:
        r = random.Random(f"{args.seed}:{key}")
        files = records = dead = failures = 0
        first_failure = None
        started = time.perf_counter()
        clean_s = 0.0
        while records < args.records:
            n = min(args.per_file, args.records - records)
            path = tmp / f"{key.replace('/', '-')}-{files}"
            try:
                if key == "parquet":
                    parquet_file(path, r, n)
                    out = check_parquet(path, n)
                else:
                    sample = SAMPLES[key]
                    out = check_file(sample, mutated_file(sample, r, n, args.rate), path)
                dead += out.counts.dead_lettered
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                failures += 1
                if first_failure is None:
                    first_failure = (path, f"{type(exc).__name__}: {str(exc)[:300]}")
                    path = path.rename(path.with_name(path.name + ".failed"))
            records += n
            files += 1
            if key != "parquet" and files <= 3:  # the reference: the same record count unmutated
                t0 = time.perf_counter()
                check_file(SAMPLES[key], mutated_file(SAMPLES[key], random.Random(0), n, 0.0), tmp / "clean")
                clean_s += time.perf_counter() - t0
            if not (first_failure and path.name.endswith(".failed")):
                path.unlink(missing_ok=True)
        seconds = time.perf_counter() - started - clean_s
        clean = f"{min(files, 3) * args.per_file / clean_s:11,.0f}" if clean_s else f"{'-':>11}"
        print(f"{key:24} {records:9,} {files:6} {dead:8,} {failures:5} {seconds:7.1f} {records / seconds:8,.0f} {clean}")
        if first_failure:
            print(f"    first failure: {first_failure[0]}: {first_failure[1]}")
        failures_total += failures
    print(f"load average at end: {os.getloadavg()[0]:.2f}; failures: {failures_total}")
    return 1 if failures_total else 0


if __name__ == "__main__":
    sys.exit(main())
