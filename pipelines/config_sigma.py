"""The ``sigma:`` config section: Sigma rule files and folders run as detections.

Every rule that cannot be loaded (or uses something the engine does not support) is an
error of this section, one line per rule naming its file and the reason, so a run with a
broken rule stops with exit status 2 unless ``skip_invalid: true``; then the run leaves
those rules out and says so on stderr.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pydantic import Field, StrictBool

from pipelines.config_base import Strict

if TYPE_CHECKING:
    from pipelines.config import Config


class SigmaSettings(Strict):
    # Rule files or folders (every .yml/.yaml below), relative to the config file.
    rules: list[str] = Field(default_factory=list)
    # true: rules that fail to load are left out (listed on stderr) instead of failing the run.
    skip_invalid: StrictBool = False
    # pySigma processing pipeline files (YAML) applied after the shipped per-log-source
    # pipeline, e.g. to map a site's own field names.
    pipelines: list[str] = Field(default_factory=list)
    # The shipped per-log-source taxonomies to map with, by name (e.g. zeek/conn,
    # cranewatch/cms: the names in docs/detections.md's taxonomy table); empty: all. A rule whose
    # log source only an unselected taxonomy maps applies to no source.
    taxonomies: list[str] = Field(default_factory=list)


def sigma_errors(cfg: "Config", path: str) -> list[str]:
    """One line per rule that failed, as config errors (none with ``skip_invalid``)."""
    if not cfg.sigma.rules:
        return []
    from detections.sigma_engine.engine import sigma_set
    from detections.sigma_engine.pipelines import TAXONOMIES

    names = [t.name for t in TAXONOMIES]
    wrong = [n for n in cfg.sigma.taxonomies if n not in names]
    if wrong:
        return [f"{path}: sigma.taxonomies: expected shipped taxonomy names ({', '.join(names)}), got {wrong[0]!r}"]

    problems = sigma_set(cfg).errors
    if cfg.sigma.skip_invalid:
        return []
    return [f"{path}: sigma.rules: {file}: {reason}" for file, reason in problems]


def report_rules(cfg: "Config") -> None:
    """On stderr: with ``skip_invalid``, which rules were left out and why; and every tag
    naming a technique that is not mapped (not ATT&CK for ICS, or not in the pinned data)."""
    if not cfg.sigma.rules:
        return
    from detections.sigma_engine.engine import sigma_set

    s = sigma_set(cfg)
    if cfg.sigma.skip_invalid:
        for file, reason in s.errors:
            print(f"{cfg.config_path}: sigma.rules: skipped {file}: {reason}", file=sys.stderr)
    for file, rule in [(e.file, e.compiled) for e in s.entries] + [(c.file, c) for c in s.correlations]:
        for note in rule.notes:
            print(f"{cfg.config_path}: sigma.rules: note: {file}: {rule.title}: {note}", file=sys.stderr)
