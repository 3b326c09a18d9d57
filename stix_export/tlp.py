"""TLP 2.0 marking-definition objects, exactly as OASIS publishes them.

``stix2`` 3.0.2 only ships the TLP 1.0 constants (TLP:WHITE/GREEN/AMBER/RED), and ISAC
members' tools match markings by id, so the five TLP 2.0 objects are reproduced here with
the ids, names, ``created`` time and property extension of the OASIS definitions
(cti-stix-common-objects, extension-definition--60a3c5c5-...). A bundle includes the
object in full so a receiver needs nothing else to read the marking.
"""
from __future__ import annotations

from typing import Any

#: OASIS extension that carries the TLP 2.0 level on a marking-definition.
TLP_2_0_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
#: ``created`` of all five OASIS TLP 2.0 objects (part of the published object, like the id).
TLP_2_0_CREATED = "2022-10-01T00:00:00.000Z"

#: level -> (marking-definition id, name)
TLP_2_0: dict[str, tuple[str, str]] = {
    "clear": ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR"),
    "green": ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN"),
    "amber": ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER"),
    "amber+strict": ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT"),
    "red": ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED"),
}


def _level(level: str) -> str:
    """Accept ``amber``, ``AMBER``, ``TLP:AMBER``; reject anything that is not a TLP 2.0 level."""
    key = level.strip().lower().removeprefix("tlp:")
    if key not in TLP_2_0:
        raise ValueError(f"expected a TLP 2.0 level ({', '.join(TLP_2_0)}), got {level!r}")
    return key


def tlp_marking_id(level: str) -> str:
    """The OASIS marking-definition id for a TLP 2.0 level."""
    return TLP_2_0[_level(level)][0]


def tlp_marking(level: str) -> dict[str, Any]:
    """The full OASIS TLP 2.0 marking-definition object for ``level`` (a fresh dict)."""
    key = _level(level)
    marking_id, name = TLP_2_0[key]
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": TLP_2_0_CREATED,
        "name": name,
        "extensions": {
            TLP_2_0_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": key},
        },
    }


def all_tlp_markings() -> list[dict[str, Any]]:
    """All five TLP 2.0 objects, least to most restrictive."""
    return [tlp_marking(level) for level in TLP_2_0]
