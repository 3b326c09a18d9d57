"""The event model and the records that flow between pipeline stages.

Raw events travel as Arrow tables with ``EVENT_SCHEMA`` (many rows, vectorized work);
only the few things that survive detection (findings, incidents) and the records that
fail parsing (dead letters) become Python dataclasses.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

# Event kinds, per ARCHITECTURE.md.
KINDS = ("flow", "ot", "remote_access", "auth")

#: The normalized event. ``time`` is assigned once, by the parser. The enrichment stage
#: fills ``src_asset``/``dst_asset``/``src_zone``/``dst_zone`` from the inventory and
#: ``asset_id``/``zone`` with the asset the event concerns (the destination when it is an
#: inventoried asset, else the source; CMS events name their crane themselves).
EVENT_SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("source", pa.string()),
        pa.field("format", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("src_ip", pa.string()),
        pa.field("src_port", pa.int32()),
        pa.field("dst_ip", pa.string()),
        pa.field("dst_port", pa.int32()),
        pa.field("proto", pa.string()),
        pa.field("service", pa.string()),
        pa.field("bytes_out", pa.int64()),
        pa.field("bytes_in", pa.int64()),
        pa.field("packets_out", pa.int64()),
        pa.field("packets_in", pa.int64()),
        pa.field("duration", pa.float64()),
        pa.field("conn_state", pa.string()),
        pa.field("asset_id", pa.string()),
        pa.field("zone", pa.string()),
        pa.field("src_asset", pa.string()),
        pa.field("src_zone", pa.string()),
        pa.field("dst_asset", pa.string()),
        pa.field("dst_zone", pa.string()),
        pa.field("action", pa.string()),
        pa.field("user", pa.string()),
        pa.field("vendor", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("target", pa.string()),
        pa.field("value_old", pa.string()),
        pa.field("value_new", pa.string()),
        pa.field("result", pa.string()),
        # Evidence pointer "path:line"; the raw text rides along in ``raw`` so that a
        # finding can cite (and hash) exactly what was read without re-reading the file.
        pa.field("raw_ref", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("attrs", pa.map_(pa.string(), pa.string())),
    ]
)
EVENT_FIELDS = tuple(EVENT_SCHEMA.names)


def conform(columns: dict[str, Any], num_rows: int) -> pa.Table:
    """Build an ``EVENT_SCHEMA`` table from the columns a parser has; missing ones are null.

    Parsers only produce the fields their format carries; this fills the rest so every
    stage downstream sees one schema.
    """
    arrays = []
    for f in EVENT_SCHEMA:
        col = columns.get(f.name)
        if col is None:
            arrays.append(pa.nulls(num_rows, type=f.type))
        elif isinstance(col, (pa.Array, pa.ChunkedArray)):
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            arrays.append(pa.array(col, type=f.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def empty_events() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not become an event, kept with the reason and its raw text."""

    source: str
    location: str  # "path:line" (or "path:offset" for binary formats)
    reason: str
    raw: str
    late: bool = False
    reason_code: str = ""  # stable code of ``reason`` (transforms/reasons.py), derived when not given

    def __post_init__(self) -> None:
        if not self.reason_code:
            from transforms.reasons import reason_code

            object.__setattr__(self, "reason_code", reason_code(self.reason))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def sha256_text(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Evidence:
    """One raw record a finding rests on: where it was read, its hash, and key fields."""

    raw_ref: str
    sha256: str
    time: str  # RFC 3339, UTC
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One detection hit (deduplicated: ``count`` hits with the same dedup key)."""

    finding_id: str
    detection_id: str
    title: str
    severity: int  # 0-100
    confidence: int  # 0-100
    stage: str  # access | command | impact | recon | exfiltration | other
    techniques: tuple[str, ...]
    first_seen: str  # RFC 3339 UTC (microseconds)
    last_seen: str
    asset_id: str | None
    zone: str | None
    # Entities the finding is about; ``link_keys`` are the ones correlation may join on
    # (asset ids, a VPN session's tunnel address, the address that issued a command).
    addresses: tuple[str, ...]
    accounts: tuple[str, ...]
    link_keys: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    count: int = 1
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        d = dict(d)
        d["evidence"] = tuple(Evidence(**e) for e in d["evidence"])
        for k in ("techniques", "addresses", "accounts", "link_keys"):
            d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Incident:
    """Findings of one asset or linked entity set, close together in event time."""

    incident_id: str
    title: str
    severity: int  # 0-100, highest raised by the chain (a full chain is critical)
    severity_label: str  # low | medium | high | critical
    stages: tuple[str, ...]  # ordered chain, e.g. ("access", "command", "impact")
    techniques: tuple[str, ...]
    first_seen: str
    last_seen: str
    assets: tuple[str, ...]
    primary_asset: str | None
    zone: str | None
    addresses: tuple[str, ...]
    accounts: tuple[str, ...]
    findings: tuple[Finding, ...]
    status: str = "open"
    modified: str = ""  # event time of the latest evidence that shaped this version

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Incident":
        d = dict(d)
        d["findings"] = tuple(Finding.from_dict(f) for f in d["findings"])
        for k in ("stages", "techniques", "assets", "addresses", "accounts"):
            d[k] = tuple(d[k])
        return cls(**d)


def severity_label(severity: int) -> str:
    if severity >= 90:
        return "critical"
    if severity >= 70:
        return "high"
    if severity >= 40:
        return "medium"
    return "low"
