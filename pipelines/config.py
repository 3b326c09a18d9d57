"""The deployment config: strict, validated in one pass, every error named by file and key.

A port's config says where its logs are, which addresses are which crane parts, who the
vendors are and when they may connect. A typo there silently weakens detection, so unknown
keys and wrong types are errors, all reported at once (like pySigma's collect_errors), each
on one line: ``FILE: KEY: expected ..., got ...``. The CLI exits with status 2 on them.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

ASSET_KINDS = (
    "crane_plc",
    "cms",
    "jump_host",
    "engineering_workstation",
    "hmi",
    "vpn_gateway",
    "server",
    "other",
)
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
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


Duration = Annotated[float, BeforeValidator(_parse_duration)]


def _check_network(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IPv4/IPv6 address or CIDR network such as 10.20.0.0/16")
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("expected an IPv4/IPv6 address or CIDR network such as 10.20.0.0/16") from None


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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class Site(Strict):
    """Who is producing: the port/terminal, used as the STIX producer identity."""

    name: str = Field(min_length=1)
    terminal: str = "T1"
    contact: Optional[str] = None


#: Event fields a ``mapping:`` may fill (the rest are set by the pipeline).
MAPPABLE_FIELDS = (
    "time", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "bytes_out", "bytes_in",
    "packets_out", "packets_in", "duration", "conn_state", "action", "user", "vendor", "session_id",
    "target", "value_old", "value_new", "result",
)
MAPPED_FORMATS = ("csv_mapped", "jsonl_mapped", "parquet")


class SourceMapping(Strict):
    """How the fields of a ``csv_mapped``/``jsonl_mapped``/``parquet`` source become event
    fields (docs/formats/mapped.md)."""

    kind: Literal["flow", "ot", "remote_access", "auth"]
    fields: dict[str, str] = Field(min_length=1)  # source field (a.b for nested JSON) → event field
    constants: dict[str, str] = Field(default_factory=dict)  # event field → fixed value
    time_format: Optional[str] = None  # strptime format; default: epoch s/ms/µs/ns, RFC 3339, ctime
    timezone: Optional[str] = None  # for times without an offset; default: the source's timezone
    delimiter: str = Field(default=",", min_length=1, max_length=1)  # csv_mapped
    columns: Optional[list[str]] = None  # csv_mapped without a header line

    @field_validator("fields")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for target in v.values():
            if target not in MAPPABLE_FIELDS and not target.startswith("attrs."):
                raise ValueError(f"expected event fields ({', '.join(MAPPABLE_FIELDS)} or attrs.<name>), got {target!r}")
        if "time" not in v.values():
            raise ValueError("expected one source field mapped to time")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: Optional[str]) -> Optional[str]:
        from transforms.parsers._common import tzinfo

        if v is not None:
            try:
                tzinfo(v)
            except ValueError:
                raise ValueError(f"expected an IANA timezone such as UTC, got {v!r}") from None
        return v

    @field_validator("constants")
    @classmethod
    def _constant_targets(cls, v: dict[str, str]) -> dict[str, str]:
        for target in v:
            if target not in MAPPABLE_FIELDS or target == "time":
                raise ValueError(f"expected event fields other than time, got {target!r}")
        return v


class Source(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    format: str
    paths: list[str] = Field(min_length=1)
    timezone: str = "UTC"
    enabled: bool = True
    mapping: Optional[SourceMapping] = None  # required by csv_mapped, jsonl_mapped, parquet


class Asset(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal[ASSET_KINDS]  # type: ignore[valid-type]
    addresses: list[Address] = Field(min_length=1)
    zone: str
    crane: Optional[str] = None
    vendor: Optional[str] = None
    allowed_egress: list[Network] = Field(default_factory=list)


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
    from_: Optional[str] = Field(default=None, alias="from", pattern=r"^\d\d:\d\d$")
    to: Optional[str] = Field(default=None, pattern=r"^\d\d:\d\d$")
    timezone: str = "UTC"

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


class DetectionSettings(Strict):
    enabled: bool = True
    severity: Optional[int] = Field(default=None, ge=0, le=100)
    params: dict[str, Any] = Field(default_factory=dict)
    allowlist: dict[Literal["addresses", "accounts", "assets"], list[str]] = Field(  # type: ignore[valid-type]
        default_factory=dict
    )
    suppression: Duration = 0.0


class Correlation(Strict):
    # Findings further apart than ``gap`` (event time) on the same asset/entities start a
    # new incident; the window closes once the watermark passes the last finding + gap.
    gap: Duration = 1800.0
    # Streaming: how long after its close (last finding + gap) an emitted incident may still
    # be revised by a late finding (re-emitted with the same id and a later ``modified``);
    # findings older than last_seen + gap + allowed_lateness are dead-lettered (late=True).
    allowed_lateness: Duration = 3600.0


class Redaction(Strict):
    """What a sharing profile rewrites before a bundle leaves the port (docs/stix.md)."""

    # keep | pseudonym (stable keyed pseudonym address) | zone (dropped, named by zone in text)
    internal_addresses: Literal["keep", "pseudonym", "zone"] = "keep"
    accounts: Literal["keep", "hash"] = "keep"  # hash: keyed hash of the account name
    assets: Literal["keep", "asset_kind"] = "keep"  # asset ids, crane ids -> asset kind
    evidence_paths: Literal["keep", "drop"] = "keep"  # drop: keep only the evidence hash

    @property
    def needs_secret(self) -> bool:
        return self.internal_addresses == "pseudonym" or self.accounts == "hash"

    @property
    def redacts(self) -> bool:
        return self != Redaction()


class SharingProfile(Strict):
    """One set of bundles: a name (its directory), a TLP level and redaction rules."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    tlp: Literal[TLP_LEVELS]  # type: ignore[valid-type]
    redaction: Redaction = Field(default_factory=Redaction)


class Export(Strict):
    tlp: Literal[TLP_LEVELS] = "amber"  # type: ignore[valid-type]
    min_severity: int = Field(default=0, ge=0, le=100)
    # Sharing profiles; absent or empty: one "internal" profile at ``tlp`` keeping everything.
    # The first profile writes ``stix/``, every other one ``stix-<name>/``.
    profiles: list[SharingProfile] = Field(default_factory=list)
    # Per-deployment secret for pseudonyms and account hashes: read from this file (relative
    # to the config file) if set, else from this environment variable. Never in the config.
    secret_file: Optional[str] = None
    secret_env: str = Field(default="CRANEWATCH_EXPORT_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Also write a run-level ``report`` bundle per profile (reports/<profile>.json).
    report: bool = False

    def effective_profiles(self) -> list[SharingProfile]:
        return list(self.profiles) or [SharingProfile(name="internal", tlp=self.tlp)]


class Intel(Strict):
    """Threat intel in (``cranewatch intel import``): where the indicator store lives."""

    store: str = "intel/store.json"  # relative to the config file


class ReportableRule(Strict):
    """One reportability condition (``reporting.reportable``): every key given must hold for
    one finding of the incident (``min_severity`` for the incident so far); absent keys match
    anything. An incident is reportable when any rule holds. A draft aid, not legal advice."""

    min_severity: int = Field(default=0, ge=0, le=100)
    stages: list[Literal["recon", "access", "command", "impact", "exfiltration", "other"]] = Field(default_factory=list)
    asset_kinds: list[Literal[ASSET_KINDS]] = Field(default_factory=list)  # type: ignore[valid-type]
    detections: list[str] = Field(default_factory=list)


#: Default ``reporting.reportable``: a command, impact or exfiltration on a crane PLC or its
#: CMS, a vendor session outside its maintenance window, or any critical incident.
DEFAULT_REPORTABLE = (
    ReportableRule(stages=["command", "impact", "exfiltration"], asset_kinds=["crane_plc", "cms"]),
    ReportableRule(detections=["vendor_session_outside_window"]),
    ReportableRule(min_severity=90),
)


class RegimeSettings(Strict):
    # Sharing profile whose redaction the drafts get; "internal": an export profile of that
    # name if there is one, else the port's own unredacted view (authorities get it).
    profile: str = "internal"
    recipient: Optional[str] = None  # e.g. the NIS2 CSIRT or competent authority


def _regime_map(value: Any) -> Any:
    """``regimes: [uscg_mtsa, nis2]`` is short for ``{uscg_mtsa: {}, nis2: {}}``."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    return value


class Facility(Strict):
    """Who reports: filled into every draft; a missing value is left for the analyst."""

    name: Optional[str] = None
    mtsa_facility_id: Optional[str] = None
    cotp_zone: Optional[str] = None  # Captain of the Port zone
    operator: Optional[str] = None
    cybersecurity_officer: Optional[str] = None
    contact: Optional[str] = None  # the officer's phone and e-mail
    timezone: str = "UTC"  # deadlines are shown in UTC and in this zone

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA timezone such as Europe/Amsterdam, got {v!r}") from None
        return v


class Reporting(Strict):
    """Mandated-report drafts (docs/mandated-reports.md): a draft aid, not legal advice."""

    regimes: Annotated[dict[str, RegimeSettings], BeforeValidator(_regime_map)] = Field(default_factory=dict)
    facility: Facility = Field(default_factory=Facility)
    reportable: list[ReportableRule] = Field(default_factory=lambda: list(DEFAULT_REPORTABLE))


def reporting_errors(cfg: "Config", path: str) -> list[str]:
    """Regimes must be known (built-in or plugin), profiles defined, detections known."""
    from detections.registry import load_registry
    from pipelines.mandated.registry import load_regimes

    errors = []
    regimes = load_regimes()
    profiles = {p.name for p in cfg.export.effective_profiles()} | {"internal"}
    for name, settings in cfg.reporting.regimes.items():
        if name not in regimes:
            errors.append(f"{path}: reporting.regimes.{name}: expected a known regime ({', '.join(sorted(regimes))}), got {name!r}")
        if settings.profile not in profiles:
            errors.append(f"{path}: reporting.regimes.{name}.profile: expected a sharing profile ({', '.join(sorted(profiles))}), got {settings.profile!r}")
    known = load_registry()
    for i, rule in enumerate(cfg.reporting.reportable):
        for d in rule.detections:
            if d not in known:
                errors.append(f"{path}: reporting.reportable[{i}].detections: expected a known detection id, got {d!r}")
    return errors


class Config(Strict):
    site: Site
    sources: list[Source] = Field(min_length=1)
    inventory: Inventory = Field(default_factory=Inventory)
    vendors: list[Vendor] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    detections: dict[str, DetectionSettings] = Field(default_factory=dict)
    correlation: Correlation = Field(default_factory=Correlation)
    export: Export = Field(default_factory=Export)
    intel: Intel = Field(default_factory=Intel)
    geo: Geo = Field(default_factory=Geo)
    reporting: Reporting = Field(default_factory=Reporting)

    # Set by ``load_config``: where relative source paths are resolved from.
    base_dir: str = Field(default=".", exclude=True)


class ConfigError(Exception):
    """Bad config: ``errors`` holds one line per problem, each naming file, key, expectation."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Walk the model along ``loc`` to list the keys allowed where an unknown one was found."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        fld = getattr(model, "model_fields", {}).get(part)
        if fld is None:
            fld = next((f for f in getattr(model, "model_fields", {}).values() if f.alias == part), None)
        if fld is None:
            return []
        ann = fld.annotation
        model = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            for inner in (cand, *getattr(cand, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
        if model is None:
            return []
    fields = getattr(model, "model_fields", {})
    return sorted((f.alias or n) for n, f in fields.items() if n != "base_dir")


def _format_error(path: str, err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    key = _loc(loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"{path}: {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{path}: {key}: required key is missing"
    msg = err["msg"]
    msg = msg.removeprefix("Value error, ").removeprefix("Input should be ")
    if not msg.startswith("expected"):
        msg = "expected " + msg[0].lower() + msg[1:] if msg else "invalid value"
    got = err.get("input")
    return f"{path}: {key}: {msg}, got {got!r}"


def parse_config(data: Any, path: str, base_dir: str | None = None) -> Config:
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: (top level): expected a mapping of config keys, got {type(data).__name__}"])
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir or os.path.dirname(os.path.abspath(path))})
    except ValidationError as exc:
        raise ConfigError([_format_error(path, e) for e in exc.errors()]) from None
    errors = _cross_check(cfg, path)
    if errors:
        raise ConfigError(errors)
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse and validate a config file; raise ``ConfigError`` listing every problem."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: (file): expected a readable config file, got no such file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}: {where}: expected valid YAML, got {problem}"]) from None
    return parse_config(data, path)


def _cross_check(cfg: Config, path: str) -> list[str]:
    """Checks that span keys: references to assets/vendors, parsers and detections known."""
    from detections.registry import load_registry  # late: registry imports detection modules
    from transforms.parsers import PARSERS

    errors: list[str] = []
    names = [s.name for s in cfg.sources]
    for i, s in enumerate(cfg.sources):
        if s.format not in PARSERS:
            errors.append(
                f"{path}: sources[{i}].format: expected one of: {', '.join(sorted(PARSERS))}, got {s.format!r}"
            )
        if names.count(s.name) > 1:
            errors.append(f"{path}: sources[{i}].name: expected a unique source name, got {s.name!r} twice")
        if s.format in MAPPED_FORMATS and s.mapping is None:
            errors.append(f"{path}: sources[{i}].mapping: expected a mapping block for format {s.format!r}")
        try:
            dt.timezone.utc if s.timezone == "UTC" else __import__("zoneinfo").ZoneInfo(s.timezone)
        except Exception:
            errors.append(f"{path}: sources[{i}].timezone: expected an IANA timezone such as UTC, got {s.timezone!r}")
    asset_ids = [a.id for a in cfg.inventory.assets]
    seen_addr: dict[str, str] = {}
    for i, a in enumerate(cfg.inventory.assets):
        if asset_ids.count(a.id) > 1:
            errors.append(f"{path}: inventory.assets[{i}].id: expected a unique asset id, got {a.id!r} twice")
        for addr in a.addresses:
            if addr in seen_addr and seen_addr[addr] != a.id:
                errors.append(
                    f"{path}: inventory.assets[{i}].addresses: expected each address on one asset, "
                    f"got {addr!r} on {seen_addr[addr]!r} and {a.id!r}"
                )
            seen_addr[addr] = a.id
    vendor_names = {v.name for v in cfg.vendors}
    for i, w in enumerate(cfg.maintenance_windows):
        if w.vendor not in vendor_names:
            errors.append(
                f"{path}: maintenance_windows[{i}].vendor: expected one of the vendors ({', '.join(sorted(vendor_names)) or 'none defined'}), got {w.vendor!r}"
            )
        for a in w.assets:
            if a not in asset_ids:
                errors.append(f"{path}: maintenance_windows[{i}].assets: expected an inventory asset id, got {a!r}")
    from transforms.geo import GeoFileError, read_csv

    for i, f in enumerate(cfg.geo.files):
        full = f if os.path.isabs(f) else os.path.join(cfg.base_dir, f)
        try:
            read_csv(full)
        except OSError as exc:
            errors.append(f"{path}: geo.files[{i}]: expected a readable CSV file, got {f!r} ({exc.strerror})")
        except GeoFileError as exc:
            errors.append(f"{path}: geo.files[{i}]: {full}: {exc}")
    profile_names = [p.name for p in cfg.export.profiles]
    for i, prof in enumerate(cfg.export.profiles):
        if profile_names.count(prof.name) > 1:
            errors.append(f"{path}: export.profiles[{i}].name: expected a unique profile name, got {prof.name!r} twice")
    registry = load_registry()
    for det_id, settings in cfg.detections.items():
        det = registry.get(det_id)
        if det is None:
            errors.append(
                f"{path}: detections.{det_id}: expected a known detection id ({', '.join(sorted(registry))}), got {det_id!r}"
            )
            continue
        for p in settings.params:
            if p not in det.meta.params:
                allowed = ", ".join(sorted(det.meta.params)) or "none"
                errors.append(f"{path}: detections.{det_id}.params.{p}: unknown parameter; expected one of: {allowed}")
    return errors + reporting_errors(cfg, path)


@dataclass(frozen=True)
class ResolvedSource:
    name: str
    format: str
    files: tuple[str, ...]
    timezone: str
    mapping: Optional[str] = None  # the source's mapping block as JSON (hashable, picklable)


def resolve_sources(cfg: Config) -> list[ResolvedSource]:
    """Expand each source's globs/directories (relative to the config file) into files."""
    import glob

    out = []
    for s in cfg.sources:
        if not s.enabled:
            continue
        files: list[str] = []
        for pattern in s.paths:
            full = pattern if os.path.isabs(pattern) else os.path.join(cfg.base_dir, pattern)
            if os.path.isdir(full):
                matches = [str(p) for p in Path(full).rglob("*") if p.is_file()]
            else:
                matches = glob.glob(full, recursive=True)
            files.extend(m for m in matches if os.path.isfile(m))
        mapping = s.mapping.model_dump_json() if s.mapping is not None else None
        out.append(ResolvedSource(s.name, s.format, tuple(sorted(set(files))), s.timezone, mapping))
    return out
