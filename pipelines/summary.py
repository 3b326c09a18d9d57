"""The run summary: every record accounted for, what was found, how fast.

Built after the pipeline finishes from what it wrote (record counts, findings, incidents,
bundles), so the summary describes the outputs a user will open, not internal counters.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Iterable

from pipelines.batch import COUNTS_FILE, RunResult
from pipelines.config import Config
from pipelines.run_checks import dead_letter_counts, input_problems, verdict


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines output file (none when it was not written)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_summary(cfg: Config, result: RunResult, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The summary of the run whose outputs are in ``result.out_dir``; ``exclude``: paths
    left out of the search for files no source reads (default: the output folder)."""
    out = result.out_dir
    with open(os.path.join(out, COUNTS_FILE), encoding="utf-8") as fh:
        counts = json.load(fh)
    sources = {
        s.name: counts.get(s.name, {"read": 0, "parsed": 0, "dead_lettered": 0, "files": 0, "skipped": 0})
        for s in cfg.sources
        if s.enabled
    }
    findings = read_jsonl(os.path.join(out, "findings.jsonl"))
    incidents = read_jsonl(os.path.join(out, "incidents.jsonl"))
    profiles: dict[str, dict[str, Any]] = {}
    first = cfg.export.effective_profiles()[0].name
    for prof in cfg.export.effective_profiles():
        sub = "stix" if prof.name == first else f"stix-{prof.name}"
        pdir = os.path.join(out, sub)
        n = len([f for f in os.listdir(pdir) if f.endswith(".json")]) if os.path.isdir(pdir) else 0
        profiles[prof.name] = {"dir": sub, "tlp": prof.tlp, "bundles": n,
                               "redacted": prof.redaction.redacts}
    stix_dir = os.path.join(out, "stix")
    bundles = sorted(f for f in os.listdir(stix_dir) if f.endswith(".json")) if os.path.isdir(stix_dir) else []
    per_detection = Counter(f["detection_id"] for f in findings)
    read = sum(s["read"] for s in sources.values())
    dead_by_reason, labels, late = dead_letter_counts(os.path.join(out, "deadletter", "deadletter.jsonl"))
    problems = input_problems(cfg, sources, dead_by_reason, labels, exclude=tuple(exclude) or (out,))
    status, message = verdict(sources, result.input_files)
    return {
        "run_id": result.run_id,
        "status": status,  # "ok", or why the run found nothing to look at (exit status 1)
        "status_message": message,
        "problems": problems,
        "dead_letters": dead_by_reason,  # source → reason code → count
        "sources": sources,
        "totals": {
            "read": read,
            "parsed": sum(s["parsed"] for s in sources.values()),
            "dead_lettered": sum(s["dead_lettered"] for s in sources.values()),
            "skipped": sum(s.get("skipped", 0) for s in sources.values()),
            "files": result.input_files,
        },
        "findings": {"total": len(findings), "per_detection": dict(sorted(per_detection.items()))},
        "incidents": {
            "total": len(incidents),
            "by_severity": dict(sorted(Counter(i["severity_label"] for i in incidents).items())),
        },
        "bundles": len(bundles),
        "late_findings": late,  # streaming only: beyond allowed lateness
        "profiles": profiles,
        "intel": _intel_summary(cfg),  # indicators in use; store entries and feed objects skipped, why
        "wall_seconds": round(result.wall_seconds, 3),
        "events_per_second": round(read / result.wall_seconds) if result.wall_seconds else 0,
    }


def _intel_summary(cfg: Config) -> dict[str, Any]:
    from stix_export.intel import intel_summary

    return intel_summary(cfg)


def write_summary(summary: dict[str, Any], out_dir: str) -> str:
    path = os.path.join(out_dir, "summary.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return path


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def incidents_in_order(out_dir: str) -> list[dict[str, Any]]:
    """The run's incidents, most severe first and in time order within a severity."""
    rows = read_jsonl(os.path.join(out_dir, "incidents.jsonl"))
    return sorted(rows, key=lambda i: (SEVERITY_RANK.get(i["severity_label"], 5), i["first_seen"], i["incident_id"]))


def print_summary(summary: dict[str, Any], out_dir: str | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    import sys

    console = Console(width=None if sys.stdout.isatty() else 120)
    t = Table(title="Records per source")
    tot = summary["totals"]
    skipped = bool(tot.get("skipped"))  # a column only when a sibling log was skipped
    for col in ("source", "files", "read", "parsed", "dead-lettered", *(("skipped",) if skipped else ())):
        t.add_column(col, justify="right" if col != "source" else "left")
    for name, s in [*summary["sources"].items(), ("total", tot)]:
        extra = (f"{s.get('skipped', 0):,}",) if skipped else ()
        t.add_row(name, str(s["files"]), f"{s['read']:,}", f"{s['parsed']:,}", f"{s['dead_lettered']:,}", *extra,
                  style="bold" if name == "total" and s is tot else None)
    console.print(t)
    if summary.get("dead_letters"):
        dl = Table(title="Dead letters per source and reason (deadletter/deadletter.jsonl)")
        dl.add_column("source")
        dl.add_column("reason")
        dl.add_column("dead letters", justify="right")
        for source, codes in summary["dead_letters"].items():
            for code, n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])):
                dl.add_row(source, code, f"{n:,}")
        console.print(dl)
    d = Table(title="Findings per detection")
    d.add_column("detection")
    d.add_column("findings", justify="right")
    for det, n in summary["findings"]["per_detection"].items():
        d.add_row(det, str(n))
    console.print(d)
    if out_dir is not None and summary["incidents"]["total"]:
        it = Table(title="Incidents (most severe first)")
        for col in ("severity", "first seen", "last seen", "zone / asset", "title", "findings"):
            it.add_column(col, justify="right" if col == "findings" else "left", no_wrap=col != "title")
        for i in incidents_in_order(out_dir):
            where = " / ".join(x for x in (i.get("zone") or "", i.get("primary_asset") or "") if x)
            it.add_row(f"{i['severity_label']} {i['severity']}", i["first_seen"][:19].replace("T", " "),
                       i["last_seen"][:19].replace("T", " "), where or "-", i["title"], str(len(i.get("findings", []))),
                       style=SEVERITY_STYLE.get(i["severity_label"], ""))
        console.print(it)
    inc = summary["incidents"]
    sev = ", ".join(f"{k} {v}" for k, v in inc["by_severity"].items()) or "none"
    console.print(
        f"incidents: {inc['total']} ({sev})   bundles written: {summary['bundles']}"
        + "".join(f" + {p['bundles']} in {p['dir']}/" for p in list(summary.get("profiles", {}).values())[1:])
        + "   "
        f"wall time: {summary['wall_seconds']:.2f} s   events/s: {summary['events_per_second']:,}",
        soft_wrap=True,
    )
    for problem in summary.get("problems", []):
        console.print(f"[yellow]warning:[/yellow] {escape(problem['message'])}", highlight=False)


#: Below this many records a run's wall time is mostly fixed start-up cost (building the Beam
#: pipeline, starting the runner, writing reports), so its events/s says little about throughput.
STARTUP_DOMINATED_BELOW = 500_000
BENCH_EVENTS = 1_000_000


def speed_note(summary: dict[str, Any]) -> str | None:
    """What a small run's events/s means, and where the throughput figure is (the demo prints it)."""
    read = summary.get("totals", {}).get("read", 0)
    if not read or read >= STARTUP_DOMINATED_BELOW:
        return None
    return (f"events/s: {summary.get('events_per_second', 0):,} is {read:,} records over "
            f"{summary.get('wall_seconds', 0):.1f} s of wall time including start-up (building the Beam pipeline, "
            f"starting the runner, writing reports), which dominates at this size; throughput is measured on "
            f"{BENCH_EVENTS:,} records by `make bench` (figures: README.md, section \"Benchmark\")")
