"""STIX 2.1 export: one bundle per correlated incident, for the Maritime Transportation System ISAC.

Modules, by concern (docs/stix.md explains the bundle to the analysts who receive it):

``bundle``     Incident + Config -> bundle dict (``incident_bundle``)
``attack``     ATT&CK for ICS lookup over ``detections/attack_ics.yml`` (``resolve``)
``ids``        deterministic, UUIDv4-shaped ids for SDOs/SROs (``deterministic_id``)
``tlp``        the OASIS TLP 2.0 marking-definition objects (``tlp_marking``)
``extension``  cranewatch's crane-asset property extension; OASIS Incident Core values
``writer``     ``<out>/stix/<incident-id>.json`` with deterministic bytes (``write_bundle``)
``validate``   strict OASIS validator + ``stix2.parse`` (``validate_bundle_file``)
``redact``     sharing-profile redaction: keyed pseudonyms/hashes/ids, text rewrite, leak guard
``textscan``   finding and rewriting redacted values (addresses by notation, names) in texts
``addresses``  IP addresses in free text in every notation (dotted, IPv4-mapped IPv6, ...)
``stix_values`` times, counts, ports, IANA service names as STIX wants them
``report``     the optional run-level ``report`` bundle per profile (``run_report_bundle``)
``share``      push a run's bundles to a TAXII 2.1 collection (``cranewatch share``)
``intel``      ISAC indicators in: the intel store (``load_store``, ``match_ip``, ``match_domain``)
``cli``        the ``share`` and ``intel`` subcommands (registered by ``pipelines/cli.py``)

The names below are imported on first use, so ``import stix_export.ids`` stays cheap (the
validator pulls in jsonschema and the bundle module pulls in stix2 and pyarrow).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "incident_bundle": "stix_export.bundle",
    "write_bundle": "stix_export.writer",
    "validate_bundle_file": "stix_export.validate",
    "resolve": "stix_export.attack",
    "deterministic_id": "stix_export.ids",
    "tlp_marking": "stix_export.tlp",
    "load_store": "stix_export.intel",
    "run_report_bundle": "stix_export.report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stix_export' has no attribute {name!r}")
