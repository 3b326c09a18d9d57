"""Property extensions: cranewatch's own crane-asset extension and the OASIS Incident Core one.

STIX has no place for "crane STS-03, terminal T2, zone crane-ot, asset kind crane_plc".
Custom ``x_`` properties would do it, but the validator warns on them and
``stix2.parse(allow_custom=False)`` rejects them; STIX 2.1's answer is a property extension
declared by an ``extension-definition`` object, which receivers can look up by id.

The crane-asset extension definition is created by the producing port (``created_by_ref``
is the producer identity), so its id is derived from the producer: one port's bundles
always carry the same definition object, and no two producers claim the same object.
Its content depends only on this module, so it carries a fixed ``created``/``modified``:
change a property and bump ``EXTENSION_VERSION`` and ``EXTENSION_DATE`` together.

The Incident Core extension is defined by OASIS (cti-stix-common-objects,
``extension-definition-specifications/incident-core``). Its definition object is not copied
into bundles: ``stix2`` accepts unregistered ``extension-definition--`` keys even with
``allow_custom=False``, the validator only checks ``extension_type``, and copying OASIS's
object would put a second creator's object (``created_by_ref`` an identity we do not ship)
into our bundle. See docs/stix.md.
"""
from __future__ import annotations

from typing import Any

from stix_export.ids import deterministic_id

EXTENSION_NAME = "cranewatch crane asset"
EXTENSION_VERSION = "1.0"
#: created/modified of the definition object; changes only with EXTENSION_VERSION.
EXTENSION_DATE = "2026-11-26T00:00:00.000Z"
#: Where the extension is defined. STIX allows a URL or plain text here; the project has no
#: public URL yet, so this names the document and section in the cranewatch repository.
EXTENSION_SCHEMA = (
    "cranewatch docs/stix.md#crane-asset-extension: property-extension of infrastructure "
    "with string properties asset_id (required), asset_kind, crane, terminal, zone."
)
#: The properties the extension may carry, in the order they are documented.
EXTENSION_PROPERTIES = ("asset_id", "asset_kind", "crane", "terminal", "zone")

#: OASIS Incident Core extension (determination, investigation_status, criticality, ...).
INCIDENT_CORE_EXTENSION_ID = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
DETERMINATIONS = ("blocked", "failed-attempt", "false-positive", "low-value", "successful-attempt", "suspected")


def crane_asset_extension_id(producer_id: str) -> str:
    """The extension-definition id for one producer's crane-asset extension."""
    return deterministic_id("extension-definition", producer_id, EXTENSION_NAME, EXTENSION_VERSION)


def crane_asset_extension_definition(producer_id: str, marking_ids: list[str]) -> dict[str, Any]:
    """The ``extension-definition`` object that declares the crane-asset extension."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": crane_asset_extension_id(producer_id),
        "created_by_ref": producer_id,
        "created": EXTENSION_DATE,
        "modified": EXTENSION_DATE,
        "name": EXTENSION_NAME,
        "description": (
            "Where a ship-to-shore crane asset sits at the producing port: the inventory asset "
            "id, its kind (crane_plc, cms, hmi, ...), the crane it belongs to, the terminal and "
            "the OT network zone. Added to infrastructure objects that stand for port assets."
        ),
        "schema": EXTENSION_SCHEMA,
        "version": EXTENSION_VERSION,
        "extension_types": ["property-extension"],
        "object_marking_refs": list(marking_ids),
    }


def crane_asset_properties(
    asset_id: str,
    asset_kind: str | None = None,
    crane: str | None = None,
    terminal: str | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    """The extension's value for one asset; unknown properties are left out, not null."""
    values = {"asset_id": asset_id, "asset_kind": asset_kind, "crane": crane, "terminal": terminal, "zone": zone}
    return {"extension_type": "property-extension", **{k: v for k, v in values.items() if v}}


def incident_core(
    determination: str,
    investigation_status: str,
    criticality: int | None = None,
    detection_methods: list[str] | None = None,
) -> dict[str, Any]:
    """The Incident Core extension value (required: determination, investigation_status)."""
    if determination not in DETERMINATIONS:
        raise ValueError(f"expected a determination ({', '.join(DETERMINATIONS)}), got {determination!r}")
    value: dict[str, Any] = {
        "extension_type": "property-extension",
        "determination": determination,
        "investigation_status": investigation_status,
    }
    if criticality is not None:
        value["criticality"] = max(0, min(100, int(criticality)))
    if detection_methods:
        value["detection_methods"] = list(detection_methods)
    return value
