"""fortigate_vpn conformance: FortiOS VPN event lines as documented in the Log Message Reference.

No public sample log ships with the project, so the lines below are written field for field
after Fortinet's reference (LOGIDs 0101039424/25, 0101039949, IPsec 0101037137/38) and a
published ssl-login-fail (0101039426) example; see docs/formats/fortigate-vpn.md.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all

from transforms.parsers.fortigate_vpn import parse_kv

UTC = dt.timezone.utc
HEAD = 'devname="fw-port-01" devid="FG100FTK19000001"'
UP = (f'date=2026-11-20 time=08:15:02 {HEAD} eventtime=1795162502123456789 tz="+0000" logid="0101039424" '
      'type="event" subtype="vpn" level="information" vd="root" logdesc="SSL VPN tunnel up" action="tunnel-up" '
      'tunneltype="ssl-tunnel" tunnelid=1204543001 remip=203.0.113.45 tunnelip=10.212.134.200 user="zpmc-svc1" '
      'group="vendor-maint" dst_host="N/A" reason="tunnel established" msg="SSL tunnel established"')
STATS = (f'<189>date=2026-11-20 time=08:45:02 {HEAD} eventtime=1795164302000123 tz="+0000" logid="0101039949" '
         'type="event" subtype="vpn" level="information" vd="root" logdesc="SSL VPN statistics" action="tunnel-stats" '
         'tunneltype="ssl-tunnel" tunnelid=1204543001 remip=203.0.113.45 user="zpmc-svc1" group="vendor-maint" '
         'dst_host="N/A" duration=1800 sentbyte=1048576 rcvdbyte=65536 nextstat=600 msg="SSL tunnel statistics"')
DOWN = (f'Nov 20 10:42:10 fw-port-01 date=2026-11-20 time=10:42:10 {HEAD} eventtime=1795167730 tz="+0100" '
        'logid="0101039425" type="event" subtype="vpn" level="information" vd="root" logdesc="SSL VPN tunnel down" '
        'action="tunnel-down" tunneltype="ssl-tunnel" tunnelid=1204543001 remip=203.0.113.45 tunnelip=10.212.134.200 '
        'user="zpmc-svc1" group="vendor-maint" dst_host="N/A" reason="connection closed" duration=5228 '
        'sentbyte=48213007 rcvdbyte=1302551 msg="SSL tunnel shutdown"')
FAIL = (f'date=2026-11-20 time=07:59:58 logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" '
        'logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" tunnelid=0 remip=198.51.100.7 '
        'user="admin" group="N/A" dst_host="N/A" reason="sslvpn_login_permission_denied" '
        f'msg="SSL user failed to logged in" tz="+0100" {HEAD}')
NEWCON = (  # logid left out: not checked against the reference; the parser does not use it
    f'date=2026-11-20 time=09:00:00 {HEAD} type="event" subtype="vpn" level="information" '
    'vd="root" logdesc="SSL VPN new connection" action="ssl-new-con" tunneltype="ssl" tunnelid=0 '
    'remip=203.0.113.45 user="N/A" group="N/A" dst_host="N/A" reason="N/A" msg="SSL new connection"')
IPSEC = (f'date=2026-11-20 time=08:20:00 {HEAD} eventtime=1795162800000000000 tz="+0000" logid="0101037138" '
         'type="event" subtype="vpn" level="notice" vd="root" logdesc="IPsec connection status changed" '
         'msg="IPsec connection status change" action="tunnel-up" remip=192.0.2.10 locip=198.51.100.1 '
         'remport=500 locport=500 outintf="wan1" cookies="9091f4d4837ea71c/2b1c0a3e5d6f7a8b" user="N/A" '
         'group="N/A" xauthuser="N/A" xauthgroup="N/A" assignip=N/A vpntunnel="vendor-b" tunnelip=192.0.2.10 '
         'tunnelid=2150237345 tunneltype="ipsec" duration=0 sentbyte=0 rcvdbyte=0 nextstat=0')
IPSEC_FAIL = (f'date=2026-11-20 time=08:19:00 {HEAD} eventtime=1795162740 tz="+0000" logid="0101037137" '
              'type="event" subtype="vpn" level="error" vd="root" logdesc="IPsec connection failed" '
              'msg="IPsec connection failed" action="negotiate" remip=192.0.2.66 locip=198.51.100.1 '
              'remport=500 locport=500 outintf="wan1" user="N/A" group="N/A" vpntunnel="vendor-b" status="failure"')


def parse(path: Path, timezone: str = "UTC", block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("fortigate_vpn", "fw", path, block_bytes, timezone=timezone)


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "fortigate.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_vpn_events_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path, [UP, STATS, DOWN, FAIL, NEWCON, IPSEC, IPSEC_FAIL])
    events, dead, records = parse(path, timezone="Europe/Amsterdam")
    assert (records, events.num_rows, dead) == (7, 7, [])
    up, stats, down, fail, newcon, ipsec, ipsec_fail = events.to_pylist()

    assert up["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 123456, tzinfo=UTC)  # ns eventtime
    assert (up["source"], up["format"], up["kind"], up["action"]) == ("fw", "fortigate_vpn", "remote_access", "vpn.login")
    assert (up["user"], up["src_ip"], up["dst_ip"], up["session_id"], up["result"]) == (
        "zpmc-svc1", "203.0.113.45", None, "1204543001", "success")
    assert dict(up["attrs"]) == {"tunnel_ip": "10.212.134.200", "tunneltype": "ssl-tunnel", "group": "vendor-maint",
                                 "reason": "tunnel established", "msg": "SSL tunnel established",
                                 "logid": "0101039424", "devname": "fw-port-01", "vd": "root"}
    assert (up["raw_ref"], up["raw"]) == (f"{path}:1", UP)
    assert (up["bytes_in"], up["bytes_out"], up["duration"]) == (None, None, None)

    assert stats["time"] == dt.datetime(2026, 11, 20, 8, 45, 2, 123, tzinfo=UTC)  # µs eventtime
    assert (stats["action"], stats["result"]) == ("vpn.tunnel-stats", None)
    assert (stats["bytes_in"], stats["bytes_out"], stats["duration"]) == (1048576, 65536, 1800.0)

    assert down["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, tzinfo=UTC)  # s eventtime
    assert (down["action"], down["user"], down["session_id"], down["result"]) == (
        "vpn.logout", "zpmc-svc1", "1204543001", "success")
    # Gateway's view: it sent 48 MB to the client (bytes_in) and received 1.3 MB from it.
    assert (down["bytes_in"], down["bytes_out"], down["duration"]) == (48213007, 1302551, 5228.0)
    assert dict(down["attrs"])["reason"] == "connection closed"

    assert fail["time"] == dt.datetime(2026, 11, 20, 6, 59, 58, tzinfo=UTC)  # date+time in tz=+0100
    assert (fail["action"], fail["kind"], fail["result"], fail["user"], fail["src_ip"]) == (
        "auth.failure", "remote_access", "failure", "admin", "198.51.100.7")
    assert fail["session_id"] is None  # tunnelid=0: no tunnel
    assert dict(fail["attrs"]) == {"tunneltype": "ssl-web", "reason": "sslvpn_login_permission_denied",
                                   "msg": "SSL user failed to logged in", "logid": "0101039426",
                                   "devname": "fw-port-01", "vd": "root"}

    assert newcon["time"] == dt.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # no tz: source timezone (CET)
    assert (newcon["action"], newcon["user"], newcon["result"], newcon["session_id"]) == (
        "vpn.ssl-new-con", None, None, None)
    assert "group" not in dict(newcon["attrs"]) and "reason" not in dict(newcon["attrs"])

    assert ipsec["time"] == dt.datetime(2026, 11, 20, 8, 20, tzinfo=UTC)
    assert (ipsec["action"], ipsec["user"], ipsec["src_ip"], ipsec["result"], ipsec["session_id"]) == (
        "vpn.login", None, "192.0.2.10", "success", "2150237345")
    assert (ipsec["bytes_in"], ipsec["bytes_out"], ipsec["duration"]) == (0, 0, 0.0)
    assert dict(ipsec["attrs"]) == {"tunnel_ip": "192.0.2.10", "tunneltype": "ipsec", "msg": "IPsec connection status change",
                                    "logid": "0101037138", "devname": "fw-port-01", "vd": "root"}

    # status, where FortiOS logs one, is the result.
    assert ipsec_fail["time"] == dt.datetime(2026, 11, 20, 8, 19, tzinfo=UTC)
    assert (ipsec_fail["action"], ipsec_fail["result"], ipsec_fail["src_ip"], ipsec_fail["user"]) == (
        "vpn.negotiate", "failure", "192.0.2.66", None)


@pytest.mark.parametrize("eventtime,expected", [
    ("1795162502", dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)),
    ("1795162502123", dt.datetime(2026, 11, 20, 8, 15, 2, 123000, tzinfo=UTC)),
    ("1795162502123456", dt.datetime(2026, 11, 20, 8, 15, 2, 123456, tzinfo=UTC)),
    ("1795162502123456789", dt.datetime(2026, 11, 20, 8, 15, 2, 123456, tzinfo=UTC)),
    ("17951625", dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)),  # odd digits: date/time used
])
def test_eventtime_precision_by_digits(tmp_path: Path, eventtime: str, expected: dt.datetime) -> None:
    line = UP.replace("eventtime=1795162502123456789", f"eventtime={eventtime}")
    events, dead, _ = parse(write(tmp_path, [line]))
    assert not dead
    assert events.column("time").to_pylist() == [expected]


def test_kv_parsing() -> None:
    f = parse_kv('<190>1 date=2026-11-20 msg="user \\"x\\" said hi" remip= devname=" FGVM " empty="" k=v=w')
    assert f == {"date": "2026-11-20", "msg": 'user "x" said hi', "remip": "", "devname": " FGVM ",
                 "empty": "", "k": "v=w"}
    assert parse_kv("Nov 20 08:15:02 fw01 type=event")["type"] == "event"


def test_non_vpn_and_bad_lines_are_dead_lettered(tmp_path: Path) -> None:
    lines = [
        "### FortiGate syslog capture",                                                   # 1 banner
        UP,                                                                               # 2 ok
        f'date=2026-11-20 time=08:15:03 {HEAD} logid="0000000013" type="traffic" subtype="forward" '
        'srcip=10.30.5.20 dstip=10.40.1.10 dstport=502 action="accept"',                  # 3 traffic
        'date=2026-11-20 time=08:15:04 logid="0100032001" type="event" subtype="system" action="login" '
        'user="admin" status="success"',                                                   # 4 system event
        "this is not a fortigate line",                                                    # 5 no kv
        "",                                                                                # 6 blank
        UP.replace("remip=203.0.113.45", "remip=203.0.113.450"),                          # 7 bad address
        DOWN.replace("sentbyte=48213007", "sentbyte=lots"),                                # 8 bad count
        'type="event" subtype="vpn" action="tunnel-up" user="x"',                          # 9 no time
        UP.replace(' action="tunnel-up"', ""),                                            # 10 no action
        'date=2026-11-20 time=25:61:00 type="event" subtype="vpn" action="tunnel-up"',    # 11 bad time
        DOWN,                                                                              # 12 ok
    ]
    path = tmp_path / "fw.log"
    path.write_bytes(("\n".join(lines) + "\n").encode() + UP.replace("zpmc-svc1", "zpmc\xe9").encode("latin-1"))
    events, dead, records = parse(path, block_bytes=512)
    assert (records, events.num_rows, len(dead)) == (11, 2, 9)
    assert {int(d.location.rsplit(":", 1)[1]): d.reason for d in dead} == {
        3: "not a FortiGate VPN event (type=traffic, subtype=forward)",
        4: "not a FortiGate VPN event (type=event, subtype=system)",
        5: "not a FortiGate key=value log line",
        7: "invalid address '203.0.113.450' in remip",
        8: "invalid count 'lots' in sentbyte",
        9: "no usable timestamp (no eventtime, date or time)",
        10: "FortiGate VPN event without action",
        11: "no usable timestamp: unparseable date='2026-11-20' time='25:61:00'",
        13: "not valid UTF-8",
    }
    assert all(d.location.startswith(f"{path}:") and d.source == "fw" for d in dead)
    assert next(d for d in dead if d.location.endswith(":3")).raw == lines[2]
    assert "zpmc\\xe9" in next(d for d in dead if d.location.endswith(":13")).raw
    assert events.column("raw_ref").to_pylist() == [f"{path}:2", f"{path}:12"]


def test_unknown_source_timezone_is_a_dead_letter_not_a_crash(tmp_path: Path) -> None:
    events, dead, _ = parse(write(tmp_path, [NEWCON, UP]), timezone="Mars/Olympus_Mons")
    assert events.num_rows == 1  # UP carries eventtime and tz
    assert [d.reason for d in dead] == ["no usable timestamp: unknown time zone 'Mars/Olympus_Mons'"]


def test_crlf(tmp_path: Path) -> None:
    path = tmp_path / "fw.log"
    path.write_bytes((UP + "\r\n" + DOWN + "\r\n").encode())
    events, dead, _ = parse(path)
    assert not dead and events.column("raw").to_pylist() == [UP, DOWN]
