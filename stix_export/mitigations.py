"""Recommended ICS mitigations: MITRE's ATT&CK for ICS mitigations for the techniques seen.

Peers receiving a bundle want something to do about it. MITRE's data links each ICS
technique to mitigations (``course-of-action`` objects, ``mitigates`` relationships). The
subset for the techniques of ``detections/attack_ics.yml`` ships as package data,
``stix_export/attack_ics_mitigations.yml`` (with MITRE's copyright and licence), built from
MITRE's pinned 18.1 bundle by ``python -m stix_export.mitigations BUNDLE`` and checked
against it by tests/test_attack_mapping.py.

MITRE's objects themselves are not re-published: they are STIX 2.0 objects with ``x_mitre_*``
properties that strict 2.1 validation refuses, and any change (marking, creator) made under
MITRE's id would be a new version of MITRE's object in a platform that holds MITRE's data.
Each mitigation becomes the producer's own ``course-of-action`` (an id in the producer's id
space, the same in every bundle) that names MITRE's mitigation the way platforms match it,
``external_references: [{source_name: mitre-attack, external_id: M0xxx}]``, like the
producer's technique references (``bundle._Builder.attack_pattern``).
"""
from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from stix_export.ids import deterministic_id

#: libyaml's safe loader when PyYAML has it: the packaged data file loads ~8x faster.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MITIGATION_URL = "https://attack.mitre.org/mitigations/"
_CITATION = re.compile(r"\s*\(Citation:[^)]*\)")
DATA_FILE = "attack_ics_mitigations.yml"

HEADER = """\
# MITRE ATT&CK for ICS mitigations of the techniques cranewatch uses (detections/attack_ics.yml):
# name and description of each mitigation, and per technique MITRE's `mitigates` guidance.
# Generated from MITRE's ICS 18.1 bundle (ics-attack-18.1) by
#   python -m stix_export.mitigations ../shared/fixtures/attack-ics/ics-attack-18.1-stix20.json
# (citation markers removed); tests/test_attack_mapping.py checks it against that bundle.
#
# (c) 2025 The MITRE Corporation. This work is reproduced and distributed with the
# permission of The MITRE Corporation.
# License: The MITRE Corporation (MITRE) hereby grants you a non-exclusive, royalty-free
# license to use ATT&CK(R) for research, development, and commercial purposes. Any copy you
# make for such purposes is authorized provided that you reproduce MITRE's copyright
# designation and this license in any copy. ATT&CK is provided "as is", without warranties;
# see https://attack.mitre.org/resources/legal-and-branding/terms-of-use/.

"""


@dataclass(frozen=True)
class Mitigation:
    id: str  # M0xxx
    name: str
    description: str
    stix_id: str  # MITRE's course-of-action id (recorded, never emitted)

    @property
    def url(self) -> str:
        return MITIGATION_URL + self.id


@dataclass(frozen=True)
class MitigationData:
    mitigations: Mapping[str, Mitigation]
    #: technique id -> ((mitigation id, MITRE's guidance for that technique), ...)
    by_technique: Mapping[str, tuple[tuple[str, str], ...]]


def _clean(text: str | None) -> str:
    return _CITATION.sub("", text or "").strip()


def _external_id(obj: dict[str, Any]) -> str | None:
    return next((r.get("external_id") for r in obj.get("external_references", [])
                 if r.get("source_name") == "mitre-attack"), None)


def build_data(mitre_objects: Iterable[dict[str, Any]], technique_stix_ids: Mapping[str, str]) -> dict[str, Any]:
    """The data file's content for ``technique_stix_ids`` (technique id -> MITRE's STIX id):
    every non-revoked, non-deprecated mitigation linked to one of them, and the links."""
    objs = {o["id"]: o for o in mitre_objects}
    live = {i: o for i, o in objs.items() if o.get("type") == "course-of-action"
            and not o.get("revoked") and not o.get("x_mitre_deprecated")}
    technique_of = {sid: tid for tid, sid in technique_stix_ids.items()}
    links: dict[str, list[dict[str, str]]] = {}
    used: set[str] = set()
    for rel in objs.values():
        if (rel.get("type") != "relationship" or rel.get("relationship_type") != "mitigates"
                or rel.get("revoked") or rel.get("x_mitre_deprecated")):
            continue
        tid, coa = technique_of.get(rel.get("target_ref", "")), live.get(rel.get("source_ref", ""))
        if tid is None or coa is None:
            continue
        mid = _external_id(coa)
        used.add(coa["id"])
        links.setdefault(tid, []).append({"mitigation": mid, "how": _clean(rel.get("description"))})
    mitigations = {
        _external_id(live[i]): {"name": live[i]["name"], "description": _clean(live[i].get("description")), "stix_id": i}
        for i in used
    }
    return {
        "mitigations": dict(sorted(mitigations.items())),
        "techniques": {t: sorted(v, key=lambda x: x["mitigation"]) for t, v in sorted(links.items())},
    }


def _parse(data: dict[str, Any]) -> MitigationData:
    mitigations = {mid: Mitigation(mid, m["name"], m["description"], m["stix_id"])
                   for mid, m in data["mitigations"].items()}
    by_technique = {t: tuple((link["mitigation"], link["how"]) for link in links)
                    for t, links in data["techniques"].items()}
    return MitigationData(mitigations, by_technique)


def data_path() -> Path:
    return Path(str(resources.files("stix_export").joinpath(DATA_FILE)))


@functools.lru_cache(maxsize=1)
def load_mitigations() -> MitigationData:
    """The packaged mitigation data (read once per process)."""
    with open(data_path(), encoding="utf-8") as fh:
        return _parse(yaml.load(fh, Loader=_FAST_LOADER))  # noqa: S506 (a safe loader)


def for_technique(technique_id: str) -> tuple[tuple[Mitigation, str], ...]:
    """MITRE's mitigations of one technique with the per-technique guidance; () if none."""
    data = load_mitigations()
    return tuple((data.mitigations[mid], how) for mid, how in data.by_technique.get(technique_id, ()))


def mitigation_objects(
    technique_id: str, pattern_id: str, producer_id: str, site_name: str, date: str, markings: list[str]
) -> list[dict[str, Any]]:
    """The producer's ``course-of-action`` for each MITRE mitigation of one technique and its
    ``mitigates`` relationship to the producer's attack-pattern ``pattern_id``. Both are shared
    by every bundle of the producer: ids from the producer and MITRE's ids, times the ATT&CK
    data date, so every bundle repeats one version."""
    return json.loads(_mitigation_json(technique_id, pattern_id, producer_id, site_name, date, tuple(markings)))


@functools.lru_cache(maxsize=4096)
def _mitigation_json(
    technique_id: str, pattern_id: str, producer_id: str, site_name: str, date: str, markings: tuple[str, ...]
) -> str:
    """The objects of ``mitigation_objects`` as JSON, built once per worker (each bundle
    gets its own copy)."""
    out: list[dict[str, Any]] = []
    for mit, how in for_technique(technique_id):
        coa_id = deterministic_id("course-of-action", producer_id, "mitre-attack", mit.id)
        out.append({
            "type": "course-of-action", "spec_version": "2.1", "id": coa_id, "created_by_ref": producer_id,
            "created": date, "modified": date, "name": mit.name,
            "description": (f"{mit.description} ({site_name}'s reference to MITRE ATT&CK for ICS mitigation "
                            f"{mit.id}, {mit.name}; the mitigation itself is MITRE's: {mit.url})"),
            "external_references": [{"source_name": "mitre-attack", "external_id": mit.id}],
            "object_marking_refs": list(markings),
        })
        out.append({
            "type": "relationship", "spec_version": "2.1",
            "id": deterministic_id("relationship", producer_id, "mitigates", mit.id, technique_id),
            "created_by_ref": producer_id, "created": date, "modified": date,
            "relationship_type": "mitigates", "description": how or None,
            "source_ref": coa_id, "target_ref": pattern_id, "object_marking_refs": list(markings),
        })
    return json.dumps([{k: v for k, v in o.items() if v is not None} for o in out])


def main(argv: list[str]) -> int:
    """Write the data file's text for MITRE's bundle ``argv[0]`` to stdout."""
    from stix_export.attack import all_techniques

    with open(argv[0], encoding="utf-8") as fh:
        objects = json.load(fh)["objects"]
    ids = {t.id: t.stix_id for t in all_techniques().values() if t.stix_id}
    sys.stdout.write(HEADER + yaml.safe_dump(build_data(objects, ids), sort_keys=False, allow_unicode=True, width=100))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
