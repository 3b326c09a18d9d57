"""Mandated incident reports: drafts for the Coast Guard, the FBI and CISA, and NIS2 authorities.

For each reportable incident (``reporting.reportable``), ``reports/mandated/<incident-id>/``
holds one draft per configured regime (``reporting.regimes``) as ``<regime>.json``,
``<regime>.md`` and ``<regime>.html``, each stating its deadlines counted from the incident's
detection time (``pipelines/mandated/rule.py``). A draft aid, not legal advice: the tool fills
what the incident and config say and leaves every other field marked for the analyst.

``write_mandated`` is the one entry point, for the batch run (after the run, beside
report.html) and for a streaming sink (with each emitted incident version): idempotent (the
same incidents and config give the same bytes; unchanged files are not rewritten) and atomic
per file (temp file + rename), so a reader never sees half a draft.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from pipelines.mandated.rule import Reportable, reportable

if TYPE_CHECKING:
    from pipelines.config import Config
    from transforms.model import Incident

MANDATED_DIR = os.path.join("reports", "mandated")
EXTENSIONS = ("json", "md", "html")


def incident_dir(out_dir: str, incident_id: str) -> str:
    """``reports/mandated/<incident-id>``; an id is made safe as a directory name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", incident_id).lstrip(".") or "_"
    return os.path.join(out_dir, MANDATED_DIR, safe)


def _write_if_changed(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except OSError:
        pass
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return True


def write_mandated(cfg: Config, incidents: Iterable[Incident], out_dir: str) -> list[str]:
    """Write (or revise) the drafts of ``incidents`` under ``out_dir``; the paths written.

    A passed incident that is not reportable loses any drafts it had; files of regimes no
    longer configured are removed. Raises ``RedactionError`` if a profile's value would leak.
    """
    from pipelines.mandated.draft import build_draft
    from pipelines.mandated.registry import load_regimes
    from pipelines.mandated.render import render_html, render_json, render_markdown
    from stix_export.redact import load_secret

    if not cfg.reporting.regimes:
        return []
    regimes = load_regimes()
    secret = load_secret(cfg)
    written = []
    for inc in incidents:
        folder = incident_dir(out_dir, inc.incident_id)
        why = reportable(inc, cfg)
        if why is None:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        os.makedirs(folder, exist_ok=True)
        keep = set()
        for name, settings in cfg.reporting.regimes.items():
            draft = build_draft(cfg, inc, why, regimes[name], settings, secret)
            for ext, render in (("json", render_json), ("md", render_markdown), ("html", render_html)):
                path = os.path.join(folder, f"{name}.{ext}")
                keep.add(path)
                if _write_if_changed(path, render(draft)):
                    written.append(path)
        for stale in os.listdir(folder):
            if os.path.join(folder, stale) not in keep:
                os.remove(os.path.join(folder, stale))
    return written


@dataclass(frozen=True)
class OpenClock:
    """One reporting deadline of one reportable incident (report.html lists them)."""

    due_utc: str
    due_local: str
    regime: str
    deadline: str
    within: str
    citation: str
    incident_id: str
    incident_title: str
    detected_utc: str
    path: str  # the draft, relative to the run's output directory


def open_clocks(cfg: Config, incidents: Iterable[Incident]) -> list[OpenClock]:
    """Every deadline of every reportable incident, most urgent (earliest due) first.

    The tool does not know what was already sent: every deadline stays open until the
    analyst closes it outside the tool.
    """
    from pipelines.mandated.draft import clock
    from pipelines.mandated.registry import load_regimes

    if not cfg.reporting.regimes:
        return []
    regimes = load_regimes()
    zone = cfg.reporting.facility.timezone
    out = []
    for inc in incidents:
        why: Reportable | None = reportable(inc, cfg)
        if why is None:
            continue
        for name in cfg.reporting.regimes:
            for d in clock(why, regimes[name], zone)["deadlines"]:
                rel = os.path.relpath(os.path.join(incident_dir("", inc.incident_id), f"{name}.html"))
                out.append(OpenClock(d["due"]["utc"], d["due"]["local"], name, d["title"], d["within"], d["citation"],
                                     inc.incident_id, inc.title, why.detected_at, rel))
    return sorted(out, key=lambda c: (c.due_utc, c.regime, c.incident_id, c.deadline))
