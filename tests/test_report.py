"""report.html and report-<profile>.html from a run's outputs: content, escaping, redaction.

The incident is test_stix_export's (vendor VPN login, Modbus writes to the STS-03 PLC from
the tunnel address, PLC egress to an internet address), with its evidence pointing at real
log lines written here, one of them carrying markup an attacker could plant in a log. The
browser test (test_report_browser.py) loads a real run's report in Chromium.
"""
from __future__ import annotations

import dataclasses
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from pipelines.html_report import report_path, write_reports
from pipelines.html_report.view import EVIDENCE_SHOWN
from stix_export.bundle import incident_bundle
from stix_export.redact import RedactionError, Redactor
from tests.test_stix_export import EGRESS_PEER, EXTERNAL_VPN_PEER, PLC, TUNNEL, by_type, make_config, make_incident
from tests.test_stix_redaction import ISAC, SECRET, ZONE, profile, profiles_config
from transforms.model import Incident, sha256_text

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
LINES = {
    "openvpn.log": [f"2026-11-20 02:14:05 {EXTERNAL_VPN_PEER}:1194 zpmc-svc1 login ok tunnel {TUNNEL}"],
    "modbus.log": [f"1794875218.81\t{TUNNEL}\t51515\t{PLC}\t502\tWRITE_MULTIPLE_REGISTERS\t{HOSTILE}",
                   f"1794875222.50\t{TUNNEL}\t51515\t{PLC}\t502\tWRITE_SINGLE_REGISTER\t40010"],
    "conn.log": [f"1794875600.00\t{PLC}\t49152\t{EGRESS_PEER}\t443\ttcp\tSF"],
}
DEAD = {"source": "modbus", "location": "modbus.log:99", "reason": "not a Zeek Modbus log line", "raw": HOSTILE, "late": False}


def _with_real_evidence(logs: Path) -> Incident:
    """The test incident, its evidence re-pointed at lines of files under ``logs``."""
    files = {"f-vpn-0001": ["openvpn.log"], "f-modbus-0001": ["modbus.log", "modbus.log"], "f-egress-0001": ["conn.log"]}
    logs.mkdir(parents=True, exist_ok=True)
    for name, lines in LINES.items():
        (logs / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    inc = make_incident()
    findings = []
    for f in inc.findings:
        evidence = []
        for n, (ev, name) in enumerate(zip(f.evidence, files[f.finding_id]), start=1):
            line = LINES[name][n - 1]
            evidence.append(dataclasses.replace(ev, raw_ref=f"{logs / name}:{n}", sha256=sha256_text(line)))
        findings.append(dataclasses.replace(f, evidence=tuple(evidence)))
    return dataclasses.replace(inc, findings=tuple(findings))


def _outputs(out: Path, incidents: list[Incident], dead: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """What a run leaves behind, as the report reads it; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "incidents.jsonl").write_text("".join(json.dumps(i.to_dict()) + "\n" for i in incidents))
    (out / "deadletter").mkdir(exist_ok=True)
    (out / "deadletter" / "deadletter.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dead))
    return {"sources": {"modbus": {"files": 1, "read": 3, "parsed": 2, "dead_lettered": 1},
                        "openvpn": {"files": 1, "read": 1, "parsed": 1, "dead_lettered": 0}},
            "totals": {"read": 4, "parsed": 3, "dead_lettered": 1, "files": 2}, "wall_seconds": 1.5}


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Any, Path, Incident, dict[str, Any]]:
    cfg = profiles_config(ISAC, ZONE)
    inc = _with_real_evidence(tmp_path / "logs")
    out = tmp_path / "out"
    summary = _outputs(out, [inc], [DEAD])
    return cfg, out, inc, summary


def _write(cfg, out, summary, monkeypatch) -> list[str]:
    monkeypatch.setenv(cfg.export.secret_env, SECRET.decode())
    return write_reports(cfg, summary, str(out))


def test_report_holds_summary_incidents_and_a_timeline_with_raw_records(run, monkeypatch) -> None:
    cfg, out, inc, summary = run
    paths = _write(cfg, out, summary, monkeypatch)
    assert paths == [report_path(str(out)), report_path(str(out), "isac"), report_path(str(out), "isac-zone")]
    page = (out / "report.html").read_text()
    assert page.count('class="incident-row"') == 1
    assert f'data-incident="{inc.incident_id}"' in page
    assert "critical" in page and "STS-03" in page and "sts-03-plc" in page
    # the timeline: every finding once, in event time (VPN login, then writes, then egress)
    order = re.findall(r'class="timeline-entry[^"]*" data-finding="([^"]+)"', page)
    assert order == ["f-vpn-0001", "f-modbus-0001", "f-egress-0001"]
    for name, lines in LINES.items():  # each evidence pointer and its raw record, read back
        assert f"{out.parent / 'logs' / name}:1" in page
        assert lines[0] in html.unescape(page)
    assert 'class="raw unverified"' not in page
    # summary: records per source, the dead letter by reason, the detections that fired
    assert re.search(r"<td>modbus</td><td>1</td><td>3</td><td>2</td>", page)
    assert "not a Zeek Modbus log line" in page
    for det in ("vendor_session_outside_window", "modbus_write_non_engineering", "ot_unexpected_egress"):
        assert f'<td class="mono">{det}</td>' in page
    # findings over time: one row per detection, one per crane (the VPN finding is on no crane)
    charts = re.findall(r'<figure class="chart">(.*?)</figure>', page, re.S)
    assert len(charts) == 2 and "per detection" in charts[0] and "per crane" in charts[1]
    assert re.findall(r'<text class="lbl"[^>]*>([^<]+)</text>', charts[1]) == ["STS-03", "no crane"]
    assert len(re.findall(r'<rect class="bar"', charts[0])) == 3


def test_markup_in_a_log_line_is_text_not_markup(run, monkeypatch) -> None:
    cfg, out, _, summary = run
    _write(cfg, out, summary, monkeypatch)
    for path in out.glob("report*.html"):
        page = path.read_text()
        assert "<script" not in page.lower() and "<img" not in page.lower(), path.name
        assert "onerror=alert" not in page or "&lt;img src=x onerror=alert(1)&gt;" in page
    page = (out / "report.html").read_text()
    assert page.count(str(escape(HOSTILE))) == 2  # the evidence line and the dead letter, as text


class _Loads(HTMLParser):
    """Every place in a page that could make a browser fetch something."""

    FETCHING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "audio", "video",
                     "source", "track", "base", "form", "image", "use", "input"}
    URL_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background", "ping"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        if tag in self.FETCHING_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name in self.URL_ATTRS and not (name == "href" and (value or "").startswith("#")):
                self.found.append(f"{tag} {name}={value!r}")
            if name == "style" and re.search(r"(?i)url\(|@import", value or ""):
                self.found.append(f"{tag} style={value!r}")

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style and re.search(r"(?i)url\(|@import|https?:|//", data):
            self.found.append(f"style: {data[:80]!r}")


def test_report_loads_nothing_from_anywhere(run, monkeypatch) -> None:
    cfg, out, _, summary = run
    _write(cfg, out, summary, monkeypatch)
    for path in out.glob("report*.html"):
        page = path.read_text()
        parser = _Loads()
        parser.feed(page)
        assert parser.found == [], path.name
        assert "default-src 'none'" in page  # and the page forbids itself any load


def test_a_changed_log_line_is_not_shown_as_verified_evidence(run, monkeypatch) -> None:
    cfg, out, _, summary = run
    (out.parent / "logs" / "conn.log").write_text("rotated and rewritten\n")
    _write(cfg, out, summary, monkeypatch)
    page = (out / "report.html").read_text()
    assert page.count('class="raw unverified"') == 1
    assert "changed since the run: hash differs" in page
    (out.parent / "logs" / "conn.log").unlink()
    _write(cfg, out, summary, monkeypatch)
    assert "raw record not shown: input file no longer there" in (out / "report.html").read_text()


def _hidden(cfg, inc: Incident) -> list[str]:
    """What the ISAC profile's bundles hide: internal addresses, accounts, asset and crane ids
    (in any spelling), the port's incident and finding ids, evidence locations and plain
    evidence hashes (whole or cut as the page shows them), and any raw record."""
    values = {PLC, TUNNEL, "10.212.0.1", "zpmc-svc1", "sts-03-plc", "vpn-gw", "STS-03", "sts03", "STS 03"}
    values.update([inc.incident_id, *(f.finding_id for f in inc.findings)])
    values.update(h for f in inc.findings for ev in f.evidence for h in (ev.sha256, ev.sha256[:16]))
    values.update(ev.raw_ref for f in inc.findings for ev in f.evidence)
    values.update(str(Path(ev.raw_ref.rpartition(":")[0]).parent) for f in inc.findings for ev in f.evidence)
    values.update(line for lines in LINES.values() for line in lines)
    values.update([HOSTILE, "not a Zeek Modbus log line", "WRITE_MULTIPLE_REGISTERS", "40010"])
    return sorted(values)


def test_profile_reports_show_only_what_their_bundles_show(run, monkeypatch) -> None:
    cfg, out, inc, summary = run
    _write(cfg, out, summary, monkeypatch)
    full = html.unescape((out / "report.html").read_text())
    hidden = _hidden(cfg, inc)
    shown_in_full = [PLC, TUNNEL, "zpmc-svc1", "sts-03-plc", "vpn-gw", "STS-03", HOSTILE,
                     *(ev.raw_ref for f in inc.findings for ev in f.evidence)]
    shown_in_full += [inc.incident_id, *(ev.sha256 for f in inc.findings for ev in f.evidence)]
    assert [v for v in shown_in_full if v not in full] == []  # so their absence below means something
    redactor = Redactor(profile(cfg, "isac"), cfg, SECRET)
    for name in ("isac", "isac-zone"):
        page = html.unescape((out / f"report-{name}.html").read_text())
        low = page.lower()
        assert [v for v in hidden if v.lower() in low] == [], name
        assert "TLP:AMBER" in page and f"sharing profile {name}" in page
        assert page.count('class="incident-row"') == 1 and page.count('class="timeline-entry') == 3
        assert EXTERNAL_VPN_PEER in page and EGRESS_PEER in page  # what members can act on stays
        assert "location withheld" in page and "[crane]" in page and "crane_plc" in page
        # the values the profile's bundle carries, the same ones
        bundle = incident_bundle(inc, cfg, profile(cfg, name), SECRET)
        [incident] = by_type(bundle, "incident")
        ref = incident["external_references"][0]["external_id"]
        assert re.fullmatch(r"cwi-[0-9a-f]{32}", ref) and ref == redactor.incident_ref(inc.incident_id)
        assert re.findall(r'class="incident-row" data-incident="([^"]+)"', page) == [ref]
        assert f'<a href="#inc-{ref}">{incident["name"]}</a>' in page  # the bundle's rewritten title
        assert [login for a in by_type(bundle, "user-account") for login in [a["account_login"]]] == [
            redactor.account("zpmc-svc1")] and redactor.account("zpmc-svc1") in page
        sightings = " ".join(o["description"] for o in by_type(bundle, "sighting"))
        titles = re.findall(r'class="timeline-entry[^"]*".*?<b>(.*?)</b>', page, re.S)
        assert len(titles) == 3 and all(f"{t}." in sightings for t in titles), titles
        keyed = [r["external_id"] for o in by_type(bundle, "observed-data") for r in o["external_references"]]
        assert keyed and all(k.startswith("hmac-sha256:") for k in keyed)
        shown = re.findall(r'title="HMAC-SHA256 ([0-9a-f]{64})">hmac-sha256 ([0-9a-f]{16})…', page)
        assert all(whole.startswith(cut) for whole, cut in shown)
        # every evidence record shown, by its keyed digest; every digest the bundle carries (a
        # zone-mode bundle has none for a finding whose addresses are all internal) among them
        evidence = [ev for f in inc.findings for ev in f.evidence[:EVIDENCE_SHOWN]]
        assert sorted(f"hmac-sha256:{whole}" for whole, _ in shown) == sorted(
            redactor.evidence_digest(ev.sha256)["external_id"] for ev in evidence)
        assert set(keyed) <= {f"hmac-sha256:{whole}" for whole, _ in shown}
        order = re.findall(r'class="timeline-entry[^"]*" data-finding="([^"]+)"', page)
        assert order == [redactor.finding_ref(inc.incident_id, f) for f in ("f-vpn-0001", "f-modbus-0001", "f-egress-0001")]
    isac = (out / "report-isac.html").read_text()
    bundle_addresses = {o["value"] for o in by_type(incident_bundle(inc, cfg, profile(cfg, "isac"), SECRET), "ipv4-addr")}
    assert {redactor.pseudonym(PLC), redactor.pseudonym(TUNNEL)} <= bundle_addresses
    assert redactor.pseudonym(PLC) in isac and redactor.pseudonym(TUNNEL) in isac
    assert "[zone crane-ot]" in (out / "report-isac-zone.html").read_text()


def test_profile_reports_leave_out_incidents_below_min_severity(tmp_path: Path, monkeypatch) -> None:
    cfg = profiles_config(ISAC, min_severity=70)
    high = _with_real_evidence(tmp_path / "logs")
    low = dataclasses.replace(high, incident_id="inc-low-0001", severity=40, severity_label="medium",
                              title="A medium incident on crane STS-03")
    out = tmp_path / "out"
    summary = _outputs(out, [low, high])
    _write(cfg, out, summary, monkeypatch)
    full = (out / "report.html").read_text()
    assert re.findall(r'class="incident-row" data-incident="([^"]+)"', full) == [high.incident_id, "inc-low-0001"]
    isac = (out / "report-isac.html").read_text()
    redactor = Redactor(profile(cfg, "isac"), cfg, SECRET)
    assert re.findall(r'class="incident-row" data-incident="([^"]+)"', isac) == [redactor.incident_ref(high.incident_id)]
    assert "A medium incident" in full and "A medium incident" not in isac
    assert redactor.incident_ref("inc-low-0001") not in isac


def test_a_profile_report_that_would_leak_is_refused(run, monkeypatch) -> None:
    """If a change lets a value through, the profile report is refused rather than written."""
    cfg, out, _, summary = run
    monkeypatch.setattr(Redactor, "account", lambda self, login: login)
    with pytest.raises(RedactionError, match="HTML report not written, 1 account") as exc:
        _write(cfg, out, summary, monkeypatch)
    assert not (out / "report-isac.html").exists()
    assert (exc.value.profile, exc.value.kinds) == ("isac", {"account": 1})
    assert "zpmc-svc1" not in str(exc.value)  # the message names kinds and parts, never the value


def test_a_removed_profile_leaves_no_stale_report(run, monkeypatch) -> None:
    cfg, out, _, summary = run
    _write(cfg, out, summary, monkeypatch)
    assert (out / "report-isac-zone.html").exists()
    _write(profiles_config(ISAC), out, summary, monkeypatch)
    assert (out / "report-isac.html").exists() and not (out / "report-isac-zone.html").exists()


def test_a_run_without_incidents_says_so(tmp_path: Path, monkeypatch) -> None:
    cfg = profiles_config(ISAC)
    out = tmp_path / "out"
    summary = _outputs(out, [])
    _write(cfg, out, summary, monkeypatch)
    page = (out / "report.html").read_text()
    assert 'id="no-incidents"' in page and 'class="incident-row"' not in page
    assert 'id="no-incidents"' in (out / "report-isac.html").read_text()


def test_without_sharing_profiles_there_is_one_report_and_no_secret_is_needed(tmp_path: Path, monkeypatch) -> None:
    cfg = make_config("green")
    out = tmp_path / "out"
    summary = _outputs(out, [_with_real_evidence(tmp_path / "logs")])
    monkeypatch.delenv(cfg.export.secret_env, raising=False)
    assert write_reports(cfg, summary, str(out)) == [report_path(str(out))]
    assert sorted(p.name for p in out.glob("report*")) == ["report.html"]
    assert "TLP:GREEN" in (out / "report.html").read_text()
