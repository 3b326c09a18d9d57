"""openvpn_status and openvpn_log conformance.

Status version 1 is the public sample in ../shared/fixtures/openvpn-status (jc's test
fixture). Versions 2 and 3 and the server log lines are written after OpenVPN's documented
output (``--status-version`` in the manual, ``multi_print_status`` and the client-instance
messages of OpenVPN 2.4-2.6); see docs/formats/openvpn-status.md and openvpn-log.md.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all

UTC = dt.timezone.utc
V2 = """TITLE,OpenVPN 2.6.3 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO]
TIME,2026-11-20 09:30:00,1795163400
HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher
CLIENT_LIST,zpmc-svc1,203.0.113.45:51234,10.212.134.200,,1302551,48213007,2026-11-20 09:15:02,1795162502,UNDEF,7,0,AES-256-GCM
CLIENT_LIST,UNDEF,198.51.100.7:40001,10.212.134.201,fd00::1000,0,0,2026-11-20 09:29:00,1795163340,kone-tech,8,1,CHACHA20-POLY1305
HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)
ROUTING_TABLE,10.212.134.200,zpmc-svc1,203.0.113.45:51234,2026-11-20 09:29:59,1795163399
ROUTING_TABLE,10.212.134.201,UNDEF,198.51.100.7:40001,2026-11-20 09:29:58,1795163398
GLOBAL_STATS,Max bcast/mcast queue length,0
GLOBAL_STATS,dco_enabled,0
END
"""
# OpenVPN 2.4 wrote ctime text and fewer client columns.
V2_24 = """TITLE,OpenVPN 2.4.4 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] built on Feb 10 2018
TIME,Fri Nov 20 09:30:00 2026,1795163400
HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID
CLIENT_LIST,zpmc-svc2,203.0.113.46:1194,10.212.134.202,,100,200,Fri Nov 20 09:00:00 2026,1795161600,zpmc-svc2,3,0
END
"""


def parse(parser: str, path: Path, timezone: str = "Europe/Amsterdam", block_bytes: int = 1 << 20
          ) -> tuple[pa.Table, list, int]:
    return parse_all(parser, "vpn", path, block_bytes, timezone=timezone)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_status_v1_fixture(shared_fixtures: Path) -> None:
    path = shared_fixtures / "openvpn-status" / "openvpn-status.log"
    events, dead, records = parse("openvpn_status", path, block_bytes=300)
    assert (records, events.num_rows, dead) == (6, 6, [])
    rows = events.to_pylist()
    foo = rows[0]
    # "Thu Jun 18 04:23:03 2015" in the server's zone (Amsterdam, CEST = UTC+2).
    assert foo["time"] == dt.datetime(2015, 6, 18, 2, 23, 3, tzinfo=UTC)
    assert (foo["source"], foo["format"], foo["kind"], foo["action"]) == ("vpn", "openvpn_status", "remote_access", "vpn.session")
    assert (foo["user"], foo["src_ip"], foo["src_port"], foo["session_id"]) == ("foo@example.com", "10.10.10.10", 49502, None)
    assert (foo["bytes_out"], foo["bytes_in"], foo["duration"]) == (334948, 1973012, 13752.0)
    assert dict(foo["attrs"]) == {"tunnel_ip": "192.168.255.134", "real_address": "10.10.10.10:49502",
                                  "updated": "2015-06-18T06:12:15Z", "status_version": "1"}
    assert (foo["raw_ref"], foo["raw"]) == (f"{path}:4", "foo@example.com,10.10.10.10:49502,334948,1973012,Thu Jun 18 04:23:03 2015")
    assert dict(rows[1]["attrs"])["tunnel_ip"] == "192.168.255.135"
    bar = rows[2]
    assert (bar["user"], bar["src_port"], bar["bytes_in"]) == ("bar@example.com", 64169, 28981224)
    assert dict(bar["attrs"])["routes"] == "192.168.255.126C,192.168.255.16C,192.168.255.1C"
    baz = rows[3]
    assert dict(baz["attrs"])["tunnel_ip"] == "192.168.255.118"
    assert dict(baz["attrs"])["routes"] == "10.200.0.0/16,2001:db8::1000/124"
    tap = rows[4]  # a TAP client: its "virtual address" is a MAC
    assert tap["time"] == dt.datetime(2017, 10, 19, 18, 14, 19, tzinfo=UTC)
    assert (tap["duration"], dict(tap["attrs"]).get("tunnel_ip"), dict(tap["attrs"])["routes"]) == (None, None, "22:1d:63:bf:62:38")
    baz2 = rows[5]  # real address without a port
    assert (baz2["src_ip"], baz2["src_port"], dict(baz2["attrs"])["tunnel_ip"]) == ("10.10.10.10", None, "192.168.255.1")


def test_status_timezone_is_the_sources(shared_fixtures: Path) -> None:
    path = shared_fixtures / "openvpn-status" / "openvpn-status.log"
    events, _, _ = parse("openvpn_status", path, timezone="UTC")
    assert events.column("time")[0].as_py() == dt.datetime(2015, 6, 18, 4, 23, 3, tzinfo=UTC)


@pytest.mark.parametrize("sep,version", [(",", "2"), ("\t", "3")])
def test_status_v2_v3(tmp_path: Path, sep: str, version: str) -> None:
    path = write(tmp_path, "status.log", V2.replace(",", sep))
    events, dead, records = parse("openvpn_status", path)
    assert (records, events.num_rows, dead) == (2, 2, [])
    a, b = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)  # from time_t
    assert (a["user"], a["src_ip"], a["src_port"], a["session_id"]) == ("zpmc-svc1", "203.0.113.45", 51234, "7")
    assert (a["bytes_out"], a["bytes_in"], a["duration"], a["action"]) == (1302551, 48213007, 898.0, "vpn.session")
    assert dict(a["attrs"]) == {"tunnel_ip": "10.212.134.200", "real_address": "203.0.113.45:51234",
                                "updated": "2026-11-20T08:30:00Z", "peer_id": "0", "cipher": "AES-256-GCM",
                                "status_version": version}
    assert a["raw_ref"] == f"{path}:4"
    # Common name UNDEF (username/password only): the username is the user.
    assert (b["user"], b["src_ip"], b["session_id"]) == ("kone-tech", "198.51.100.7", "8")
    assert dict(b["attrs"])["tunnel_ip6"] == "fd00::1000"
    assert dict(b["attrs"])["username"] == "kone-tech"


def test_status_v2_openvpn_24_ctime(tmp_path: Path) -> None:
    path = write(tmp_path, "status.log", V2_24)
    events, dead, _ = parse("openvpn_status", path)
    (row,) = events.to_pylist()
    assert not dead
    assert row["time"] == dt.datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
    assert (row["user"], row["duration"], dict(row["attrs"])["username"]) == ("zpmc-svc2", 1800.0, "zpmc-svc2")
    # Without time_t the ctime text is read in the source's zone.
    no_t = V2_24.replace(",Connected Since (time_t)", "").replace(",1795161600,", ",")
    events, dead, _ = parse("openvpn_status", write(tmp_path, "s2.log", no_t))
    assert not dead and events.column("time")[0].as_py() == dt.datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)


def test_status_malformed_lines_accounted(shared_fixtures: Path, tmp_path: Path) -> None:
    lines = (shared_fixtures / "openvpn-status" / "openvpn-status.log").read_text().splitlines()
    lines[4:4] = [
        "evil,10.10.10.10:1,12,34",                           # line 5: 4 fields
        "evil,not-an-ip:5,1,2,Thu Jun 18 04:23:03 2015",      # line 6: bad address
        "evil,10.10.10.11:5,1,2,yesterday",                   # line 7: bad time
        "evil,10.10.10.12:5,x,2,Thu Jun 18 04:23:03 2015",    # line 8: bad count
    ]
    lines.insert(0, "garbage before the client list")         # line 1
    data = ("\n".join(lines) + "\n").encode() + b"\xff\xfe,10.1.1.1:1,1,1,Thu Jun 18 04:23:03 2015\n"
    path = tmp_path / "status.log"
    path.write_bytes(data)
    events, dead, records = parse("openvpn_status", path, block_bytes=200)
    assert (records, events.num_rows, len(dead)) == (12, 6, 6)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("1", "not an OpenVPN status line"),
        ("6", "expected 5 comma-separated fields in a CLIENT LIST row, got 4"),
        ("7", "invalid address 'not-an-ip:5' in Real Address"),
        ("8", "no usable timestamp: invalid Connected Since 'yesterday'"),
        ("9", "invalid count 'x' in Bytes Received"),
        (str(len(lines) + 1), "not valid UTF-8"),
    ]


LOG = [
    "2026-11-20 09:15:01 203.0.113.45:51234 TLS: Initial packet from [AF_INET]203.0.113.45:51234, sid=0a1b2c3d 4e5f6a7b",
    "2026-11-20 09:15:02 203.0.113.45:51234 [zpmc-svc1] Peer Connection Initiated with [AF_INET]203.0.113.45:51234",
    "2026-11-20 09:15:02 zpmc-svc1/203.0.113.45:51234 MULTI_sva: pool returned IPv4=10.212.134.200, IPv6=(Not enabled)",
    "2026-11-20 10:42:10 zpmc-svc1/203.0.113.45:51234 SIGTERM[soft,remote-exit] received, client-instance exiting",
    "Fri Nov 20 09:20:00 2026 198.51.100.7:40001 TLS Auth Error: Auth Username/Password verification failed for peer",
    "Nov 20 09:21:00 vpn01 openvpn[812]: 198.51.100.8:40002 VERIFY ERROR: depth=0, error=certificate has expired: CN=kone-tech",
    "2026-11-20T09:22:00.250000+01:00 vpn01 openvpn[812]: kone-tech/[AF_INET6]2001:db8::7:1194 SIGUSR1[soft,ping-restart] received, client-instance restarting",
]


def test_log_lines_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path, "openvpn.log", "\n".join(LOG) + "\n")
    stamp = dt.datetime(2026, 11, 21, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))  # syslog lines have no year: the file's mtime gives it
    events, dead, records = parse("openvpn_log", path)
    assert (records, events.num_rows) == (7, 6)
    assert [(d.location, d.reason) for d in dead] == [(f"{path}:1", "not an OpenVPN session event")]
    login, pool, logout, fail, verify, restart = events.to_pylist()
    assert login["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
    assert (login["source"], login["format"], login["kind"], login["action"], login["result"]) == (
        "vpn", "openvpn_log", "remote_access", "vpn.login", "success")
    assert (login["user"], login["src_ip"], login["src_port"], login["session_id"]) == (
        "zpmc-svc1", "203.0.113.45", 51234, "203.0.113.45:51234")
    assert dict(login["attrs"]) == {"peer": "[AF_INET]203.0.113.45:51234", "common_name": "zpmc-svc1"}
    assert (login["raw_ref"], login["raw"]) == (f"{path}:2", LOG[1])
    assert (pool["action"], pool["user"], dict(pool["attrs"])) == (
        "vpn.address_assigned", "zpmc-svc1", {"tunnel_ip": "10.212.134.200", "common_name": "zpmc-svc1"})
    assert logout["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, tzinfo=UTC)
    assert (logout["action"], logout["user"], logout["session_id"]) == ("vpn.logout", "zpmc-svc1", "203.0.113.45:51234")
    assert dict(logout["attrs"]) == {"signal": "SIGTERM", "reason": "remote-exit", "instance": "exiting",
                                     "common_name": "zpmc-svc1"}
    assert fail["time"] == dt.datetime(2026, 11, 20, 8, 20, tzinfo=UTC)  # ctime prefix (2.4)
    assert (fail["action"], fail["result"], fail["user"], fail["src_ip"]) == ("auth.failure", "failure", None, "198.51.100.7")
    assert dict(fail["attrs"]) == {"reason": "Auth Username/Password verification failed for peer"}
    assert verify["time"] == dt.datetime(2026, 11, 20, 8, 21, tzinfo=UTC)  # syslog, year from mtime
    assert (verify["action"], verify["user"]) == ("auth.failure", "kone-tech")
    assert restart["time"] == dt.datetime(2026, 11, 20, 8, 22, 0, 250000, tzinfo=UTC)
    assert (restart["action"], restart["user"], restart["src_ip"], restart["src_port"]) == (
        "vpn.logout", "kone-tech", "2001:db8::7", 1194)
    assert dict(restart["attrs"])["reason"] == "ping-restart"


def test_log_syslog_year_before_new_year(tmp_path: Path) -> None:
    path = write(tmp_path, "openvpn.log", "Dec 31 23:59:00 vpn01 openvpn[1]: zpmc-svc1/203.0.113.45:5 "
                 "SIGTERM[soft,remote-exit] received, client-instance exiting\n")
    stamp = dt.datetime(2027, 1, 1, 0, 5, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    events, dead, _ = parse("openvpn_log", path, timezone="UTC")
    assert not dead and events.column("time")[0].as_py() == dt.datetime(2026, 12, 31, 23, 59, tzinfo=UTC)


def test_log_malformed_lines_accounted(tmp_path: Path) -> None:
    lines = LOG[:4] + [
        "OpenVPN 2.6.3 x86_64-pc-linux-gnu [SSL (OpenSSL)] built on Mar 20 2023",   # 5: no time
        "2026-13-40 09:15:02 203.0.113.45:51234 [x] Peer Connection Initiated with [AF_INET]203.0.113.45:51234",  # 6
        "2026-11-20 09:15:03 Initialization Sequence Completed",                     # 7
        "",                                                                           # blank: not a record
    ]
    path = tmp_path / "openvpn.log"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode() + b"2026-11-20 09:15:04 \xff\n")
    events, dead, records = parse("openvpn_log", path, block_bytes=150)
    assert (records, events.num_rows, len(dead)) == (8, 3, 5)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("1", "not an OpenVPN session event"),
        ("5", "no usable timestamp (no OpenVPN or syslog time prefix)"),
        ("6", "no usable timestamp: invalid time '2026-13-40 09:15:02'"),
        ("7", "not an OpenVPN session event"),
        ("9", "not valid UTF-8"),
    ]
