"""Regimes are data plus a module: built-ins load, a plugin regime arrives through the
``cranewatch.regimes`` entry-point group, and a broken regime is named by file and key."""
from __future__ import annotations

import importlib.metadata
import json
import textwrap
from pathlib import Path

import pytest
from pipelines.config import parse_config
from pipelines.mandated import incident_dir, write_mandated
from pipelines.mandated.registry import ENTRY_POINT_GROUP, RegimeError, load_regime, load_regimes
from pipelines.mandated.rule import reportable

EXAMPLE = "example_national"


def test_builtin_regimes_cite_their_texts() -> None:
    regimes = load_regimes()
    assert {"uscg_mtsa", "us_33cfr6", "nis2"} <= set(regimes)
    assert "101.650(g)" in regimes["uscg_mtsa"].citation and "National Response Center" in regimes["uscg_mtsa"].authority
    assert "6.16-1" in regimes["us_33cfr6"].citation
    assert all(a in regimes["us_33cfr6"].authority for a in ("FBI", "CISA", "Captain of the Port"))
    assert [(d.id, d.within.text, d.citation) for d in regimes["nis2"].deadlines] == [
        ("early_warning", "24h", "Art. 23(4)(a)"), ("incident_notification", "72h", "Art. 23(4)(b)"),
        ("final_report", "1 month", "Art. 23(4)(d)")]
    assert regimes["uscg_mtsa"].deadlines[0].within.without_delay


def test_plugin_regime_is_found_and_drafted(tmp_path: Path, example_plugin) -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert EXAMPLE in names, "the example_plugin fixture did not make tests/example_plugin discoverable"
    regime = load_regimes()[EXAMPLE]
    assert "tests/example_plugin" in Path(regime.path).as_posix() and "cranes" in regime.fillers

    from detections.testing import TEST_TERMINAL
    from transforms.correlate import build_incident
    from transforms.model import Evidence, Finding

    raw = {**TEST_TERMINAL, "reporting": {"regimes": [EXAMPLE], "facility": {"name": "Pier 9", "timezone": "Europe/Amsterdam"}}}
    cfg = parse_config(raw, str(tmp_path / "config.yaml"), base_dir=str(tmp_path))
    plc = next(a for a in cfg.inventory.assets if a.kind == "crane_plc" and a.crane)
    f = Finding("f1", "modbus_write_non_engineering", f"Modbus writes to {plc.id}", 75, 80, "command", ("T0855",),
                "2026-03-29T00:45:00.000000Z", "2026-03-29T01:10:00.000000Z", plc.id, plc.zone,
                ("10.99.0.5",), (), (plc.id,), (Evidence("x.log:1", "0" * 64, "2026-03-29T00:45:00.000000Z", {}),))
    inc = build_incident([f])
    assert reportable(inc, cfg) is not None
    write_mandated(cfg, [inc], str(tmp_path))
    draft = json.loads((Path(incident_dir(str(tmp_path), inc.incident_id)) / f"{EXAMPLE}.json").read_text())
    fields = {x["key"]: x for x in draft["fields"]}
    assert fields["cranes"]["value"] == [plc.crane] and fields["cranes"]["source"] == f"regime {EXAMPLE}"
    assert fields["facility_name"]["value"] == "Pier 9"
    assert fields["harbour_master_informed"]["status"] == "analyst_required"
    due = {d["id"]: d["due"] for d in draft["clock"]["deadlines"]}
    assert due["first_notice"] == {"utc": "2026-03-29T06:45:00.000000Z", "local": "2026-03-29T08:45:00+02:00",
                                   "timezone": "Europe/Amsterdam"}
    assert due["follow_up"]["local"] == "2026-05-29T01:45:00+02:00"  # 01:45 CET + two months, CEST then


def _regime(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "broken.yml"
    p.write_text(textwrap.dedent(body))
    return p


def test_a_broken_regime_is_named_by_file_and_key(tmp_path: Path) -> None:
    p = _regime(tmp_path, """\
        id: broken
        title: t
        authority: a
        citation: c
        legal_text: l
        deadlines: [{id: d, title: t, within: soon, citation: c}]
        fields: [{key: no_such_field, label: l, asks: a}]
        colour: red
    """)
    with pytest.raises(RegimeError) as exc:
        load_regime(p)
    assert f"{p}: colour: unknown key" in str(exc.value)
    p = _regime(tmp_path, """\
        id: broken
        title: t
        authority: a
        citation: c
        legal_text: l
        deadlines: [{id: d, title: t, within: soon, citation: c}]
        fields: [{key: no_such_field, label: l, asks: a}, {key: free, label: l, asks: a, analyst: say it}]
    """)
    with pytest.raises(RegimeError) as exc:
        load_regime(p)
    msg = str(exc.value)
    assert f"{p}: deadlines[0].within: expected without_delay" in msg
    assert f"{p}: fields[0].key: expected a common field" in msg and "fields[1]" not in msg
