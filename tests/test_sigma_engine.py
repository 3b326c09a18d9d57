"""The Sigma engine on event batches: every modifier and condition form matches what Sigma
means, the vectorized mask equals the row-wise evaluation (also on drawn values), and
load problems are reported with file and reason in one pass."""
from __future__ import annotations

import base64
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from detections.sigma_engine.compile import compile_rule
from detections.sigma_engine.load import load_rules, rule_from_dict
from detections.sigma_engine.pipelines import pipeline_for
from detections.testing import events_table

EVENTS = [
    {"time": "2026-11-15T10:00:00Z", "kind": "flow", "src_ip": "10.1.2.3", "dst_ip": "203.0.113.9", "dst_port": 502,
     "user": "Admin", "target": "C:\\Windows\\System32\\cmd.exe", "action": "modbus.write_single_register",
     "attrs": {"cmd": "powershell -enc " + base64.b64encode(b"Invoke-Evil").decode(), "n": "42", "same": "Admin"}},
    {"time": "2026-11-15T10:00:01Z", "kind": "flow", "src_ip": "192.168.7.7", "dst_ip": "10.30.1.10", "dst_port": 80,
     "user": "operator", "target": "hoist.max_load_t", "action": "cms.parameter_change",
     "attrs": {"cmd": "net user /add eve", "n": "7.5", "same": "other"}},
    {"time": "2026-11-15T10:00:02Z", "kind": "ot", "src_ip": "2001:db8::5", "dst_port": 44818, "user": None,
     "target": "ADMIN line\nsecond", "action": "cip.set_attribute", "attrs": {"n": "many"}},
    {"time": "2026-11-15T10:00:03Z", "kind": "ot", "src_ip": "not-an-ip", "user": "admin",
     "target": "x?y", "action": "cms.login", "attrs": {}},
]


def compiled(detection: dict, logsource: dict | None = None):
    rule = rule_from_dict({"title": "t", "logsource": logsource or {"product": "test"}, "detection": detection})
    return compile_rule(rule, pipeline_for(rule.logsource))


def hits(detection: dict, events=EVENTS, logsource: dict | None = None) -> list[int]:
    c = compiled(detection, logsource)
    assert not c.unsupported, c.unsupported
    table = events_table(events)
    vec = c.mask(table).to_pylist()
    rows = c.mask(table, rowwise=True).to_pylist()
    assert vec == rows, (vec, rows)
    assert [c.matches(e) for e in table.to_pylist()] == rows
    return [i for i, m in enumerate(vec) if m]


@pytest.mark.parametrize("item, expected", [
    ({"user": "admin"}, [0, 3]),  # case-insensitive by default
    ({"user|cased": "admin"}, [3]),
    ({"user": "adm*"}, [0, 3]),
    ({"user": "?dmin"}, [0, 3]),
    ({"target": "x\\?y"}, [3]),  # an escaped wildcard is a literal
    ({"target|contains": "system32"}, [0]),
    ({"target|startswith": "c:\\windows"}, [0]),
    ({"target|endswith": ".EXE"}, [0]),
    ({"target|contains|all": ["windows", "cmd"]}, [0]),
    ({"target|contains": ["windows", "load"]}, [0, 1]),
    ({"target|re": "^hoist\\.max"}, [1]),
    ({"target|re": "admin"}, []),  # re is case-sensitive
    ({"target|re|i": "admin"}, [2]),
    ({"target|re|m": "^second$"}, [2]),
    ({"target|re|s": "line.second"}, [2]),
    ({"target|re": "(?<=hoist\\.)max"}, [1]),  # lookbehind: Python re, row-wise
    ({"src_ip|cidr": "10.0.0.0/8"}, [0]),
    ({"src_ip|cidr": ["192.168.0.0/16", "2001:db8::/32"]}, [1, 2]),
    ({"dst_port|gt": 502}, [2]),
    ({"dst_port|gte": 502}, [0, 2]),
    ({"dst_port|lt": 502}, [1]),
    ({"dst_port|lte": 80}, [1]),
    ({"attrs.n|gte": 7}, [0, 1]),  # text that is a number compares as a number
    ({"dst_port": [80, 502]}, [0, 1]),
    ({"dst_port": "80"}, [1]),
    ({"user": None}, [2]),  # null: the field is absent
    ({"user|exists": False}, [2]),
    ({"dst_port|exists": True}, [0, 1, 2]),
    ({"attrs.cmd|windash|contains": "-add"}, [1]),  # "/add" is the same switch
    ({"attrs.cmd|base64offset|contains": "Invoke-Evil"}, [0]),
    ({"attrs.cmd|base64offset|contains": "Evil"}, [0]),  # at offset 7 of the encoded text
    ({"attrs.cmd|base64|contains": "Evil"}, []),  # no offset variants: only the text encoded alone
    ({"attrs.same|fieldref": "user"}, [0]),
    ({"target|fieldref|startswith": "action"}, []),
    ({"unmapped_name": "x"}, []),  # a field nothing fills matches nothing
])
def test_modifiers(item: dict, expected: list[int]) -> None:
    assert hits({"sel": item, "condition": "sel"}) == expected


def test_base64_and_fieldref_startswith_positive() -> None:
    enc = base64.b64encode(b"Invoke-Evil").decode()
    assert hits({"sel": {"attrs.cmd|base64|contains": "Invoke-Evil"}, "condition": "sel"},
                [dict(EVENTS[0], attrs={"cmd": "x " + enc})]) == [0]
    assert hits({"sel": {"target|fieldref|startswith": "action"}, "condition": "sel"},
                [dict(EVENTS[0], target="cms.login now", action="cms.login")]) == [0]


@pytest.mark.parametrize("condition, expected", [
    ("a and b", [0]),
    ("a or c", [0, 1, 2]),
    ("not a", [1, 2, 3]),
    ("a and not b", []),
    ("(a or c) and not b", [1, 2]),
    ("1 of sel*", [0, 1, 2]),
    ("all of sel*", []),
    ("1 of them", [0, 1, 2, 3]),
    ("all of them", []),
    ("kw", [2]),
])
def test_conditions(condition: str, expected: list[int]) -> None:
    det = {
        "a": {"dst_port": 502}, "b": {"user": "admin"}, "c": {"dst_port|lt": 50000, "kind": ["flow", "ot"]},
        "sel1": {"user": "operator"}, "sel2": {"src_ip|cidr": ["10.0.0.0/8", "2001:db8::/32"]},
        "kw": ["cip.set_attribute"], "condition": condition,
    }
    if condition == "1 of them":
        det["d"] = {"action": "cms.login"}
    assert hits(det) == expected


def test_list_of_maps_and_keyword_lists() -> None:
    det = {"sel": [{"user": "operator"}, {"dst_port": 44818}], "condition": "sel"}
    assert hits(det) == [1, 2]
    # A keyword is a case-insensitive substring of the raw record text.
    assert hits({"kw": ["HOIST.max", "no such text"], "condition": "kw"}) == [1]
    assert hits({"kw": {"|all": ["hoist", "operator"]}, "condition": "kw"}) == [1]


def test_vectorized_flag_and_field_mapping() -> None:
    conn = {"product": "zeek", "service": "conn"}
    c = compiled({"sel": {"id.orig_h|cidr": "10.0.0.0/8", "id.resp_p": 502}, "condition": "sel"}, conn)
    assert c.vectorized and c.fields == ["src_ip", "dst_port"] and c.unmapped == []
    assert hits({"sel": {"id.orig_h|cidr": "10.0.0.0/8", "id.resp_p": 502}, "condition": "sel"}, logsource=conn) == [0]
    slow = compiled({"sel": {"target|re": "(?<=a)b"}, "condition": "sel"})
    assert not slow.vectorized and not slow.unsupported
    unmapped = compiled({"sel": {"id.orig_h": "x", "blocked": "false"}, "condition": "sel"}, conn)
    assert unmapped.unmapped == ["blocked"]


def test_unsupported_values_are_reported_not_run() -> None:
    c = compiled({"sel": {"target|expand": "%servers%"}, "condition": "sel"})
    assert c.unsupported and "placeholder" in c.unsupported[0] and c.tree is None
    assert c.mask(events_table(EVENTS)).to_pylist() == [False] * len(EVENTS)


_VALUE = st.sampled_from(["admin", "Admin", "ADM", "10.1.2.3", "80", "7.5", "", "x?y", "a*b", "hoist", "é", "İ"])
_MOD = st.sampled_from(["", "|contains", "|startswith", "|endswith", "|cased", "|contains|cased", "|re", "|re|i",
                        "|cidr", "|gt", "|lte"])


@st.composite
def _case(draw):
    fields = ["user", "target", "src_ip", "attrs.n"]
    events = []
    for i in range(draw(st.integers(1, 6))):
        events.append({"time": f"2026-11-15T10:00:{i:02d}Z", "kind": "flow", "dst_port": draw(st.integers(0, 600)),
                       **{f: draw(st.none() | _VALUE) for f in fields[:3]},
                       "attrs": {"n": draw(st.none() | _VALUE | st.integers(-5, 100).map(str))}})
    field, mod = draw(st.sampled_from(fields + ["dst_port"])), draw(_MOD)
    value: object = draw(_VALUE)
    if mod == "|cidr":
        value = draw(st.sampled_from(["10.0.0.0/8", "10.1.2.3/32", "::/0"]))
    if mod in ("|gt", "|lte"):
        value = draw(st.integers(-1, 600))
    if mod.startswith("|re"):
        value = draw(st.sampled_from(["^a", "d.i", "[0-9]+", "(?<!x)y", "İ"]))
    return events, {"sel": {field + mod: value}, "not_sel": {"user": draw(_VALUE)},
                    "condition": draw(st.sampled_from(["sel", "not sel", "sel or not not_sel", "sel and not_sel"]))}


@settings(max_examples=60, deadline=None)
@given(_case())
def test_vectorized_equals_rowwise_on_drawn_values(case) -> None:
    events, det = case
    try:
        c = compiled(det)
    except Exception as exc:  # pySigma refuses the value itself (e.g. a bad CIDR): not our case
        pytest.skip(f"pySigma: {exc}")
    table = events_table(events)
    assert c.mask(table).to_pylist() == c.mask(table, rowwise=True).to_pylist()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


GOOD = {"title": "Good", "id": "9a1f7b1e-0000-4000-8000-000000000001", "logsource": {"product": "zeek", "service": "conn"},
        "detection": {"sel": {"id.resp_p": 502}, "condition": "sel"}, "level": "high"}


def test_load_reports_every_failing_file_with_its_reason(tmp_path: Path) -> None:
    _write(tmp_path, "rules/good.yml", yaml.safe_dump(GOOD))
    _write(tmp_path, "rules/sub/undefined.yml", yaml.safe_dump({**GOOD, "id": None, "title": "U",
                                                                "detection": {"sel": {"a": 1}, "condition": "sel and nope"}}))
    _write(tmp_path, "rules/sub/notyaml.yml", "title: [unclosed\n")
    _write(tmp_path, "rules/nocondition.yml", yaml.safe_dump({**GOOD, "id": None, "detection": {"sel": {"a": 1}}}))
    _write(tmp_path, "rules/corr.yml", yaml.safe_dump({"title": "C", "correlation": {
        "type": "event_count", "rules": ["missing_rule"], "timespan": "5m", "condition": {"gte": 2}}}))
    res = load_rules([tmp_path / "rules", tmp_path / "nothing-here"])
    assert [r.title for r in res.rules] == ["Good"] and res.correlations == []
    by_file = {Path(f).name: reason for f, reason in res.errors}
    assert set(by_file) == {"undefined.yml", "notyaml.yml", "nocondition.yml", "corr.yml", "nothing-here"}
    assert "'nope' not defined" in by_file["undefined.yml"]
    assert "expected valid YAML" in by_file["notyaml.yml"]
    assert "condition" in by_file["nocondition.yml"].lower()
    assert "missing_rule" in by_file["corr.yml"]
    assert all(str(tmp_path) not in reason for reason in by_file.values() if reason != by_file["nothing-here"])


def test_shipped_sigmahq_fixture_rules_load() -> None:
    fixtures = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "sigma-rules"
    res = load_rules([fixtures])
    assert res.errors == [] and len(res.rules) == 9
    for rule in res.rules:
        c = compile_rule(rule, pipeline_for(rule.logsource))
        assert c.unsupported == [] and c.vectorized
        assert all(t.startswith("T0") for t in c.techniques)  # Enterprise tags are noted, never mapped
    rdp = next(r for r in res.rules if r.title == "Publicly Accessible RDP Service")
    c = compile_rule(rdp, pipeline_for(rdp.logsource))
    assert c.severity == 75 and any("t1021.001" in n for n in c.notes)
    assert c.falsepositives and c.level == "high"
    table = events_table([{"time": "2026-11-15T10:00:00Z", "kind": "flow", "format": "zeek_conn", "service": "rdp",
                           "src_ip": ip} for ip in ("10.0.0.1", "8.8.8.8", "fe80::1", "2620:83:8000::1")])
    assert c.mask(table).to_pylist() == [False, True, False, False]  # "not selection" of private ranges


def test_level_tags_and_techniques() -> None:
    rule = rule_from_dict({**GOOD, "tags": ["attack.t0855", "attack.ics.t0836", "attack.t0999", "attack.t1133",
                                                 "attack.impair-process-control"],
                                "references": ["https://example.org/r"], "falsepositives": ["maintenance"]})
    c = compile_rule(rule, pipeline_for(rule.logsource))
    assert c.techniques == ("T0855", "T0836") and c.stage == "impact" and c.severity == 75
    assert len(c.notes) == 2 and any("t0999" in n and "attack_ics.yml" in n for n in c.notes)
    assert c.references == ["https://example.org/r"] and c.id == GOOD["id"]


def test_nulls_never_match_and_not_of_null_matches() -> None:
    table = pa.table({"other": [1]})  # no user column at all
    c = compiled({"sel": {"user": "admin"}, "condition": "not sel"})
    assert c.mask(table).to_pylist() == [True] and c.mask(table, rowwise=True).to_pylist() == [True]


def test_case_folding_is_the_same_on_ascii_and_other_text() -> None:
    # RE2 folds "ſ" (long s) to "s" and the Kelvin sign to "k": rows that are not ASCII take
    # the RE2 path, ASCII rows the lowercased one; both answer as the row-wise reference.
    events = [dict(EVENTS[3], user=u) for u in ("ASK", "aſk", "ask", "\u212aey", "KEY", "Straße")]
    assert hits({"sel": {"user": "ask"}, "condition": "sel"}, events) == [0, 1, 2]
    assert hits({"sel": {"user|startswith": "ke"}, "condition": "sel"}, events) == [3, 4]
    assert hits({"sel": {"user|contains": "STRASSE"}, "condition": "sel"}, events) == []


def test_config_pipelines_extend_the_shipped_mapping(tmp_path: Path) -> None:
    from detections.sigma_engine.engine import load_set

    rule = {"title": "site field", "logsource": {"product": "cranewatch", "service": "cms"},
            "detection": {"sel": {"operator_name": "bob", "event_type": "cms.login"}, "condition": "sel"}}
    rules = _write(tmp_path, "r.yml", yaml.safe_dump(rule))
    pipe = _write(tmp_path, "site.yml", yaml.safe_dump({"name": "site fields", "priority": 30, "transformations": [
        {"id": "site_user", "type": "field_name_mapping", "mapping": {"operator_name": "user"}}]}))
    plain = load_set((str(rules),)).entries[0].compiled
    mapped = load_set((str(rules),), (str(pipe),)).entries[0].compiled
    assert plain.unmapped == ["operator_name"] and mapped.unmapped == [] and "user" in mapped.fields
    table = events_table([{"time": "2026-11-15T10:00:00Z", "kind": "ot", "action": "cms.login", "user": "bob"}])
    assert mapped.mask(table).to_pylist() == [True] and plain.mask(table).to_pylist() == [False]
