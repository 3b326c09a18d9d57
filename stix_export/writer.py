"""Write bundles to ``<out>/stix/<incident-id>.json`` (``stix-<profile>/`` for further profiles) so that an unchanged incident gives an
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

import orjson

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def serialize_bundle(bundle: dict[str, Any]) -> str:
    """The canonical text of a bundle: ``json.dumps`` with sorted keys, indent 2, final newline."""
    return serialize_bundle_bytes(bundle).decode("utf-8")


def serialize_bundle_bytes(bundle: dict[str, Any]) -> bytes:
    """``serialize_bundle`` as UTF-8. ``json.dumps`` with an indent runs its pure-Python
    encoder, most of a bundle's write time; ``orjson`` writes the same bytes (sorted keys,
    two-space indent, ``": "`` and ``","``, UTF-8 unescaped) for what bundles hold: strings,
    integers, booleans, null. Anything else (a float, whose text orjson spells differently;
    an integer beyond 64 bits, text orjson refuses) goes through ``json.dumps``."""
    if _orjson_safe(bundle):
        try:
            return orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        except (TypeError, orjson.JSONEncodeError):
            pass
    return (json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")


def _orjson_safe(value: Any) -> bool:
    """Only dicts, lists, str, int (64-bit), bool and None inside (exact types: a subclass
    goes through ``json.dumps``). Dict keys are not walked: orjson refuses a key that is not
    a string (``TypeError``), which sends the bundle through ``json.dumps`` as well."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str:  # most values: checked first
            continue
        if t is dict:
            extend(v.values())
        elif t is list:
            extend(v)
        elif t is int:
            if not -(2**63) <= v < 2**64:
                return False
        elif t is not bool and v is not None:
            return False
    return True


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


def profile_dir_name(profile_name: str, first_profile_name: str) -> str:
    """``stix`` for the first (default) sharing profile, ``stix-<name>`` for every other one."""
    return "stix" if profile_name == first_profile_name else f"stix-{profile_name}"


def write_bundle(bundle: dict[str, Any], out_dir: str | os.PathLike[str], subdir: str = "stix") -> Path:
    """Write ``bundle`` to ``out_dir/<subdir>/<incident-id>.json`` and return the path.

    The file is written to a temporary name and renamed, so a reader (or a TAXII pusher
    watching the directory) never sees half a bundle.
    """
    return write_json(bundle, Path(out_dir) / subdir / bundle_file_name(bundle))


def write_json(bundle: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a bundle's canonical text to ``path`` atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(serialize_bundle_bytes(bundle))
    os.replace(tmp, path)
    return path
