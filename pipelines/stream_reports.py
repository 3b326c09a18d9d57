"""The HTML reports of a running stream: ``report.html`` (and each sharing profile's report)
rebuilt from what the sinks have written so far, every ``stream.report_interval``.

The stream's ``incidents.jsonl`` holds every version of every incident (early, final,
withdrawn); a report shows the latest version of each incident not withdrawn, the dead
letters so far and the running summary. The mandated-report drafts are not written here:
the sinks write them with each incident version (``transforms/stream_sinks.py``), so the
report lists the clocks of the drafts beside it.
"""
from __future__ import annotations

import glob
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import Config
    from transforms.model import Incident


def _rows(path: str) -> list[dict[str, Any]]:
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # a line being appended right now
    except FileNotFoundError:
        pass
    return rows


def _with_rolled(out_dir: str, stem: str) -> list[str]:
    """A rolling log's files, oldest first: ``<stem>-<UTC time>.jsonl`` …, then ``<stem>.jsonl``."""
    return [*sorted(glob.glob(os.path.join(out_dir, f"{stem}-*.jsonl"))), os.path.join(out_dir, f"{stem}.jsonl")]


def latest_incidents(out_dir: str) -> list[Incident]:
    """The latest written version of each incident, withdrawn ones gone."""
    from transforms.model import Incident

    latest: dict[str, dict[str, Any]] = {}
    for path in _with_rolled(out_dir, "incidents"):
        for row in _rows(path):
            if row.get("version") == "withdrawn":
                latest.pop(row.get("incident_id"), None)
            elif "incident_id" in row:
                latest[row["incident_id"]] = {k: v for k, v in row.items() if k != "version"}
    return [Incident.from_dict(d) for d in latest.values()]


def write_stream_reports(cfg: Config, summary: dict[str, Any], out_dir: str) -> list[str]:
    """Rewrite ``report.html`` and the profiles' reports (temporary name, then rename); their paths.

    Raises ``stix_export.redact.RedactionError`` (that profile's report is not written) if a
    value the profile redacts would remain in it."""
    from pipelines.html_report import _write, render, report_path, shared_profiles
    from pipelines.html_report.view import build_view
    from stix_export.redact import Redactor, load_secret

    incidents = latest_incidents(out_dir)
    dead = [d for path in _with_rolled(os.path.join(out_dir, "deadletter"), "deadletter") for d in _rows(path)]
    paths = [report_path(out_dir)]
    _write(paths[0], render(build_view(cfg, summary, incidents, dead)))
    profiles = shared_profiles(cfg)
    secret = load_secret(cfg) if profiles else None
    for profile in profiles:
        view = build_view(cfg, summary, incidents, dead, profile, Redactor(profile, cfg, secret))
        paths.append(report_path(out_dir, profile.name))
        _write(paths[-1], render(view))
    return paths
