"""What a config must pass before a run: one implementation for ``validate`` and ``run``.

``validate`` promises that ``run`` will not stop on the config, so both call ``check``:
the config file itself (pipelines/config.py), then what it points at: source files that
may be read (pipelines/source_paths.py), the export secret, the intel bundle files a
detection names, and each detection's own ``prepare`` (register maps, the intel store and
its indicators). Every problem is collected, one line each, starting with the file name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pipelines.config import Config, ConfigError, ResolvedSource, check_file, resolve_sources


@dataclass(frozen=True)
class Checked:
    cfg: Config
    sources: list[ResolvedSource]
    # Enabled sources whose paths matched no file (a run warns about them).
    empty_sources: list[str] = field(default_factory=list)


def _prefixed(path: str, lines: list[str]) -> list[str]:
    return [line if line.startswith(f"{path}: ") else f"{path}: {line}" for line in lines]


def _bundle_errors(cfg: Config, path: str) -> list[str]:
    """STIX bundle files named in detection parameters (``threat_intel_match.bundles``)."""
    from detections.registry import load_registry

    errors = []
    for det_id, det in load_registry().items():
        if "bundles" not in det.meta.params:
            continue
        settings = cfg.detections.get(det_id)
        if settings is not None and not settings.enabled:
            continue
        bundles = settings.params.get("bundles", det.meta.params["bundles"]) if settings else det.meta.params["bundles"]
        for i, b in enumerate(bundles or []):
            full = b if os.path.isabs(b) else os.path.join(cfg.base_dir, b)
            if not os.path.isfile(full) or not os.access(full, os.R_OK):
                errors.append(f"{path}: detections.{det_id}.params.bundles[{i}]: expected a readable STIX "
                              f"bundle file, got {b!r} (no such file)")
    return errors


def _prepare_errors(cfg: Config, path: str, skip: set[str]) -> list[str]:
    """Each enabled detection's ``prepare`` (what the run does first: indexing a register
    map, loading the intel store and bundles) so its complaint is a config error here, not
    a failed run later. One line per detection."""
    from detections.api import DetectionContext, Inventory
    from detections.registry import load_registry
    from pipelines.config import DetectionSettings

    inventory = Inventory(cfg)
    errors = []
    for det_id, det in sorted(load_registry().items()):
        settings = cfg.detections.get(det_id, DetectionSettings())
        prepare = det.fn("prepare")
        if not settings.enabled or prepare is None or det_id in skip:
            continue
        ctx = DetectionContext(cfg, inventory, {**det.meta.params, **settings.params}, settings)
        try:
            prepare(ctx)
        except Exception as exc:  # whatever a plugin raises is reported, not a traceback
            msg = " ".join(str(exc).split()) or type(exc).__name__
            key = msg.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]  # a message naming its own config key
            where = "" if key in Config.model_fields else f"detections.{det_id}: "
            errors.append(f"{path}: {where}{msg}")
    return errors


def check(config_path: str, allow_roots: tuple[str, ...] | list[str] = (), empty_is_error: bool = False) -> Checked:
    """Load and check a config and what it names; raise ``ConfigError`` with every problem
    (``empty_is_error``: a source whose paths match no file is one, as ``validate`` says)."""
    from stix_export.redact import load_secret

    path = str(config_path)
    checked = check_file(path, allow_roots)
    cfg, errors, invalid = checked.cfg, list(checked.errors), checked.invalid
    if cfg is None:
        raise ConfigError(errors)
    sources: list[ResolvedSource] = []
    if not invalid & {"sources", "allowed_roots"}:
        try:
            sources = resolve_sources(cfg)
        except ConfigError as exc:
            errors += exc.errors
        if empty_is_error:
            errors += [f"{path}: sources.{s.name}.paths: expected paths that match files (relative to "
                       f"{cfg.base_dir}), got none" for s in sources if not s.files]
    if "export" not in invalid:
        try:
            load_secret(cfg)  # its value is never printed, only where it was looked for
        except ConfigError as exc:
            errors += _prefixed(path, exc.errors)
    if "detections" not in invalid:
        bundle_errors = _bundle_errors(cfg, path)
        failed = {e.removeprefix(f"{path}: detections.").split(".", 1)[0] for e in errors + bundle_errors
                  if e.startswith(f"{path}: detections.")}
        errors += bundle_errors
        if not invalid & {"inventory", "vendors", "maintenance_windows", "intel", "geo"}:
            errors += _prepare_errors(cfg, path, failed)
    if errors:
        raise ConfigError(list(dict.fromkeys(errors)))  # a path refused twice is one line
    return Checked(cfg, sources, [s.name for s in sources if not s.files])
