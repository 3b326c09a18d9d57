"""remote_access_jsonl conformance against the schema in docs/formats/remote-access-jsonl.md."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from parse_helpers import parse_all

UTC = dt.timezone.utc
START = {"time": "2026-11-20T08:15:02Z", "action": "session.start", "user": "zpmc-svc1", "vendor": "zpmc",
         "src_ip": "203.0.113.45", "src_port": 51234, "dst_ip": "10.30.1.20", "dst_port": 3389, "service": "rdp",
         "proto": "tcp", "target": "sts01-hmi", "session_id": "pam-7781", "result": "success",
         "attrs": {"ticket": "CHG-1042", "recorded": True}, "broker": "pam-01"}
END = {"time": 1795167730123, "action": "session.end", "user": "zpmc-svc1", "session_id": "pam-7781",
       "duration": 5228.5, "bytes_out": 1302551, "bytes_in": 48213007, "result": "success"}


def test_schema_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "pam.jsonl"
    lines = [json.dumps(START), json.dumps(END), json.dumps({"time": "2026-11-20 09:00:00", "action": "vpn.login",
                                                              "user": "kone-tech"})]
    path.write_text("\n".join(lines) + "\n")
    events, dead, records = parse_all("remote_access_jsonl", "pam", path, timezone="Europe/Amsterdam")
    assert (records, events.num_rows, dead) == (3, 3, [])
    a, b, naive = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
    assert (a["source"], a["format"], a["kind"], a["action"]) == ("pam", "remote_access_jsonl", "remote_access", "session.start")
    assert (a["user"], a["vendor"], a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"]) == (
        "zpmc-svc1", "zpmc", "203.0.113.45", 51234, "10.30.1.20", 3389)
    assert (a["service"], a["proto"], a["target"], a["session_id"], a["result"]) == (
        "rdp", "tcp", "sts01-hmi", "pam-7781", "success")
    assert dict(a["attrs"]) == {"broker": "pam-01", "ticket": "CHG-1042", "recorded": "true"}
    assert (a["raw_ref"], a["raw"]) == (f"{path}:1", lines[0])
    assert b["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, 123000, tzinfo=UTC)  # epoch ms
    assert (b["duration"], b["bytes_out"], b["bytes_in"], b["attrs"]) == (5228.5, 1302551, 48213007, None)
    assert naive["time"] == dt.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # no offset: the source's zone


def test_malformed_lines_accounted(tmp_path: Path) -> None:
    bad = [
        START,
        {"action": "vpn.login"},
        dict(START, time="soon"),
        dict(START, action="Login"),
        dict(START, src_ip="203.0.113.300"),
        dict(START, dst_port=70000),
        dict(END, bytes_out=-1),
        dict(START, user=5),
        dict(START, attrs=["x"]),
        "[1]",
        "{broken",
    ]
    path = tmp_path / "pam.jsonl"
    path.write_bytes(("\n".join(x if isinstance(x, str) else json.dumps(x) for x in bad) + "\n\n").encode() + b"\xff\n")
    events, dead, records = parse_all("remote_access_jsonl", "pam", path)
    assert (records, events.num_rows, len(dead)) == (12, 1, 11)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("2", "no usable timestamp (no time)"),
        ("3", "no usable timestamp: invalid time 'soon'"),
        ("4", "invalid action 'Login': expected a dotted lower-case verb such as 'vpn.login'"),
        ("5", "invalid address '203.0.113.300' in src_ip"),
        ("6", "invalid port 70000 in dst_port"),
        ("7", "invalid count -1 in bytes_out"),
        ("8", "invalid user 5: expected text"),
        ("9", "invalid attrs: expected an object"),
        ("10", "not a JSON object (list)"),
        ("11", "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
        ("13", "not valid UTF-8"),
    ]


@pytest.mark.parametrize("parser", ["remote_access_jsonl", "windows_security"])
def test_absurdly_nested_json_is_a_dead_letter_not_a_crash(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    events, dead, records = parse_all(parser, "ra", path)
    assert (records, events.num_rows) == (1, 0)
    assert [d.reason for d in dead] == ["invalid JSON: nested too deeply"]
