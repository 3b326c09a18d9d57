"""Config checks that span keys or read the file system, beside the schema in
pipelines/config.py: vendor networks not broader than the configured prefix length, source
and geo paths the config may read, detection parameters of their declared type."""
from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any

from pipelines import config, source_paths

if TYPE_CHECKING:
    from pipelines.config import Config


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
