"""cms_events conformance against docs/formats/cms-events.md (own fixture lines, no public sample)."""
from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all

UTC = dt.timezone.utc

# The doc's two examples first, then one line per event type and value shape.
GOOD = [
    '{"time":"2026-11-20T08:15:02.123Z","crane_id":"STS-03","controller":"sts03-plc","event_type":"parameter_change","user":"eng.lopez","source_ip":"10.30.5.20","parameter":"hoist.max_speed","old_value":"1.5","new_value":"1.6","result":"success"}',
    '{"time":"2026-11-20T08:16:40Z","crane_id":"STS-03","event_type":"alarm","message":"wind speed 18 m/s","result":"success"}',
    '{"time":"2026-11-20T09:42:10+01:00","crane_id":"STS-05","controller":"sts05-plc","event_type":"program_download","user":"zpmc-svc1","source_ip":"10.212.134.200","result":"failure","message":"block OB1","ticket":"CHG-4411","session":{"id":7,"via":"vpn"}}',
    '{"time":1795167730,"crane_id":"STS-05","event_type":"login","user":"operator7","source_ip":"fe80::1"}',
    '{"time":1795167730.123456,"crane_id":"STS-05","controller":"sts05-plc","event_type":"mode_change","parameter":"mode","old_value":"auto","new_value":"maintenance"}',
    '{"time":"2026-11-20T10:05:55.5-03:30","crane_id":"STS-01","event_type":"parameter_change","parameter":"load.limit_t","old_value":65,"new_value":72.50}',
    '{"time":"2026-11-20T10:06:00Z","crane_id":"STS-01","controller":"sts01-plc","event_type":"estop"}',
    '{"time":"2026-11-20T10:07:00Z","crane_id":"STS-01","event_type":"remote_command","parameter":"","message":"reset fault 112","antisway":true,"retries":null}',
]


def parse(path: Path, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("cms_events", "cms", path, block_bytes)


def write(tmp_path: Path, lines: list[str], name: str = "cms.jsonl", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_text(newline.join(lines) + newline)
    return path


def test_fields_follow_the_schema(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (8, 8, [])
    rows = events.to_pylist()
    a = rows[0]
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 123000, tzinfo=UTC)
    assert (a["source"], a["format"], a["kind"], a["action"]) == ("cms", "cms_events", "ot", "cms.parameter_change")
    assert (a["asset_id"], a["target"], a["value_old"], a["value_new"]) == ("sts03-plc", "hoist.max_speed", "1.5", "1.6")
    assert (a["user"], a["src_ip"], a["result"]) == ("eng.lopez", "10.30.5.20", "success")
    assert dict(a["attrs"]) == {"crane_id": "STS-03", "controller": "sts03-plc"}
    assert (a["raw_ref"], a["raw"]) == (f"{path}:1", GOOD[0])
    assert a["dst_ip"] is None and a["bytes_out"] is None

    b = rows[1]  # no controller: the crane is the asset; result given
    assert (b["asset_id"], b["target"], b["action"], b["user"]) == ("STS-03", None, "cms.alarm", None)
    assert dict(b["attrs"]) == {"crane_id": "STS-03", "message": "wind speed 18 m/s"}

    c = rows[2]  # offset converted to UTC; unknown keys kept as text
    assert c["time"] == dt.datetime(2026, 11, 20, 8, 42, 10, tzinfo=UTC)
    assert (c["action"], c["result"], c["target"]) == ("cms.program_download", "failure", "sts05-plc")
    assert dict(c["attrs"]) == {"crane_id": "STS-05", "controller": "sts05-plc", "message": "block OB1",
                                "ticket": "CHG-4411", "session": '{"id":7,"via":"vpn"}'}

    d = rows[3]  # epoch seconds, IPv6 source, default result
    assert d["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, tzinfo=UTC)
    assert (d["src_ip"], d["result"], d["asset_id"], d["action"]) == ("fe80::1", "success", "STS-05", "cms.login")

    e = rows[4]  # fractional epoch is exact to the microsecond
    assert e["time"] == dt.datetime(2026, 11, 20, 9, 42, 10, 123456, tzinfo=UTC)
    assert (e["target"], e["value_old"], e["value_new"]) == ("mode", "auto", "maintenance")

    f = rows[5]  # numbers become text exactly as written
    assert f["time"] == dt.datetime(2026, 11, 20, 13, 35, 55, 500000, tzinfo=UTC)
    assert (f["value_old"], f["value_new"], f["target"]) == ("65", "72.50", "load.limit_t")

    g = rows[6]
    assert (g["action"], g["target"], g["asset_id"]) == ("cms.estop", "sts01-plc", "sts01-plc")

    h = rows[7]  # empty parameter, no controller: no target; extra keys as JSON text
    assert (h["action"], h["target"]) == ("cms.remote_command", None)
    assert dict(h["attrs"]) == {"crane_id": "STS-01", "message": "reset fault 112", "antisway": "true"}


def test_every_event_type_is_accepted(tmp_path: Path) -> None:
    types = ["login", "logout", "mode_change", "program_download", "program_upload", "firmware_update",
             "parameter_change", "alarm", "estop", "remote_command"]
    lines = [f'{{"time":"2026-11-20T08:00:0{i}Z","crane_id":"STS-02","event_type":"{t}"}}' for i, t in enumerate(types)]
    events, dead, _ = parse(write(tmp_path, lines))
    assert not dead
    assert events.column("action").to_pylist() == [f"cms.{t}" for t in types]


BAD = {
    'not json at all': "invalid JSON: Expecting value at column 1",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03"': "invalid JSON: Expecting ',' delimiter at column 51",
    '["time", "crane_id"]': "not a JSON object (list)",
    '"just a string"': "not a JSON object (str)",
    '{"crane_id":"STS-03","event_type":"alarm"}': "missing required key 'time'",
    '{"time":"2026-11-20T08:15:02Z","event_type":"alarm"}': "missing required key 'crane_id'",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03"}': "missing required key 'event_type'",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"","event_type":"alarm"}': "missing required key 'crane_id'",
    '{"time":"2026-11-20T08:15:02Z","crane_id":3,"event_type":"alarm"}': "invalid crane_id 3: expected a string",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03","event_type":"foo"}': "unknown event_type 'foo'",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03","event_type":"Login"}': "unknown event_type 'Login'",
    '{"time":"yesterday","crane_id":"STS-03","event_type":"alarm"}': "no usable timestamp: unparseable time 'yesterday'",
    '{"time":"2026-11-20T08:15:02","crane_id":"STS-03","event_type":"alarm"}':
        "no usable timestamp: time '2026-11-20T08:15:02' has no UTC offset",
    '{"time":true,"crane_id":"STS-03","event_type":"alarm"}':
        "no usable timestamp: time must be RFC 3339 text or epoch seconds, got true",
    '{"time":1e30,"crane_id":"STS-03","event_type":"alarm"}': "no usable timestamp: epoch time 1E+30 out of range",
    '{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03","event_type":"login","source_ip":"10.0.0.300"}':
        "invalid source_ip '10.0.0.300': expected an IP address",
}


def test_malformed_lines_are_dead_lettered_where_they_are(tmp_path: Path) -> None:
    lines = ["### exported by crane-office CMS 4.2"]  # banner: not a record
    expected: dict[int, str] = {}
    for raw, reason in BAD.items():
        lines.append(GOOD[1])
        lines.append(raw)
        expected[len(lines)] = reason
        lines.append("")  # blank: not a record
    path = tmp_path / "cms.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"time":"2026-11-20T08:15:02Z","crane_id":"ST\xff"}\n')
    events, dead, records = parse(path, block_bytes=256)
    assert records == 2 * len(BAD) + 1
    assert events.num_rows == len(BAD)
    got = {int(d.location.rsplit(":", 1)[1]): d.reason for d in dead}
    assert got == expected | {len(lines) + 1: "not valid UTF-8"}
    for d in dead:
        assert d.source == "cms" and d.location.startswith(f"{path}:")
        n = int(d.location.rsplit(":", 1)[1])
        if n <= len(lines):
            assert d.raw == lines[n - 1]
    assert dead[-1].raw == '{"time":"2026-11-20T08:15:02Z","crane_id":"ST\\xff"}'
    assert events.column("raw_ref").to_pylist() == [f"{path}:{n - 1}" for n in expected]


def test_crlf_bom_and_gzip(tmp_path: Path) -> None:
    plain, _, _ = parse(write(tmp_path, GOOD))
    path = tmp_path / "cms.jsonl.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + ("\r\n".join(GOOD) + "\r\n").encode()))
    events, dead, records = parse(path, block_bytes=100)
    assert (records, dead) == (8, [])
    assert events.drop(["raw_ref"]).equals(plain.drop(["raw_ref"]))
    assert events.column("raw_ref")[7].as_py() == f"{path}:8"


@pytest.mark.parametrize("value,text", [('"1.50"', "1.50"), ("1.50", "1.50"), ("0", "0"), ("-3", "-3"),
                                        ("false", "false"), ('[1,2]', "[1,2]"), ("null", None)])
def test_values_as_text(tmp_path: Path, value: str, text: str | None) -> None:
    line = ('{"time":"2026-11-20T08:15:02Z","crane_id":"STS-03","event_type":"parameter_change",'
            f'"parameter":"wind.trip_speed_ms","old_value":{value},"new_value":{value}}}')
    events, dead, _ = parse(write(tmp_path, [line]))
    assert not dead
    assert events.column("value_old").to_pylist() == [text]
    assert events.column("value_new").to_pylist() == [text]


# Lines the Arrow block path must leave to the per-line reference or read exactly as it does.
HOSTILE = [
    '{"time":"2026-02-29T00:00:05Z","crane_id":"STS-01","event_type":"login"}',
    '{"time":"2026-11-17T00:00:05","crane_id":"STS-01","event_type":"login"}',
    '{"time":"2026-11-17 00:00:05+01:00","crane_id":"STS-01","event_type":"login","source_ip":""}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"","event_type":"login","source_ip":"999.1.1.1"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"boom"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","b":"1","a":"2"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","a":' + "9" * 5000 + "}",
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","a":' + "[" * 200 + "]" * 200 + "}",
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","a":"\\ud800"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","crane_id":"y"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login"}{"a":1}',
    '\ufeff{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login"}',
    '{"time":"2026-11-17T00:00:05Z","crane_id":"x","event_type":"login","message":"a\rb"}',
    '{"time":"9999-12-31T23:59:59-01:00","crane_id":"x","event_type":"login"}',
    "[1,2]", "not json", '{"a":NaN}', "",
]


def test_arrow_block_path_equals_the_per_line_reference() -> None:
    """Every line, good or hostile, in any mix: the block path gives the same events and
    dead letters as ``to_event`` line by line."""
    import random

    from transforms.parsers.base import ParseContext
    from transforms.parsers.cms_events import PARSER
    from transforms.read import Block

    def table(t: pa.Table) -> list:
        return t.set_column(0, "time", t.column("time").cast(pa.int64())).to_pylist()

    rnd = random.Random(5)
    pool = GOOD + HOSTILE
    for _ in range(60):
        lines = [rnd.choice(pool).encode("utf-8", "surrogatepass") for _ in range(rnd.randrange(1, 30))]
        fast = PARSER.parse_block(Block("s", "f.jsonl", 3, lines), None, ParseContext("cms"))
        ref = PARSER.parse_block_lines(Block("s", "f.jsonl", 3, lines), None, ParseContext("cms"))
        assert fast.events.schema == ref.events.schema
        assert table(fast.events) == table(ref.events)
        assert fast.dead_letters == ref.dead_letters
        assert fast.events.num_rows + len(fast.dead_letters) == sum(1 for l in lines if l.strip())
