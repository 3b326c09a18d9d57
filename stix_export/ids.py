"""Deterministic STIX identifiers for the objects cranewatch creates (SDOs, SROs, meta objects).

Re-running the pipeline on the same logs must give the same bundle, byte for byte: TAXII
servers and ISAC platforms de-duplicate on ``id`` + ``modified``, and a random UUID per run
would flood members with copies of one incident. So every id is derived from a stable key
(incident id, finding id, address, ...).

STIX 2.1 says SDO/SRO ids SHOULD be UUIDv4 and the validator's check 103 (``uuid-check``)
turns that into an error in strict mode. A UUIDv5 would be the textbook deterministic id,
but it fails that check; instead the first 16 bytes of a SHA-256 of the key are shaped as a
version-4 UUID (version nibble 4, RFC 4122 variant bits ``10``). Such ids are
indistinguishable from random v4 ids, and collide only as often as SHA-256 prefixes do.

Cyber-observable ids are not made here: they are UUIDv5 over each type's id-contributing
properties, as the specification requires, computed with ``stix2``'s canonicalization and
namespace (``observables.py``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import uuid

#: Mixed into every key so that another producer hashing the same words gets other ids.
NAMESPACE = "cranewatch/stix/v1"


def deterministic_id(stix_type: str, *key: str) -> str:
    """``<stix_type>--<uuid>`` for a stable key; the same type and key always give the same id.

    The key parts are JSON-encoded as a list, so ``("a:b", "c")`` and ``("a", "b:c")`` differ.
    """
    if not stix_type or not all(isinstance(k, str) for k in key):
        raise TypeError(f"expected a STIX type and string key parts, got {stix_type!r}, {key!r}")
    return _shaped_id(stix_type, key)


@functools.lru_cache(maxsize=65536)
def _shaped_id(stix_type: str, key: tuple[str, ...]) -> str:
    """The id itself; cached, since a bundle derives the same ids again and again (the
    producer, each technique, every relationship end)."""
    material = json.dumps([NAMESPACE, stix_type, *key], ensure_ascii=False, separators=(",", ":"))
    raw = bytearray(hashlib.sha256(material.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant (binary 10)
    h = raw.hex()  # the canonical 8-4-4-4-12 form, as str(uuid.UUID(bytes=raw)) gives
    return f"{stix_type}--{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_v4_shaped(stix_id: str) -> bool:
    """True when the UUID part of ``stix_id`` has version 4 and the RFC 4122 variant."""
    try:
        u = uuid.UUID(stix_id.split("--", 1)[1])
    except (IndexError, ValueError):
        return False
    return u.version == 4 and u.variant == uuid.RFC_4122
