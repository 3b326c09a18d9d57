"""Cyber-observable objects (SCOs) as plain dicts, with the ids ``stix2`` gives them.

An SCO's id is a UUIDv5 over its id-contributing properties (STIX 2.1 §2.9), so a bundle must
carry exactly the id ``stix2`` computes. Building each observable as a ``stix2`` object did
that, but checked every one of the type's twenty-odd properties, stamped a creation time and
serialized the object to JSON, only for the bundle to read it back: ~0.75 ms an observable,
and a 1M-event run's export builds about six hundred distinct ones (most of them
network-traffic, distinct by start time), a fifth of the export's time.

Here the observables the bundle builder makes (addresses, network traffic, domain names,
user accounts: string, port and string-list values) are built directly, with ``stix2``'s
own pieces: the type's list of id-contributing properties, its RFC 8785 canonicalizer, the
SCO namespace and its timestamp parsing and formatting, so id and content are the same as
``stix2.<Type>(**props)`` gives (``tests/test_stix_observables.py`` compares the two for
every kind). Anything else (another type, a property or value this path does not know) is
built by ``stix2`` as before.
"""
from __future__ import annotations

import functools
import uuid
from typing import Any

import stix2
from stix2.base import SCO_DET_ID_NAMESPACE
from stix2.canonicalization.Canonicalize import canonicalize
from stix2.utils import format_datetime, parse_into_datetime

#: The properties each kind may carry on the direct path; their values are plain strings,
#: ports, lists of strings, or (``TIMESTAMPS``) STIX timestamps.
_KNOWN = {
    "IPv4Address": {"value", "object_marking_refs"},
    "IPv6Address": {"value", "object_marking_refs"},
    "MACAddress": {"value", "object_marking_refs"},
    "DomainName": {"value", "object_marking_refs"},
    "UserAccount": {"account_login", "object_marking_refs"},
    "NetworkTraffic": {"start", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "object_marking_refs"},
}
_PORTS = {"src_port", "dst_port"}
_LISTS = {"protocols", "object_marking_refs"}
_TIMESTAMPS = {"start"}
#: References: the id prefixes each may have (as stix2 checks them).
_REFS = {
    "src_ref": ("ipv4-addr--", "ipv6-addr--", "mac-addr--", "domain-name--"),
    "dst_ref": ("ipv4-addr--", "ipv6-addr--", "mac-addr--", "domain-name--"),
    "object_marking_refs": ("marking-definition--",),
}
#: At least one of these (stix2's object constraint).
_ONE_OF = {"NetworkTraffic": ("src_ref", "dst_ref")}


@functools.lru_cache(maxsize=16384)
def built_sco(kind: str, props: tuple[tuple[str, Any], ...]) -> tuple[str, dict[str, Any]]:
    """(id, JSON-ready dict) of the ``stix2.<kind>`` observable with ``props`` (lists given
    as tuples); the dict is shared by every caller, so it must not be changed."""
    direct = _direct(kind, props)
    if direct is not None:
        return direct
    import json

    obj = getattr(stix2, kind)(**{k: list(v) if isinstance(v, tuple) else v for k, v in props})
    return obj.id, json.loads(obj.serialize())


def _direct(kind: str, props: tuple[tuple[str, Any], ...]) -> tuple[str, dict[str, Any]] | None:
    known = _KNOWN.get(kind)
    if known is None:
        return None
    values: dict[str, Any] = {}
    for name, value in props:
        if name not in known or value is None:
            return None
        if name in _PORTS:
            if type(value) is not int or not 0 <= value <= 65535:
                return None
        elif name in _LISTS:
            if not value or not all(type(v) is str and _ref_ok(name, v) for v in value):
                return None
            value = list(value)
        elif type(value) is not str or not _ref_ok(name, value):
            return None
        elif name in _TIMESTAMPS:
            try:
                value = format_datetime(parse_into_datetime(value))
            except ValueError:
                return None
        values[name] = value
    cls = getattr(stix2, kind)
    if any(p not in values for p in _required(cls)) or (
            kind in _ONE_OF and not any(p in values for p in _ONE_OF[kind])):
        return None
    contributing = {k: values[k] for k in cls._id_contributing_properties if k in values}
    if not contributing:
        return None
    stix_type = cls._type
    sco_id = f"{stix_type}--{uuid.uuid5(SCO_DET_ID_NAMESPACE, canonicalize(contributing, utf8=False))}"
    # the property order stix2 serializes in: type, spec_version, id, then the type's own
    return sco_id, {"type": stix_type, "spec_version": "2.1", "id": sco_id,
                    **{k: values[k] for k in cls._properties if k in values}}


def _ref_ok(name: str, value: str) -> bool:
    """A reference property's value is ``<allowed type>--<UUID>``; any other value passes."""
    prefixes = _REFS.get(name)
    if prefixes is None:
        return True
    if not value.startswith(prefixes):
        return False
    try:
        uuid.UUID(value.split("--", 1)[1])
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _required(cls: type) -> tuple[str, ...]:
    return tuple(k for k, p in cls._properties.items() if p.required and k not in ("type", "id", "spec_version"))
