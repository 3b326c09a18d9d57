"""Which ATT&CK for ICS techniques, and which stage, a finding is shared under.

A detection names its techniques once, for every event it matches; the threat-intel match
covers events of different kinds. A login from a listed address is initial access (T0822
External Remote Services), but a DNS lookup or a flow from a port host to a listed address
is command and control: the host reaching out to known C2 infrastructure (T0869 Standard
Application Layer Protocol; T0885 Commonly Used Port when the destination port is a common
one). The export shares each finding under what its evidence shows, so a recipient's
per-technique counts are not inflated with "access" for C2 traffic.
"""
from __future__ import annotations

from transforms.model import Finding

#: Destination ports ATT&CK's T0885 "Commonly Used Port" is about (web, DNS, mail, ...).
COMMON_PORTS = frozenset({20, 21, 22, 23, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 8080, 8443})
C2_TECHNIQUES = ("T0869", "T0885", "T0884")
ACCESS_TECHNIQUES = ("T0822", "T0886", "T0859", "T0866", "T0883")
INTEL_DETECTION = "threat_intel_match"
C2_STAGE = "command-and-control"


def _is_outbound_contact(fields: dict) -> bool:
    """A DNS query for a listed name, or a flow whose destination is what matched: the port's
    host reached out (a login, or a flow from a listed address, is not C2 contact)."""
    if fields.get("action") == "dns.query":
        return True
    if fields.get("kind") != "flow" or fields.get("user"):
        return False
    dst, dport = str(fields.get("dst_ip") or ""), _port(fields.get("dst_port"))
    for matched in fields.get("intel_matched") or ():
        text = str(matched)
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


def is_c2(f: Finding) -> bool:
    """A threat-intel match whose every evidence record is outbound contact (DNS or flow)."""
    return f.detection_id == INTEL_DETECTION and bool(f.evidence) and all(
        _is_outbound_contact(ev.fields) for ev in f.evidence
    )


def shared_techniques(f: Finding) -> tuple[str, ...]:
    """The finding's techniques as shared: for C2 contact, the C2 techniques the evidence
    supports instead of the access ones the detection lists for logins."""
    if not is_c2(f):
        return tuple(dict.fromkeys(t.strip().upper() for t in f.techniques))
    out = ["T0869"]
    if any(_port(ev.fields.get("dst_port")) in COMMON_PORTS for ev in f.evidence):
        out.append("T0885")
    out += [t.strip().upper() for t in f.techniques if t.strip().upper() not in ACCESS_TECHNIQUES]
    return tuple(dict.fromkeys(out))


def shared_stage(f: Finding) -> str:
    """``command-and-control`` for C2 contact (see ``shared_techniques``), else the finding's stage."""
    return C2_STAGE if is_c2(f) else f.stage
