"""ATT&CK for ICS technique lookup, backed by the one data file ``detections/attack_ics.yml``.

The file pins one ATT&CK for ICS release (18.1, the one whose STIX data is checked in
tests/test_attack_mapping.py): every entry is a technique of that release with MITRE's id.
Detections cite technique ids; an entry may name a ``revoked_by`` successor of the same
release, followed here at export time, so moving to a newer release is an edit of the data
file, not of every detection.

The file is checked as a whole when first read; every problem is reported at once with the
file and key, like the config loader does.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

#: libyaml's safe loader when PyYAML has it: the packaged data file loads ~8x faster.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KILL_CHAIN_NAME = "mitre-ics-attack"
ATTACK_URL = "https://attack.mitre.org/techniques/"

#: The ATT&CK for ICS tactics as kill-chain phase names, in MITRE's matrix order.
ICS_TACTICS = (
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "evasion",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "inhibit-response-function",
    "impair-process-control",
    "impact",
)

_TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_STIX_ID = re.compile(r"^attack-pattern--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ENTRY_KEYS = {"name", "tactics", "stix_id", "revoked_by"}
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class AttackDataError(ValueError):
    """The technique data file is malformed; ``errors`` lists every problem (file: key: ...)."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


class UnknownTechniqueError(LookupError):
    """A technique id that the data file does not list."""

    def __init__(self, technique_id: str, source: str):
        self.technique_id = technique_id
        super().__init__(
            f"unknown ATT&CK for ICS technique {technique_id!r}: not in {source} "
            "(add it there with name, tactics and stix_id, or fix the detection's technique list)"
        )


@dataclass(frozen=True)
class Technique:
    """One technique as recorded in the data file (``revoked_by`` set if it was revoked)."""

    id: str
    name: str
    tactics: tuple[str, ...]
    stix_id: str | None  # MITRE's attack-pattern id; None when not recorded
    url: str
    revoked_by: str | None = None

    @property
    def kill_chain_phases(self) -> list[dict[str, str]]:
        """STIX ``kill_chain_phases`` as MITRE's own ICS objects carry them."""
        return [{"kill_chain_name": KILL_CHAIN_NAME, "phase_name": t} for t in self.tactics]


def technique_url(technique_id: str) -> str:
    """MITRE's page: ``T0822`` -> .../techniques/T0822, ``T1692.001`` -> .../T1692/001."""
    return ATTACK_URL + technique_id.replace(".", "/")


def _default_path() -> Path:
    return Path(str(resources.files("detections").joinpath("attack_ics.yml")))


@dataclass(frozen=True)
class AttackData:
    """The parsed data file: techniques by id, and the date of the recorded ATT&CK data."""

    techniques: Mapping[str, Technique]
    data_date: str  # RFC 3339; created/modified of the attack-pattern objects emitted
    source: str
    release: str = "ics-attack"  # the pinned ATT&CK release, e.g. ics-attack-18.1


def _entry_errors(where: str, entry: dict[str, Any]) -> list[str]:
    errors = [
        f"{where}.{key}: unknown key; expected one of: {', '.join(sorted(_ENTRY_KEYS))}"
        for key in sorted(set(entry) - _ENTRY_KEYS)
    ]
    name, tactics = entry.get("name"), entry.get("tactics")
    stix_id, revoked_by = entry.get("stix_id"), entry.get("revoked_by")
    if not isinstance(name, str) or not name.strip():
        errors.append(f"{where}.name: expected the technique's name, got {name!r}")
    if not isinstance(tactics, list) or not tactics or any(t not in ICS_TACTICS for t in tactics):
        errors.append(
            f"{where}.tactics: expected a list of ICS tactic phase names ({', '.join(ICS_TACTICS)}), got {tactics!r}"
        )
    if "stix_id" not in entry:
        errors.append(f"{where}.stix_id: required key is missing (null when MITRE's id is not known)")
    elif stix_id is not None and (not isinstance(stix_id, str) or not _STIX_ID.match(stix_id)):
        errors.append(f"{where}.stix_id: expected attack-pattern--<uuid> or null, got {stix_id!r}")
    if revoked_by is not None and (not isinstance(revoked_by, str) or not _TECHNIQUE_ID.match(revoked_by)):
        errors.append(f"{where}.revoked_by: expected a technique id such as T1692.001, got {revoked_by!r}")
    return errors


def _parse(data: Any, source: str) -> AttackData:
    if not isinstance(data, dict) or not isinstance(data.get("techniques"), dict):
        raise AttackDataError([f"{source}: techniques: expected a mapping of technique id to entry"])
    errors: list[str] = []
    date = (data.get("meta") or {}).get("data_date")
    if not isinstance(date, str) or not _TIMESTAMP.match(date):
        errors.append(f"{source}: meta.data_date: expected a timestamp such as 2026-04-28T00:00:00.000Z, got {date!r}")
    table: dict[str, Technique] = {}
    for tid, entry in data["techniques"].items():
        where = f"{source}: techniques.{tid}"
        if not isinstance(tid, str) or not _TECHNIQUE_ID.match(tid):
            errors.append(f"{where}: expected an id such as T0822 or T1692.001")
            continue
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected a mapping with name, tactics, stix_id")
            continue
        entry_errors = _entry_errors(where, entry)
        errors.extend(entry_errors)
        if not entry_errors:
            table[tid] = Technique(
                tid, entry["name"], tuple(entry["tactics"]), entry["stix_id"], technique_url(tid), entry.get("revoked_by")
            )
    for tid, tech in table.items():
        if tech.revoked_by is not None and tech.revoked_by not in table:
            errors.append(f"{source}: techniques.{tid}.revoked_by: {tech.revoked_by!r} is not listed in the file")
    if not errors:
        for tid in table:
            try:
                _follow(table, tid, source)
            except AttackDataError as exc:
                errors.extend(exc.errors)
    stix_ids = [t.stix_id for t in table.values() if t.stix_id]
    for dup in sorted({s for s in stix_ids if stix_ids.count(s) > 1}):
        errors.append(f"{source}: stix_id {dup} is used by more than one technique")
    if errors:
        raise AttackDataError(errors)
    release = (data.get("meta") or {}).get("release")
    return AttackData(table, date, source, release if isinstance(release, str) and release else "ics-attack")


def _follow(table: Mapping[str, Technique], tid: str, source: str) -> Technique:
    seen = [tid]
    tech = table[tid]
    while tech.revoked_by is not None:
        if tech.revoked_by in seen:
            chain = " -> ".join([*seen, tech.revoked_by])
            raise AttackDataError([f"{source}: techniques.{tid}.revoked_by: cycle {chain}"])
        seen.append(tech.revoked_by)
        tech = table[tech.revoked_by]
    return tech


@functools.lru_cache(maxsize=4)
def load_attack_data(path: str | None = None) -> AttackData:
    """Read and check the data file (default: the packaged ``detections/attack_ics.yml``)."""
    file = Path(path) if path else _default_path()
    with open(file, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_FAST_LOADER)  # noqa: S506 (a safe loader)
    return _parse(data, str(file))


def all_techniques() -> Mapping[str, Technique]:
    """Every entry of the data file, revoked ones included, keyed by technique id."""
    return load_attack_data().techniques


def resolve(technique_id: str) -> Technique:
    """The current technique for ``technique_id``, following ``revoked_by`` links.

    ``resolve("T0855")`` gives T0855 in the pinned 18.1 release. Raises ``UnknownTechniqueError``
    for an id the data file does not list.
    """
    data = load_attack_data()
    tid = technique_id.strip().upper()
    if tid not in data.techniques:
        raise UnknownTechniqueError(technique_id, data.source)
    return _follow(data.techniques, tid, data.source)
