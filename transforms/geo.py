"""Where an address is: ISO 3166-1 country codes for networks, from the config's ``geo``.

Vendor logins are judged by country as well as by network (SCENARIOS.md #3). Ports do not
get a geolocation service inside the OT network, so the data is a list the operator keeps:
inline ``geo.networks`` entries and CSV files in one of two shapes, both as the free
exports ship them:

* ``network,country``: a CIDR per row (``203.0.113.0/24,NL``);
* ``first,last,country``: an address range per row, DB-IP's "IP to Country Lite" CSV
  (``1.0.0.0,1.0.0.255,AU``; ``ZZ`` means unknown and is kept as no country).

A header row is allowed; ``#`` lines and blank lines are skipped. Inline networks win over
the files (the operator's correction of a wrong file entry); within the files, ranges must
not overlap (the exports' don't). Look-ups are a binary search over sorted ranges.
"""
from __future__ import annotations

import bisect
import csv
import ipaddress
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

_CC = re.compile(r"^[A-Z]{2}$")
UNKNOWN = "ZZ"


class GeoFileError(ValueError):
    """A row of a geo CSV that is neither shape; the message names the line."""


@dataclass
class _Ranges:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    countries: list[str | None] = field(default_factory=list)

    def build(self, rows: Iterable[tuple[int, int, str | None]]) -> "_Ranges":
        for s, e, c in sorted(rows):
            self.starts.append(s)
            self.ends.append(e)
            self.countries.append(c)
        return self

    def find(self, value: int) -> tuple[bool, str | None]:
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return True, self.countries[i]
        return False, None


def _country(text: str) -> str | None:
    code = text.strip().upper()
    if not _CC.match(code):
        raise GeoFileError(f"expected an ISO 3166-1 alpha-2 country code such as NL, got {text!r}")
    return None if code == UNKNOWN else code


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def read_csv(path: str) -> tuple[tuple[Address, Address, str | None], ...]:
    """Rows of a geo CSV as ``(first, last, country)``; raises GeoFileError naming the line.

    Read once per process while the file is unchanged: the config check reads it to report
    bad rows, the login detection again to look countries up, and a country export has
    hundreds of thousands of rows."""
    st = os.stat(path)
    return _read_csv(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_csv(path: str, mtime_ns: int, size: int) -> tuple[tuple[Address, Address, str | None], ...]:
    out: list[tuple[Address, Address, str | None]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            try:
                if len(row) == 2:
                    net = ipaddress.ip_network(row[0].strip(), strict=False)
                    first, last = net.network_address, net.broadcast_address
                elif len(row) >= 3:
                    first, last = ipaddress.ip_address(row[0].strip()), ipaddress.ip_address(row[1].strip())
                    if first.version != last.version or last < first:
                        raise GeoFileError(f"expected first <= last of one IP version, got {row[0]!r}..{row[1]!r}")
                else:
                    raise ValueError
                out.append((first, last, _country(row[1] if len(row) == 2 else row[2])))
            except GeoFileError as exc:
                raise GeoFileError(f"line {n}: {exc}") from None
            except ValueError:
                if n == 1 and not re.search(r"\d", row[0]):
                    continue  # a header row (column names, no address)
                raise GeoFileError(f"line {n}: expected network,country or first,last,country, "
                                   f"got {','.join(row)[:80]!r}") from None
    return tuple(out)


class CountryTable:
    """``country(ip)``: the inline networks (longest prefix first), then the files."""

    def __init__(self, inline: Iterable[tuple[str, str]] = (), files: Iterable[str] = ()):
        self._inline = sorted(((ipaddress.ip_network(n), c) for n, c in inline),
                              key=lambda nc: -nc[0].prefixlen)
        rows: dict[int, list[tuple[int, int, str | None]]] = {4: [], 6: []}
        for path in files:
            for first, last, country in read_csv(path):
                rows[first.version].append((int(first), int(last), country))
        self._ranges = {v: _Ranges().build(r) for v, r in rows.items()}

    @classmethod
    def from_config(cls, cfg) -> "CountryTable":  # cfg: pipelines.config.Config
        files = [p if os.path.isabs(p) else os.path.join(cfg.base_dir, p) for p in cfg.geo.files]
        return cls(((g.network, g.country) for g in cfg.geo.networks), files)

    def __bool__(self) -> bool:
        return bool(self._inline) or any(r.starts for r in self._ranges.values())

    def country(self, ip: str | None) -> str | None:
        try:
            addr = ipaddress.ip_address((ip or "").strip())
        except ValueError:
            return None
        for net, country in self._inline:
            if addr.version == net.version and addr in net:
                return country
        return self._ranges[addr.version].find(int(addr))[1]
