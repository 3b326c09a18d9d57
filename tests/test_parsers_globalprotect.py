"""globalprotect conformance: PAN-OS GLOBALPROTECT syslog entries written in the field order
of PAN-OS's "GlobalProtect Log Fields" (10.1+, 49 fields); see docs/formats/globalprotect.md."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

from transforms.parsers.globalprotect import FIELDS

UTC = dt.timezone.utc


def entry(**kw: str) -> str:
    base = {
        "future_use1": "1", "receive_time": "2026/11/20 09:15:03", "serial": "013201001234", "type": "GLOBALPROTECT",
        "subtype": "0", "future_use2": "2561", "time_generated": "2026/11/20 09:15:02", "vsys": "vsys1",
        "eventid": "gateway-connected", "stage": "tunnel", "auth_method": "", "tunnel_type": "IPSec",
        "srcuser": "zpmc-svc1", "srcregion": "CN", "machinename": "VENDOR-LT07", "public_ip": "203.0.113.45",
        "public_ipv6": "::", "private_ip": "10.212.134.200", "private_ipv6": "::",
        "hostid": "8a7f0c1e-2b3d-4e5f-9a8b-7c6d5e4f3a2b", "serialnumber": "PF1X2Y3Z", "client_ver": "6.1.4-16",
        "client_os": "Microsoft", "client_os_ver": "Microsoft Windows 10 Pro , 64-bit", "repeatcnt": "1",
        "reason": "", "error": "", "opaque": "Tunnel is up", "status": "success", "location": "",
        "login_duration": "0", "connect_method": "on-demand", "error_code": "0", "portal": "gp-portal",
        "seqno": "7254329864322", "actionflags": "0x8000000000000000",
        "high_res_timestamp": "2026-11-20T09:15:02.345+01:00", "selection_type": "preferred",
        "response_time": "25", "priority": "1", "attempted_gateways": "gw-ams:25", "gateway": "gw-ams",
        "dg_hier_level_1": "0", "dg_hier_level_2": "0", "dg_hier_level_3": "0", "dg_hier_level_4": "0",
        "vsys_name": "", "device_name": "PA-3220-T3", "vsys_id": "1",
    }
    base.update(kw)
    assert list(base) == list(FIELDS)
    return ",".join(f'"{v}"' if "," in v else v for v in base.values())


CONNECTED = "<14>Nov 20 09:15:03 PA-3220-T3 " + entry()
AUTH_FAIL = "<14>1 2026-11-20T09:10:00+01:00 PA-3220-T3 - - - - " + entry(
    eventid="portal-auth", stage="login", auth_method="LDAP", status="failure", error="Authentication failed: Invalid username or password",
    error_code="0", opaque="", private_ip="0.0.0.0", high_res_timestamp="2026-11-20T09:10:00.000+01:00",
    srcuser="zpmc-svc1", tunnel_type="")
LOGOUT = entry(eventid="gateway-logout", stage="logout", login_duration="5228", reason="client logout",
               opaque="GlobalProtect gateway user logout succeeded.", high_res_timestamp="",
               time_generated="2026/11/20 10:42:10")
OLD_91 = ",".join(entry(eventid="gateway-register", stage="configuration").split(",")[:36])  # PAN-OS 9.1: 36 fields
TRAFFIC = "1,2026/11/20 09:15:02,013201001234,TRAFFIC,end,2561,2026/11/20 09:15:02,10.212.134.200,10.30.1.10"


def parse(path: Path, timezone: str = "Europe/Amsterdam") -> tuple[pa.Table, list, int]:
    return parse_all("globalprotect", "gp", path, timezone=timezone)


def test_globalprotect_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "gp.log"
    path.write_text("\n".join([CONNECTED, AUTH_FAIL, LOGOUT, OLD_91]) + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (4, 4, [])
    up, fail, down, reg = events.to_pylist()
    assert up["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 345000, tzinfo=UTC)  # high-resolution timestamp
    assert (up["source"], up["format"], up["kind"], up["action"], up["result"]) == (
        "gp", "globalprotect", "remote_access", "vpn.login", "success")
    assert (up["user"], up["src_ip"], up["duration"]) == ("zpmc-svc1", "203.0.113.45", None)
    assert dict(up["attrs"]) == {
        "tunnel_ip": "10.212.134.200", "region": "CN", "machine": "VENDOR-LT07", "stage": "tunnel",
        "tunnel_type": "IPSec", "eventid": "gateway-connected", "client_version": "6.1.4-16",
        "client_os": "Microsoft", "client_os_version": "Microsoft Windows 10 Pro , 64-bit",
        "error_code": "0", "description": "Tunnel is up", "portal": "gp-portal", "gateway": "gw-ams",
        "connect_method": "on-demand", "host_id": "8a7f0c1e-2b3d-4e5f-9a8b-7c6d5e4f3a2b",
        "serial": "013201001234", "device_name": "PA-3220-T3", "vsys": "vsys1", "seqno": "7254329864322"}
    assert (up["raw_ref"], up["raw"]) == (f"{path}:1", CONNECTED)
    assert fail["time"] == dt.datetime(2026, 11, 20, 8, 10, tzinfo=UTC)
    assert (fail["action"], fail["result"], fail["user"]) == ("auth.failure", "failure", "zpmc-svc1")
    assert dict(fail["attrs"])["error"] == "Authentication failed: Invalid username or password"
    assert "tunnel_ip" not in dict(fail["attrs"])
    # No high-resolution timestamp: time_generated in the source's zone.
    assert down["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, tzinfo=UTC)
    assert (down["action"], down["duration"], dict(down["attrs"])["reason"]) == ("vpn.logout", 5228.0, "client logout")
    assert (reg["action"], reg["result"], reg["time"]) == ("vpn.gateway_register", "success",
                                                          dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC))


def test_malformed_and_other_types_accounted(tmp_path: Path) -> None:
    lines = [CONNECTED, TRAFFIC, "garbage", entry(public_ip="203.0.113.999"), entry(time_generated="2026/13/45 99:00:00",
             high_res_timestamp=""), ",".join(entry().split(",")[:20]), entry(login_duration="long"), "", LOGOUT]
    path = tmp_path / "gp.log"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"1,2026/11/20 09:15:02,\xff,GLOBALPROTECT\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (9, 2, 7)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("2", "not a GlobalProtect log entry (type=TRAFFIC)"),
        ("3", "not a PAN-OS log entry (no receive time field)"),
        ("4", "invalid address '203.0.113.999' in public_ip"),
        ("5", "no usable timestamp: invalid time_generated '2026/13/45 99:00:00'"),
        ("6", "expected at least 29 comma-separated GlobalProtect fields, got 20"),
        ("7", "invalid count 'long' in login_duration"),
        ("10", "not valid UTF-8"),
    ]
