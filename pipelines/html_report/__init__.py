"""The HTML run report an analyst opens after a run: ``report.html`` and ``report-<profile>.html``.

One self-contained file each (inline CSS, inline SVG charts, no script, no font, image or
link to load): ports run cranewatch air-gapped and a report is mailed around as a file.
Built after the pipeline from what the run wrote (``incidents.jsonl``, the dead letters,
the summary), so the report shows exactly the outputs next to it.

``report.html`` is the port's own view, raw records included. Every sharing profile after
the first (and the first too, if it redacts) gets ``report-<profile>.html`` holding only
what that profile's bundles hold, redacted by the same ``stix_export.redact.Redactor``.
Rendering is Jinja2 with autoescaping on: log lines are attacker-controlled text.
Mandated-report drafts (``pipelines/mandated``) are written here too, and ``report.html``
lists their open clocks.
"""
from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the CLI imports this module on every start
    from pipelines.config import Config, SharingProfile
    from pipelines.html_report.view import ReportView

REPORT_FILE = "report.html"


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.html_report", "templates"),
        autoescape=True,  # every value, including names in .css/.svg contexts, is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(view: ReportView) -> str:
    """The report page for one view."""
    return _environment().get_template("report.html.j2").render(v=view)


def read_outputs(output: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """(incidents, dead letters) as the run wrote them to ``output``."""
    from pipelines.summary import read_jsonl
    from transforms.model import Incident

    incidents = [Incident.from_dict(d) for d in read_jsonl(os.path.join(output, "incidents.jsonl"))]
    dead = read_jsonl(os.path.join(output, "deadletter", "deadletter.jsonl"))
    return incidents, dead


def shared_profiles(cfg: Config) -> list[SharingProfile]:
    """The profiles that get their own report: every one after the first, and the first
    when it redacts (``report.html`` shows everything)."""
    profiles = cfg.export.effective_profiles()
    return [p for i, p in enumerate(profiles) if i > 0 or p.redaction.redacts]


def report_path(output: str, profile: str | None = None) -> str:
    return os.path.join(output, REPORT_FILE if profile is None else f"report-{profile}.html")


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_reports(cfg: Config, summary: dict[str, Any], output: str) -> list[str]:
    """Write ``report.html`` and each sharing profile's report into ``output``; their paths.

    Raises ``stix_export.redact.RedactionError`` (and writes no profile report) if a value a
    profile redacts would remain in its report.
    """
    import glob

    from pipelines.html_report.view import build_view
    from stix_export.redact import Redactor, load_secret

    incidents, dead = read_outputs(output)
    from pipelines.mandated import write_mandated

    write_mandated(cfg, incidents, output)  # reports/mandated/<incident-id>/<regime>.{json,md,html}
    profiles = shared_profiles(cfg)
    keep = {report_path(output, p.name) for p in profiles}
    for stale in glob.glob(os.path.join(output, "report-*.html")):  # a profile since removed
        if stale not in keep:
            os.remove(stale)
    paths = [report_path(output)]
    _write(paths[0], render(build_view(cfg, summary, incidents, dead)))
    secret = load_secret(cfg) if profiles else None
    for profile in profiles:
        view = build_view(cfg, summary, incidents, dead, profile, Redactor(profile, cfg, secret))
        paths.append(report_path(output, profile.name))
        _write(paths[-1], render(view))
    return paths
