"""Sigma benchmark: the batch pipeline with N single-event Sigma rules against the same run without.

The rules are the SigmaHQ fixture rules whose log source is mapped, the shipped crane
rules, and generated variants on the bulk log (Zeek conn: ports, CIDRs, wildcards,
comparisons, negations) up to N. Runs with and without the rules alternate in this one
process (``--rounds`` each), so the ratio compares like with like; the load average is
printed beside every figure. The bar: with the rules, at least half the throughput.

    .venv/bin/python bench/run_bench.py --sigma 50 --events 1000000
"""
from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._corpus import ROOT, cached_corpus, header  # noqa: E402

SIGMAHQ = os.path.join(ROOT, "..", "shared", "fixtures", "sigma-rules")
SHIPPED = os.path.join(ROOT, "detections", "sigma")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=int, default=50, help="single-event Sigma rules to enable")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=2, help="runs with and without the rules, alternating")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    return ap.parse_args()


def _variant(i: int, rng: random.Random) -> str:
    """One generated single-event rule on Zeek conn (the log with most of the events). Like
    real detection rules they read every row but match few, so the run times the rules,
    not the export of thousands of findings."""
    ports = sorted(rng.sample([23, 2404, 4840, 5900, 20000, 47808, 1911, 9600, 18245, 55000], 3))
    shape = i % 5
    sel = {
        0: f"        id.resp_p: {ports}\n        id.orig_h|cidr: ['10.30.{rng.randrange(10, 17)}.0/24']\n",
        1: f"        service|contains: ['{rng.choice(['telnet', 'vnc', 'bacnet', 'opcua', 'mqtt'])}']\n"
           f"        orig_bytes|gt: {rng.choice([10**8, 10**9])}\n",
        2: f"        id.resp_h|startswith: ['{rng.choice(['185.220.', '45.155.', '91.240.', '5.188.'])}']\n"
           f"        conn_state: [{rng.choice(['S0', 'REJ', 'RSTO'])}]\n",
        3: f"        proto: {rng.choice(['tcp', 'udp'])}\n        id.resp_p|lt: {rng.choice([7, 13, 19])}\n"
           f"        duration|gte: {rng.choice([3600, 7200])}\n",
        4: f"        uid|endswith: ['{''.join(rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ') for _ in range(4))}']\n",
    }[shape]
    return (f"title: Generated conn variant {i}\nid: 00000000-0000-4000-8000-{i:012d}\nstatus: test\n"
            f"logsource: {{product: zeek, service: conn}}\ndetection:\n    selection:\n{sel}"
            f"    filter:\n        id.orig_h: ['10.30.5.20', '10.30.5.21']\n"
            f"    condition: selection and not filter\nlevel: low\n")


def write_rules(folder: str, n: int, seed: int) -> int:
    """``n`` single-event rules in ``folder``: mapped SigmaHQ rules, shipped crane rules
    (not the correlation), then generated variants."""
    from detections.sigma_engine.load import load_rules
    from detections.sigma_engine.pipelines import taxonomy_for

    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    count = 0
    for path in sorted(glob.glob(os.path.join(SIGMAHQ, "*", "*.yml"))) + sorted(glob.glob(os.path.join(SHIPPED, "*.yml"))):
        loaded = load_rules([path])
        if count < n and loaded.rules and not loaded.correlations and taxonomy_for(loaded.rules[0].logsource):
            text = open(path, encoding="utf-8").read()
            with open(os.path.join(folder, f"{count:02d}-{os.path.basename(path)}"), "w", encoding="utf-8") as fh:
                fh.write(text)
            count += 1
    rng = random.Random(seed)
    while count < n:
        with open(os.path.join(folder, f"{count:02d}-variant.yml"), "w", encoding="utf-8") as fh:
            fh.write(_variant(count, rng))
        count += 1
    return count


def _timed_run(config: str, out: str) -> tuple[float, int, float]:
    from pipelines.batch import run_batch
    from pipelines.config import load_config
    from pipelines.summary import build_summary

    cfg = load_config(config)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = run_batch(cfg, out)
    secs = time.perf_counter() - started
    return secs, build_summary(cfg, result)["totals"]["read"], load


def main() -> int:
    args = _args()
    corpus = cached_corpus(args.out, "corpus", args.events, args.seed)
    rules = os.path.join(corpus, "sigma-bench-rules")
    n = write_rules(rules, args.sigma, args.seed)
    plain = os.path.join(corpus, "config.yaml")
    with_sigma = os.path.join(corpus, "config-sigma.yaml")
    with open(plain, encoding="utf-8") as fh, open(with_sigma, "w", encoding="utf-8") as out:
        out.write(fh.read() + "sigma:\n  rules: [sigma-bench-rules]\n")
    from detections.sigma_engine.engine import sigma_set
    from pipelines.config import load_config

    s = sigma_set(load_config(with_sigma))
    assert not s.errors, s.errors
    rowwise = sum(not e.compiled.vectorized for e in s.entries)
    print(header())
    print(f"sigma rules: {len(s.entries)} single-event rules ({rowwise} row-wise) from {rules}")
    eps: dict[str, list[float]] = {"without": [], "with": []}
    for r in range(args.rounds):
        for label, config in (("without", plain), ("with", with_sigma)):
            secs, events, load = _timed_run(config, os.path.join(args.out, f"sigma-run-{label}"))
            eps[label].append(events / secs)
            print(f"round {r + 1} {label:7} sigma rules: {events:,} records in {secs:.2f} s = {events / secs:,.0f} "
                  f"events/s (load average {load:.2f})")
    base, sig = statistics.median(eps["without"]), statistics.median(eps["with"])
    ratio = sig / base
    print(f"median: without {base:,.0f} events/s, with {n} rules {sig:,.0f} events/s; ratio {ratio:.2f} "
          f"(load average now {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
    ok = ratio >= 0.5
    print(f"bar (with the rules >= 0.5 x without): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
