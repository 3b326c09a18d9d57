"""windows_security conformance: logon events as Winlogbeat and python-evtx write them.

Field names and values follow Microsoft's event documentation for 4624, 4625, 4634, 4778
and 4779 and the two exporters' layouts (Winlogbeat's ``winlog.*`` ECS document, nested or
flattened; python-evtx's XML record converted to JSON). See docs/formats/windows-security.md.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

UTC = dt.timezone.utc
RDP_LOGON = {  # Winlogbeat 8, nested
    "@timestamp": "2026-11-20T08:15:02.123Z",
    "event": {"code": "4624", "provider": "Microsoft-Windows-Security-Auditing", "outcome": "success"},
    "host": {"name": "jump01"},
    "winlog": {"channel": "Security", "computer_name": "JUMP01.port.local", "event_id": "4624",
               "record_id": 918273, "provider_name": "Microsoft-Windows-Security-Auditing",
               "event_data": {"SubjectUserSid": "S-1-5-18", "SubjectUserName": "JUMP01$",
                              "TargetUserSid": "S-1-5-21-1-2-3-1105", "TargetUserName": "zpmc-svc1",
                              "TargetDomainName": "PORT", "TargetLogonId": "0x8a1f2c", "LogonType": "10",
                              "LogonProcessName": "User32 ", "AuthenticationPackageName": "Negotiate",
                              "WorkstationName": "VENDOR-LT07", "IpAddress": "10.212.134.200", "IpPort": "0"}}}
FAILED_FLAT = {  # flattened dotted keys, as some shippers store them
    "@timestamp": "2026-11-20T08:14:30.000Z", "winlog.event_id": 4625, "winlog.computer_name": "HMI-STS01",
    "winlog.event_data.TargetUserName": "administrator", "winlog.event_data.TargetDomainName": "HMI-STS01",
    "winlog.event_data.Status": "0xc000006d", "winlog.event_data.SubStatus": "0xc000006a",
    "winlog.event_data.FailureReason": "%%2313", "winlog.event_data.LogonType": "3",
    "winlog.event_data.IpAddress": "::ffff:203.0.113.99", "winlog.event_data.IpPort": "49811",
    "winlog.event_data.WorkstationName": "KALI"}
EVTX_LOGOFF = {  # python-evtx record → xmltodict → JSON
    "Event": {"@xmlns": "http://schemas.microsoft.com/win/2004/08/events/event",
              "System": {"Provider": {"@Name": "Microsoft-Windows-Security-Auditing"},
                         "EventID": {"@Qualifiers": "", "#text": "4634"},
                         "TimeCreated": {"@SystemTime": "2026-11-20 09:42:10.654321"},
                         "EventRecordID": "918300", "Channel": "Security", "Computer": "JUMP01.port.local"},
              "EventData": {"Data": [{"@Name": "TargetUserSid", "#text": "S-1-5-21-1-2-3-1105"},
                                     {"@Name": "TargetUserName", "#text": "zpmc-svc1"},
                                     {"@Name": "TargetDomainName", "#text": "PORT"},
                                     {"@Name": "TargetLogonId", "#text": "0x8a1f2c"},
                                     {"@Name": "LogonType", "#text": "10"}]}}}
EVTX_RECONNECT = {  # evtx_dump JSON layout: "#attributes", EventData as a map
    "Event": {"System": {"EventID": 4778, "TimeCreated": {"#attributes": {"SystemTime": "2026-11-20T09:00:00.000000Z"}},
                         "Computer": "JUMP01.port.local", "EventRecordID": 918290},
              "EventData": {"AccountName": "zpmc-svc1", "AccountDomain": "PORT", "LogonID": "0x8a1f2c",
                            "SessionName": "RDP-Tcp#3", "ClientName": "VENDOR-LT07", "ClientAddress": "10.212.134.200"}}}
DISCONNECT = {"EventID": 4779, "TimeCreated": "2026-11-20T09:30:00Z", "Computer": "JUMP01.port.local",
              "AccountName": "zpmc-svc1", "AccountDomain": "PORT", "LogonID": "0x8a1f2c", "SessionName": "RDP-Tcp#3",
              "ClientName": "VENDOR-LT07", "ClientAddress": "10.212.134.200"}


def parse(path: Path, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("windows_security", "win", path, block_bytes)


def write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "security.jsonl"
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return path


def test_logon_events_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path, [RDP_LOGON, FAILED_FLAT, EVTX_LOGOFF, EVTX_RECONNECT, DISCONNECT])
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (5, 5, [])
    logon, failed, logoff, reconnect, disconnect = events.to_pylist()
    assert logon["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 123000, tzinfo=UTC)
    assert (logon["source"], logon["format"], logon["kind"], logon["action"], logon["result"]) == (
        "win", "windows_security", "auth", "auth.success", "success")
    assert (logon["user"], logon["src_ip"], logon["src_port"], logon["session_id"]) == (
        "zpmc-svc1", "10.212.134.200", None, "0x8a1f2c")
    assert dict(logon["attrs"]) == {
        "event_id": "4624", "logon_type": "10", "logon_type_name": "remote_interactive", "domain": "PORT",
        "workstation": "VENDOR-LT07", "host": "JUMP01.port.local", "record_id": "918273",
        "logon_process": "User32 ", "auth_package": "Negotiate"}
    assert (logon["raw_ref"], logon["raw"]) == (f"{path}:1", json.dumps(RDP_LOGON))
    assert failed["time"] == dt.datetime(2026, 11, 20, 8, 14, 30, tzinfo=UTC)
    assert (failed["action"], failed["result"], failed["user"], failed["src_ip"], failed["src_port"]) == (
        "auth.failure", "failure", "administrator", "203.0.113.99", 49811)
    assert dict(failed["attrs"]) == {
        "event_id": "4625", "logon_type": "3", "logon_type_name": "network", "domain": "HMI-STS01",
        "workstation": "KALI", "host": "HMI-STS01", "status": "0xc000006d", "sub_status": "0xc000006a",
        "failure_reason": "%%2313"}
    # python-evtx SystemTime has no offset: Windows keeps UTC.
    assert logoff["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, 654321, tzinfo=UTC)
    assert (logoff["action"], logoff["user"], logoff["session_id"], logoff["src_ip"]) == (
        "auth.logoff", "zpmc-svc1", "0x8a1f2c", None)
    assert dict(logoff["attrs"]) == {"event_id": "4634", "logon_type": "10", "logon_type_name": "remote_interactive",
                                     "domain": "PORT", "host": "JUMP01.port.local", "record_id": "918300"}
    assert reconnect["time"] == dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert (reconnect["action"], reconnect["user"], reconnect["src_ip"], reconnect["session_id"]) == (
        "rdp.reconnect", "zpmc-svc1", "10.212.134.200", "0x8a1f2c")
    assert dict(reconnect["attrs"]) == {"event_id": "4778", "domain": "PORT", "workstation": "VENDOR-LT07",
                                        "host": "JUMP01.port.local", "record_id": "918290", "session_name": "RDP-Tcp#3"}
    assert (disconnect["action"], disconnect["time"], dict(disconnect["attrs"])["host"]) == (
        "rdp.disconnect", dt.datetime(2026, 11, 20, 9, 30, tzinfo=UTC), "JUMP01.port.local")


def test_malformed_and_other_events_accounted(tmp_path: Path) -> None:
    process = {"@timestamp": "2026-11-20T08:16:00Z", "winlog": {"event_id": 4688, "event_data": {"NewProcessName": "cmd.exe"}}}
    lines = [
        RDP_LOGON,                                                           # 1
        process,                                                             # 2: other event id
        '{"winlog": {"event_id": 4624',                                      # 3: truncated
        {k: v for k, v in RDP_LOGON.items() if k != "@timestamp"},           # 4: no time
        dict(RDP_LOGON, **{"@timestamp": "yesterday"}),                      # 5: bad time
        {"message": "hello"},                                                # 6: no event id
        json.loads(json.dumps(FAILED_FLAT) .replace("::ffff:203.0.113.99", "not-an-ip")),  # 7: bad address
        "[4624]",                                                            # 8: not an object
        "",                                                                  # blank
        DISCONNECT,                                                          # 10
    ]
    path = write(tmp_path, lines)
    events, dead, records = parse(path, block_bytes=700)
    assert (records, events.num_rows, len(dead)) == (9, 2, 7)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("2", "not a Windows logon event (EventID=4688)"),
        ("3", "invalid JSON: Expecting ',' delimiter at column 29"),
        ("4", "no usable timestamp (no @timestamp or TimeCreated)"),
        ("5", "no usable timestamp: invalid time 'yesterday'"),
        ("6", "not a Windows Security event (EventID=missing)"),
        ("7", "invalid address 'not-an-ip' in IpAddress"),
        ("8", "not a JSON object (list)"),
    ]
