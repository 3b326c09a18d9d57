"""The run summary: every record accounted for, what was found, how fast.

Built after the pipeline finishes from what it wrote (record counts, findings, incidents,
bundles), so the summary describes the outputs a user will open, not internal counters.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from pipelines.batch import COUNTS_FILE, RunResult
from pipelines.config import Config


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines output file (none when it was not written)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_summary(cfg: Config, result: RunResult) -> dict[str, Any]:
    out = result.out_dir
    with open(os.path.join(out, COUNTS_FILE), encoding="utf-8") as fh:
        counts = json.load(fh)
    sources = {
        s.name: counts.get(s.name, {"read": 0, "parsed": 0, "dead_lettered": 0, "files": 0})
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
    dead = read_jsonl(os.path.join(out, "deadletter", "deadletter.jsonl"))
    per_detection = Counter(f["detection_id"] for f in findings)
    read = sum(s["read"] for s in sources.values())
    return {
        "sources": sources,
        "totals": {
            "read": read,
            "parsed": sum(s["parsed"] for s in sources.values()),
            "dead_lettered": sum(s["dead_lettered"] for s in sources.values()),
            "files": result.input_files,
        },
        "findings": {"total": len(findings), "per_detection": dict(sorted(per_detection.items()))},
        "incidents": {
            "total": len(incidents),
            "by_severity": dict(sorted(Counter(i["severity_label"] for i in incidents).items())),
        },
        "bundles": len(bundles),
        "late_findings": sum(1 for d in dead if d.get("late")),  # streaming only: beyond allowed lateness
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


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="Records per source")
    for col in ("source", "files", "read", "parsed", "dead-lettered"):
        t.add_column(col, justify="right" if col != "source" else "left")
    for name, s in summary["sources"].items():
        t.add_row(name, str(s["files"]), f"{s['read']:,}", f"{s['parsed']:,}", f"{s['dead_lettered']:,}")
    tot = summary["totals"]
    t.add_row("total", str(tot["files"]), f"{tot['read']:,}", f"{tot['parsed']:,}", f"{tot['dead_lettered']:,}", style="bold")
    console.print(t)
    d = Table(title="Findings per detection")
    d.add_column("detection")
    d.add_column("findings", justify="right")
    for det, n in summary["findings"]["per_detection"].items():
        d.add_row(det, str(n))
    console.print(d)
    inc = summary["incidents"]
    sev = ", ".join(f"{k} {v}" for k, v in inc["by_severity"].items()) or "none"
    console.print(
        f"incidents: {inc['total']} ({sev})   bundles written: {summary['bundles']}"
        + "".join(f" + {p['bundles']} in {p['dir']}/" for p in list(summary.get("profiles", {}).values())[1:])
        + "   "
        f"wall time: {summary['wall_seconds']:.2f} s   events/s: {summary['events_per_second']:,}"
    )
