"""The deployment config: strict, validated in one pass, every error named by file and key.

A port's config says where its logs are, which addresses are which crane parts, who the
vendors are and when they may connect. A typo there silently weakens detection, so unknown
keys and wrong types are errors, all reported at once (like pySigma's collect_errors), each
on one line: ``FILE: KEY: expected ..., got ...``. The CLI exits with status 2 on them.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (BaseModel, BeforeValidator, Field, StrictBool, StrictInt, ValidationError,
                      field_validator)

from pipelines import config_values, source_paths, strict_yaml
from pipelines.config_sigma import SigmaSettings
from pipelines.config_base import ASSET_KINDS, Strict  # noqa: F401 - ASSET_KINDS: read as config.ASSET_KINDS
from pipelines.config_kafka import NO_CREDENTIAL, KafkaSettings
from pipelines.config_reporting import (  # noqa: F401 - re-exported: the mandated-report drafts read them here
    DEFAULT_REPORTABLE, Facility, RegimeSettings, Reporting, ReportableRule, reporting_errors)
from pipelines.config_site import (  # noqa: F401 - re-exported: the site model lives below the loader
    _DURATION, WEEKDAYS, Address, Asset, Country, DetectionSettings, Duration, Geo, GeoNetwork, Inventory, MaintenanceWindow,
    Network, PositiveDuration, Site, TimeOfDay, Vendor, _check_address, _check_country, _check_network,
    _parse_duration, _positive_duration,
)
from transforms.read import DEFAULT_LIMITS
from transforms.read import Limits as ReadLimits

TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")

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
    time_format: Annotated[Optional[str], BeforeValidator(config_values.check_time_format)] = None  # strptime format; default: epoch s/ms/µs/ns, RFC 3339, ctime
    timezone: Optional[str] = None  # for times without an offset; default: the source's timezone
    delimiter: Annotated[str, BeforeValidator(config_values.check_delimiter)] = ","  # csv_mapped
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
    paths: list[str] = Field(default_factory=list)  # files, globs, directories (batch)
    # A directory log shippers drop files into (``cranewatch stream``); relative to the config.
    spool: Optional[str] = None
    kafka: Optional[KafkaSettings] = None  # a Kafka topic to stream from instead of a spool (README "Streaming")
    out_of_orderness: Optional[Duration] = None  # overrides stream.out_of_orderness
    timezone: str = "UTC"
    enabled: StrictBool = True
    mapping: Optional[SourceMapping] = None  # required by csv_mapped, jsonl_mapped, parquet

    def model_post_init(self, __context: Any) -> None:
        if not self.paths and self.spool is None and self.kafka is None:
            raise ValueError("expected paths (a list of files or globs), spool (a directory) or kafka (a topic)")
        if self.spool is not None and self.kafka is not None:
            raise ValueError("expected spool or kafka, not both (a source streams from one of them)")
        if self.kafka is not None and self.format == "parquet":
            raise ValueError("expected a line or JSON format with kafka (a Parquet file is not a message)")


class Correlation(Strict):
    # Findings further apart than ``gap`` (event time) on the same asset/entities start a
    # new incident; the window closes once the watermark passes the last finding + gap.
    gap: PositiveDuration = 1800.0
    # Streaming: how long after its close (last finding + gap) an emitted incident may still
    # be revised by a late finding (re-emitted with the same id and a later ``modified``);
    # findings older than last_seen + gap + allowed_lateness are dead-lettered (late=True).
    allowed_lateness: Duration = 3600.0


class Stream(Strict):
    """``cranewatch stream``: event time, idleness and the spool file rule (README "Streaming")."""

    # A source's watermark trails the newest record time it has read by this much: records
    # up to this far out of order are on time.
    out_of_orderness: Duration = 300.0
    # A source with no new file for this long (wall clock) stops holding the job's watermark
    # back: its watermark moves to wall clock - out_of_orderness. Keep it above the longest
    # rotation interval of a live source; 0 turns it off.
    idle_timeout: Duration = 7200.0
    # A spool file is read once its size and mtime have not changed for this long (files a
    # shipper writes in place, without an atomic rename); names starting with "." are skipped.
    settle: Duration = 2.0
    poll_interval: Duration = 0.5  # how often each spool directory is listed
    summary_interval: Duration = 3.0  # summary.json is rewritten this often
    report_interval: Duration = 10.0  # report.html (and the profiles' reports) this often


class Redaction(Strict):
    """What a sharing profile rewrites before a bundle leaves the port (docs/stix.md)."""

    # keep | pseudonym (stable keyed pseudonym address) | zone (dropped, named by zone in text)
    internal_addresses: Literal["keep", "pseudonym", "zone"] = "keep"
    accounts: Literal["keep", "hash"] = "keep"  # hash: keyed hash of the account name
    assets: Literal["keep", "asset_kind"] = "keep"  # asset ids, crane ids -> asset kind
    evidence_paths: Literal["keep", "drop"] = "keep"  # drop: keep only the evidence hash
    # With assets: asset_kind, what a zone is shown as (e.g. crane-sts05: crane-ot); a zone
    # not listed whose name names a crane or asset becomes crane-zone / ot-zone.
    zone_labels: dict[str, str] = Field(default_factory=dict)

    @property
    def needs_secret(self) -> bool:
        # Every redacting profile: its ids, incident references and evidence digests are keyed
        # (plain hashes of the port's ids would confirm guesses of what was redacted).
        return self.redacts

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
    min_severity: StrictInt = Field(default=0, ge=0, le=100)
    # Sharing profiles; absent or empty: one "internal" profile at ``tlp`` keeping everything.
    # The first profile writes ``stix/``, every other one ``stix-<name>/``.
    profiles: list[SharingProfile] = Field(default_factory=list)
    # Per-deployment secret for pseudonyms and account hashes: read from this file (relative
    # to the config file) if set, else from this environment variable. Never in the config.
    secret_file: Optional[str] = None
    secret_env: str = Field(default="CRANEWATCH_EXPORT_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Also write a run-level ``report`` bundle per profile (reports/<profile>.json).
    report: StrictBool = False
    # How long a shared indicator stays valid (``valid_until`` = ``valid_from`` + this):
    # addresses get reassigned, and a recipient should stop alerting on a stale one.
    indicator_lifetime: PositiveDuration = 30 * 86400.0

    def effective_profiles(self) -> list[SharingProfile]:
        return list(self.profiles) or [SharingProfile(name="internal", tlp=self.tlp)]


class Intel(Strict):
    """Threat intel in (``cranewatch intel import``): where the indicator store lives."""

    store: str = "intel/store.json"  # relative to the config file
    # Indicators naming an address range broader than this are refused at import and
    # skipped at run (a catch-all such as 0.0.0.0/0 would match every flow). 0: no limit.
    min_prefix_ipv4: int = Field(default=16, ge=0, le=32)
    min_prefix_ipv6: int = Field(default=32, ge=0, le=128)


class Limits(Strict):
    """Bounds on reading one input file, against decompression bombs and endless lines
    (docs/limits.md); past one, the rest of the file is one dead letter."""

    max_decompressed_bytes: int = Field(default=DEFAULT_LIMITS.max_decompressed_bytes, gt=0, strict=True)
    max_ratio: float = Field(default=DEFAULT_LIMITS.max_ratio, ge=1, strict=True)
    max_line_bytes: int = Field(default=DEFAULT_LIMITS.max_line_bytes, gt=0, strict=True)

    def read_limits(self) -> ReadLimits:
        return ReadLimits(self.max_decompressed_bytes, self.max_ratio, self.max_line_bytes)


class VendorNetworkMinPrefix(Strict):
    """The broadest vendor ``allowed_networks``/``tunnel_networks`` accepted (prefix length):
    a vendor "network" of 0.0.0.0/0 would make every login an expected vendor login."""

    ipv4: StrictInt = Field(default=16, ge=0, le=32)
    ipv6: StrictInt = Field(default=32, ge=0, le=128)


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
    limits: Limits = Field(default_factory=Limits)
    stream: Stream = Field(default_factory=Stream)
    vendor_network_min_prefix: VendorNetworkMinPrefix = Field(default_factory=VendorNetworkMinPrefix)
    # Folders outside the config's own folder that source paths may read (relative to the
    # config file or absolute); never /proc, /sys or /dev (pipelines/source_paths.py).
    allowed_roots: list[str] = Field(default_factory=list)
    reporting: Reporting = Field(default_factory=Reporting)
    sigma: SigmaSettings = Field(default_factory=SigmaSettings)  # Sigma rules as detections

    # Set by ``load_config``: where relative source paths are resolved from, the file's
    # name (for messages) and roots allowed on the command line (``--allow-root``).
    base_dir: str = Field(default=".", exclude=True)
    config_path: str = Field(default="", exclude=True)
    cli_roots: tuple[str, ...] = Field(default=(), exclude=True)

    def read_roots(self) -> list[str]:
        return [*self.allowed_roots, *self.cli_roots]


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
    return sorted((f.alias or n) for n, f in fields.items() if not f.exclude)


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
    if msg.startswith(NO_CREDENTIAL):
        return f"{path}: {key}: {msg}"  # never repeat a secret
    got = err.get("input")
    return f"{path}: {key}: {msg}, got {got!r}"


MAX_CONFIG_BYTES = 16 * 2**20
_INTERNAL_KEYS = ("base_dir", "config_path", "cli_roots")


#: Sections each section's cross-key checks read: with one of them invalid, those checks
#: are left out of the report (they would judge a default in its place).
_CHECK_READS = {
    "sources": {"sources", "allowed_roots"}, "geo": {"geo", "allowed_roots"},
    "maintenance_windows": {"maintenance_windows", "vendors", "inventory"},
    "detections": {"detections", "inventory"}, "vendors": {"vendors", "vendor_network_min_prefix"},
}
#: Stand-ins for required sections that failed, so the rest can still be checked.
_STAND_INS: dict[str, Any] = {"site": {"name": "-"}, "sources": [{"name": "-", "format": "-", "paths": ["-"]}]}


@dataclass(frozen=True)
class Checked:
    """A config checked in one pass: ``cfg`` is None only when nothing could be read;
    with ``invalid`` sections it holds defaults in their place (for further checks that
    do not read them), and ``errors`` lists every problem found."""

    cfg: Optional[Config]
    errors: list[str]
    invalid: frozenset[str] = frozenset()


def _section(line: str, path: str) -> str:
    return re.split(r"[.\[:]", line.removeprefix(f"{path}: "), maxsplit=1)[0]


def check_config(data: Any, path: str, base_dir: str | None = None,
                 allow_roots: tuple[str, ...] | list[str] = ()) -> Checked:
    """Schema and cross-key checks in one pass: a section that fails its schema is set
    aside and the checks of every other section still run."""
    if not isinstance(data, dict):
        return Checked(None, [f"{path}: (top level): expected a mapping of config keys, got {type(data).__name__}"])
    internal = [k for k in _INTERNAL_KEYS if k in data]
    if internal:
        return Checked(None, [f"{path}: {k}: unknown key" for k in internal])
    extra = {"base_dir": base_dir or os.path.dirname(os.path.abspath(path)), "config_path": path,
             "cli_roots": tuple(allow_roots)}
    try:
        cfg = Config.model_validate({**data, **extra})
        return Checked(cfg, _cross_check(cfg, path))
    except ValidationError as exc:
        errors = [_format_error(path, e) for e in exc.errors()]
        invalid = frozenset(str(e["loc"][0]) for e in exc.errors() if e["loc"])
    rest = {k: v for k, v in data.items() if k not in invalid}
    rest.update({k: v for k, v in _STAND_INS.items() if k in invalid})
    try:
        cfg = Config.model_validate({**rest, **extra})
    except ValidationError:
        return Checked(None, errors, invalid)
    if "sources" in invalid:
        cfg = cfg.model_copy(update={"sources": []})
    more = [e for e in _cross_check(cfg, path)
            if not _CHECK_READS.get(_section(e, path), {_section(e, path)}) & invalid]
    return Checked(cfg, errors + more, invalid)


def parse_config(data: Any, path: str, base_dir: str | None = None,
                 allow_roots: tuple[str, ...] | list[str] = ()) -> Config:
    checked = check_config(data, path, base_dir, allow_roots)
    if checked.errors or checked.cfg is None:
        raise ConfigError(checked.errors)
    return checked.cfg


def load_config(path: str | os.PathLike[str], allow_roots: tuple[str, ...] | list[str] = ()) -> Config:
    """Read, parse and validate a config file; raise ``ConfigError`` listing every problem.
    ``allow_roots``: folders source paths may read besides the config's own (``--allow-root``)."""
    checked = check_file(path, allow_roots)
    if checked.errors or checked.cfg is None:
        raise ConfigError(checked.errors)
    return checked.cfg


def check_file(path: str | os.PathLike[str], allow_roots: tuple[str, ...] | list[str] = ()) -> Checked:
    """``check_config`` on a file: YAML problems are errors of the same shape."""
    path = str(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONFIG_BYTES:  # a FIFO would block, /dev/zero never end
            return Checked(None, [f"{path}: (file): expected a regular config file of at most "
                                  f"{MAX_CONFIG_BYTES // 2**20} MiB, got {'a larger file' if stat.S_ISREG(st.st_mode) else 'a special file'}"])
        with open(path, encoding="utf-8") as fh:
            data = strict_yaml.load(fh.read(MAX_CONFIG_BYTES + 1))
    except OSError as exc:
        return Checked(None, [f"{path}: (file): expected a readable config file, got {exc.strerror or exc}"])
    except UnicodeDecodeError:
        return Checked(None, [f"{path}: (file): expected UTF-8 text, got undecodable bytes"])
    except strict_yaml.YamlError as exc:
        return Checked(None, [f"{path}: {key}: {msg}" for key, msg in exc.errors])
    except RecursionError:
        return Checked(None, [f"{path}: (yaml): expected a config nested a few levels deep, got nesting too deep to read"])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return Checked(None, [f"{path}: {where}: expected valid YAML, got {problem}"])
    return check_config(data, path, allow_roots=allow_roots)


def _cross_check(cfg: Config, path: str) -> list[str]:
    from pipelines import config_checks  # late: it reads the models above

    from pipelines.config_sigma import sigma_errors

    return config_checks.cross_check(cfg, path) + reporting_errors(cfg, path) + sigma_errors(cfg, path)


@dataclass(frozen=True)
class ResolvedSource:
    name: str
    format: str
    files: tuple[str, ...]
    timezone: str
    mapping: Optional[str] = None  # the source's mapping block as JSON (hashable, picklable)


def resolve_sources(cfg: Config) -> list[ResolvedSource]:
    """Expand each source's globs/directories (relative to the config file) into files.

    Raises ``ConfigError`` naming every matched entry that may not be read: a special
    file (/proc, /sys, /dev, a FIFO, socket or device) or one whose real path leaves the
    config's folder and ``allowed_roots`` (pipelines/source_paths.py)."""
    out = []
    errors: list[str] = []
    roots = cfg.read_roots()
    secret = cfg.export.secret_file
    secret_real = os.path.realpath(secret if os.path.isabs(secret) else os.path.join(cfg.base_dir, secret)) if secret else None
    for i, s in enumerate(cfg.sources):
        if not s.enabled:
            continue
        files: list[str] = []
        for j, pattern in enumerate(s.paths):
            problem = source_paths.pattern_problem(pattern, cfg.base_dir, roots)
            if problem:
                errors.append(f"{cfg.config_path}: sources[{i}].paths[{j}]: {problem}, got {pattern!r}")
                continue
            for m in source_paths.expand(pattern, cfg.base_dir):
                problem = source_paths.file_problem(m, cfg.base_dir, roots)
                if secret_real is not None and os.path.realpath(m) == secret_real:
                    problem = "expected log files, not the export secret file"  # dead letters quote lines
                if problem:
                    errors.append(f"{cfg.config_path}: sources[{i}].paths[{j}]: {problem}, got {m!r}")
                else:
                    files.append(m)
        mapping = s.mapping.model_dump_json() if s.mapping is not None else None
        out.append(ResolvedSource(s.name, s.format, tuple(sorted(set(files))), s.timezone, mapping))
    if errors:
        raise ConfigError(errors)
    return out
