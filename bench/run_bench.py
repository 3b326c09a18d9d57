"""Batch benchmark: the whole pipeline against DuckDB doing the same detections on the same files.

Generates the seeded corpus once (cached under bench-out/), then runs, interleaved (A, B, A,
B, ...), each in a process of its own: A ``run_batch`` on the corpus (parse, detect,
correlate, export), B the like-for-like reference (``bench/duckdb_reference.py``: DuckDB
reads every file of the corpus into tables and runs four of the detections as SQL from the
same config). Each run's time is printed with the load beside it, the pipeline's peak RSS
with it; DuckDB's hits are checked against the pipeline's findings (same dedup keys, counts,
first and last times; every evidence record among DuckDB's hits). Times are from the process
start (imports included) to the answer. The bars are the README's speed targets.

    .venv/bin/python bench/run_bench.py --events 1000000
    .venv/bin/python bench/run_bench.py --events 10000000 --generate-only   # generator time and peak RSS
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._corpus import ROOT, corpus_args, header, is_cached  # noqa: E402


def _loadavg() -> str:
    with open("/proc/loadavg", encoding="utf-8") as fh:
        return " ".join(fh.read().split()[:3])


def _child(code: str) -> tuple[int, float]:
    """Run ``code`` in a fresh interpreter: (its peak RSS in MB, its wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed (exit {proc.returncode}): {code}")
    return usage.ru_maxrss // 1024, time.perf_counter() - started


def generate_corpus(out: str, events: int, seed: int, force: bool) -> str:
    """The cached corpus; generated in a child process (time and peak RSS printed) when
    missing, stale or ``force``."""
    corpus = os.path.join(out, f"corpus-{events}-seed{seed}")
    if force and os.path.exists(os.path.join(corpus, ".generator")):
        os.remove(os.path.join(corpus, ".generator"))
    if is_cached(corpus):
        return corpus
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from bench._corpus import cached_corpus; "
            f"cached_corpus({out!r}, 'corpus', {events}, {seed})")
    load = _loadavg()
    rss, secs = _child(code)
    print(f"generator: {events:,} records in {secs:.1f} s, peak RSS {rss:,} MB (load {load}; bar < 2,048 MB)")
    return corpus


def _pipeline_code(corpus: str, run_dir: str, result_json: str) -> str:
    return f"""
import time; started = time.perf_counter()
import json, sys; sys.path.insert(0, {ROOT!r})
from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.summary import build_summary
cfg = load_config({os.path.join(corpus, 'config.yaml')!r})
result = run_batch(cfg, {run_dir!r})
seconds = time.perf_counter() - started
summary = build_summary(cfg, result)
json.dump({{"seconds": seconds, "run_seconds": result.wall_seconds, "records": summary["totals"]["read"],
           "incidents": summary["incidents"]["total"], "bundles": summary["bundles"]}}, open({result_json!r}, "w"))
"""


def _duckdb_code(corpus: str, span: tuple[str, str], result_json: str) -> str:
    return f"""
import time; started = time.perf_counter()
import sys; sys.path.insert(0, {ROOT!r})
from bench.duckdb_reference import child
child({os.path.join(corpus, 'config.yaml')!r}, {span!r}, {result_json!r}, started)
"""


def _us(text: str) -> int:
    import datetime as dt

    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def compare_hits(findings_path: str, hits: dict[str, list[list[Any]]]) -> list[tuple[str, int, int, int, str]]:
    """Per detection: (id, pipeline findings, pipeline hits, DuckDB hits, verdict). The same
    dedup keys with the same hit counts and first/last times, and every evidence record the
    findings cite among DuckDB's hits, is ``same``."""
    pipe: dict[str, dict[str, list[Any]]] = {d: {} for d in hits}
    findings: dict[str, int] = defaultdict(int)
    with open(findings_path, encoding="utf-8") as fh:
        for line in fh:
            f = json.loads(line)
            det = f["detection_id"]
            if det not in pipe:
                continue
            findings[det] += 1
            agg = pipe[det].setdefault(f["context"]["dedup"], [0, None, None, set()])
            agg[0] += f["count"]
            first, last = _us(f["first_seen"]), _us(f["last_seen"])
            agg[1] = first if agg[1] is None else min(agg[1], first)
            agg[2] = last if agg[2] is None else max(agg[2], last)
            for e in f["evidence"]:
                x = e["fields"]
                agg[3].add((_us(e["time"]), x.get("src_ip"), x.get("src_port"), x.get("dst_ip"), x.get("dst_port")))
    out = []
    for det, rows in hits.items():
        ref: dict[str, list[Any]] = {}
        for dedup, t, src, sport, dst, dport, op in rows:
            agg = ref.setdefault(dedup, [set(), None, None, set()])
            agg[0].add(op if op is not None else (t, src, sport, dst, dport))
            agg[1] = t if agg[1] is None else min(agg[1], t)
            agg[2] = t if agg[2] is None else max(agg[2], t)
            agg[3].add((t, src, sport, dst, dport))
        problems = []
        if set(ref) != set(pipe[det]):
            problems.append(f"dedup keys differ: only DuckDB {sorted(set(ref) - set(pipe[det]))[:3]}, "
                            f"only pipeline {sorted(set(pipe[det]) - set(ref))[:3]}")
        for key in sorted(set(ref) & set(pipe[det])):
            (n, first, last, cited), (ops, rfirst, rlast, keys) = pipe[det][key], ref[key]
            if n != len(ops) or (first, last) != (rfirst, rlast) or not cited <= keys:
                problems.append(f"{key}: pipeline {n} hits {first}-{last}, DuckDB {len(ops)} hits {rfirst}-{rlast}, "
                                f"{len(cited - keys)} cited records not among DuckDB's hits")
        pipe_hits = sum(a[0] for a in pipe[det].values())
        ref_hits = sum(len(a[0]) for a in ref.values())
        out.append((det, findings[det], pipe_hits, ref_hits, "same" if not problems else "; ".join(problems[:3])))
    return out


def main() -> int:
    if "--sigma" in sys.argv[1:]:
        return sigma_main()
    args = corpus_args(__doc__.splitlines()[0], extra=lambda ap: (
        ap.add_argument("--rounds", type=int, default=2, help="pipeline/DuckDB pairs, interleaved (default 2)"),
        ap.add_argument("--generate-only", action="store_true",
                        help="(re)generate the corpus, print its time and peak RSS, and stop")))
    print(header())
    corpus = generate_corpus(args.out, args.events, args.seed, force=args.generate_only)
    if args.generate_only:
        return 0
    with open(os.path.join(corpus, "truth.json"), encoding="utf-8") as fh:
        truth = json.load(fh)
    span = (truth["start"], truth["end"])
    run_dir = os.path.join(args.out, "run")
    pipe_json, duck_json = os.path.join(args.out, "pipeline.json"), os.path.join(args.out, "duckdb.json")
    pipe_runs: list[dict[str, Any]] = []
    duck_runs: list[dict[str, Any]] = []
    for r in range(1, args.rounds + 1):
        load = _loadavg()
        rss, _ = _child(_pipeline_code(corpus, run_dir, pipe_json))
        with open(pipe_json, encoding="utf-8") as fh:
            p = {**json.load(fh), "rss": rss, "load": load}
        pipe_runs.append(p)
        print(f"round {r} A pipeline: {p['records']:,} records in {p['seconds']:.2f} s "
              f"({p['records'] / p['seconds']:,.0f} events/s; run_batch {p['run_seconds']:.2f} s), "
              f"peak RSS {rss:,} MB, {p['incidents']} incidents, {p['bundles']} bundles (load {load})")
        load = _loadavg()
        _child(_duckdb_code(corpus, span, duck_json))
        with open(duck_json, encoding="utf-8") as fh:
            d = {**json.load(fh), "load": load}
        duck_runs.append(d)
        print(f"round {r} B duckdb: {d['rows']:,} rows of {len(d['tables'])} tables in {d['seconds']:.2f} s "
              f"(read {d['load_seconds']:.2f} s, 4 detections {d['detect_seconds']:.2f} s) (load {load})")
    checks = compare_hits(os.path.join(run_dir, "findings.jsonl"), duck_runs[-1]["hits"])
    for det, n_findings, n_pipe, n_ref, verdict in checks:
        print(f"hits {det}: pipeline {n_pipe} in {n_findings} findings, DuckDB {n_ref}: {verdict}")
    same = all(c[4] == "same" for c in checks) and duck_runs[-1]["rows"] == pipe_runs[-1]["records"]
    if duck_runs[-1]["rows"] != pipe_runs[-1]["records"]:
        print(f"rows differ: pipeline read {pipe_runs[-1]['records']:,}, DuckDB {duck_runs[-1]['rows']:,}")
    pairs = ", ".join(f"{d['seconds'] / p['seconds']:.2f}x" for p, d in zip(pipe_runs, duck_runs))
    print(f"pipeline speed / DuckDB speed per round (A vs the B after it): {pairs}")
    best_p = min(pipe_runs, key=lambda x: x["seconds"])
    best_d = min(duck_runs, key=lambda x: x["seconds"])
    speed = best_d["seconds"] / best_p["seconds"]  # pipeline speed as a fraction of DuckDB's
    eps = best_p["records"] / best_p["seconds"]
    peak = max(x["rss"] for x in pipe_runs)
    print(f"pipeline speed / DuckDB speed (best of {args.rounds}): {speed:.2f}x "
          f"(DuckDB {1 / speed:.2f}x faster); hits {'same' if same else 'DIFFER'}")
    print("\n| records | pipeline | DuckDB, all files + 4 detections | pipeline speed vs DuckDB "
          "| pipeline peak RSS | load (1/5/15 min) |")
    print("|---|---|---|---|---|---|")
    print(f"| {best_p['records']:,} | {best_p['seconds']:.1f} s ({eps:,.0f} events/s) | {best_d['seconds']:.1f} s "
          f"| {speed:.2f}x | {peak:,} MB | {best_p['load']} |\n")
    big = args.events >= 10_000_000
    bar = (speed >= (0.8 if big else 0.6)) and (not big or (eps >= 400_000 and peak < 1024))
    print(f"bar ({'>= 0.8x DuckDB, >= 400,000 events/s, < 1 GB' if big else '>= 0.6x DuckDB'}): "
          f"{'met' if bar else 'NOT met'}")
    with open(os.path.join(args.out, "bench.json"), "w", encoding="utf-8") as fh:
        json.dump({"events": best_p["records"], "pipeline_seconds": [x["seconds"] for x in pipe_runs],
                   "duckdb_seconds": [x["seconds"] for x in duck_runs], "loads": [x["load"] for x in pipe_runs],
                   "speed_vs_duckdb": speed, "events_per_second": eps, "peak_rss_mb": peak,
                   "hits_same": same}, fh, indent=2)
    return 0 if same and bar else 1


def sigma_main() -> int:
    """``--sigma N``: the same corpus with and without N single-event Sigma rules (bench/sigma_bench.py)."""
    from bench.sigma_bench import main as run_sigma_bench

    return run_sigma_bench()


if __name__ == "__main__":
    sys.exit(main())
