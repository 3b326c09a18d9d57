"""The producer identity (the port) and its location, as every bundle of the port carries them.

Both are shared by all bundles, so their content follows from the ``site:`` config alone and
their ``modified`` is ``site.details_date`` (default ``PRODUCER_DATE``): a recipient keeps
the latest version of an id, so a changed contact or place must come with a later date.
The identity does not name itself as its creator (a self-reference says nothing, and some
platforms loop on it); the location is created by the identity and linked ``located-at``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stix_export.ids import deterministic_id

if TYPE_CHECKING:
    from pipelines.config import Config

#: created (and default modified) of the producer identity and location.
PRODUCER_DATE = "2026-11-26T00:00:00.000Z"


def producer_id(cfg: Config) -> str:
    return deterministic_id("identity", cfg.site.name)


def _modified(cfg: Config) -> str:
    return getattr(cfg.site, "details_date", None) or PRODUCER_DATE


def producer_identity(cfg: Config, markings: list[str]) -> dict[str, Any]:
    """The producer identity: the port, with ``contact_information`` from ``site.contact``."""
    obj: dict[str, Any] = {
        "type": "identity",
        "spec_version": "2.1",
        "id": producer_id(cfg),
        "created": PRODUCER_DATE,
        "modified": _modified(cfg),
        "name": cfg.site.name,
        "identity_class": "organization",
        "sectors": ["transportation"],
    }
    if cfg.site.contact:
        obj["contact_information"] = cfg.site.contact
    obj["object_marking_refs"] = list(markings)
    return obj


def producer_location(cfg: Config, markings: list[str]) -> list[dict[str, Any]]:
    """The port's ``location`` (country; UN/LOCODE as an external reference) and the
    identity's ``located-at`` relationship to it; empty without ``site.country``."""
    country = getattr(cfg.site, "country", None)
    if not country:
        return []
    pid, locode = producer_id(cfg), getattr(cfg.site, "locode", None)
    location: dict[str, Any] = {
        "type": "location",
        "spec_version": "2.1",
        "id": deterministic_id("location", pid, country, locode or ""),
        "created_by_ref": pid,
        "created": PRODUCER_DATE,
        "modified": _modified(cfg),
        "name": f"{cfg.site.name}" + (f" ({locode})" if locode else ""),
        "country": country,
    }
    if locode:
        location["external_references"] = [{"source_name": "UN/LOCODE", "external_id": locode}]
    location["object_marking_refs"] = list(markings)
    rel = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": deterministic_id("relationship", pid, "located-at", location["id"]),
        "created_by_ref": pid,
        "created": PRODUCER_DATE,
        "modified": _modified(cfg),
        "relationship_type": "located-at",
        "source_ref": pid,
        "target_ref": location["id"],
        "object_marking_refs": list(markings),
    }
    return [location, rel]
