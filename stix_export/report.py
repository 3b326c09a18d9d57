"""The run-level ``report`` bundle (``export.report: true``): one per sharing profile and run.

It holds the profile's TLP marking, the producer identity and one ``report`` whose
``object_refs`` are the ``grouping`` ids of every incident bundle the run wrote for that
profile, so a receiver can take a run as one unit. The bundle is self-contained: it also
carries every object of those incident bundles (each id once; ``incident_objects`` reads
them back as written), so every ``object_refs`` entry, and every reference of the objects
it carries, resolves inside the file.

Deterministic like the incident bundles: the id hashes the profile and the sorted grouping
ids, and every time is the latest ``modified`` among the groupings, never wall-clock time.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from stix_export import tlp
from stix_export.ids import deterministic_id
from stix_export.producer import producer_identity, producer_location

if TYPE_CHECKING:
    from pipelines.config import Config, SharingProfile


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def grouping_of(bundle: dict[str, Any]) -> tuple[str, str, str]:
    """(grouping id, modified, name) of an incident bundle, for ``run_report_bundle``."""
    g = next(o for o in bundle["objects"] if o["type"] == "grouping")
    return g["id"], g["modified"], g["name"]


def incident_objects(folder: str | Path, grouping_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every object of the incident bundles in ``folder`` whose grouping is one of
    ``grouping_ids``, in file-name order, each id once (objects shared by several bundles --
    the producer, markings, technique references, observables -- are the same in each)."""
    wanted = set(grouping_ids)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
        objects = json.loads(path.read_text(encoding="utf-8")).get("objects") or []
        if not any(o.get("type") == "grouping" and o.get("id") in wanted for o in objects):
            continue
        for obj in objects:
            out.setdefault(obj["id"], obj)
    return list(out.values())


def run_report_bundle(
    cfg: Config,
    profile: SharingProfile,
    groupings: Iterable[tuple[str, str, str]],
    objects: Iterable[dict[str, Any]] = (),
) -> dict[str, Any] | None:
    """The report bundle for one profile's groupings, or None when the run wrote none.

    ``objects``: the objects of the incident bundles (``incident_objects``), carried so that
    every reference resolves inside the report bundle."""
    rows = sorted(set(groupings))
    if not rows:
        return None
    marking = tlp.tlp_marking(profile.tlp)
    identity = producer_identity(cfg, [marking["id"]])
    place = producer_location(cfg, [marking["id"]])
    own = {marking["id"], identity["id"], *(o["id"] for o in place)}
    latest = max((m for _, m, _ in rows), key=_instant)
    refs = [gid for gid, _, _ in rows]
    report_id = deterministic_id("report", "run", profile.name, *refs)
    titles = "; ".join(dict.fromkeys(name for *_, name in rows))
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": report_id,
        "created_by_ref": identity["id"],
        "created": latest,
        "modified": latest,
        "published": latest,
        "name": f"cranewatch run at {cfg.site.name}: {len(refs)} crane OT incident(s)",
        "description": (
            f"Incidents correlated by cranewatch at {cfg.site.name} (terminal {cfg.site.terminal}), "
            f"sharing profile {profile.name}, latest activity {latest}: {titles}. Each referenced grouping "
            "is carried here with its objects, and in its own incident bundle."
        ),
        "report_types": ["threat-report"],
        "object_refs": refs,
        "object_marking_refs": [marking["id"]],
    }
    return {
        "type": "bundle",
        "id": deterministic_id("bundle", "run-report", report_id, latest),
        "objects": [marking, identity, *place, report, *(o for o in objects if o["id"] not in own)],
    }
