"""The ATT&CK for ICS data file against MITRE's published facts, and revoked-by resolution."""
from __future__ import annotations

import csv
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

#: ATT&CK v19 revocations (STIX_SHARING.md).
V19_REVOCATIONS = {
    "T0855": "T1692.001",
    "T0856": "T1692.002",
    "T0803": "T1691.001",
    "T0812": "T1694.001",
    "T0891": "T1694.002",
    "T0857": "T1693.001",
}


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
        if tech.stix_id is None:
            continue
        assert tid in rows, f"{tid} has a MITRE stix_id but is not in the fixture"
        row = rows[tid]
        assert tech.name == row["name"], tid
        assert tech.stix_id == row["stix_id"], tid
        assert list(tech.tactics) == [_phase(t) for t in row["tactics"].split(";")], tid
        checked += 1
    assert checked == len(rows), "every fixture technique should be in the data file"


def test_new_v19_techniques_have_no_mitre_stix_id() -> None:
    rows = _fixture_rows()
    for tid, tech in attack.all_techniques().items():
        if tid not in rows:
            assert tech.stix_id is None, f"{tid}: STIX id not checked against MITRE data"


@pytest.mark.parametrize("old,new", sorted(V19_REVOCATIONS.items()))
def test_v19_revocations_resolve(old: str, new: str) -> None:
    assert attack.all_techniques()[old].revoked_by == new
    current = attack.resolve(old)
    assert current.id == new
    assert current.revoked_by is None
    assert current.url == "https://attack.mitre.org/techniques/" + new.replace(".", "/")


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
