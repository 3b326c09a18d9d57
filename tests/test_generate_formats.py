"""``cranewatch generate --formats``: the generated terminal's VPN and flow logs written as
GlobalProtect / remote-access JSON lines / OpenVPN log / OpenVPN status / Windows Security
and Suricata EVE / nfdump CSV / nfdump JSON instead. A batch run over them finds what it
finds over the FortiGate and Zeek originals, except where a format cannot say what a
detection needs: OpenVPN status snapshots (``vpn.session``) and the jump host's RDP logons
(``auth.*``) have no ``vpn.login``, so the VPN detections stay silent there and the rest
is unchanged."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipelines.batch import run_batch
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.generate.extra_formats import STATUS_EVERY, apply
from pipelines.summary import build_summary
from transforms.parsers import parse_file

#: what only a VPN gateway's login records (``vpn.login``) can show
VPN_DETECTIONS = {"vendor_session_outside_window", "vendor_login_unexpected_network", "vpn_concurrent_sessions",
                  "vpn_failed_logins_then_success", "vpn_password_spraying"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen") / "base"
    generate(str(out), events=6000, seed=11)
    cfg = load_config(str(out / "config.yaml"))
    return out, build_summary(cfg, run_batch(cfg, str(out.parent / "base-out")))


def _findings(summary: dict) -> dict:
    return summary["findings"]["per_detection"]


@pytest.mark.parametrize("formats", [["globalprotect", "suricata_eve"], ["remote_access_jsonl", "nfdump_csv"],
                                     ["nfdump_json"]])
def test_same_findings_in_other_formats(corpus, tmp_path: Path, formats: list[str]) -> None:
    base, base_summary = corpus
    out = tmp_path / "alt"
    shutil.copytree(base, out)
    written = apply(str(out), formats)
    assert set(written) <= {"paloalto/globalprotect.log", "pam/sessions.jsonl", "suricata/eve.json", "netflow/flows.csv",
                            "netflow/flows.json"}
    cfg = load_config(str(out / "config.yaml"))
    kept = {"fortigate_vpn", "zeek_conn"} - {"fortigate_vpn" if f not in FLOW_FORMATS else "zeek_conn" for f in formats}
    assert {s.format for s in cfg.sources} == {"cms_events", "zeek_modbus", "zeek_dns", "zeek_s7comm", "zeek_cip",
                                               *kept, *formats}
    if set(formats) - FLOW_FORMATS:
        assert not (out / "fortigate").exists() or not any((out / "fortigate").iterdir())
    summary = _run_and_check(out, tmp_path / "out")
    assert _findings(summary) == _findings(base_summary)
    assert summary["incidents"] == base_summary["incidents"]


FLOW_FORMATS = {"suricata_eve", "nfdump_csv", "nfdump_json"}


def _run_and_check(out: Path, run_dir: Path) -> dict:
    """Batch run over a rewritten corpus: no dead letters, and every record ``truth.json``
    counts is read."""
    cfg = load_config(str(out / "config.yaml"))
    summary = build_summary(cfg, run_batch(cfg, str(run_dir)))
    assert all(s["dead_lettered"] == 0 for s in summary["sources"].values())
    truth = json.loads((out / "truth.json").read_text())
    assert truth["events"] == sum(truth["files"].values())
    assert {name: s["read"] for name, s in summary["sources"].items()} == {
        s.name: sum(truth["files"][f] for f in truth["files"] if any(f.startswith(p.split("*")[0]) for p in s.paths))
        for s in cfg.sources}
    return summary


def _parsed(fmt: str, root: Path, pattern: str) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(root.glob(pattern)):
        for r in parse_file(fmt, "t", str(path), "UTC"):
            assert not r.dead_letters
            rows += r.events.to_pylist()
    for e in rows:
        e["attrs"] = dict(e["attrs"] or [])
    return rows


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc)


def _incident_detections(run_dir: Path) -> list[tuple[str, ...]]:
    """Per incident, its detections other than ``VPN_DETECTIONS``; incidents left empty
    are dropped."""
    out = []
    for line in (run_dir / "incidents.jsonl").read_text().splitlines():
        ids = tuple(sorted({f["detection_id"] for f in json.loads(line)["findings"]} - VPN_DETECTIONS))
        if ids:
            out.append(ids)
    return sorted(out)


@pytest.mark.parametrize("fmt", ["windows_security", "openvpn_status"])
def test_formats_without_vpn_logins(corpus, tmp_path: Path, fmt: str) -> None:
    """Generated, parsed without dead letters and run through the pipeline; what the format
    cannot carry is missing (the VPN detections' findings and the incidents made only of
    them), everything else is found as over the FortiGate log."""
    base, base_summary = corpus
    out = tmp_path / "alt"
    shutil.copytree(base, out)
    written = apply(str(out), [fmt])
    cfg = load_config(str(out / "config.yaml"))
    assert {s.format for s in cfg.sources} == {"cms_events", "zeek_modbus", "zeek_conn", "zeek_dns", "zeek_s7comm",
                                               "zeek_cip", fmt}
    assert not (out / "fortigate").exists() or not any((out / "fortigate").iterdir())
    summary = _run_and_check(out, tmp_path / "out")
    base_findings = _findings(base_summary)
    assert VPN_DETECTIONS <= set(base_findings)  # the corpus has something to miss
    assert _findings(summary) == {k: v for k, v in base_findings.items() if k not in VPN_DETECTIONS}
    assert _incident_detections(tmp_path / "out") == _incident_detections(base.parent / "base-out")

    fortigate = _parsed("fortigate_vpn", base, "fortigate/*.log*")
    logins = [e for e in fortigate if e["action"] == "vpn.login"]
    logouts = {e["session_id"]: e for e in fortigate if e["action"] == "vpn.logout"}
    failures = [e for e in fortigate if e["action"] == "auth.failure"]
    if fmt == "windows_security":
        assert set(written) == {"windows/security.jsonl"}
        events = _parsed(fmt, out, "windows/security.jsonl")
        by_id = Counter(e["attrs"]["event_id"] for e in events)
        assert (by_id["4624"], by_id["4634"], by_id["4625"]) == (len(logins), len(logouts), len(failures))
        assert by_id["4778"] == by_id["4779"] > 0
        assert all(e["attrs"]["logon_type"] == "10" for e in events if e["attrs"]["event_id"] in ("4624", "4625"))
        # who and from where (the vendor's public address) are kept; the tunnel address is not
        assert sorted((e["user"], e["src_ip"], _utc(e["time"])) for e in events if e["action"] == "auth.success") == \
            sorted((e["user"], e["src_ip"], _utc(e["time"]).replace(microsecond=_utc(e["time"]).microsecond // 1000 * 1000))
                   for e in logins)
        assert sorted((e["user"], e["src_ip"]) for e in events if e["action"] == "auth.failure") == \
            sorted((e["user"], e["src_ip"]) for e in failures)
        assert not any("tunnel_ip" in e["attrs"] for e in events)
        # a logon's id links its disconnect, reconnect and logoff, all inside the session
        logon = {e["session_id"]: e for e in events if e["action"] == "auth.success"}
        for e in (e for e in events if e["action"] != "auth.failure"):
            assert e["session_id"] in logon and e["time"] >= logon[e["session_id"]]["time"]
    else:
        assert written and all(p.startswith("openvpn/status/status-") for p in written)
        events = _parsed(fmt, out, "openvpn/status/*.log")
        assert {e["action"] for e in events} == {"vpn.session"}
        truth = json.loads((out / "truth.json").read_text())
        start = dt.datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(truth["end"].replace("Z", "+00:00"))
        snapshots = [start + k * STATUS_EVERY for k in range(int((end - start) / STATUS_EVERY))]
        expected = Counter()
        for login in logins:
            since = _utc(login["time"]).replace(microsecond=0)
            until = _utc(logouts[login["session_id"]]["time"]) if login["session_id"] in logouts else end
            n = sum(1 for t in snapshots if since <= t < until)
            if n:
                expected[(login["user"], login["src_ip"], login["attrs"]["tunnel_ip"], since)] = n
        # every session is listed once per snapshot it spans, with its public and tunnel address
        assert Counter((e["user"], e["src_ip"], e["attrs"]["tunnel_ip"], _utc(e["time"])) for e in events) == expected
        # planted vendor sessions last 20-50 min: each one is seen
        # (the session's account comes first; a sprayer's other guesses never get a session)
        planted = {s["accounts"][0] for s in truth["scenarios"] if s["scenario"] in (2, 3, 4, 9)}
        assert planted and planted <= {user for user, *_ in expected}


def test_deterministic(corpus, tmp_path: Path) -> None:
    base, _ = corpus
    for formats in (["windows_security", "nfdump_json"], ["openvpn_status"]):
        texts = []
        for name in ("a", "b"):
            out = tmp_path / f"{name}-{formats[0]}"
            shutil.copytree(base, out)
            written = apply(str(out), formats)
            texts.append({rel: (out / rel).read_bytes() for rel in [*written, "truth.json", "config.yaml"]})
        assert texts[0] == texts[1]


def test_cli_generate_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path / "g"), "--events", "3000", "--formats", "openvpn_log"]) == 0
    assert (tmp_path / "g" / "openvpn" / "openvpn.log").is_file()
    assert main(["generate", "--out", str(tmp_path / "w"), "--events", "3000",
                 "--formats", "windows_security,nfdump_json"]) == 0
    assert (tmp_path / "w" / "windows" / "security.jsonl").is_file()
    assert (tmp_path / "w" / "netflow" / "flows.json").is_file()
    assert main(["generate", "--out", str(tmp_path / "h"), "--formats", "zeek_conn"]) == 2
    assert "--formats: expected some of" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
