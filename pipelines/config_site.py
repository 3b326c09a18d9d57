"""The site model: the terminal's assets and zones, its vendors, their maintenance windows,
detection settings and the duration, address and network values they are written in.

It sits below both the detection plugin API (``detections/api.py``), which third-party
detection authors import, and the CLI's config loader (``pipelines/config.py``), which
validates a whole config file against the detection registry; neither imports the other
through it. ``pipelines.config`` re-exports every name here for existing callers.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, field_validator

from pipelines import config_values
from pipelines.config_base import ASSET_KINDS, Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _parse_duration(value: Any) -> float:
    """Durations are seconds or strings like ``90s``, ``30m``, ``2h``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 2h or a number of seconds")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError("expected a duration such as 30m, 2h or a number of seconds")


def _positive_duration(value: Any) -> float:
    seconds = _parse_duration(value)
    if seconds <= 0:
        raise ValueError("expected a positive duration such as 30m, 2h or a number of seconds")
    return seconds


Duration = Annotated[float, BeforeValidator(_parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]


def _check_network(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IPv4/IPv6 address or CIDR network such as 10.20.0.0/16")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("expected an IPv4/IPv6 address or CIDR network such as 10.20.0.0/16") from None
    if net.network_address != ipaddress.ip_interface(value).ip:
        # 10.1.2.3/8 is either a typo'd address or a typo'd network: which one is meant?
        raise ValueError(f"expected a network without host bits such as {net} (or an address without /prefix)")
    return str(net)


def _check_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IP address such as 10.20.1.10")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("expected an IP address such as 10.20.1.10") from None


def _check_country(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        raise ValueError("expected an ISO 3166-1 alpha-2 country code such as NL")
    return value.strip().upper()


Network = Annotated[str, BeforeValidator(_check_network)]
Country = Annotated[str, BeforeValidator(_check_country)]
Address = Annotated[str, BeforeValidator(_check_address)]
TimeOfDay = Annotated[str, BeforeValidator(config_values.check_time_of_day)]


class Site(Strict):
    """Who is producing: the port/terminal, used as the STIX producer identity."""

    name: str = Field(min_length=1)
    terminal: str = "T1"
    # Shared on the STIX producer identity (contact_information) and its location.
    contact: Optional[str] = None
    country: Optional[Country] = None  # ISO 3166-1 alpha-2, e.g. NL
    locode: Optional[str] = Field(default=None, pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")  # UN/LOCODE, e.g. NLRTM
    # When contact/country/locode last changed: the identity's and location's ``modified``
    # (recipients keep the latest version; bump it with every change). RFC 3339, UTC.
    details_date: Optional[str] = Field(default=None, pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Asset(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal[ASSET_KINDS]  # type: ignore[valid-type]
    addresses: list[Address] = Field(min_length=1)
    zone: str
    crane: Optional[str] = None
    vendor: Optional[str] = None
    allowed_egress: list[Network] = Field(default_factory=list)
    criticality: Literal["safety", "high", "normal"] = "normal"  # raises findings' severity


class Inventory(Strict):
    assets: list[Asset] = Field(default_factory=list)
    # Networks that are the port's own (any address inside is "internal" even when it is
    # not an inventoried asset); everything else is external.
    internal_networks: list[Network] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    )


class Vendor(Strict):
    name: str
    accounts: list[str] = Field(min_length=1)
    allowed_networks: list[Network] = Field(default_factory=list)
    # Addresses the VPN gateway hands out to this vendor's sessions (tunnel pool).
    tunnel_networks: list[Network] = Field(default_factory=list)
    # Countries its engineers log in from (ISO codes; placed by the log or by ``geo``).
    allowed_countries: list[Country] = Field(default_factory=list)


class GeoNetwork(Strict):
    network: Network
    country: Country


class Geo(Strict):
    """Countries of public addresses, for vendor logins (see transforms/geo.py): inline
    networks and CSV files (``network,country`` or DB-IP lite ``first,last,country``)."""

    networks: list[GeoNetwork] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)  # relative to the config file


class MaintenanceWindow(Strict):
    """Either a one-off window (``start``/``end`` timestamps) or a weekly one
    (``days`` + ``from``/``to`` times of day in ``timezone``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    vendor: str
    assets: list[str] = Field(default_factory=list)  # empty: every asset
    start: Optional[dt.datetime] = None
    end: Optional[dt.datetime] = None
    days: list[Literal[WEEKDAYS]] = Field(default_factory=list)  # type: ignore[valid-type]
    from_: Optional[TimeOfDay] = Field(default=None, alias="from")
    to: Optional[TimeOfDay] = None  # at or before ``from``: the window ends the next day
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from transforms.parsers._common import tzinfo

        try:
            tzinfo(v)
        except ValueError:
            raise ValueError("expected an IANA timezone such as UTC or Europe/Amsterdam") from None
        return v

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: Optional[dt.datetime]) -> Optional[dt.datetime]:
        if v is not None and v.tzinfo is None:
            raise ValueError("expected a timestamp with a timezone, e.g. 2026-11-20T08:00:00Z")
        return v

    def model_post_init(self, __context: Any) -> None:
        one_off = self.start is not None or self.end is not None
        weekly = bool(self.days) or self.from_ is not None or self.to is not None
        if one_off == weekly:
            raise ValueError(
                "expected either start+end (one-off) or days+from+to (weekly), not both or neither"
            )
        if one_off and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("expected start and end with end after start")
        if weekly and (not self.days or self.from_ is None or self.to is None):
            raise ValueError("expected days, from and to for a weekly window")
        if weekly and (self.from_ == self.to or self.from_ == "24:00"):
            raise ValueError("expected from before 24:00 and to different from from (a window "
                             "that ends at or before it starts ends the next day)")

    def is_open(self, when: dt.datetime) -> bool:
        """Is ``when`` inside this window? A weekly window belongs to the day it starts on
        and may run past midnight (``from: "22:00"``, ``to: "02:00"``); ``from``/``to`` are
        what the clock shows in ``timezone``, so the window keeps its local hours across DST
        changes (a time the clock skips is simply never shown)."""
        if self.start is not None and self.end is not None:
            return self.start <= when < self.end
        from transforms.parsers._common import tzinfo

        local = when.astimezone(tzinfo(self.timezone))
        minute = local.hour * 60 + local.minute
        start, end = config_values.minutes(self.from_ or ""), config_values.minutes(self.to or "")
        today = WEEKDAYS[local.weekday()]
        if end > start:
            return today in self.days and start <= minute < end
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]  # past midnight: the window it started
        return (today in self.days and minute >= start) or (yesterday in self.days and minute < end)


class DetectionSettings(Strict):
    enabled: StrictBool = True
    severity: Optional[StrictInt] = Field(default=None, ge=0, le=100)
    params: dict[str, Any] = Field(default_factory=dict)
    allowlist: dict[Literal["addresses", "accounts", "assets"], list[str]] = Field(  # type: ignore[valid-type]
        default_factory=dict
    )
    suppression: Duration = 0.0


def parse_duration(value: Any) -> float:
    """Seconds, or text such as ``90s``, ``30m``, ``2h`` (the public name detections use)."""
    return _parse_duration(value)
