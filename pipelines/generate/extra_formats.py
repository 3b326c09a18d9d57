"""``cranewatch generate --formats``: the generated terminal's remote-access and flow logs
written in other formats, so a demo or a test exercises those parsers end to end.

The generator writes FortiGate VPN and Zeek conn logs; for each requested format this
reads those files back with their parsers (the events are the truth), writes the same
events in the requested format, removes the originals and points ``config.yaml`` and
``truth.json`` at the new files. Remote access: ``globalprotect``, ``openvpn_log``,
``remote_access_jsonl``, ``openvpn_status``, ``windows_security`` (instead of
``fortigate_vpn``); flows: ``suricata_eve``, ``nfdump_csv``, ``nfdump_json`` (instead of
``zeek_conn``). A format keeps what it can say: GlobalProtect has no statistics entries and
OpenVPN logs the tunnel address on its own line (``vpn.address_assigned``), so those
records are fewer or shaped differently. Three formats are not one line per event:

* ``openvpn_status``: a status snapshot every ``STATUS_EVERY`` (5 min, from the corpus
  start), version 2, appended to one file per hour (``openvpn/status/status-YYYY-MM-DD-HH.log``,
  as a cron job archiving ``--status`` would). Each snapshot lists the sessions open at its
  time, so a session appears once per snapshot it spans (a session shorter than 5 min may
  appear in none); failed logins and logouts are not in a status file.
* ``windows_security``: the jump host's Security log (Winlogbeat JSON lines): a tunnel-up
  is a 4624 RDP logon (LogonType 10), a tunnel-down a 4634 logoff, a failed login a 4625;
  a third of the sessions of 10 min or more also have an RDP disconnect/reconnect (4779,
  4778). ``IpAddress`` is the vendor's public address; there is no tunnel address.
* ``nfdump_json``: ``nfdump -o json``, one array of pretty-printed objects (nfdump's
  trailing commas included).

Everything derives from the parsed records (session ids, times), never from a random
draw, so the output is as deterministic as the generator's.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
import zlib
from typing import Any, Callable

import yaml

REPLACES = {"globalprotect": "fortigate_vpn", "openvpn_log": "fortigate_vpn", "remote_access_jsonl": "fortigate_vpn",
            "openvpn_status": "fortigate_vpn", "windows_security": "fortigate_vpn",
            "suricata_eve": "zeek_conn", "nfdump_csv": "zeek_conn", "nfdump_json": "zeek_conn"}
#: the path written (a glob for the formats written as several files)
FILES = {"globalprotect": "paloalto/globalprotect.log", "openvpn_log": "openvpn/openvpn.log",
         "remote_access_jsonl": "pam/sessions.jsonl", "openvpn_status": "openvpn/status/status-*.log",
         "windows_security": "windows/security.jsonl", "suricata_eve": "suricata/eve.json",
         "nfdump_csv": "netflow/flows.csv", "nfdump_json": "netflow/flows.json"}
SOURCES = {"globalprotect": "globalprotect", "openvpn_log": "openvpn", "remote_access_jsonl": "pam",
           "openvpn_status": "openvpn-status", "windows_security": "jump-host-security",
           "suricata_eve": "suricata", "nfdump_csv": "netflow", "nfdump_json": "netflow"}
#: how often an OpenVPN status snapshot is taken (each hour's snapshots share one file)
STATUS_EVERY = dt.timedelta(minutes=5)
JUMP_HOST = "ot-jump01"


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


def _nfdump_json(events: list[dict], span: tuple[dt.datetime, dt.datetime]) -> dict[str, tuple[list[str], int]]:
    """``nfdump -o json``: ``[``, pretty-printed objects separated by ``,``, ``]``; nfdump
    puts a comma after every field, the last one too."""
    from transforms.parsers._common import IP_PROTOCOLS

    numbers = {name: int(n) for n, name in IP_PROTOCOLS.items()}
    fmt = lambda t: f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}"  # noqa: E731
    objects: list[str] = []
    for e in events:
        start = _utc(e["time"])
        end = start + dt.timedelta(seconds=e["duration"] or 0)
        proto = (e["proto"] or "").lower()
        v6 = ":" in (e["src_ip"] or "")
        fields: list[tuple[str, Any]] = [
            ("type", "FLOW"), ("sampled", 0), ("export_sysid", 1), ("first", fmt(start)), ("last", fmt(end)),
            ("received", fmt(end)), ("in_packets", e["packets_out"] or 0), ("in_bytes", e["bytes_out"] or 0),
            ("proto", numbers.get(proto, int(proto) if proto.isdigit() else 0))]
        if proto in ("icmp", "icmp6"):
            fields += [("icmp_type", e["src_port"] or 0), ("icmp_code", e["dst_port"] or 0)]
        else:
            fields += [("tcp_flags", "........"), ("src_port", e["src_port"] or 0), ("dst_port", e["dst_port"] or 0)]
        fields += [("fwd_status", 0), ("src_tos", 0), ("src6_addr" if v6 else "src4_addr", e["src_ip"]),
                   ("dst6_addr" if v6 else "dst4_addr", e["dst_ip"]), ("src_geo", ""), ("dst_geo", ""),
                   ("input_snmp", 0), ("output_snmp", 0), ("direction", 0), ("dst_tos", 0),
                   ("out_packets", e["packets_in"] or 0), ("out_bytes", e["bytes_in"] or 0), ("aggr_flows", 1),
                   ("ip4_router", "10.0.0.1")]
        objects.append("{\n" + "\n".join(f"\t{json.dumps(k)} : {json.dumps(v)}," for k, v in fields) + "\n}")
    return {FILES["nfdump_json"]: (["[", ",\n".join(objects), "]"] if objects else ["[", "]"], len(objects))}


def _sessions(events: list[dict], end: dt.datetime) -> list[dict]:
    """VPN sessions (login, logout or None, end) in login order."""
    logouts = {e["session_id"]: e for e in events if e["action"] == "vpn.logout" and e["session_id"]}
    out = []
    for e in events:
        if e["action"] == "vpn.login":
            out_e = logouts.get(e["session_id"])
            out.append({"login": e, "logout": out_e, "end": _utc(out_e["time"]) if out_e else end})
    return out


def _openvpn_status(events: list[dict], span: tuple[dt.datetime, dt.datetime]) -> dict[str, tuple[list[str], int]]:
    """OpenVPN 2.6 ``--status-version 2`` snapshots every ``STATUS_EVERY``, appended to one
    file per hour; a session is listed in every snapshot taken while it is open."""
    start, end = span
    sessions = _sessions(events, end)
    files: dict[str, tuple[list[str], int]] = {}
    t = start
    while t < end:
        rel = f"openvpn/status/status-{t:%Y-%m-%d-%H}.log"
        lines, n = files.get(rel, ([], 0))
        stamp = int(t.timestamp())
        lines += [("TITLE,OpenVPN 2.6.12 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] "
                   "[MH/PKTINFO] [AEAD] [DCO]"), f"TIME,{t:%Y-%m-%d %H:%M:%S},{stamp}",
                  ("HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,"
                   "Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher")]
        routes = []
        for client_id, s in enumerate(sessions):
            login = s["login"]
            since = _utc(login["time"]).replace(microsecond=0)
            if not since <= t < s["end"]:
                continue
            sid = int(login["session_id"] or 0)
            real = f"{login['src_ip']}:{1024 + sid % 60000}"
            tunnel = _attrs(login).get("tunnel_ip", "")
            out = s["logout"] or {}
            total = max((s["end"] - since).total_seconds(), 1.0)
            share = min((t - since).total_seconds() / total, 1.0)
            received = int((out.get("bytes_out") or 0) * share)
            sent = int((out.get("bytes_in") or 0) * share)
            lines.append(f"CLIENT_LIST,{login['user']},{real},{tunnel},,{received},{sent},"
                         f"{since:%Y-%m-%d %H:%M:%S},{int(since.timestamp())},{login['user']},{client_id},"
                         f"{client_id},AES-256-GCM")
            last = t - dt.timedelta(seconds=sid % 30)
            routes.append(f"ROUTING_TABLE,{tunnel},{login['user']},{real},{last:%Y-%m-%d %H:%M:%S},"
                          f"{int(last.timestamp())}")
            n += 1
        lines += ["HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)",
                  *routes, "GLOBAL_STATS,Max bcast/mcast queue length,0", "GLOBAL_STATS,dco_enabled,0", "END"]
        files[rel] = (lines, n)
        t += STATUS_EVERY
    return files


def _windows(events: list[dict], span: tuple[dt.datetime, dt.datetime]) -> dict[str, tuple[list[str], int]]:
    """The jump host's Security log as Winlogbeat JSON lines: 4624/4634 (LogonType 10) per
    session, 4625 per failed login, 4779 + 4778 in a third of the sessions of 10 min or more."""
    computer = f"{JUMP_HOST.upper()}.t3.port.example"
    records: list[tuple[dt.datetime, int, int, dict]] = []  # time, order, event id, event_data
    logouts = {e["session_id"]: e for e in events if e["action"] == "vpn.logout" and e["session_id"]}

    def logon_id(e: dict) -> str:
        return f"0x{int(e['session_id'] or 0) & 0xFFFFFFF:x}"

    for e in events:
        t, user = _utc(e["time"]), e["user"] or "-"
        if e["action"] == "vpn.login":
            records.append((t, 0, 4624, {
                "SubjectUserSid": "S-1-5-18", "SubjectUserName": f"{JUMP_HOST.upper()}$", "SubjectDomainName": "T3OT",
                "SubjectLogonId": "0x3e7", "TargetUserName": user, "TargetDomainName": "T3OT",
                "TargetLogonId": logon_id(e), "LogonType": "10", "LogonProcessName": "User32 ",
                "AuthenticationPackageName": "Negotiate", "WorkstationName": JUMP_HOST.upper(),
                "ProcessName": "C:\\Windows\\System32\\svchost.exe", "IpAddress": e["src_ip"] or "-", "IpPort": "0"}))
            sid = int(e["session_id"] or 0)
            out = logouts.get(e["session_id"])
            if out is not None and (out["duration"] or 0) >= 600 and sid % 3 == 0:
                gone = t + dt.timedelta(seconds=int(out["duration"] * 0.4))
                back = gone + dt.timedelta(seconds=60 + sid % 150)
                data = {"AccountName": user, "AccountDomain": "T3OT", "LogonID": logon_id(e),
                        "SessionName": f"RDP-Tcp#{sid % 97}", "ClientName": f"{user.split('-')[0].upper()}-LT",
                        "ClientAddress": e["src_ip"] or "-"}
                records += [(gone, 1, 4779, data), (back, 1, 4778, data)]
        elif e["action"] == "vpn.logout":
            records.append((t, 2, 4634, {"TargetUserSid": "S-1-5-21-3623811015-3361044348-30300820-1013",
                                         "TargetUserName": user, "TargetDomainName": "T3OT",
                                         "TargetLogonId": logon_id(e), "LogonType": "10"}))
        elif e["action"] == "auth.failure":
            unknown = "unknown_user" in _attrs(e).get("reason", "")
            records.append((t, 0, 4625, {
                "SubjectUserSid": "S-1-5-18", "SubjectUserName": f"{JUMP_HOST.upper()}$", "SubjectDomainName": "T3OT",
                "TargetUserName": user, "TargetDomainName": "T3OT", "Status": "0xc000006d",
                "SubStatus": "0xc0000064" if unknown else "0xc000006a",
                "FailureReason": "Unknown user name or bad password.", "LogonType": "10",
                "LogonProcessName": "User32 ", "AuthenticationPackageName": "Negotiate",
                "WorkstationName": JUMP_HOST.upper(), "IpAddress": e["src_ip"] or "-", "IpPort": "0"}))
    records.sort(key=lambda r: (r[0], r[1]))
    outcome = {4624: "success", 4625: "failure", 4634: "success", 4778: "success", 4779: "success"}
    lines = []
    for record_id, (t, _, eid, data) in enumerate(records, start=184_000):
        lines.append(json.dumps({
            "@timestamp": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": {"code": str(eid), "provider": "Microsoft-Windows-Security-Auditing", "outcome": outcome[eid]},
            "host": {"name": JUMP_HOST},
            "winlog": {"channel": "Security", "computer_name": computer, "event_id": str(eid), "record_id": record_id,
                       "provider_name": "Microsoft-Windows-Security-Auditing", "event_data": data}}))
    return {FILES["windows_security"]: (lines, len(lines))}


WRITERS: dict[str, Callable[[dict], list[str]]] = {
    "globalprotect": _gp, "openvpn_log": _openvpn, "remote_access_jsonl": _jsonl, "suricata_eve": _eve,
    "nfdump_csv": _nfdump}
#: formats written from the whole list of events (and the corpus span) → relative path →
#: (lines, records)
FILE_WRITERS: dict[str, Callable[[list[dict], tuple[dt.datetime, dt.datetime]], dict[str, tuple[list[str], int]]]] = {
    "openvpn_status": _openvpn_status, "windows_security": _windows, "nfdump_json": _nfdump_json}


def _rfc3339(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


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
        if fmt in FILE_WRITERS:
            files = FILE_WRITERS[fmt](events, (_rfc3339(truth["start"]), _rfc3339(truth["end"])))
        else:
            lines: list[str] = []
            if fmt == "nfdump_csv":
                from transforms.parsers.nfdump_csv import LEGACY_HEADER

                lines.append(",".join(LEGACY_HEADER))
            for e in events:
                lines += WRITERS[fmt](e)
            files = {FILES[fmt]: (lines, len(lines) - (1 if fmt == "nfdump_csv" else 0))}
        # the originals, and stale files of an earlier run that this source's glob would read
        for path in sorted(set(old_files) | set(glob.glob(os.path.join(out_dir, FILES[fmt])))):
            os.remove(path)
            truth["files"].pop(os.path.relpath(path, out_dir), None)
        for rel, (text, n) in files.items():
            os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
            with open(os.path.join(out_dir, rel), "w", encoding="utf-8") as fh:
                fh.write("\n".join(text) + "\n")
            truth["files"][rel] = n
            written[rel] = n
        truth["records"].pop(old_format, None)
        truth["records"][fmt] = sum(n for _, n in files.values())
        cfg["sources"][i] = {"name": SOURCES[fmt], "format": fmt, "paths": [FILES[fmt]], "timezone": "UTC"}
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
