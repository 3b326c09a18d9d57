"""Which ATT&CK for ICS techniques, and which stage, a threat-intel match is.

The threat-intel match covers events of different kinds. A login from a listed address is
initial access (T0822 External Remote Services), but a DNS lookup or a flow from a port host
to a listed address is command and control: the host reaching out to known C2
infrastructure (T0869 Standard Application Layer Protocol; T0885 Commonly Used Port when
the destination port is a common one). The detection (``threat_intel_match``) asks
``c2_techniques`` per event, so the finding carries stage ``c2`` and the C2 techniques in the
run's own output (findings, incidents, report, drafts) and in STIX alike.
"""
from __future__ import annotations

from typing import Any, Iterable

from transforms.model import Finding

#: Destination ports ATT&CK's T0885 "Commonly Used Port" is about (web, DNS, mail, ...).
COMMON_PORTS = frozenset({20, 21, 22, 23, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 8080, 8443})
C2_STAGE = "c2"


def is_outbound_contact(fields: dict[str, Any], matched: Iterable[str]) -> bool:
    """A DNS query for a listed name, or a flow whose destination is what matched: the port's
    host reached out (a login, or a flow from a listed address, is not C2 contact)."""
    if fields.get("action") == "dns.query":
        return True
    if fields.get("kind") != "flow" or fields.get("user"):
        return False
    dst, dport = str(fields.get("dst_ip") or ""), _port(fields.get("dst_port"))
    for text in map(str, matched):
        if dst and (text == dst or text.startswith((f"{dst}:", f"[{dst}]:"))):
            return True
        if dport is not None and text == f"port {dport}":
            return True
    return False


def _port(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def c2_techniques(fields: dict[str, Any], matched: Iterable[str]) -> tuple[str, ...] | None:
    """The C2 techniques of one matching event, or None when it is not outbound contact."""
    if not is_outbound_contact(fields, matched):
        return None
    return ("T0869", "T0885") if _port(fields.get("dst_port")) in COMMON_PORTS else ("T0869",)


def shared_techniques(f: Finding) -> tuple[str, ...]:
    """The finding's techniques as shared (each once, in the finding's order)."""
    return tuple(dict.fromkeys(t.strip().upper() for t in f.techniques))


def shared_stage(f: Finding) -> str:
    """The finding's stage as shared: the run's own (``c2`` for C2 contact)."""
    return f.stage
