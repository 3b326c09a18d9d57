"""Ordered chains: access → command → impact in event time, linked by entity, is
critical; the same stages in reverse (a legitimate change, later a login) are not."""
from __future__ import annotations

from test_correlate import finding

from transforms.chains import ordered_stages
from transforms.correlate import correlate

GAP = 6 * 3600.0
TUNNEL, PLC = "ip:10.212.134.200", "asset:sts01-plc"


def _t(hhmm: str) -> str:
    return f"2026-11-15T{hhmm}:00.000000Z"


def test_access_then_command_then_impact_is_critical() -> None:
    vpn = finding("vpn", _t("23:10"), _t("23:10"), "access", ("account:zpmc-svc1", TUNNEL), severity=70)
    write = finding("write", _t("23:20"), _t("23:25"), "command", (PLC, TUNNEL), asset="sts01-plc", severity=75)
    change = finding("param", _t("23:30"), _t("23:30"), "impact", (PLC, "ip:10.30.1.20"), asset="sts01-plc", severity=85)
    (incident,) = correlate([change, write, vpn], GAP)
    assert ordered_stages(incident.findings) == ("access", "command", "impact")
    assert (incident.severity, incident.severity_label) == (95, "critical")
    assert incident.title == "Critical: access → command → impact on sts01-plc"


def test_reversed_look_alike_is_not_critical() -> None:
    # A legitimate safety-parameter change in the morning, writes, and hours later a
    # vendor login with no writes: same entities, same stages, reversed order.
    change = finding("param", _t("08:00"), _t("08:00"), "impact", (PLC, "account:eng1"), asset="sts01-plc", severity=85)
    write = finding("write", _t("09:00"), _t("09:00"), "command", (PLC, "account:eng1", TUNNEL), asset="sts01-plc",
                    severity=75)
    vpn = finding("vpn", _t("12:00"), _t("12:00"), "access", ("account:zpmc-svc1", TUNNEL), severity=70)
    (incident,) = correlate([change, write, vpn], GAP)
    assert ordered_stages(incident.findings) == ()
    assert incident.severity == 85  # what its worst finding says, no chain raise
    assert incident.severity_label == "high"
    assert incident.title == "High: impact, then command, then access on sts01-plc"


def test_stages_in_order_but_not_linked_stage_to_stage_are_not_a_chain() -> None:
    # The login and the impact share only the asset with a write on another address: the
    # access never reaches the command, so only command → impact is a pair.
    vpn = finding("vpn", _t("23:10"), _t("23:10"), "access", ("account:zpmc-svc1", PLC), severity=70)
    write = finding("write", _t("23:20"), _t("23:20"), "command", ("ip:10.40.0.99", "account:x"), severity=75)
    change = finding("param", _t("23:30"), _t("23:30"), "impact", ("ip:10.40.0.99", PLC), asset="sts01-plc", severity=80)
    (incident,) = correlate([vpn, write, change], GAP)
    assert ordered_stages(incident.findings) == ("command", "impact")
    assert incident.severity == 89  # an ordered pair: raised, capped below critical
