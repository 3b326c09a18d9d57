"""The ATT&CK for ICS data file against MITRE's published facts, and revoked-by resolution."""
from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
import yaml

from stix_export import attack

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
TECHNIQUES_CSV = FIXTURES / "attack-ics" / "techniques.csv"

#: Every technique SCENARIOS.md names (v18 ids).
SCENARIO_TECHNIQUES = (
    "T0883 T0884 T0822 T0859 T0886 T0836 T0855 T0843 T0845 T0858 T0816 T0838 T0831 "
    "T0848 T0846 T0888 T0812 T0882 T0869 T0885"
).split()

MITRE_BUNDLE = FIXTURES / "attack-ics" / "ics-attack-18.1-stix20.json"


def _fixture_rows() -> dict[str, dict[str, str]]:
    if not TECHNIQUES_CSV.exists():
        pytest.skip(f"ATT&CK fixture not present: {TECHNIQUES_CSV}")
    with open(TECHNIQUES_CSV, newline="", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def _phase(tactic_display_name: str) -> str:
    return tactic_display_name.strip().lower().replace(" ", "-")


def test_entries_with_a_stix_id_match_mitre_data() -> None:
    rows = _fixture_rows()
    checked = 0
    for tid, tech in attack.all_techniques().items():
        if tid not in rows:  # not in the digest: checked against MITRE's whole bundle below
            continue
        row = rows[tid]
        assert tech.name == row["name"], tid
        assert tech.stix_id == row["stix_id"], tid
        assert list(tech.tactics) == [_phase(t) for t in row["tactics"].split(";")], tid
        checked += 1
    assert checked == len(rows), "every fixture technique should be in the data file"


def _mitre_attack_patterns() -> dict[str, dict]:
    if not MITRE_BUNDLE.exists():
        pytest.skip(f"ATT&CK fixture not present: {MITRE_BUNDLE}")
    objects = json.loads(MITRE_BUNDLE.read_text(encoding="utf-8"))["objects"]
    return {
        o["external_references"][0]["external_id"]: o
        for o in objects
        if o["type"] == "attack-pattern" and o["external_references"][0]["source_name"] == "mitre-attack"
    }


def test_every_technique_is_one_of_the_pinned_ics_18_1_release() -> None:
    """No technique outside the pinned release (v19's T1692.001 & co. had ids nobody could
    check), none revoked or deprecated in it, and MITRE's id, name and phases for each."""
    mitre = _mitre_attack_patterns()
    for tid, tech in attack.all_techniques().items():
        assert tid in mitre, f"{tid} is not a technique of ATT&CK for ICS 18.1"
        obj = mitre[tid]
        assert not obj.get("revoked") and not obj.get("x_mitre_deprecated"), tid
        assert tech.stix_id == obj["id"] and tech.name == obj["name"], tid
        assert tech.kill_chain_phases == obj["kill_chain_phases"], tid
        assert tech.revoked_by is None and attack.resolve(tid).id == tid
    assert attack.load_attack_data().release == "ics-attack-18.1"


def test_t0855_stays_the_18_1_technique() -> None:
    tech = attack.resolve("T0855")
    assert (tech.id, tech.name) == ("T0855", "Unauthorized Command Message")
    assert tech.url == "https://attack.mitre.org/techniques/T0855"


@pytest.mark.parametrize("tid", SCENARIO_TECHNIQUES)
def test_every_scenario_technique_resolves_to_a_current_one(tid: str) -> None:
    tech = attack.resolve(tid)
    assert tech.revoked_by is None
    assert tech.name and tech.tactics


def test_resolve_is_case_and_space_tolerant() -> None:
    assert attack.resolve(" t0822 ").id == "T0822"


def test_unknown_technique_raises_a_clear_error() -> None:
    with pytest.raises(attack.UnknownTechniqueError) as err:
        attack.resolve("T0999")
    assert "T0999" in str(err.value) and "attack_ics.yml" in str(err.value)


def test_kill_chain_phases_follow_mitre_ics_convention() -> None:
    for tech in attack.all_techniques().values():
        for phase in tech.kill_chain_phases:
            assert phase["kill_chain_name"] == "mitre-ics-attack"
            assert phase["phase_name"] in attack.ICS_TACTICS
            assert phase["phase_name"] == phase["phase_name"].lower() and " " not in phase["phase_name"]


def test_mitre_stix_ids_are_uuid4_so_strict_validation_passes() -> None:
    for tech in attack.all_techniques().values():
        if tech.stix_id:
            assert uuid.UUID(tech.stix_id.split("--")[1]).version == 4, tech.id


def _parse(text: str) -> attack.AttackData:
    return attack._parse(yaml.safe_load(text), "test.yml")


def test_bad_data_file_reports_every_problem_at_once() -> None:
    with pytest.raises(attack.AttackDataError) as err:
        _parse(
            """
meta: {data_date: "2026-04-28T00:00:00.000Z"}
techniques:
  T0001: {name: A, tactics: [initial-access], stix_id: null, colour: red}
  T0002: {name: B, tactics: [Initial Access], stix_id: null}
  T0003: {name: C, tactics: [impact], stix_id: null, revoked_by: T0404}
"""
        )
    text = str(err.value)
    assert "techniques.T0001.colour: unknown key" in text
    assert "techniques.T0002.tactics" in text
    assert "techniques.T0003.revoked_by" in text and "T0404" in text


def test_revocation_cycle_is_rejected() -> None:
    with pytest.raises(attack.AttackDataError, match="cycle"):
        _parse(
            """
meta: {data_date: "2026-04-28T00:00:00.000Z"}
techniques:
  T0001: {name: A, tactics: [impact], stix_id: null, revoked_by: T0002}
  T0002: {name: B, tactics: [impact], stix_id: null, revoked_by: T0001}
"""
        )
