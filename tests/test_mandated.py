"""Mandated-report drafts from a real run over a generated terminal: every regime's draft holds
every field it asks for, each filled value found in the incident or the config (or the regime's
own fixed text), the rest marked for the analyst; non-reportable incidents get no draft."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zoneinfo
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from pipelines.config import load_config, parse_config
from pipelines.generate import generate
from pipelines.mandated import incident_dir, open_clocks, write_mandated
from pipelines.mandated.draft import build_draft
from pipelines.mandated.registry import load_regimes
from pipelines.mandated.render import render_html, render_markdown
from pipelines.mandated.rule import reportable
from transforms.model import Incident

REGIMES = ("uscg_mtsa", "us_33cfr6", "nis2")
#: Fields every draft fills from the demo config and any incident; the rest (addresses, impact
#: changes, assets) only when the incident has such values, and each at least once in the corpus.
ALWAYS = {"facility_name", "mtsa_facility_id", "cotp_zone", "operator", "point_of_contact", "recipient", "recipients",
          "incident_reference", "what_happened", "observed_activity", "began_at", "detected_at", "evidence",
          "tool_severity", "reportable_because", "attack_stages", "techniques"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pipelines.cli import main

    root = tmp_path_factory.mktemp("mandated")
    generate(str(root / "data"), events=3000, seed=5)
    out = root / "out"
    assert main(["run", "--config", str(root / "data" / "config.yaml"), "--output", str(out), "--quiet"]) == 0
    cfg = load_config(root / "data" / "config.yaml")
    incidents = [Incident.from_dict(json.loads(line)) for line in (out / "incidents.jsonl").read_text().splitlines()]
    return {"cfg": cfg, "out": out, "incidents": incidents, "config_path": root / "data" / "config.yaml"}


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _scalars(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _scalars(v)
    else:
        yield value


def _is_stamp(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"utc", "local", "timezone"}


def unsourced(value: Any, allowed: set[Any], times: set[str], zone: str) -> list[Any]:
    """Every leaf of a filled value that is neither in ``allowed`` nor a time of the incident
    shown rightly in the facility's zone (checked here with zoneinfo, not the tool's code)."""
    bad: list[Any] = []
    if _is_stamp(value):
        utc = dt.datetime.fromisoformat(value["utc"].replace("Z", "+00:00"))
        local = utc.astimezone(zoneinfo.ZoneInfo(zone)).replace(microsecond=0).isoformat()
        if value["utc"] not in times or value["local"] != local or value["timezone"] != zone:
            bad.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            bad += unsourced(v, allowed, times, zone)
    elif isinstance(value, list):
        for v in value:
            bad += unsourced(v, allowed, times, zone)
    elif value is not None and value not in allowed:
        bad.append(value)
    return bad


def _allowed(cfg: Any, incident: Incident, regime_id: str) -> tuple[set[Any], set[str]]:
    from stix_export import attack

    inc = incident.to_dict()
    values = set(_scalars(inc)) | set(_scalars(cfg.model_dump(mode="json", by_alias=True)))
    values |= load_regimes()[regime_id].meta_strings()
    values |= {attack.resolve(t).name for t in incident.techniques}
    values |= {"OT", "IT", f"reporting.reportable[{reportable(incident, cfg).rule_index}]"}
    times = {incident.first_seen, incident.last_seen} | {t for f in incident.findings for t in (f.first_seen, f.last_seen)}
    times |= {ev.time for f in incident.findings for ev in f.evidence}
    return {v for v in values if isinstance(v, (str, int, float))}, times


def test_every_regime_draft_has_its_fields_each_sourced(run: dict[str, Any]) -> None:
    cfg, out = run["cfg"], run["out"]
    regimes = load_regimes()
    drafted = [i for i in run["incidents"] if reportable(i, cfg)]
    assert len(drafted) >= 3
    zone = cfg.reporting.facility.timezone
    filled_once: set[tuple[str, str]] = set()
    for inc in drafted:
        allowed_cache: dict[str, Any] = {}
        for regime_id in REGIMES:
            regime = regimes[regime_id]
            folder = Path(incident_dir(str(out), inc.incident_id))
            draft = json.loads((folder / f"{regime_id}.json").read_text())
            assert draft["regime"]["citation"] == regime.citation and draft["incident_id"] == inc.incident_id
            assert [f["key"] for f in draft["fields"]] == [s.key for s in regime.fields]
            allowed, times = allowed_cache.setdefault(regime_id, _allowed(cfg, inc, regime_id))
            for spec, field in zip(regime.fields, draft["fields"]):
                if spec.analyst:
                    assert field["status"] == "analyst_required" and field["value"] is None, field
                    assert field["prompt"] == spec.analyst
                    continue
                if field["status"] == "analyst_required":
                    assert spec.key not in ALWAYS and field["value"] is None, (regime_id, field)
                    continue
                assert field["status"] == "filled", (regime_id, field)
                filled_once.add((regime_id, spec.key))
                assert unsourced(field["value"], allowed, times, zone) == [], (regime_id, field["key"])
            md = (folder / f"{regime_id}.md").read_text()
            page = (folder / f"{regime_id}.html").read_text()
            assert md.count("**ANALYST REQUIRED**") == page.count("<strong>ANALYST REQUIRED</strong>") == sum(
                f["status"] == "analyst_required" for f in draft["fields"])
            for c in draft["clock"]["deadlines"]:
                assert c["due"]["utc"] in md and c["due"]["utc"] in page
    assert filled_once == {(r, s.key) for r in REGIMES for s in regimes[r].fields if not s.analyst}


def test_the_field_check_catches_an_invented_value(run: dict[str, Any]) -> None:
    cfg = run["cfg"]
    inc = next(i for i in run["incidents"] if reportable(i, cfg) and i.accounts)
    allowed, times = _allowed(cfg, inc, "nis2")
    zone = cfg.reporting.facility.timezone
    assert unsourced({"accounts": list(inc.accounts)}, allowed, times, zone) == []
    assert unsourced({"accounts": [*inc.accounts, "root"]}, allowed, times, zone) == ["root"]
    shifted = {"utc": "2026-11-17T09:00:00.000000Z", "local": "2026-11-17T04:00:00-05:00", "timezone": zone}
    assert unsourced(shifted, allowed, times, zone) == [shifted]
    wrong_zone = {"utc": inc.first_seen, "local": inc.first_seen.replace("Z", "+00:00")[:19] + "+00:00", "timezone": zone}
    assert unsourced(wrong_zone, allowed, times, zone) == [wrong_zone]


def test_missing_facility_facts_are_left_for_the_analyst(run: dict[str, Any]) -> None:
    raw = yaml.safe_load(run["config_path"].read_text())
    raw["reporting"]["facility"] = {"timezone": "Europe/Amsterdam"}
    raw["reporting"]["regimes"] = {"nis2": {}}
    cfg = parse_config(raw, str(run["config_path"]))
    inc = next(i for i in run["incidents"] if reportable(i, cfg))
    draft = build_draft(cfg, inc, reportable(inc, cfg), load_regimes()["nis2"], cfg.reporting.regimes["nis2"])
    status = {f["key"]: f["status"] for f in draft["fields"]}
    for key in ("recipient", "facility_name", "operator", "point_of_contact"):
        assert status[key] == "analyst_required", key
    assert status["what_happened"] == status["detected_at"] == "filled"


def test_only_reportable_incidents_get_drafts(run: dict[str, Any]) -> None:
    cfg, out = run["cfg"], run["out"]
    kinds = {a.id: a.kind for a in cfg.inventory.assets}
    drafted = {p.name for p in (out / "reports" / "mandated").iterdir()}
    quiet = []
    for inc in run["incidents"]:
        loud = any((f.stage in ("command", "impact", "exfiltration") and kinds.get(f.asset_id or "") in ("crane_plc", "cms"))
                   or f.detection_id == "vendor_session_outside_window" for f in inc.findings) or inc.severity >= 90
        assert (inc.incident_id in drafted) == loud, inc.title
        if not loud:
            quiet.append(inc)
    assert quiet, "the corpus should hold incidents the default rule does not report (recon, intel match)"
    assert {p.name for d in (out / "reports" / "mandated").iterdir() for p in d.iterdir()} == {
        f"{r}.{e}" for r in REGIMES for e in ("json", "md", "html")}


def test_detection_time_is_when_the_incident_first_met_a_rule(run: dict[str, Any]) -> None:
    cfg = run["cfg"]
    later = [i for i in run["incidents"] if (r := reportable(i, cfg)) and r.detected_at != i.first_seen]
    assert later, "the corpus should hold an incident that became reportable after it began"
    for inc in later:
        why = reportable(inc, cfg)
        earlier = [f for f in inc.findings if f.first_seen < why.detected_at]
        assert earlier and all(reportable(dataclasses.replace(inc, findings=(f,), severity=f.severity), cfg) is None
                               for f in earlier)
        assert why.finding.first_seen == why.detected_at


def test_writing_again_is_idempotent_and_a_no_longer_reportable_incident_loses_its_drafts(run: dict[str, Any], tmp_path: Path) -> None:
    cfg = run["cfg"]
    written = write_mandated(cfg, run["incidents"], str(tmp_path))
    assert written and write_mandated(cfg, run["incidents"], str(tmp_path)) == []
    original = {p: p.read_bytes() for p in (tmp_path / "reports" / "mandated").rglob("*") if p.is_file()}
    assert {p.relative_to(tmp_path) for p in original} == {
        p.relative_to(run["out"]) for p in (run["out"] / "reports" / "mandated").rglob("*") if p.is_file()}
    strict = cfg.model_copy(update={"reporting": cfg.reporting.model_copy(update={"reportable": []})})
    write_mandated(strict, run["incidents"][:1], str(tmp_path))
    assert not Path(incident_dir(str(tmp_path), run["incidents"][0].incident_id)).exists()
    assert not list((tmp_path / "reports" / "mandated").rglob("*.tmp*"))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs |= {a for a, _ in attrs}


def test_hostile_log_text_stays_text(run: dict[str, Any]) -> None:
    cfg = run["cfg"]
    inc = next(i for i in run["incidents"] if reportable(i, cfg))
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)> [click](http://evil.example) | *x*'
    inc = dataclasses.replace(inc, title=evil, findings=tuple(dataclasses.replace(f, title=evil) for f in inc.findings))
    draft = build_draft(cfg, inc, reportable(inc, cfg), load_regimes()["nis2"], cfg.reporting.regimes["nis2"])
    page = render_html(draft)
    parser = _Tags()
    parser.feed(page)
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li",
                           "table", "tr", "th", "td", "section", "div", "strong"}
    assert parser.attrs <= {"charset", "http-equiv", "content", "class", "lang"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = render_markdown(draft)
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "\\[click\\](http://evil.example)" in md and "\\|" in md


def test_a_redacting_profile_keeps_internal_values_out_of_the_draft(run: dict[str, Any]) -> None:
    raw = yaml.safe_load(run["config_path"].read_text())
    raw["reporting"]["regimes"] = {"nis2": {"profile": "isac"}}
    cfg = parse_config(raw, str(run["config_path"]))
    from stix_export.redact import load_secret

    inc = next(i for i in run["incidents"] if reportable(i, cfg) and i.assets and i.accounts)
    draft = build_draft(cfg, inc, reportable(inc, cfg), load_regimes()["nis2"], cfg.reporting.regimes["nis2"], load_secret(cfg))
    text = json.dumps([f["value"] for f in draft["fields"]])
    for secret in (*inc.assets, *inc.accounts, *(a for a in inc.addresses if a.startswith("10."))):
        assert secret not in text, secret
    assert "cms-events.jsonl" not in text and "fortigate.log" not in text  # evidence paths dropped
    assert draft["profile"] == "isac"


def test_report_html_lists_the_open_clocks_most_urgent_first(run: dict[str, Any]) -> None:
    cfg, out = run["cfg"], run["out"]
    page = (out / "report.html").read_text()
    clocks = open_clocks(cfg, run["incidents"])
    assert clocks and [c.due_utc for c in clocks] == sorted(c.due_utc for c in clocks)
    rows = page.split('id="clock-list"')[1].split("</table>")[0].count('class="clock-row"')
    assert rows == len(clocks)
    first, last = clocks[0], clocks[-1]
    assert first.within in ("without_delay", "immediately") and last.within == "1 month"
    assert page.index(f'data-incident="{first.incident_id}" data-regime="{first.regime}"') < page.index(
        f'data-incident="{last.incident_id}" data-regime="{last.regime}"')
    assert "clock-list" not in (out / "report-isac.html").read_text()


def test_reporting_config_errors_name_file_and_key(tmp_path: Path, run: dict[str, Any], capsys) -> None:
    from pipelines.cli import main

    raw = yaml.safe_load(run["config_path"].read_text())
    raw["reporting"]["regimes"]["atlantis"] = {}
    raw["reporting"]["regimes"]["nis2"]["profile"] = "nobody"
    raw["reporting"]["facility"]["timezone"] = "Mars/Olympus"
    raw["reporting"]["facility"]["fax"] = "none"
    bad = run["config_path"].parent / "bad-reporting.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{bad}: reporting.facility.timezone: expected an IANA timezone") for line in err), err
    assert any(line.startswith(f"{bad}: reporting.facility.fax: unknown key") for line in err), err
    raw["reporting"]["facility"].pop("fax")
    raw["reporting"]["facility"]["timezone"] = "UTC"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{bad}: reporting.regimes.atlantis: expected a known regime") for line in err), err
    assert any(line.startswith(f"{bad}: reporting.regimes.nis2.profile: expected a sharing profile") for line in err), err
