"""Check a written bundle the way a strict receiver would, with the real tools.

Two independent checks, because they catch different things: the OASIS validator
(``stix2-validator``, strict mode, so every SHOULD is an error, with ``enforce_refs`` so
relationships must point inside the bundle) checks the JSON against the specification's
schemas and rules; ``stix2.parse(allow_custom=False)`` is what most Python consumers run on
import and rejects anything custom that is not declared through an extension.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import stix2
from stix2validator import ValidationOptions, validate_file


def validation_options() -> ValidationOptions:
    """Strict STIX 2.1 validation with relationship references enforced."""
    return ValidationOptions(version="2.1", strict=True, enforce_refs=True)


def validate_bundle_file(path: str | os.PathLike[str]) -> list[str]:
    """Every error and warning for the bundle at ``path``; an empty list means it passed.

    Messages are prefixed ``validator error:``, ``validator warning:`` or ``stix2.parse:``.
    """
    path = Path(path)
    problems: list[str] = []
    results = validate_file(str(path), validation_options())
    for obj in results.object_results:
        problems += [f"validator error: {e}" for e in obj.errors]
        problems += [f"validator warning: {w}" for w in obj.warnings]
    if results.fatal is not None:
        problems.append(f"validator error: {results.fatal.error}")
    if not results.is_valid and not problems:
        problems.append("validator error: bundle is not valid (no detail given)")
    try:
        with open(path, encoding="utf-8") as fh:
            stix2.parse(json.load(fh), allow_custom=False)
    except Exception as exc:  # stix2 raises many unrelated types; report any as a problem
        problems.append(f"stix2.parse: {type(exc).__name__}: {exc}")
    return problems
