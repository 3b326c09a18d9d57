"""The intel store: import (files, TAXII), the JSON file, and what a config's run matches.

Every object is checked by ``validation`` on the way in and every store entry on the way
out, so the store only ever matches with entries a run can use; the others are reported
(id and reason) and kept in the file as found, never matched, until a valid version of the
same indicator replaces them or someone edits the file.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from stix_export.intel.matching import IntelIndex
from stix_export.intel.validation import (
    FeedError,
    Policy,
    check_entry,
    check_indicator,
    check_related,
    json_kind,
    object_label,
    printable,
    read_feed,
    read_json_file,
    stix_time,
)

STORE_VERSION = 1
DETECTION_ID = "threat_intel_match"


@dataclass(frozen=True)
class Skipped:
    """An unusable store entry or feed object a run left out: where it is and why."""

    key: str  # the config key naming the file: intel.store, detections.threat_intel_match.params.bundles[0]
    file: str  # the file as the config names it
    id: str
    reason: str

    def line(self) -> str:
        return f"{self.file}: skipped {self.id}: {self.reason}"


@dataclass
class ImportReport:
    indicators: int = 0  # indicator objects read
    stored: int = 0  # new indicators or newer versions stored
    unchanged: int = 0  # versions the store already had (or older ones)
    revoked: int = 0  # indicators marked revoked by this import
    refused: list[tuple[str, str]] = field(default_factory=list)  # (indicator id, reason)
    ignored_objects: int = 0  # other object types in the bundles
    refused_other: list[tuple[str, str]] = field(default_factory=list)  # unusable identities, markings, non-objects
    store_skipped: list[tuple[str, str]] = field(default_factory=list)  # unusable entries already in the store

    def lines(self) -> list[str]:
        out = [
            f"read {self.indicators} indicator(s): {self.stored} stored, {self.unchanged} unchanged, "
            f"{self.revoked} revoked, {len(self.refused)} refused; {self.ignored_objects} other object(s) ignored"
        ]
        out += [f"refused {ind_id}: {reason}" for ind_id, reason in self.refused + self.refused_other]
        out += [f"store entry skipped (kept, never matched) {ind_id}: {reason}" for ind_id, reason in self.store_skipped]
        return out


class IntelStore(IntelIndex):
    """Usable indicators by id (``indicators``, matched), plus the unusable entries of the
    file it was read from (``unusable``, saved back as found) and why (``skipped``)."""

    def __init__(self, indicators: dict[str, Any] | None = None, policy: Policy = Policy(), source: str = "store"):
        self.policy = policy
        self.indicators: dict[str, dict[str, Any]] = {}
        self.unusable: dict[str, Any] = {}
        self.skipped: list[Skipped] = []
        for key, entry in (indicators or {}).items():
            reason = check_entry(key, entry, policy)
            if reason is None:
                self.indicators[key] = entry
            else:
                self.unusable[key] = entry
                self.skipped.append(Skipped("intel.store", source, printable(key), reason))
        self._index()

    def import_objects(self, objects: Iterable[Any], source: str) -> ImportReport:
        """Check and store the indicators among ``objects`` (one bundle or TAXII result)."""
        report = ImportReport()
        objects = list(objects)
        # identities and marking definitions of the same bundle, kept beside the indicators
        # that reference them (a sighting of the indicator re-shares them with it)
        by_id: dict[str, dict[str, Any]] = {}
        for i, o in enumerate(objects):
            if isinstance(o, dict) and o.get("type") in ("identity", "marking-definition"):
                reason = check_related(o)
                if reason is None:
                    by_id[o["id"]] = o
                else:
                    report.refused_other.append((object_label(o, i), reason))
        for i, obj in enumerate(objects):
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                report.refused_other.append((object_label(obj, i), "expected a STIX object (a JSON object with a type)"))
                continue
            if obj["type"] != "indicator":
                report.ignored_objects += 1
                continue
            report.indicators += 1
            terms, reason = check_indicator(obj, self.policy)
            if reason is not None:
                report.refused.append((object_label(obj, i), reason))
                continue
            ind_id, modified = obj["id"], obj["modified"]
            old = self.indicators.get(ind_id)
            # Revocation is final in STIX; otherwise the latest modified wins.
            if old is not None and (old.get("revoked") or stix_time(old["modified"]) >= stix_time(modified)):
                report.unchanged += 1
                continue
            self.unusable.pop(ind_id, None)
            if obj.get("revoked"):
                self.indicators[ind_id] = {
                    **(old or {"match": [], "pattern": obj.get("pattern", "")}), "id": ind_id,
                    "modified": modified, "revoked": True, "source": source,
                    "name": obj.get("name", (old or {}).get("name", "")),
                    "valid_from": obj.get("valid_from", (old or {}).get("valid_from", modified))}
                report.revoked += 1
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
        """Write the store (sorted keys: the same imports give the same bytes), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        data = {"version": STORE_VERSION, "indicators": {**self.unusable, **self.indicators}}
        tmp.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def _refs_of(obj: dict[str, Any]) -> list[str]:
    """The ids an object names in ``created_by_ref`` and ``object_marking_refs``, in order."""
    refs = [obj["created_by_ref"]] if isinstance(obj.get("created_by_ref"), str) else []
    refs += [r for r in obj.get("object_marking_refs", []) if isinstance(r, str)]
    return list(dict.fromkeys(refs))


def load_store(path: str | os.PathLike[str], policy: Policy = Policy()) -> IntelStore:
    """The store at ``path``; an empty store when the file does not exist yet. ``FeedError``
    (one line) when the file is not an intel store at all; unusable entries are skipped."""
    path = Path(path)
    if not path.exists():
        return IntelStore(policy=policy)
    what = f"an intel store (JSON with \"version\": {STORE_VERSION})"
    data = read_json_file(path, what)
    if not isinstance(data, dict):
        raise FeedError(f"{path}: expected {what}, got a JSON {json_kind(data)}")
    if data.get("version") != STORE_VERSION:
        raise FeedError(f"{path}: expected {what}, got version {printable(repr(data.get('version')))}")
    indicators = data.get("indicators", {})
    if not isinstance(indicators, dict):
        raise FeedError(f"{path}: indicators: expected a JSON object of entries by indicator id")
    return IntelStore(indicators, policy, source=str(path))


def import_files(store_path: str | os.PathLike[str], files: Iterable[str | os.PathLike[str]],
                 policy: Policy = Policy()) -> ImportReport:
    """Import STIX 2.1 bundle files into the store at ``store_path`` and save it. Every file
    is read before anything is stored: an unreadable one (``FeedError``) changes nothing."""
    store = load_store(store_path, policy)
    feeds = [(f, read_feed(f)) for f in files]
    total = ImportReport(store_skipped=[(s.id, s.reason) for s in store.skipped])
    for f, objects in feeds:
        _merge(total, store.import_objects(objects, source=f"file:{Path(f).name}"))
    store.save(store_path)
    return total


def import_taxii(store_path: str | os.PathLike[str], collection: Any, source: str,
                 policy: Policy = Policy()) -> ImportReport:
    """Import every indicator version a TAXII 2.1 collection holds (all pages)."""
    from taxii2client.v21 import as_pages

    store = load_store(store_path, policy)
    objects: list[Any] = []
    for page in as_pages(collection.get_objects, per_request=100, type="indicator", version="all"):
        objects += page.get("objects", [])
    objects.sort(key=_version_key)
    report = store.import_objects(objects, source=source)
    report.store_skipped = [(s.id, s.reason) for s in store.skipped]
    store.save(store_path)
    return report


def _version_key(obj: Any) -> tuple[str, dt.datetime]:
    """Sort key of an object version: id, then modified (unreadable ones first; refused later)."""
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    if not isinstance(obj, dict):
        return "", oldest
    try:
        when = stix_time(obj.get("modified") or obj.get("created"))
    except ValueError:
        when = oldest
    return printable(obj.get("id", "")), when


def _merge(total: ImportReport, part: ImportReport) -> None:
    total.indicators += part.indicators
    total.stored += part.stored
    total.unchanged += part.unchanged
    total.revoked += part.revoked
    total.refused += part.refused
    total.refused_other += part.refused_other
    total.ignored_objects += part.ignored_objects


# --- what a config's run matches ----------------------------------------------------------

_CONFIG_CACHE: dict[tuple[Any, ...], IntelStore] = {}


def intel_enabled(cfg: Any) -> bool:
    """Whether a run of ``cfg`` reads threat intel (the threat-intel detection is on)."""
    settings = (getattr(cfg, "detections", None) or {}).get(DETECTION_ID)
    return settings is None or bool(getattr(settings, "enabled", True))


def load_for_config(cfg: Any) -> IntelStore:
    """What the threat-intel detection matches against for ``cfg``: the store at
    ``intel.store`` plus the bundle files in ``detections.threat_intel_match.params.bundles``
    (both relative to the config file), checked with the config's policy. Unusable store
    entries and bundle objects are left out and listed in ``skipped``; a file that cannot be
    read at all raises ``FeedError`` naming the config key. Cached per file set and
    modification time, so the export can look up a matched indicator's received object for
    every incident cheaply."""
    base = getattr(cfg, "base_dir", ".")

    def full(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(base, p)

    settings = (getattr(cfg, "detections", None) or {}).get(DETECTION_ID)
    bundles = [str(b) for b in (settings.params if settings is not None else {}).get("bundles", [])]
    policy = Policy.of(cfg)
    paths = [full(cfg.intel.store), *(full(b) for b in bundles)]
    key = (policy, *((p, os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in paths))
    if key not in _CONFIG_CACHE:
        try:
            store = load_store(paths[0], policy)
        except FeedError as exc:
            raise FeedError(f"intel.store: {exc}") from None
        store.skipped = [Skipped(s.key, cfg.intel.store, s.id, s.reason) for s in store.skipped]
        for i, (name, path) in enumerate(zip(bundles, paths[1:])):
            where = f"detections.{DETECTION_ID}.params.bundles[{i}]"
            try:
                objects = read_feed(path)
            except FeedError as exc:
                raise FeedError(f"{where}: {exc}") from None
            report = store.import_objects(objects, os.path.basename(path))
            store.skipped += [Skipped(where, name, ind_id, reason)
                              for ind_id, reason in report.refused + report.refused_other]
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[key] = store
    return _CONFIG_CACHE[key]


def check_config(cfg: Any, config_path: str) -> list[str]:
    """For ``validate`` and ``run``: one warning line per store entry or bundle object the
    run will skip (file, id, reason). An intel file that cannot be read at all is a config
    error (``ConfigError``, exit 2) naming the config file and key."""
    from pipelines.config import ConfigError

    if not intel_enabled(cfg):
        return []
    try:
        store = load_for_config(cfg)
    except FeedError as exc:
        raise ConfigError([f"{config_path}: {exc}"]) from None
    return [f"{config_path}: {s.key}: warning: {s.line()}" for s in store.skipped]


def intel_summary(cfg: Any) -> dict[str, Any]:
    """The run summary's ``intel`` part: indicators in use and every entry skipped, why."""
    if not intel_enabled(cfg):
        return {"indicators": 0, "skipped": []}
    try:
        store = load_for_config(cfg)
    except FeedError as exc:
        return {"indicators": 0, "skipped": [], "error": str(exc)}
    return {"indicators": len(store.indicators),
            "skipped": [{"key": s.key, "file": s.file, "id": s.id, "reason": s.reason} for s in store.skipped]}
