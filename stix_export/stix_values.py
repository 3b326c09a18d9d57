"""Values as STIX 2.1 wants them: times, counts, ports, MAC addresses, IANA service names.

Kept apart from the bundle builder so that what each property may hold is listed in one
place (the validator's IANA service list, STIX's count bound, TLP marking ranks).
"""
from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import re
from typing import Any

import stix2

from stix_export import tlp

MAX_COUNT = 999_999_999  # STIX upper bound for counts

#: Well-known server ports -> IANA service names (as the validator's IANA list spells them).
PORT_SERVICES = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    53: "dns",
    80: "http",
    102: "iso-tsap",  # S7comm
    123: "ntp",
    161: "snmp",
    443: "https",
    445: "microsoft-ds",
    502: "mbap",  # Modbus/TCP
    1194: "openvpn",
    1883: "mqtt",
    2404: "iec-104",
    3389: "ms-wbt-server",  # RDP
    4840: "opcua-tcp",
    5900: "rfb",  # VNC
    8883: "secure-mqtt",
    20000: "dnp",  # DNP3
    44818: "EtherNet-IP-2",
    47808: "bacnet",
}
#: Service names parsers put in the event's ``service`` field -> IANA service names.
SERVICE_NAMES = {
    "modbus": "mbap",
    "s7comm": "iso-tsap",
    "s7": "iso-tsap",
    "dnp3": "dnp",
    "enip": "EtherNet-IP-2",
    "rdp": "ms-wbt-server",
    "openvpn": "openvpn",
    "ssh": "ssh",
    "http": "http",
    "https": "https",
    "ssl": "tls",
    "tls": "tls",
    "dns": "dns",
    "mqtt": "mqtt",
    "ntp": "ntp",
    "ftp": "ftp",
}
TRANSPORTS = ("tcp", "udp", "sctp", "icmp")

_KIND_LABELS = {
    "crane_plc": "PLC",
    "cms": "crane management system",
    "jump_host": "jump host",
    "engineering_workstation": "engineering workstation",
    "hmi": "HMI",
    "vpn_gateway": "VPN gateway",
    "server": "server",
    "other": "asset",
}
_KIND_INFRASTRUCTURE_TYPES = {
    "crane_plc": ["control-system"],
    "cms": ["control-system"],
    "hmi": ["control-system"],
    "engineering_workstation": ["control-system", "workstation"],
    "jump_host": ["workstation"],
    "vpn_gateway": ["firewall"],
}


@functools.lru_cache(maxsize=65536)  # a bundle states the same few instants many times
def stix_time(value: str) -> str:
    """RFC 3339 in UTC with a ``Z``; milliseconds unless the value has finer precision."""
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    t = (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    frac = f"{t.microsecond:06d}"
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + (frac[:3] if frac.endswith("000") else frac) + "Z"


@functools.lru_cache(maxsize=65536)
def _instant(value: str) -> dt.datetime:
    """Sort key for ``stix_time`` strings (their text order breaks when precisions differ)."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return _ip_text(str(value).strip())


@functools.lru_cache(maxsize=65536)  # the same addresses recur in every finding and bundle
def _ip_text(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def _mac(value: Any) -> str | None:
    """A MAC-48 address in the form STIX requires (lowercase, colon-separated), or None."""
    text = str(value).strip()
    if not _MAC.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 <= port <= 65535 else None


def _count(n: int) -> int:
    return max(1, min(MAX_COUNT, int(n)))


#: TLP marking-definition ids (2.0 from OASIS, 1.0 as stix2 ships them) -> restrictiveness,
#: to keep a received object out of a bundle shared more widely than it was.
_TLP_RANK = {
    **{tlp.tlp_marking_id(level): rank for rank, level in enumerate(tlp.TLP_2_0)},
    stix2.TLP_WHITE.id: 0,
    stix2.TLP_GREEN.id: 1,
    stix2.TLP_AMBER.id: 2,
    stix2.TLP_RED.id: 4,
}


def _known_marking(ref: str) -> dict[str, Any] | None:
    """The published object of a TLP marking-definition id (2.0 or 1.0), or None."""
    for level, (marking_id, _) in tlp.TLP_2_0.items():
        if ref == marking_id:
            return tlp.tlp_marking(level)
    for m in (stix2.TLP_WHITE, stix2.TLP_GREEN, stix2.TLP_AMBER, stix2.TLP_RED):
        if ref == m.id:
            return json.loads(m.serialize())
    return None


def sigma_references(f: Any) -> list[dict[str, str]]:
    """A Sigma finding names its rule (id and title, the way SigmaHQ ids are shared) and the
    rule's own references, so a recipient can look the rule up; other findings add none."""
    sigma = f.context.get("sigma") if isinstance(f.context, dict) else None
    if not isinstance(sigma, dict) or not sigma.get("id"):
        return []
    out = [{"source_name": "sigma", "external_id": str(sigma["id"]), "description": str(sigma.get("title") or "")}]
    out += [{"source_name": "sigma-reference", "url": str(u)} for u in sigma.get("references") or ()
            if isinstance(u, str) and u.startswith(("https://", "http://"))]
    return out
