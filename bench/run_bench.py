"""Batch benchmark: the whole pipeline on a 1M-event corpus, against DuckDB on the same files.

Generates the seeded corpus once (cached under bench-out/), runs ``cranewatch run`` on it
in-process, and in the same run times DuckDB reading the same Zeek conn.log files with an
equivalent filter (flows from inventoried OT addresses to addresses outside the
inventory), so the figures carry their own reference. Prints a header naming machine,
date and versions; the bar (spine issue) is >= 150,000 events/s and < 2 GB peak memory.

    .venv/bin/python bench/run_bench.py --events 1000000
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._corpus import cached_corpus, corpus_args, header  # noqa: E402


def _uncompressed_bytes(paths: list[str]) -> int:
    total = 0
    for p in paths:
        if p.endswith(".gz"):
            with gzip.open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
        else:
            total += os.path.getsize(p)
    return total


def duckdb_reference(cfg, conn_files: list[str]) -> tuple[float, int, int]:
    """DuckDB parse + filter of the same conn.log files: (seconds, rows, matches)."""
    import duckdb

    ot = [ip for a in cfg.inventory.assets if a.kind in ("crane_plc", "cms", "hmi") for ip in a.addresses]
    inventory = [ip for a in cfg.inventory.assets for ip in a.addresses]
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    cols = ["ts", "uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "service", "duration",
            "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes",
            "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    started = time.perf_counter()
    rows, matches = con.execute(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE orig_h IN (SELECT unnest(?)) AND resp_h NOT IN (SELECT unnest(?)))
        FROM read_csv(?, delim='\t', header=false, comment='#', quote='', escape='',
                      nullstr='-', columns={columns}, auto_detect=false)
        """,
        [ot, inventory, conn_files],
    ).fetchone()
    return time.perf_counter() - started, rows, matches


def main() -> int:
    if "--sigma" in sys.argv[1:]:
        return sigma_main()
    args = corpus_args(__doc__.splitlines()[0])

    from pipelines.batch import run_batch
    from pipelines.config import load_config
    from pipelines.summary import build_summary

    corpus = cached_corpus(args.out, "corpus", args.events, args.seed)
    cfg = load_config(os.path.join(corpus, "config.yaml"))
    files = sorted(glob.glob(os.path.join(corpus, "**", "*"), recursive=True))
    data_files = [f for f in files if os.path.isfile(f) and not f.endswith((".yaml", ".json"))]
    conn_files = [f for f in data_files if os.path.basename(f).startswith("conn")]
    disk_bytes = sum(os.path.getsize(f) for f in data_files)
    raw_bytes = _uncompressed_bytes(data_files)

    print(header())
    result = run_batch(cfg, os.path.join(args.out, "run"))
    summary = build_summary(cfg, result)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    events = summary["totals"]["read"]
    eps = events / result.wall_seconds
    print(
        f"cranewatch batch: {events:,} records in {result.wall_seconds:.2f} s = {eps:,.0f} events/s, "
        f"{raw_bytes / 1e6 / result.wall_seconds:.1f} MB/s uncompressed ({disk_bytes / 1e6:.0f} MB on disk, "
        f"{raw_bytes / 1e6:.0f} MB raw); peak RSS {peak_mb:,.0f} MB; "
        f"{summary['incidents']['total']} incidents, {summary['bundles']} bundles"
    )
    secs, rows, matches = duckdb_reference(cfg, conn_files)
    print(
        f"duckdb reference (conn.log parse + OT-egress filter): {rows:,} rows in {secs:.2f} s = "
        f"{rows / secs:,.0f} rows/s, {matches} matching flows"
    )
    print(f"ratio duckdb/cranewatch (rows/s): {(rows / secs) / eps:.1f}x")
    bar_ok = eps >= 150_000 and peak_mb < 2048
    print(f"bar (>= 150,000 events/s, < 2 GB): {'met' if bar_ok else 'NOT met'}")
    with open(os.path.join(args.out, "bench.json"), "w") as fh:
        json.dump({"events": events, "seconds": result.wall_seconds, "events_per_second": eps,
                   "peak_rss_mb": peak_mb, "duckdb_rows_per_second": rows / secs}, fh, indent=2)
    return 0 if bar_ok else 1


def sigma_main() -> int:
    """``--sigma N``: the same corpus with and without N single-event Sigma rules (bench/sigma_bench.py)."""
    from bench.sigma_bench import main as run_sigma_bench

    return run_sigma_bench()


if __name__ == "__main__":
    sys.exit(main())
