"""False-positive benchmark: the whole pipeline on a benign-only corpus (issue 4).

Generates a seeded benign-only corpus once (``generate(..., benign_only=True)``: the same
realistic traffic as the scored corpus — bursty flows, vendor sessions inside their
windows, engineering-workstation writes, routine parameter changes — with no planted
scenario; cached under bench-out/), runs the batch pipeline on it in-process and reports
records read, findings (per detection) and incidents. Exit status 1 if any incident
appears (or the cached corpus is not benign-only), else 0; a finding without an incident
is reported but does not fail the run.

    .venv/bin/python bench/benign_fp.py --events 1000000
"""
from __future__ import annotations

import collections
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._corpus import cached_corpus, corpus_args, header  # noqa: E402


def main() -> int:
    args = corpus_args(__doc__.splitlines()[0])

    from pipelines.batch import run_batch
    from pipelines.config import load_config
    from pipelines.summary import build_summary, read_jsonl

    corpus = cached_corpus(args.out, "benign", args.events, args.seed, benign_only=True)
    with open(os.path.join(corpus, "truth.json"), encoding="utf-8") as fh:
        truth = json.load(fh)
    if truth["scenarios"]:
        print(f"{corpus}: truth.json lists {len(truth['scenarios'])} planted scenarios; not a benign-only corpus",
              file=sys.stderr)
        return 1

    print(header())
    print(f"corpus seed {args.seed}, {truth['start']} .. {truth['end']}")
    cfg = load_config(os.path.join(corpus, "config.yaml"))
    out = os.path.join(args.out, f"benign-run-{args.events}-seed{args.seed}")
    result = run_batch(cfg, out)
    summary = build_summary(cfg, result)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    findings = read_jsonl(os.path.join(out, "findings.jsonl"))
    incidents = read_jsonl(os.path.join(out, "incidents.jsonl"))
    per_detection = collections.Counter(f["detection_id"] for f in findings)
    read = summary["totals"]["read"]
    print(f"records: {read:,} read ({', '.join(f'{k} {v:,}' for k, v in sorted(truth['records'].items()))}), "
          f"{summary['totals']['dead_lettered']:,} dead-lettered")
    print(f"findings: {len(findings)}" + (f" ({dict(sorted(per_detection.items()))})" if findings else ""))
    print(f"incidents: {len(incidents)}")
    for inc in incidents[:20]:
        print(f"  {inc.get('incident_id')}: {inc.get('title')}")
    print(f"wall {result.wall_seconds:.2f} s = {read / result.wall_seconds:,.0f} events/s; peak RSS {peak_mb:,.0f} MB")
    with open(os.path.join(args.out, f"benign_fp-{args.events}-seed{args.seed}.json"), "w", encoding="utf-8") as fh:
        json.dump({"events": read, "seed": args.seed, "findings": len(findings),
                   "findings_per_detection": dict(per_detection), "incidents": len(incidents),
                   "seconds": result.wall_seconds, "peak_rss_mb": peak_mb}, fh, indent=2)
    ok = not incidents and read == truth["events"]
    print(f"benign-only: {'no incident' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
