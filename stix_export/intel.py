"""Threat intel in: STIX 2.1 indicator bundles (what an ISAC publishes) -> a JSON store.

``cranewatch intel import FILE...`` or ``--taxii API_ROOT --collection ID`` loads indicators
into the store named by the config's ``intel.store`` (a JSON file, relative to the config).
The threat-intel detection reads it through this module's small API::

    from stix_export.intel import load_store
    store = load_store(path)                    # an empty store if the file does not exist
    for hit in store.match_ip("198.51.100.7", when):   # when: aware datetime or RFC 3339 text
        hit.indicator_id, hit.name, hit.source, hit.value   # e.g. for a sighting_of_ref
    store.match_domain("c2.example.net", when)

What is kept, and when it matches:

* Only ``indicator`` objects with ``pattern_type: stix`` whose pattern is in the supported
  subset: one or more observation expressions joined by ``OR``, each holding comparisons
  joined by ``OR`` of ``ipv4-addr:value``/``ipv6-addr:value`` (``=``, ``IN (...)``,
  ``ISSUBSET`` a CIDR; ``=`` to a CIDR value also matches the network) or
  ``domain-name:value`` (``=``, ``IN``; exact, case-insensitive). ``AND``, ``FOLLOWEDBY``,
  qualifiers (``WITHIN``, ``REPEATS``, ``START``/``STOP``), negation, ``LIKE``/``MATCHES`` and
  other object types are reported at import with the reason and not stored.
* An indicator matches at time ``when`` if it is not revoked, ``valid_from <= when`` and
  (no ``valid_until`` or ``when < valid_until``).
* Versions: for each indicator id the store keeps the version with the latest ``modified``;
  a revoked version (``revoked: true``) marks the indicator revoked, so it never matches.

The store file is JSON with sorted keys, so the same imports give the same bytes.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

STORE_VERSION = 1
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_VALUE_PATHS = {"ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain"}


class UnsupportedPattern(ValueError):
    """The pattern is valid STIX but outside the subset the store can match."""


def _time(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _unquote(text: str) -> str:
    return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")


def parse_pattern(pattern: str) -> list[dict[str, str]]:
    """The match terms of a supported pattern: ``[{"type": "ip"|"domain", "value": ...}]``.

    Raises ``UnsupportedPattern`` (with the reason) for anything outside the subset, and for
    patterns that are not valid STIX 2.1.
    """
    from stix2patterns.v21.pattern import Pattern

    try:
        info = Pattern(pattern).inspect()
    except Exception as exc:  # the pattern library raises its own parse errors
        raise UnsupportedPattern(f"not a valid STIX 2.1 pattern ({exc})") from None
    if info.qualifiers:
        raise UnsupportedPattern(f"qualifiers are not supported ({', '.join(sorted(info.qualifiers))})")
    if info.observation_ops - {"OR"}:
        raise UnsupportedPattern(f"observation operators other than OR ({', '.join(sorted(info.observation_ops))})")
    bare = _QUOTED.sub("''", pattern)
    if re.search(r"\bAND\b", bare):
        raise UnsupportedPattern("AND inside an observation expression is not supported")
    if re.search(r"\bNOT\b", bare):
        raise UnsupportedPattern("negated comparisons are not supported")
    terms: list[dict[str, str]] = []
    for obj_type, comparisons in info.comparisons.items():
        kind = _VALUE_PATHS.get(obj_type)
        for path, op, raw in comparisons:
            if kind is None or path != ["value"]:
                raise UnsupportedPattern(f"{obj_type}:{'.'.join(map(str, path))} is not a supported object path")
            if op == "=":
                values = [_unquote(raw)]
            elif op == "IN":
                values = [_unquote(v) for v in _QUOTED.findall(raw)]
            elif op == "ISSUBSET" and kind == "ip":
                values = [_unquote(raw)]
            else:
                raise UnsupportedPattern(f"operator {op} on {obj_type}:value is not supported")
            for value in values:
                if kind == "ip":
                    try:
                        net = ipaddress.ip_network(value, strict=False)
                    except ValueError:
                        raise UnsupportedPattern(f"{value!r} is not an IP address or network") from None
                    if (net.version == 4) != (obj_type == "ipv4-addr"):
                        raise UnsupportedPattern(f"{value!r} does not match {obj_type}")
                    terms.append({"type": "ip", "value": str(net)})
                else:
                    terms.append({"type": "domain", "value": value.strip().lower().rstrip(".")})
    if not terms:
        raise UnsupportedPattern("no comparison the store can match")
    return terms


@dataclass(frozen=True)
class IntelHit:
    indicator_id: str
    name: str
    source: str
    value: str  # the address, network or domain of the indicator that matched


@dataclass
class ImportReport:
    indicators: int = 0  # indicator objects read
    stored: int = 0  # new indicators or newer versions stored
    unchanged: int = 0  # versions the store already had (or older ones)
    revoked: int = 0  # indicators marked revoked by this import
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (indicator id, reason)
    ignored_objects: int = 0  # other object types in the bundles

    def lines(self) -> list[str]:
        out = [
            f"read {self.indicators} indicator(s): {self.stored} stored, {self.unchanged} unchanged, "
            f"{self.revoked} revoked, {len(self.unsupported)} unsupported; {self.ignored_objects} other object(s) ignored"
        ]
        out += [f"unsupported {ind_id}: {reason}" for ind_id, reason in self.unsupported]
        return out


class IntelStore:
    """Indicators by id, as stored; ``match_ip``/``match_domain`` answer "which apply now?"."""

    def __init__(self, indicators: dict[str, dict[str, Any]] | None = None):
        self.indicators: dict[str, dict[str, Any]] = indicators or {}
        self._index()

    def _index(self) -> None:
        self._nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, dict[str, Any]]] = []
        self._domains: dict[str, list[dict[str, Any]]] = {}
        for ind in self.indicators.values():
            if ind.get("revoked"):
                continue
            for term in ind["match"]:
                if term["type"] == "ip":
                    self._nets.append((ipaddress.ip_network(term["value"]), ind))
                else:
                    self._domains.setdefault(term["value"], []).append(ind)

    @staticmethod
    def _active(ind: dict[str, Any], when: dt.datetime) -> bool:
        if ind.get("revoked") or _time(ind["valid_from"]) > when:
            return False
        return not ind.get("valid_until") or when < _time(ind["valid_until"])

    @staticmethod
    def _hit(ind: dict[str, Any], value: str) -> IntelHit:
        return IntelHit(ind["id"], ind.get("name", ""), ind.get("source", ""), value)

    def match_ip(self, ip: str, when: str | dt.datetime) -> list[IntelHit]:
        """Indicators in force at ``when`` whose address or network contains ``ip``."""
        try:
            addr = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            return []
        t = _time(when)
        hits = [self._hit(ind, str(net)) for net, ind in self._nets
                if addr.version == net.version and addr in net and self._active(ind, t)]
        return sorted(set(hits), key=lambda h: (h.indicator_id, h.value))

    def match_domain(self, domain: str, when: str | dt.datetime) -> list[IntelHit]:
        """Indicators in force at ``when`` naming exactly ``domain`` (case-insensitive)."""
        key = str(domain).strip().lower().rstrip(".")
        t = _time(when)
        return sorted({self._hit(ind, key) for ind in self._domains.get(key, []) if self._active(ind, t)},
                      key=lambda h: h.indicator_id)

    def indicator_object(self, indicator_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The indicator as received (the stored version) and the objects it references that
        came with it (its creator identity, marking definitions), or None if the store does not
        hold the received object (stores written before objects were kept)."""
        ind = self.indicators.get(indicator_id)
        if not ind or not ind.get("object"):
            return None
        return ind["object"], list(ind.get("related", []))

    def import_objects(self, objects: Iterable[dict[str, Any]], source: str) -> ImportReport:
        report = ImportReport()
        objects = list(objects)
        # identities and marking definitions of the same bundle, kept beside the indicators
        # that reference them (a sighting of the indicator re-shares them with it)
        by_id = {o["id"]: o for o in objects
                 if isinstance(o, dict) and o.get("type") in ("identity", "marking-definition") and "id" in o}
        for obj in objects:
            if obj.get("type") != "indicator":
                report.ignored_objects += 1
                continue
            report.indicators += 1
            ind_id = obj["id"]
            modified = obj.get("modified") or obj.get("created")
            old = self.indicators.get(ind_id)
            # Revocation is final in STIX; otherwise the latest modified wins.
            if old is not None and (old.get("revoked") or _time(old["modified"]) >= _time(modified)):
                report.unchanged += 1
                continue
            if obj.get("revoked"):
                entry = {**(old or {"match": [], "pattern": obj.get("pattern", "")}), "id": ind_id,
                         "modified": modified, "revoked": True, "source": source,
                         "name": obj.get("name", (old or {}).get("name", "")),
                         "valid_from": obj.get("valid_from", (old or {}).get("valid_from", modified))}
                self.indicators[ind_id] = entry
                report.revoked += 1
                continue
            if obj.get("pattern_type", "stix") != "stix":
                report.unsupported.append((ind_id, f"pattern_type {obj.get('pattern_type')} is not supported (stix only)"))
                continue
            try:
                terms = parse_pattern(obj["pattern"])
            except UnsupportedPattern as exc:
                report.unsupported.append((ind_id, str(exc)))
                continue
            self.indicators[ind_id] = {
                "id": ind_id,
                "name": obj.get("name", ""),
                "pattern": obj["pattern"],
                "match": terms,
                "valid_from": obj["valid_from"],
                "valid_until": obj.get("valid_until"),
                "modified": modified,
                "revoked": False,
                "source": source,
                "object": obj,
                "related": [by_id[r] for r in _refs_of(obj) if r in by_id],
            }
            report.stored += 1
        self._index()
        return report

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        data = {"version": STORE_VERSION, "indicators": self.indicators}
        tmp.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def _refs_of(obj: dict[str, Any]) -> list[str]:
    """The ids an object names in ``created_by_ref`` and ``object_marking_refs``, in order."""
    refs = [obj["created_by_ref"]] if isinstance(obj.get("created_by_ref"), str) else []
    refs += [r for r in obj.get("object_marking_refs", []) if isinstance(r, str)]
    return list(dict.fromkeys(refs))


def load_store(path: str | os.PathLike[str]) -> IntelStore:
    """The store at ``path``; an empty store when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return IntelStore()
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != STORE_VERSION:
        raise ValueError(f"{path}: expected an intel store of version {STORE_VERSION}, got {data.get('version')!r}")
    return IntelStore(data.get("indicators", {}))


def import_files(store_path: str | os.PathLike[str], files: Iterable[str | os.PathLike[str]]) -> ImportReport:
    """Import STIX 2.1 bundle files into the store at ``store_path`` and save it."""
    store = load_store(store_path)
    total = ImportReport()
    for f in files:
        bundle = json.loads(Path(f).read_text(encoding="utf-8"))
        objects = bundle.get("objects", []) if isinstance(bundle, dict) else bundle
        _merge(total, store.import_objects(objects, source=f"file:{Path(f).name}"))
    store.save(store_path)
    return total


def import_taxii(store_path: str | os.PathLike[str], collection: Any, source: str) -> ImportReport:
    """Import every indicator version a TAXII 2.1 collection holds (all pages)."""
    from taxii2client.v21 import as_pages

    store = load_store(store_path)
    objects: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=100, type="indicator", version="all"):
        objects += page.get("objects", [])
    objects.sort(key=lambda o: (o["id"], _time(o.get("modified") or o.get("created"))))
    report = store.import_objects(objects, source=source)
    store.save(store_path)
    return report


def _merge(total: ImportReport, part: ImportReport) -> None:
    total.indicators += part.indicators
    total.stored += part.stored
    total.unchanged += part.unchanged
    total.revoked += part.revoked
    total.unsupported += part.unsupported
    total.ignored_objects += part.ignored_objects


_CONFIG_CACHE: dict[tuple[Any, ...], IntelStore] = {}


def load_for_config(cfg: Any) -> IntelStore:
    """What the threat-intel detection matches against for ``cfg``: the store at
    ``intel.store`` plus the bundle files in ``detections.threat_intel_match.params.bundles``
    (both relative to the config file). Cached per file set and modification time, so the
    export can look up a matched indicator's received object for every incident cheaply.
    Unsupported indicators in the bundle files are skipped here (the detection refuses them
    when the run starts)."""
    base = getattr(cfg, "base_dir", ".")

    def full(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(base, p)

    settings = (getattr(cfg, "detections", None) or {}).get("threat_intel_match")
    bundles = list((settings.params if settings is not None else {}).get("bundles", []))
    paths = [full(cfg.intel.store), *(full(b) for b in bundles)]
    key = tuple((p, os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in paths)
    if key not in _CONFIG_CACHE:
        store = load_store(paths[0])
        for path in paths[1:]:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            store.import_objects(data.get("objects", []) if isinstance(data, dict) else data, os.path.basename(path))
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[key] = store
    return _CONFIG_CACHE[key]
