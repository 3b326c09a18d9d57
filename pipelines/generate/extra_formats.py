"""``cranewatch generate --formats``: the generated terminal's remote-access and flow logs
written in other formats, so a demo or a test exercises those parsers end to end.

The generator writes FortiGate VPN and Zeek conn logs; for each requested format this
reads those files back with their parsers (the events are the truth), writes the same
events in the requested format, removes the originals and points ``config.yaml`` and
``truth.json`` at the new files. Remote access: ``globalprotect``, ``openvpn_log``,
``remote_access_jsonl`` (instead of ``fortigate_vpn``); flows: ``suricata_eve``,
``nfdump_csv`` (instead of ``zeek_conn``). A format keeps what it can say: GlobalProtect has
no statistics entries and OpenVPN logs the tunnel address on its own line
(``vpn.address_assigned``), so those records are fewer or shaped differently.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import zlib
from typing import Any, Callable

import yaml

REPLACES = {"globalprotect": "fortigate_vpn", "openvpn_log": "fortigate_vpn", "remote_access_jsonl": "fortigate_vpn",
            "suricata_eve": "zeek_conn", "nfdump_csv": "zeek_conn"}
FILES = {"globalprotect": "paloalto/globalprotect.log", "openvpn_log": "openvpn/openvpn.log",
         "remote_access_jsonl": "pam/sessions.jsonl", "suricata_eve": "suricata/eve.json",
         "nfdump_csv": "netflow/flows.csv"}
SOURCES = {"globalprotect": "globalprotect", "openvpn_log": "openvpn", "remote_access_jsonl": "pam",
           "suricata_eve": "suricata", "nfdump_csv": "netflow"}


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc)


def _attrs(e: dict) -> dict[str, str]:
    return dict(e.get("attrs") or [])


def _gp(e: dict) -> list[str]:
    from transforms.parsers.globalprotect import FIELDS

    t = _utc(e["time"])
    a = _attrs(e)
    if e["action"] == "vpn.login":
        eid, stage, status, duration = "gateway-connected", "tunnel", "success", "0"
    elif e["action"] == "vpn.logout":
        eid, stage, status = "gateway-logout", "logout", "success"
        duration = str(int(e["duration"] or 0))
    elif e["action"] == "auth.failure":
        eid, stage, status, duration = "portal-auth", "login", "failure", "0"
    else:
        return []  # GlobalProtect has no statistics entries
    v = dict.fromkeys(FIELDS, "")
    v.update({"future_use1": "1", "receive_time": f"{t:%Y/%m/%d %H:%M:%S}", "serial": "013201001234",
              "type": "GLOBALPROTECT", "subtype": "0", "future_use2": "2561", "time_generated": f"{t:%Y/%m/%d %H:%M:%S}",
              "vsys": "vsys1", "eventid": eid, "stage": stage, "tunnel_type": "IPSec" if status == "success" else "",
              "srcuser": e["user"] or "", "public_ip": e["src_ip"] or "0.0.0.0", "public_ipv6": "::",
              "private_ip": a.get("tunnel_ip", "0.0.0.0"), "private_ipv6": "::", "repeatcnt": "1",
              "reason": a.get("reason", "") if status == "failure" else "", "status": status,
              "login_duration": duration, "error_code": "0", "portal": "gp-portal", "seqno": "1",
              "actionflags": "0x0", "high_res_timestamp": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "gateway": "gw-terminal", "device_name": "pa-terminal", "vsys_id": "1"})
    return [",".join(f'"{x}"' if "," in x else x for x in v.values())]


def _openvpn(e: dict) -> list[str]:
    t = f"{_utc(e['time']):%Y-%m-%d %H:%M:%S}"
    a = _attrs(e)
    peer = f"{e['src_ip']}:{1024 + int(e['session_id'] or 0) % 60000}"
    if e["action"] == "vpn.login":
        return [f"{t} {peer} [{e['user']}] Peer Connection Initiated with [AF_INET]{peer}",
                f"{t} {e['user']}/{peer} MULTI_sva: pool returned IPv4={a.get('tunnel_ip', '0.0.0.0')}, IPv6=(Not enabled)"]
    if e["action"] == "vpn.logout":
        return [f"{t} {e['user']}/{peer} SIGTERM[soft,remote-exit] received, client-instance exiting"]
    if e["action"] == "auth.failure":
        return [f"{t} {peer} TLS Auth Error: Auth Username/Password verification failed for peer"]
    return []


def _jsonl(e: dict) -> list[str]:
    rec: dict[str, Any] = {"time": _utc(e["time"]).isoformat().replace("+00:00", "Z"), "action": e["action"]}
    for k in ("user", "vendor", "src_ip", "src_port", "session_id", "result", "duration", "bytes_out", "bytes_in"):
        if e.get(k) is not None:
            rec[k] = e[k]
    if e.get("attrs"):
        rec["attrs"] = _attrs(e)
    return [json.dumps(rec, sort_keys=True)]


def _eve(e: dict) -> list[str]:
    start = _utc(e["time"])
    end = start + dt.timedelta(seconds=e["duration"] or 0)
    fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")  # noqa: E731
    rec = {"timestamp": fmt(end), "flow_id": zlib.crc32(e["raw_ref"].encode()), "event_type": "flow",
           "src_ip": e["src_ip"], "src_port": e["src_port"], "dest_ip": e["dst_ip"], "dest_port": e["dst_port"],
           "proto": (e["proto"] or "").upper(),
           "flow": {"pkts_toserver": e["packets_out"] or 0, "pkts_toclient": e["packets_in"] or 0,
                    "bytes_toserver": e["bytes_out"] or 0, "bytes_toclient": e["bytes_in"] or 0,
                    "start": fmt(start), "end": fmt(end), "age": int(e["duration"] or 0),
                    "state": "closed", "reason": "timeout", "alerted": False}}
    if e.get("service"):
        rec["app_proto"] = e["service"].split(",")[0]
    return [json.dumps(rec)]


def _nfdump(e: dict) -> list[str]:
    from transforms.parsers.nfdump_csv import LEGACY_HEADER

    start = _utc(e["time"])
    end = start + dt.timedelta(seconds=e["duration"] or 0)
    proto = (e["proto"] or "0").upper()
    fields = [f"{start:%Y-%m-%d %H:%M:%S}", f"{end:%Y-%m-%d %H:%M:%S}", f"{e['duration'] or 0:.3f}", e["src_ip"],
              e["dst_ip"], str(e["src_port"] or 0), str(e["dst_port"] or 0), proto, "........", "0", "0",
              str(e["packets_out"] or 0), str(e["bytes_out"] or 0), str(e["packets_in"] or 0), str(e["bytes_in"] or 0),
              "0", "0", "0", "0", "0", "0", "0", "0", "0.0.0.0", "0.0.0.0", "0", "0"]
    fields += ["00:00:00:00:00:00"] * 4 + ["0-0-0"] * 10 + ["    0.000"] * 3
    fields += ["10.0.0.1", "0/0", "1", f"{end:%Y-%m-%d %H:%M:%S}.000"]
    assert len(fields) == len(LEGACY_HEADER)
    return [",".join(fields)]


WRITERS: dict[str, Callable[[dict], list[str]]] = {
    "globalprotect": _gp, "openvpn_log": _openvpn, "remote_access_jsonl": _jsonl, "suricata_eve": _eve,
    "nfdump_csv": _nfdump}


def _events(fmt: str, source: dict, out_dir: str) -> tuple[list[dict], list[str]]:
    import glob

    from transforms.parsers import parse_file

    files: list[str] = []
    for pattern in source["paths"]:
        files += glob.glob(os.path.join(out_dir, pattern))
    rows: list[dict] = []
    for path in sorted(set(files)):
        for r in parse_file(fmt, source["name"], path, source.get("timezone", "UTC")):
            rows += r.events.to_pylist()
    rows.sort(key=lambda e: (e["time"], e["raw_ref"]))
    return rows, sorted(set(files))


def check(formats: list[str]) -> None:
    """``ValueError`` naming what is wrong with a ``--formats`` list (before anything is written)."""
    unknown = [f for f in formats if f not in REPLACES]
    if unknown:
        raise ValueError(f"--formats: expected some of {', '.join(sorted(REPLACES))}, got {', '.join(unknown)}")
    families = [REPLACES[f] for f in formats]
    if len(set(families)) != len(families):
        raise ValueError("--formats: expected at most one remote-access and one flow format")


def apply(out_dir: str, formats: list[str]) -> dict[str, int]:
    """Rewrite the generated corpus in ``out_dir`` with ``formats``; returns relative path →
    records of each file written."""
    check(formats)
    cfg_path = os.path.join(out_dir, "config.yaml")
    with open(cfg_path, encoding="utf-8") as fh:
        head = fh.readline()
        cfg = yaml.safe_load(head + fh.read())
    truth_path = os.path.join(out_dir, "truth.json")
    with open(truth_path, encoding="utf-8") as fh:
        truth = json.load(fh)
    written: dict[str, int] = {}
    for fmt in formats:
        old_format = REPLACES[fmt]
        i, source = next((i, s) for i, s in enumerate(cfg["sources"]) if s["format"] == old_format)
        events, old_files = _events(old_format, source, out_dir)
        lines: list[str] = []
        if fmt == "nfdump_csv":
            from transforms.parsers.nfdump_csv import LEGACY_HEADER

            lines.append(",".join(LEGACY_HEADER))
        for e in events:
            lines += WRITERS[fmt](e)
        rel = FILES[fmt]
        os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
        with open(os.path.join(out_dir, rel), "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        for path in old_files:
            os.remove(path)
            truth["files"].pop(os.path.relpath(path, out_dir), None)
        n = len(lines) - (1 if fmt == "nfdump_csv" else 0)
        truth["files"][rel] = n
        truth["records"].pop(old_format, None)
        truth["records"][fmt] = n
        cfg["sources"][i] = {"name": SOURCES[fmt], "format": fmt, "paths": [rel], "timezone": "UTC"}
        written[rel] = n
    truth["events"] = sum(truth["files"].values())
    truth["files"] = dict(sorted(truth["files"].items()))
    truth["records"] = dict(sorted(truth["records"].items()))
    with open(cfg_path, "w", encoding="utf-8") as fh:
        fh.write(head)
        yaml.safe_dump(cfg, fh, sort_keys=False, allow_unicode=True, width=100)
    with open(truth_path, "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return written
