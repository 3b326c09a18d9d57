"""Find IP addresses in free text, in every notation an address can be written in.

A redacted bundle must not name an internal address anywhere, and free texts (detection
titles, CMS values such as ``host 10.66.9.9``, threat-intel names) hold addresses that were
never structured. Matching the known addresses of an incident is not enough: an address
outside the inventory, or one written as IPv4-mapped IPv6 (``::ffff:10.30.5.21``, also
``::ffff:a1e:515``), an expanded or upper-case IPv6 spelling, or dotted IPv4 with leading
zeros (``010.030.005.021``) names the same host. ``find_addresses`` returns every span that
parses as an address together with the address it names, so a caller can decide per host.

An IPv6 address that carries an IPv4 address (mapped ``::ffff:0:0/96``, compatible
``::/96``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is reported as the IPv4 address:
that is the host it names.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterator, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# IPv6 candidates: runs of hex digits, colons and dots holding at least two colons. Letters
# outside a-f end a run, so "host::ffff:a1e:515" yields "::ffff:a1e:515".
_V6_RUN = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
# Dotted IPv4, 1-3 digits per octet (leading zeros read as decimal, as people write them);
# not part of a longer dotted number (an OID, a version string).
_V4 = re.compile(r"(?<![0-9.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![0-9]|\.[0-9])")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str
    address: IPAddress  # the host named (IPv4 for an IPv6 spelling that embeds one)


def host_of(ip: IPAddress) -> IPAddress:
    """The host an address names: the embedded IPv4 address of a mapped, compatible, NAT64
    or 6to4 IPv6 address, else the address itself."""
    if ip.version == 4:
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    n = int(ip)
    if n >> 32 == 0 and n > 0xFFFF:  # IPv4-compatible ::a.b.c.d (not ::, ::1 and the like)
        return ipaddress.IPv4Address(n)
    if ip in _NAT64:
        return ipaddress.IPv4Address(n & 0xFFFFFFFF)
    return ip


@functools.lru_cache(maxsize=65536)  # the same addresses recur in every text of a bundle
def parse(text: str) -> IPAddress | None:
    """``text`` as an address (the host it names, see ``host_of``), or None."""
    try:
        return host_of(ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0]))
    except ValueError:
        pass
    m = _V4.fullmatch(text.strip())
    return _v4(m) if m else None


def _v4(m: re.Match[str]) -> ipaddress.IPv4Address | None:
    octets = [int(g) for g in m.groups()]
    return ipaddress.IPv4Address(".".join(map(str, octets))) if all(o <= 255 for o in octets) else None


def _v6_in_run(run: str) -> tuple[int, int, IPAddress] | None:
    """The longest prefix of a candidate run (minus trailing ``:port`` or dots) that parses."""
    lead = len(run) - len(run.lstrip("."))
    if run[lead:lead + 1] == ":" and run[lead + 1:lead + 2] != ":":  # "host:fe80::1"
        lead += 1
    end = len(run)
    while end > lead:
        cand = run[lead:end]
        try:
            return lead, end, ipaddress.IPv6Address(cand)
        except ValueError:
            pass
        cut = max(cand.rfind(":"), cand.rfind("."))
        if cut <= 0:
            return None
        end = lead + cut
    return None


def find_addresses(text: str) -> list[Span]:
    """Every address written in ``text``, in order, spans not overlapping."""
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []
    for m in _V6_RUN.finditer(text):
        found = _v6_in_run(m.group(0))
        if found is None:
            continue
        a, b, ip = found
        start, end = m.start() + a, m.start() + b
        spans.append(Span(start, end, text[start:end], host_of(ip)))
        taken.append((start, end))
    for m in _V4.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        ip = _v4(m)
        if ip is not None:
            spans.append(Span(m.start(), m.end(), m.group(0), ip))
    return sorted(spans, key=lambda s: s.start)


def may_hold_address(text: str) -> bool:
    """Cheap pre-test: an address needs a dot between digits or two colons."""
    return ":" in text or "." in text


def iter_addresses(text: str) -> Iterator[Span]:
    if may_hold_address(text):
        yield from find_addresses(text)
