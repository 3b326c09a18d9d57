"""Parse throughput per input format, against a reference checkout, interleaved.

    .venv/bin/python bench/parse_speed.py --reference ../main            # generated corpus
    .venv/bin/python bench/parse_speed.py --reference ../main --corpus DIR --rounds 3

For each source of a corpus's config (``cranewatch generate``; made once under --out when
--corpus is not given), each file is parsed (read + parse, events and dead letters built)
by this checkout (B) and by the reference checkout (A, e.g. a worktree of the previous
release) in child processes, A, B, A, B, ..., each child timing only its parse. Prints
rows/s per format for both, the ratio B/A (median of rounds) and the load average beside
each round. Not a test: timing depends on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import glob, json, os, sys, time
sys.path.insert(0, sys.argv[1])
from transforms.parsers import parse_file
jobs = json.loads(sys.argv[2])
out = {}
for fmt, paths in jobs.items():
    rows = dead = 0
    start = time.perf_counter()
    for path in paths:
        for r in parse_file(fmt, "bench", path):
            rows += r.events.num_rows
            dead += len(r.dead_letters)
    out[fmt] = [rows, dead, time.perf_counter() - start]
print(json.dumps(out))
"""


def _jobs(corpus: str) -> dict[str, list[str]]:
    """format → files, from the corpus's config (relative globs, as generated)."""
    import glob

    import yaml

    with open(os.path.join(corpus, "config.yaml"), encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    jobs: dict[str, list[str]] = {}
    for src in cfg["sources"]:
        files = sorted(f for p in src["paths"] for f in glob.glob(os.path.join(corpus, p)))
        if files:
            jobs.setdefault(src["format"], []).extend(files)
    return jobs


def _child(tree: str, jobs: dict[str, list[str]], python: str) -> dict[str, list[float]]:
    done = subprocess.run([python, "-c", _CHILD, tree, json.dumps(jobs)], check=True, capture_output=True,
                          text=True, cwd=tree)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    from bench._corpus import cached_corpus, header

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="another checkout of cranewatch (A)")
    ap.add_argument("--reference-python", default=sys.executable,
                    help="the Python for the reference (default: this one)")
    ap.add_argument("--corpus", help="a generated corpus folder (default: generate one under --out)")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(header())
    corpus = args.corpus or cached_corpus(args.out, "corpus", args.events, args.seed)
    jobs = _jobs(os.path.abspath(corpus))
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for side, tree, py in (("A", args.reference, args.reference_python), ("B", str(ROOT), sys.executable)):
            load = _load()
            started = time.perf_counter()
            runs[side].append(_child(tree, jobs, py))
            print(f"round {r + 1} {side}: {time.perf_counter() - started:5.1f} s wall, load {load}", flush=True)
    print(f"\n{'format':<20}{'rows':>10}{'A rows/s':>12}{'B rows/s':>12}{'B/A':>7}   (speed ratio, median of {args.rounds} rounds)")
    for fmt in jobs:
        rows = runs["B"][0][fmt][0]
        a = statistics.median(run[fmt][2] for run in runs["A"])
        b = statistics.median(run[fmt][2] for run in runs["B"])
        same = all(run[fmt][:2] == runs["B"][0][fmt][:2] for run in runs["A"] + runs["B"])
        print(f"{fmt:<20}{rows:>10}{rows / a:>12,.0f}{rows / b:>12,.0f}{a / b:>6.2f}x"
              f"{'' if same else '   (event/dead-letter counts differ!)'}")
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
