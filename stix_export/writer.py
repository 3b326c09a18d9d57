"""Write bundles to ``<out>/stix/<incident-id>.json`` so that an unchanged incident gives an
unchanged file.

Stable names let a re-run overwrite the previous version of an incident's bundle instead of
adding a copy, and deterministic serialization (sorted keys, fixed indent, one trailing
newline, UTF-8) makes "same incident, same bytes" checkable with a hash or ``diff``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def serialize_bundle(bundle: dict[str, Any]) -> str:
    """The canonical text of a bundle: ``json.dumps`` with sorted keys, indent 2, final newline."""
    return json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def bundle_file_name(bundle: dict[str, Any]) -> str:
    """``<incident-id>.json``, from the cranewatch incident id the bundle's incident cites.

    Falls back to the bundle id for a bundle without a cranewatch incident. Characters
    outside ``[A-Za-z0-9._-]`` become ``_`` so an id can never escape the directory.
    """
    incident_id = None
    for obj in bundle.get("objects", []):
        if obj.get("type") == "incident":
            for ref in obj.get("external_references", []):
                if ref.get("source_name") == "cranewatch" and ref.get("external_id"):
                    incident_id = ref["external_id"]
    name = _UNSAFE.sub("_", incident_id or bundle["id"]).strip("._") or bundle["id"]
    return f"{name}.json"


def write_bundle(bundle: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``bundle`` to ``out_dir/stix/<incident-id>.json`` and return the path.

    The file is written to a temporary name and renamed, so a reader (or a TAXII pusher
    watching the directory) never sees half a bundle.
    """
    stix_dir = Path(out_dir) / "stix"
    stix_dir.mkdir(parents=True, exist_ok=True)
    path = stix_dir / bundle_file_name(bundle)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(serialize_bundle(bundle).encode("utf-8"))
    os.replace(tmp, path)
    return path
