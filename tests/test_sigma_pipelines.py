"""The shipped pySigma pipelines: Sigma field names and native values → the event model."""
from __future__ import annotations

import glob
import os

import pytest
from sigma.rule import SigmaRule
from sigma.types import SigmaCIDRExpression

from detections.sigma_engine import pipelines as sp

RULES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "sigma-rules")


def _rule(logsource: str, detection: str) -> SigmaRule:
    return SigmaRule.from_yaml(f"title: t\nlogsource: {logsource}\ndetection:\n{detection}")


def _items(rule: SigmaRule) -> dict[str, list[tuple[str, list[str]]]]:
    out = {}
    for name, det in rule.detection.detections.items():
        out[name] = [(i.field, [str(v) for v in i.value]) for i in det.detection_items]
    return out


def test_zeek_modbus_fields_and_function_values_become_event_fields() -> None:
    rule = _rule("{product: zeek, service: modbus}",
                 "  sel:\n    func|startswith: WRITE_\n    id.orig_h: 10.1.1.1\n    unit: '1'\n"
                 "  sel2:\n    func: [READ_COILS, modbus.read_input_registers]\n  condition: sel or sel2\n")
    sp.pipeline_for(rule.logsource).apply(rule)
    items = _items(rule)
    assert items["sel"] == [("action", ["modbus.WRITE_*"]), ("src_ip", ["10.1.1.1"]), ("attrs.unit", ["1"])]
    assert items["sel2"] == [("action", ["modbus.READ_COILS", "modbus.read_input_registers"])]  # event form kept
    assert sp.source_kinds(rule.logsource) == {"zeek_modbus"}


def test_fortigate_actions_renamed_by_the_parser_are_rewritten() -> None:
    rule = _rule("{product: fortigate, service: event}",
                 "  sel:\n    action: [tunnel-up, ssl-login-fail, tunnel-stats]\n    tunnelip: 10.212.134.7\n"
                 "  condition: sel\n")
    sp.pipeline_for(rule.logsource).apply(rule)
    assert _items(rule)["sel"] == [("action", ["vpn.login", "auth.failure", "vpn.tunnel-stats"]),
                                   ("attrs.tunnel_ip", ["10.212.134.7"])]


def test_zeek_rdp_adds_the_service_condition_and_keeps_the_negation_inside() -> None:
    rule = SigmaRule.from_yaml(open(os.path.join(RULES, "zeek", "zeek_rdp_public_listener.yml")).read())
    sp.pipeline_for(rule.logsource).apply(rule)
    assert [c.condition for c in rule.detection.parsed_condition] == ["cranewatch_logsource and (not selection)"]
    sel = rule.detection.detections["selection"].detection_items[0]
    assert sel.field == "src_ip" and all(isinstance(v, SigmaCIDRExpression) for v in sel.value)
    assert _items(rule)["cranewatch_logsource"] == [("service", ["rdp"])]


def test_unlisted_fields_never_read_an_event_field_of_the_same_name() -> None:
    rule = SigmaRule.from_yaml(open(os.path.join(RULES, "firewall", "net_firewall_cleartext_protocols.yml")).read())
    assert sp.unmapped_fields(rule) == ["action", "blocked"]
    sp.pipeline_for(rule.logsource).apply(rule)
    items = _items(rule)
    assert items["selection"][0][0] == "dst_port"
    assert items["selection_allow1"][0][0] == "attrs.action"  # never the flow's own action column
    assert items["selection_allow2"][0][0] == "blocked"  # not an event field: the engine reads attrs
    assert sp.source_kinds(rule.logsource) == {"zeek_conn", "suricata_eve", "nfdump_csv", "nfdump_json"}


def test_every_fixture_rule_has_a_taxonomy() -> None:
    files = sorted(glob.glob(os.path.join(RULES, "*", "*.yml")))
    assert len(files) == 9
    for f in files:
        rule = SigmaRule.from_yaml(open(f).read())
        assert sp.taxonomy_for(rule.logsource) is not None, f


@pytest.mark.parametrize("logsource, name", [
    ({"product": "zeek", "service": "conn"}, "zeek/conn"),
    ({"product": "ZEEK", "service": "DNS"}, "zeek/dns"),
    ({"product": "windows", "service": "security"}, "windows/security"),
    ({"product": "suricata", "service": "alert"}, "suricata"),
    ({"product": "cranewatch", "service": "cms"}, "cranewatch/cms"),
    ({"product": "cranewatch", "category": "remote_access"}, "cranewatch/remote_access"),
    ({"product": "zeek"}, None),  # no service: no one log
    ({"product": "windows", "service": "sysmon"}, None),
])
def test_logsource_selection(logsource: dict, name: str | None) -> None:
    tax = sp.taxonomy_for(logsource)
    assert (tax.name if tax else None) == name
    assert bool(sp.source_kinds(logsource)) == (name is not None)


def test_cms_event_types_and_own_keys() -> None:
    rule = _rule("{product: cranewatch, service: cms}",
                 "  sel:\n    event_type: parameter_change\n    parameter: hoist.max_speed\n    alarm_code: A1203\n"
                 "  condition: sel\n")
    sp.pipeline_for(rule.logsource).apply(rule)
    assert _items(rule)["sel"] == [("action", ["cms.parameter_change"]), ("target", ["hoist.max_speed"]),
                                   ("alarm_code", ["A1203"])]  # left for site pipelines; read from attrs


def test_event_model_category_restricts_by_kind_and_mapped_sources_by_their_kind() -> None:
    from types import SimpleNamespace as NS

    ls = {"product": "cranewatch", "category": "auth"}
    rule = _rule("{product: cranewatch, category: auth}", "  sel:\n    user: bob\n  condition: sel\n")
    sp.pipeline_for(ls).apply(rule)
    assert _items(rule)["cranewatch_logsource"] == [("kind", ["auth"])]
    sources = [NS(name="jump", format="windows_security", mapping=None),
               NS(name="badges", format="csv_mapped", mapping=NS(kind="auth")),
               NS(name="portal", format="jsonl_mapped", mapping=NS(kind="remote_access")),
               NS(name="conn", format="zeek_conn", mapping=None)]
    assert sp.sources_for(ls, sources) == ["jump", "badges"]
