"""Config checks that span keys or read the file system, beside the schema in
pipelines/config.py: references between sections, parsers and detections known, vendor
networks not broader than the configured prefix length, geo paths the config may read,
detection parameters of their declared type."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from typing import TYPE_CHECKING, Any

from detections.registry import load_registry  # the plugin API below imports only the site model
from pipelines import config, source_paths

if TYPE_CHECKING:
    from pipelines.config import Config


def cross_check(cfg: Config, path: str) -> list[str]:
    """Checks that span keys: references to assets/vendors, parsers and detections known."""
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
        if s.format in config.MAPPED_FORMATS and s.mapping is None:
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
        if source_paths.pattern_problem(f, cfg.base_dir, cfg.read_roots()) or (
                os.path.exists(full) and source_paths.file_problem(full, cfg.base_dir, cfg.read_roots())):
            continue  # refused unread (path_errors says why): its lines could be anything
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
    if any(d.startswith("sigma:") for d in cfg.detections):  # settings of the config's Sigma rules
        from detections.sigma_engine.engine import sigma_registry

        registry = {**registry, **sigma_registry(cfg)}
    for det_id, settings in cfg.detections.items():
        det = registry.get(det_id)
        if det is None:
            errors.append(
                f"{path}: detections.{det_id}: expected a known detection id ({', '.join(sorted(registry))}), got {det_id!r}"
            )
            continue
        for p, value in settings.params.items():
            if p not in det.meta.params:
                allowed = ", ".join(sorted(det.meta.params)) or "none"
                errors.append(f"{path}: detections.{det_id}.params.{p}: unknown parameter; expected one of: {allowed}")
                continue
            problem = param_problem(p, det.meta.params[p], value)
            if problem:
                errors.append(f"{path}: detections.{det_id}.params.{p}: {problem}, got {value!r}")
        for i, addr in enumerate(settings.allowlist.get("addresses", [])):
            try:
                config._check_address(addr)
            except ValueError as exc:
                errors.append(f"{path}: detections.{det_id}.allowlist.addresses[{i}]: {exc}, got {addr!r}")
        for i, a in enumerate(settings.allowlist.get("assets", [])):
            if a not in asset_ids:
                errors.append(f"{path}: detections.{det_id}.allowlist.assets[{i}]: expected an inventory asset id, got {a!r}")
    errors += vendor_network_errors(cfg, path)
    errors += path_errors(cfg, path)
    return errors


def vendor_network_errors(cfg: Config, path: str) -> list[str]:
    limits = cfg.vendor_network_min_prefix
    errors = []
    for i, v in enumerate(cfg.vendors):
        for which in ("allowed_networks", "tunnel_networks"):
            for j, n in enumerate(getattr(v, which)):
                net = ipaddress.ip_network(n)
                least = limits.ipv4 if net.version == 4 else limits.ipv6
                if net.prefixlen < least:
                    errors.append(f"{path}: vendors[{i}].{which}[{j}]: expected a network of /{least} or narrower "
                                  f"(vendor_network_min_prefix.ipv{net.version}), got {n!r}")
    return errors


def path_errors(cfg: Config, path: str) -> list[str]:
    """Geo files inside the config's folder or ``allowed_roots`` (the loader reads them);
    source paths are judged where they are listed (``resolve_sources``), so commands that
    read no source (``share``) need no ``--allow-root``."""
    errors = []
    for i, r in enumerate(cfg.allowed_roots):
        full = r if os.path.isabs(r) else os.path.join(cfg.base_dir, r)
        if not os.path.isdir(full):
            errors.append(f"{path}: allowed_roots[{i}]: expected an existing folder, got {r!r}")
    roots = cfg.read_roots()
    for i, f in enumerate(cfg.geo.files):
        full = f if os.path.isabs(f) else os.path.join(cfg.base_dir, f)
        problem = source_paths.pattern_problem(f, cfg.base_dir, roots) or (
            source_paths.file_problem(full, cfg.base_dir, roots) if os.path.exists(full) else None)
        if problem:
            errors.append(f"{path}: geo.files[{i}]: {problem}, got {f!r}")
    return errors


#: List parameters whose items have a known type, by the parameter's name.
_ITEM_CHECKS: tuple[tuple[str, Any], ...] = (
    ("networks", config._check_network),
    ("addresses", config._check_address),
)


def param_problem(name: str, default: Any, value: Any) -> str | None:
    """Is a configured detection parameter of the type its default (the detection's YAML)
    has? A string where a list is expected would otherwise be read letter by letter
    (``asset_kinds: "crane_plc"`` watched assets of kind "c", "r", ...)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected a whole number"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected a number"
    if isinstance(default, str):
        m = config._DURATION.match(default)
        if m and m.group(2):  # the default is a duration such as 1h: so is the value
            try:
                config._positive_duration(value)
            except ValueError as exc:
                return str(exc)
            return None
        return None if isinstance(value, str) else "expected a string"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "expected a mapping"
    if not isinstance(default, list):
        return None
    if not isinstance(value, list):
        return "expected a list such as [a, b] (a single value needs brackets too)"
    if name.endswith("kinds") and default and all(d in config.ASSET_KINDS for d in default):
        bad = [v for v in value if v not in config.ASSET_KINDS]
        return f"expected a list of asset kinds ({', '.join(config.ASSET_KINDS)})" if bad else None
    if name.endswith("ports"):
        ok = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535 for v in value)
        return None if ok else "expected a list of port numbers 0-65535"
    for suffix, check in _ITEM_CHECKS:
        if name.endswith(suffix):
            for v in value:
                try:
                    check(v)
                except ValueError as exc:
                    return f"{exc} in each item"
            return None
    if default and all(isinstance(d, str) for d in default) and not all(isinstance(v, str) for v in value):
        return "expected a list of strings"
    if default and all(isinstance(d, int) and not isinstance(d, bool) for d in default) and not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "expected a list of whole numbers"
    return None
