"""The simulated container terminal: cranes, OT and IT hosts, vendors and their windows.

Everything the benign traffic and the planted scenarios use comes from here, and the
generated ``config.yaml`` is rendered from the same objects, so the inventory the pipeline
enriches with always matches the addresses in the logs. The layout is fixed (it does not
depend on the seed or the size), so a config written for one corpus fits every corpus.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

UTC = dt.timezone.utc
US = 1_000_000  # microseconds per second
HOUR_US = 3600 * US
MINUTE_US = 60 * US

#: The corpus starts on a Tuesday, so the crane vendor's weekly window (tue/thu) is in it.
START = dt.datetime(2026, 11, 17, tzinfo=UTC)
START_US = int(START.timestamp()) * US

#: Engineering limits of the CMS parameters benign engineers change. Values outside these
#: (or touching the safety interlocks, which benign traffic never does) are what
#: scenario 6 is about, so they are written down in docs/generator.md too.
PARAMETER_LIMITS: dict[str, tuple[float, float, float]] = {
    # parameter: (low, high, step)
    "hoist.max_speed": (1.2, 1.8, 0.1),  # m/s, loaded
    "trolley.max_speed": (3.0, 4.0, 0.1),  # m/s
    "gantry.max_speed": (0.6, 0.75, 0.05),  # m/s
    "load.limit_t": (60.0, 65.0, 1.0),  # tonnes under spreader, twin-lift
    "wind.trip_speed_ms": (18.0, 20.0, 0.5),  # m/s, stop-work trip
}


@dataclass(frozen=True)
class Crane:
    """One ship-to-shore crane: PLC, CMS controller and cab HMI on the crane's own /24."""

    number: int

    @property
    def id(self) -> str:
        return f"STS-{self.number:02d}"

    @property
    def slug(self) -> str:
        return f"sts{self.number:02d}"

    @property
    def zone(self) -> str:
        return f"crane-{self.slug}"

    @property
    def network(self) -> str:
        return f"10.30.{10 + self.number}.0/24"

    def _addr(self, host: int) -> str:
        return f"10.30.{10 + self.number}.{host}"

    @property
    def plc(self) -> str:
        return self._addr(10)

    @property
    def cms(self) -> str:
        return self._addr(20)

    @property
    def hmi(self) -> str:
        return self._addr(30)

    @property
    def plc_id(self) -> str:
        return f"{self.slug}-plc"

    @property
    def cms_id(self) -> str:
        return f"{self.slug}-cms"

    @property
    def hmi_id(self) -> str:
        return f"{self.slug}-hmi"


@dataclass(frozen=True)
class Vendor:
    """A remote-access vendor. Each account always comes from its own public address
    inside ``public_network``, so benign logins never look like scenario 3."""

    name: str
    group: str  # FortiGate user group
    accounts: tuple[str, ...]
    public_network: str
    public_addresses: tuple[str, ...]  # one per account, same order
    tunnel_network: str
    benign_tunnels: tuple[str, ...]  # handed out to in-window sessions
    scenario_tunnels: tuple[str, ...]  # kept apart so planted sessions never share one
    country: str  # where its engineers log in from (ISO code; the config's geo places the range)

    def public_address(self, account: str) -> str:
        return self.public_addresses[self.accounts.index(account)]


@dataclass(frozen=True)
class Host:
    id: str
    kind: str
    address: str
    zone: str


@dataclass(frozen=True)
class Terminal:
    site: str
    terminal: str
    cranes: tuple[Crane, ...]
    engineering: tuple[Host, ...]
    jump_host: Host
    historian: Host
    ntp: Host
    vpn_gateway: Host
    it_servers: tuple[Host, ...]  # dc, dns, file server
    office_hosts: tuple[str, ...]  # IT desktops (not inventoried, not OT)
    internet: tuple[str, ...]  # where office hosts browse to
    engineers: tuple[tuple[str, str], ...]  # (account, engineering workstation address)
    operators: tuple[str, ...]
    vendors: tuple[Vendor, ...]
    windows: tuple[dict[str, Any], ...]  # maintenance windows as written to config.yaml
    ot_core_network: str
    ot_dmz_network: str
    fw_name: str
    fw_serial: str

    def vendor(self, name: str) -> Vendor:
        return next(v for v in self.vendors if v.name == name)

    @property
    def ot_assets(self) -> tuple[str, ...]:
        """Addresses of the crane PLCs, CMS controllers and HMIs (the watched OT kinds)."""
        return tuple(a for c in self.cranes for a in (c.plc, c.cms, c.hmi))


def _internet_pool() -> tuple[str, ...]:
    """Public destinations of office browsing: a few large cloud/CDN ranges, fixed list.

    Kept out of 100.64.0.0/10 and 198.51.100.0/24, which the planted out-of-band
    scenario uses, so a planted external address never also shows up as office traffic.
    """
    prefixes = ("13.107.", "20.190.", "52.97.", "142.250.", "172.217.", "151.101.",
                "104.16.", "104.18.", "23.215.", "34.117.", "40.126.", "185.199.")
    pool = []
    for i, p in enumerate(prefixes):
        for j in range(16):
            pool.append(f"{p}{(i * 37 + j * 11) % 250 + 1}.{(j * 53 + i * 7) % 250 + 2}")
    return tuple(pool)


def build_terminal() -> Terminal:
    """The fixed terminal every corpus is drawn from (6 STS cranes, Terminal 3)."""
    cranes = tuple(Crane(n) for n in range(1, 7))
    ews = (
        Host("ot-ews01", "engineering_workstation", "10.30.5.20", "ot-core"),
        Host("ot-ews02", "engineering_workstation", "10.30.5.21", "ot-core"),
    )
    zpmc_accounts = ("zpmc-svc1", "zpmc-svc2", "zpmc-eng1", "zpmc-eng2")
    abb_accounts = ("abb-svc1", "abb-svc2")
    vendors = (
        Vendor(
            name="zpmc", group="vendor-maint", accounts=zpmc_accounts,
            public_network="203.0.113.32/27",
            public_addresses=("203.0.113.45", "203.0.113.46", "203.0.113.51", "203.0.113.52"),
            tunnel_network="10.212.134.0/24",
            benign_tunnels=tuple(f"10.212.134.{h}" for h in range(200, 216)),
            scenario_tunnels=tuple(f"10.212.134.{h}" for h in range(230, 240)),
            country="CN",
        ),
        Vendor(
            name="abb", group="vendor-drives", accounts=abb_accounts,
            public_network="192.0.2.64/27",
            public_addresses=("192.0.2.70", "192.0.2.71"),
            tunnel_network="10.212.135.0/24",
            benign_tunnels=tuple(f"10.212.135.{h}" for h in range(200, 216)),
            scenario_tunnels=tuple(f"10.212.135.{h}" for h in range(230, 240)),
            country="CH",
        ),
    )
    windows = (
        {"vendor": "zpmc", "days": ["tue", "thu"], "from": "08:00", "to": "12:00", "timezone": "UTC"},
        # One-off: drive retrofit commissioning on the first night of the corpus.
        {"vendor": "abb", "start": "2026-11-17T01:00:00Z", "end": "2026-11-17T05:00:00Z"},
    )
    return Terminal(
        site="Port of Example — Terminal 3",
        terminal="T3",
        cranes=cranes,
        engineering=ews,
        jump_host=Host("ot-jump01", "jump_host", "10.30.5.40", "ot-core"),
        historian=Host("ot-hist01", "server", "10.30.5.50", "ot-core"),
        ntp=Host("ot-ntp01", "server", "10.30.0.10", "ot-dmz"),
        vpn_gateway=Host("fw-port-01", "vpn_gateway", "10.30.0.1", "ot-dmz"),
        it_servers=(
            Host("it-dc01", "server", "10.10.0.10", "it"),
            Host("it-dns01", "server", "10.10.0.53", "it"),
            Host("it-fs01", "server", "10.10.0.20", "it"),
        ),
        office_hosts=tuple(f"10.10.1.{h}" for h in range(20, 68)),
        internet=_internet_pool(),
        engineers=(("eng.lopez", ews[0].address), ("eng.nakamura", ews[1].address),
                   ("eng.okafor", ews[0].address)),
        operators=tuple(f"op.{n}" for n in ("silva", "chen", "mensah", "novak", "haddad", "ito",
                                             "brown", "kowalski", "diaz", "park", "obi", "reyes")),
        vendors=vendors,
        windows=windows,
        ot_core_network="10.30.5.0/24",
        ot_dmz_network="10.30.0.0/24",
        fw_name="fw-port-01",
        fw_serial="FG100FTK19000001",
    )


# --- corpus span and windows ---------------------------------------------------------------


def span_hours(events: int) -> int:
    """About a day for 1M records; fewer records cover fewer hours (min 6) so a small
    corpus keeps a realistic density instead of a thin trickle over 24 h."""
    return int(min(24, max(6, math.ceil(events * 24 / 1_000_000))))


def _parse_rfc3339(text: str) -> int:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp()) * US


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def expand_windows(term: Terminal, start_us: int, end_us: int) -> dict[str, list[tuple[int, int]]]:
    """Each vendor's maintenance intervals ``[from, to)`` that touch the corpus span (UTC)."""
    out: dict[str, list[tuple[int, int]]] = {v.name: [] for v in term.vendors}
    first_day = dt.datetime.fromtimestamp(start_us // US, UTC).date() - dt.timedelta(days=1)
    days = (end_us - start_us) // (86400 * US) + 3
    for w in term.windows:
        spans: list[tuple[int, int]] = []
        if "start" in w:
            spans.append((_parse_rfc3339(w["start"]), _parse_rfc3339(w["end"])))
        else:
            fh, fm = map(int, w["from"].split(":"))
            th, tm = map(int, w["to"].split(":"))
            for d in range(days):
                day = first_day + dt.timedelta(days=d)
                if _WEEKDAYS[day.weekday()] not in w["days"]:
                    continue
                midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * US
                spans.append((midnight + (fh * 60 + fm) * MINUTE_US, midnight + (th * 60 + tm) * MINUTE_US))
        out[w["vendor"]].extend(s for s in spans if s[1] > start_us and s[0] < end_us)
    for v in out:
        out[v].sort()
    return out


def overlaps(intervals: list[tuple[int, int]], a: int, b: int) -> bool:
    return any(s < b and a < e for s, e in intervals)


# --- config.yaml -----------------------------------------------------------------------------


def config_dict(term: Terminal) -> dict[str, Any]:
    """The deployment config for this terminal, as a plain mapping (see pipelines/config.py)."""
    ot_all = [term.ot_dmz_network, term.ot_core_network] + [c.network for c in term.cranes]
    assets: list[dict[str, Any]] = []
    for c in term.cranes:
        egress = [c.network, term.ot_core_network, f"{term.ntp.address}/32"]
        for aid, kind, addr in ((c.plc_id, "crane_plc", c.plc), (c.cms_id, "cms", c.cms),
                                (c.hmi_id, "hmi", c.hmi)):
            assets.append({"id": aid, "kind": kind, "addresses": [addr], "zone": c.zone,
                           "crane": c.id, "vendor": "zpmc", "allowed_egress": egress})
    for h in (*term.engineering, term.jump_host, term.historian):
        assets.append({"id": h.id, "kind": h.kind, "addresses": [h.address], "zone": h.zone,
                       "allowed_egress": ot_all})
    for h in (term.ntp, term.vpn_gateway, *term.it_servers):
        assets.append({"id": h.id, "kind": h.kind, "addresses": [h.address], "zone": h.zone})
    return {
        "site": {"name": term.site, "terminal": term.terminal, "contact": "soc@port.example"},
        "sources": [
            {"name": "zeek-conn", "format": "zeek_conn", "paths": ["zeek/conn*.log*"]},
            {"name": "zeek-modbus", "format": "zeek_modbus", "paths": ["zeek/modbus*.log*"]},
            {"name": "zeek-dns", "format": "zeek_dns", "paths": ["zeek/dns*.log*"]},
            {"name": "zeek-s7comm", "format": "zeek_s7comm", "paths": ["zeek/s7comm*.log*"]},
            {"name": "zeek-cip", "format": "zeek_cip", "paths": ["zeek/cip*.log*"]},
            {"name": "cms", "format": "cms_events", "paths": ["cms/*.jsonl*"]},
            {"name": "fortigate", "format": "fortigate_vpn", "paths": ["fortigate/*.log*"]},
        ],
        "inventory": {
            "internal_networks": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
            "assets": assets,
        },
        "vendors": [
            {"name": v.name, "accounts": list(v.accounts), "allowed_networks": [v.public_network],
             "tunnel_networks": [v.tunnel_network], "allowed_countries": [v.country]}
            for v in term.vendors
        ],
        # Countries of login addresses: the vendors' own ranges inline, the rest from a
        # DB-IP-style CSV written beside config.yaml (GEO_FILE).
        "geo": {"networks": [{"network": v.public_network, "country": v.country} for v in term.vendors],
                "files": [GEO_FILE]},
        "maintenance_windows": [dict(w) for w in term.windows],
        # Scenario 11: the ISAC's indicator bundle written beside config.yaml (ISAC_BUNDLE_FILE).
        "detections": {"threat_intel_match": {"params": {"bundles": [ISAC_BUNDLE_FILE]}}},
        "correlation": {"gap": "30m", "allowed_lateness": "1h"},
        "export": {
            "tlp": "amber",
            "min_severity": 0,
            # Two sharing profiles: everything for the port's own SOC, a redacted set for the
            # ISAC. The pseudonym/hash key is in DEMO_SECRET_FILE, written beside config.yaml.
            "profiles": [
                {"name": "internal", "tlp": "red"},
                {"name": "isac", "tlp": "amber",
                 "redaction": {"internal_addresses": "pseudonym", "accounts": "hash",
                               "assets": "asset_kind", "evidence_paths": "drop"}},
            ],
            "secret_file": DEMO_SECRET_FILE,
            "report": True,
        },
        # Mandated-report drafts (docs/mandated-reports.md). The demo names all three built-in
        # regimes to show each draft; a real port names those that apply to it. Illustrative ids.
        "reporting": {
            "regimes": {"uscg_mtsa": {}, "us_33cfr6": {},
                        "nis2": {"profile": "internal", "recipient": "National CSIRT (example)"}},
            "facility": {"name": term.site, "mtsa_facility_id": "FAC-EXAMPLE-0003", "cotp_zone": "Sector Example",
                         "operator": "Example Terminal Operator", "cybersecurity_officer": "Facility Cybersecurity Officer",
                         "contact": "fcso@port.example, +1 555 0100", "timezone": "America/New_York"},
        },
    }


# --- geo data (scenario 3) ---------------------------------------------------------------------

#: Country ranges of the outside addresses the scenarios use, in DB-IP "IP to Country
#: Lite" shape (first,last,country), relative to config.yaml. Illustrative, not real data.
GEO_FILE = "geo/country-lite.csv"
GEO_RANGES = (
    ("80.82.77.0", "80.82.77.255", "NL"),  # scenario 8 scanners
    ("185.220.101.0", "185.220.101.255", "DE"),  # scenario 3 foreign logins
    ("198.51.100.0", "198.51.100.255", "US"),  # scenario 1 and 10 destinations
)


def geo_csv() -> str:
    return "".join(f"{a},{b},{c}\n" for a, b, c in GEO_RANGES)


# --- threat intel (scenario 11) ----------------------------------------------------------------

#: The ISAC's STIX 2.1 indicator bundle, relative to config.yaml (threat_intel_match ``bundles``).
ISAC_BUNDLE_FILE = "intel/isac-indicators.json"
#: The network of the ISAC's C2 indicator; scenario 11 plants office callbacks into it. Kept
#: out of the office browsing pool and every other scenario's external addresses.
ISAC_C2_NETWORK = "91.92.240.0/22"
#: The C2 domain the ISAC lists beside it (scenario 11 resolves it before connecting).
ISAC_C2_DOMAIN = "telemetry.cranesync.example"
_ISAC_ID = "identity--3f0c9a57-7a61-4b8e-9a0e-5b7f6c1d2e01"
_ISAC_DATE = "2026-11-01T00:00:00.000Z"


def isac_bundle() -> dict[str, Any]:
    """The ISAC's indicator bundle, fixed (the same for every seed and size): its identity,
    the TLP:GREEN marking it publishes under, and four indicators: the C2 network and the C2
    domain scenario 11 reaches, a scanner address and an expired one no traffic touches."""
    from stix_export import tlp

    green = tlp.tlp_marking_id("green")
    common = {"spec_version": "2.1", "created": _ISAC_DATE, "modified": _ISAC_DATE,
              "created_by_ref": _ISAC_ID, "object_marking_refs": [green]}

    def indicator(n: int, name: str, description: str, pattern: str, **extra: Any) -> dict[str, Any]:
        return {"type": "indicator", "id": f"indicator--6c1e2d4a-9b3f-4e57-8a21-0d4c7b9e{n:04x}", **common,
                "name": name, "description": description, "indicator_types": ["malicious-activity"],
                "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z", **extra}

    return {"type": "bundle", "id": "bundle--1a7e3c90-5d2b-4f68-9c14-7e0b3a6d5f01", "objects": [
        tlp.tlp_marking("green"),
        {"type": "identity", **common, "id": _ISAC_ID, "name": "Maritime Transportation System ISAC",
         "description": "Information sharing and analysis center for the maritime transportation sector.",
         "identity_class": "organization", "sectors": ["transportation"]},
        indicator(1, "C2 hosting range targeting port operators",
                  "Bulletproof hosting range serving command and control to malware seen at port operators.",
                  f"[ipv4-addr:value ISSUBSET '{ISAC_C2_NETWORK}']"),
        indicator(2, "Crane-sector scanner", "Scans port OT exposure for Modbus and S7comm services.",
                  "[ipv4-addr:value = '45.83.64.11']"),
        indicator(3, "Expired C2 address", "Former C2 address, no longer in use.",
                  "[ipv4-addr:value = '185.100.87.9']", valid_from="2026-01-01T00:00:00Z",
                  valid_until="2026-06-01T00:00:00Z"),
        indicator(4, "C2 domain of the port-operator campaign", "Domain the campaign's implants resolve.",
                  f"[domain-name:value = '{ISAC_C2_DOMAIN}']"),
    ]}


#: The demo's export secret file (a real deployment uses its own secret; see docs/stix.md).
DEMO_SECRET_FILE = "export.secret"


def demo_secret(seed: int) -> str:
    """A per-corpus demo secret, derived from the seed so a regenerated corpus is identical."""
    import hashlib

    return hashlib.sha256(f"cranewatch demo export secret {seed}".encode()).hexdigest() + "\n"
