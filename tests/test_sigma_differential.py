"""Differential test: cranewatch's Sigma engine against pySigma's SQLite backend.

Every SigmaHQ fixture rule either matches exactly the events the SQLite backend's SQL
selects, or is reported by ``sigma check`` with the reason it is not evaluated. Events:
the fixture Zeek logs, a generated terminal (FortiGate, CMS, Windows Security, Suricata,
Zeek), and hypothesis-drawn events and rule variants (modifiers, conditions, values).
"""
from __future__ import annotations

import copy
import glob
import os
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule

import sigma_reference as ref
from detections.sigma_engine.compile import compile_rule
from detections.sigma_engine.pipelines import TAXONOMIES, Taxonomy, taxonomy_for, taxonomy_pipeline, rule_fields
from transforms.model import EVENT_SCHEMA, conform
from transforms.parsers import parse_file

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures")
RULE_FILES = sorted(glob.glob(os.path.join(SHARED, "sigma-rules", "*", "*.yml")))
BY_NAME = {t.name: t for t in TAXONOMIES}


def engine_matches(rule: SigmaRule, tax: Taxonomy, events: pa.Table) -> tuple[set[int], Any]:
    compiled = compile_rule(copy.deepcopy(rule), taxonomy_pipeline(tax))
    if compiled.unsupported:
        return set(), compiled
    mask = compiled.mask(events).to_pylist()
    return {i for i, m in enumerate(mask) if m}, compiled


def reference_matches(rule: SigmaRule, tax: Taxonomy, events: pa.Table) -> set[int]:
    con = ref.connect()
    ref.load(con, "logs", tax, events, rule_fields(rule))
    return ref.matches(con, "logs", rule)


def _parse(fmt: str, paths: list[str]) -> list[pa.Table]:
    return [r.events for p in paths for r in parse_file(fmt, "fixture", p) if r.events.num_rows]


@pytest.fixture(scope="module")
def corpus_events(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """Fixture Zeek logs plus a small generated terminal in every format the taxonomies read."""
    from pipelines.generate import generate
    from pipelines.generate.extra_formats import apply

    tables = []
    for fmt, pattern in (("zeek_conn", "*/conn*.log"), ("zeek_conn", "real-captures/*/conn.log"),
                         ("zeek_modbus", "*/modbus*.log"), ("zeek_s7comm", "*/s7comm*.log"),
                         ("zeek_modbus", "real-captures/*/modbus*.log"),
                         ("zeek_s7comm", "real-captures/*/s7comm*.log"), ("zeek_cip", "real-captures/*/cip*.log")):
        tables += _parse(fmt, sorted(glob.glob(os.path.join(SHARED, pattern))))
    plain, other = tmp_path_factory.mktemp("terminal"), tmp_path_factory.mktemp("terminal-formats")
    generate(str(plain), events=3000, seed=11)
    generate(str(other), events=1500, seed=12)
    apply(str(other), ["windows_security", "suricata_eve"])
    for root in (str(plain), str(other)):
        for fmt, pattern in (("zeek_conn", "zeek/conn*.log*"), ("zeek_dns", "zeek/dns*.log*"),
                             ("zeek_modbus", "zeek/modbus*.log*"), ("zeek_s7comm", "zeek/s7comm*.log*"),
                             ("zeek_cip", "zeek/cip*.log*"), ("cms_events", "cms/*.jsonl*"),
                             ("fortigate_vpn", "fortigate/*.log*"), ("windows_security", "windows/*.jsonl*"),
                             ("suricata_eve", "suricata/*.json*")):
            tables += _parse(fmt, sorted(glob.glob(os.path.join(root, pattern))))
    events = pa.concat_tables(tables)
    assert set(events["format"].to_pylist()) >= {"zeek_conn", "zeek_modbus", "fortigate_vpn", "windows_security",
                                                  "suricata_eve", "cms_events", "zeek_s7comm", "zeek_cip"}
    return events


def test_fixture_rules_all_load() -> None:
    from detections.sigma_engine.load import load_rules

    loaded = load_rules([os.path.join(SHARED, "sigma-rules")])
    assert loaded.errors == [] and len(loaded.rules) == len(RULE_FILES) == 9


@pytest.mark.parametrize("path", RULE_FILES, ids=os.path.basename)
def test_fixture_rule_matches_like_sqlite_on_fixture_and_generated_events(path: str, corpus_events: pa.Table) -> None:
    rule = SigmaRule.from_yaml(open(path, encoding="utf-8").read())
    tax = taxonomy_for(rule.logsource)
    assert tax is not None
    events = ref.routed(tax, corpus_events)
    got, compiled = engine_matches(rule, tax, events)
    if compiled.unsupported:  # then sigma check must name it with the reason
        _assert_listed_unsupported(path)
        return
    assert got == reference_matches(rule, tax, events)


def _assert_listed_unsupported(path: str) -> None:
    from pipelines.sigma_cli import check

    (rep,) = [r for r in check([path]) if r.type == "rule"]
    assert rep.errors and all("not supported" in e for e in rep.errors)


# --- hypothesis: the fixture rules on drawn events, and drawn rule variants ---------------------

_IPS = ["10.30.11.10", "10.212.134.7", "172.16.4.1", "172.31.255.254", "172.32.0.1", "192.168.1.5", "127.0.0.1",
        "169.254.3.3", "8.8.8.8", "203.0.113.40", "185.220.101.1", "::1", "fe80::1", "fd00::5", "2620:83:8000::9",
        "2001:db8::1"]
_PORTS = [21, 22, 23, 80, 102, 443, 502, 1433, 3389, 5900, 8080, 44818, 50000]
_WORDS = ["Add", "Edit", "Delete", "accept", "forward", "deny", "2", "false", "true", "system.admin", "user.local",
          "firewall.policy", "vpn.ssl.settings", "tunnel-up", "rdp", "ssl", "dns", "zpmc-svc1", "ADMIN",
          "write_single_register", "read_coils", "PLC Stop", "4624", "10", "cmd.exe /c whoami", "Ab-C_d%x"]
_NUMERIC = {"src_port", "dst_port", "bytes_out", "bytes_in", "packets_out", "packets_in"}
_IP_FIELDS = {"src_ip", "dst_ip"}


def _kind(target: str) -> str:
    return "ip" if target in _IP_FIELDS else "number" if target in _NUMERIC else "float" if target == "duration" \
        else "text"


def _values_for(tax: Taxonomy, sigma_field: str, rule_values: list[str]) -> st.SearchStrategy:
    kind = _kind(tax.event_field(sigma_field))
    if kind == "ip":
        return st.sampled_from(_IPS + [None])
    if kind == "number":
        return st.sampled_from(_PORTS + [None])
    if kind == "float":
        return st.sampled_from([0.5, 1.0, 30.0, None])
    pool = st.sampled_from(rule_values) if rule_values else st.sampled_from(_WORDS)  # near the rule's values
    # no surrounding blanks: the engine reads " 2" as the number 2, SQLite does not (see
    # test_number_text_with_blanks_known_difference)
    mutated = st.tuples(pool, st.sampled_from(["", "x", "-", "_"]), st.sampled_from(["", "y", "."]),
                        st.booleans()).map(lambda t: (t[1] + t[0] + t[2]).upper() if t[3] else t[1] + t[0] + t[2])
    return st.one_of(pool, mutated, st.sampled_from(_WORDS), st.none())


def _event_value(tax: Taxonomy, sigma_field: str, value: Any) -> Any:
    """A drawn native value as the parser would store it (prefix / renamed values)."""
    if not isinstance(value, str):
        return value
    for nat, ev in tax.values.get(sigma_field, {}).items():
        if value.lower() == nat.lower():
            return ev
    return tax.prefixes.get(sigma_field, "") + value


def _events(tax: Taxonomy, rows: list[dict[str, Any]]) -> pa.Table:
    """Drawn rows (Sigma field → native value) as an EVENT_SCHEMA table the taxonomy routes to."""
    cols: dict[str, list] = {f.name: [None] * len(rows) for f in EVENT_SCHEMA}
    cols["attrs"] = [[] for _ in rows]
    for i, row in enumerate(rows):
        cols["format"][i] = tax.formats[0]
        cols["source"][i] = "drawn"
        for f, v in tax.where.items():
            cols[f][i] = v
        for sigma_field, value in row.items():
            target = tax.event_field(sigma_field)
            v = _event_value(tax, sigma_field, value)
            if target.startswith("attrs."):
                if v is not None:
                    cols["attrs"][i].append((target[6:], str(v)))
            elif target not in tax.where:
                cols[target][i] = v
    return conform(cols, len(rows))


def _rule_values(rule: SigmaRule) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def walk(det: Any) -> None:
        for item in det.detection_items:
            if hasattr(item, "detection_items"):
                walk(item)
            elif item.field:
                for v in item.original_value if hasattr(item, "original_value") and item.original_value else item.value:
                    plain = str(v).strip("*")
                    if plain and plain != "None":
                        out.setdefault(item.field, []).append(plain)

    for det in rule.detection.detections.values():
        walk(det)
    return out


def _rows(tax: Taxonomy, fields: list[str], values: dict[str, list[str]]) -> st.SearchStrategy:
    return st.lists(st.fixed_dictionaries({f: _values_for(tax, f, values.get(f, [])) for f in fields}),
                    min_size=4, max_size=25)


_FIXTURE_RULES = [SigmaRule.from_yaml(open(p, encoding="utf-8").read()) for p in RULE_FILES]


@st.composite
def _fixture_case(draw: st.DrawFn) -> tuple[SigmaRule, Taxonomy, list[dict]]:
    rule = draw(st.sampled_from(_FIXTURE_RULES))
    tax = taxonomy_for(rule.logsource)
    fields = list(dict.fromkeys([*rule_fields(rule), *list(tax.fields)[:4]]))
    return rule, tax, draw(_rows(tax, fields, _rule_values(rule)))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_fixture_case())
def test_fixture_rules_on_drawn_events(case: tuple[SigmaRule, Taxonomy, list[dict]]) -> None:
    rule, tax, rows = case
    events = _events(tax, rows)
    got, compiled = engine_matches(rule, tax, events)
    assert not compiled.unsupported
    assert got == reference_matches(rule, tax, events), rows


# Rule variants: modifiers on the field kinds they apply to, conditions of every shape.
_TEXT_MODS = ["", "|contains", "|startswith", "|endswith", "|contains|all", "|re", "|re|i", "|cased",
              "|contains|cased", "|exists", "|windash", "|base64|contains", "|fieldref"]
_IP_MODS = ["", "|cidr", "|startswith", "|exists"]
_NUM_MODS = ["", "|gt", "|gte", "|lt", "|lte", "|exists"]
_WILD_OK = {"", "|contains", "|startswith", "|endswith", "|contains|all", "|cased", "|contains|cased"}
_CONDITIONS = ["sel0", "sel0 and not sel1", "sel0 or sel1", "1 of sel*", "all of sel*", "not sel0",
               "sel0 and (sel1 or not sel2)", "all of them", "1 of them and not sel2"]
_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "203.0.113.32/27", "fe80::/10", "::1/128", "8.8.8.8/32"]
_VARIANT_TAXES = ["zeek/conn", "zeek/modbus", "fortigate", "windows/security", "suricata", "cranewatch/cms",
                  "zeek/dns", "zeek/s7comm"]


def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


@st.composite
def _variant(draw: st.DrawFn) -> tuple[str, Taxonomy, list[dict]]:
    tax = BY_NAME[draw(st.sampled_from(_VARIANT_TAXES))]
    fields = draw(st.lists(st.sampled_from(sorted(tax.fields)), min_size=1, max_size=4, unique=True))
    text_fields = [f for f in fields if _kind(tax.event_field(f)) == "text"]
    sels = []
    used: dict[str, list[str]] = {}
    for _ in range(3):
        items = []
        for f in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True)):
            kind = _kind(tax.event_field(f))
            mods = _IP_MODS if kind == "ip" else _NUM_MODS if kind in ("number", "float") else _TEXT_MODS
            if f in tax.prefixes or f in tax.values:  # a regex is not rewritten (documented; sigma check warns)
                mods = [m for m in mods if not m.startswith("|re")]
            mod = draw(st.sampled_from(mods))
            if mod == "|exists":
                vals: list[Any] = [draw(st.booleans())]
            elif mod == "|fieldref":
                others = [o for o in text_fields if o != f] or [f]
                vals = [draw(st.sampled_from(others))]
            elif mod == "|cidr":
                vals = draw(st.lists(st.sampled_from(_CIDRS), min_size=1, max_size=3, unique=True))
            elif kind == "ip":
                vals = draw(st.lists(st.sampled_from(_IPS[:8] + ["10.", "192.168."]), min_size=1, max_size=2))
            elif kind in ("number", "float"):
                vals = draw(st.lists(st.sampled_from(_PORTS), min_size=1, max_size=2))
            elif mod.startswith("|re"):
                vals = [draw(st.sampled_from(["^ad", "min$", "s.c", "(?:add|edit)", "^[0-9]+$", "v[a-z]n"]))]
            else:
                base = draw(st.sampled_from(_WORDS))
                wild = draw(st.sampled_from(["", "*", "?", "pre*"])) if mod in _WILD_OK else ""
                vals = draw(st.lists(st.just(base) | st.sampled_from(_WORDS).map(lambda w: w + wild),
                                     min_size=1, max_size=2))
                if draw(st.booleans()) and mod == "":
                    vals.append(None)  # null in a value list
            used.setdefault(f, []).extend(str(v).replace("*", "").replace("?", "z") for v in vals if isinstance(v, str))
            body = ", ".join("null" if v is None else _yaml_value(v) for v in vals)
            items.append(f"    {f}{mod}: [{body}]")
        sels.append(items)
    condition = draw(st.sampled_from(_CONDITIONS))
    text = "title: drawn\nlogsource: {" + ", ".join(f"{k}: {v}" for k, v in tax.logsource.items()) + "}\ndetection:\n"
    for i, items in enumerate(sels):
        text += f"  sel{i}:\n" + "\n".join(items) + "\n"
    text += f"  condition: {condition}\n"
    return text, tax, draw(_rows(tax, fields, used))  # the YAML: readable when hypothesis reports a case


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_variant())
def test_rule_variants_match_like_sqlite(case: tuple[str, Taxonomy, list[dict]]) -> None:
    text, tax, rows = case
    rule = SigmaRule.from_yaml(text)
    events = _events(tax, rows)
    got, compiled = engine_matches(rule, tax, events)
    assert not compiled.unsupported  # every drawn modifier and condition shape is evaluated
    assert got == reference_matches(rule, tax, events), (text, rows)


@pytest.mark.xfail(strict=True, reason="known difference: the engine reads text with blanks around a number "
                   "(' 2') as that number, SQLite (text affinity) compares the text '2'")
def test_number_text_with_blanks_known_difference() -> None:
    rule = SigmaRule.from_yaml("title: t\nlogsource: {category: firewall}\ndetection:\n"
                               "  sel:\n    action: 2\n  condition: sel\n")
    tax = taxonomy_for(rule.logsource)
    events = _events(tax, [{"action": " 2"}, {"action": "2"}])
    assert engine_matches(rule, tax, events)[0] == reference_matches(rule, tax, events) == {1}
