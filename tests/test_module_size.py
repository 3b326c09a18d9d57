"""Modules stay small enough to read in one sitting (docs STYLE: modules under ~600 lines)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
PACKAGES = ("pipelines", "detections")


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_are_split_by_concern_below_the_size_limit(package: str) -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted((ROOT / package).rglob("*.py"))}
    assert sizes, f"no modules found under {package}/"
    too_long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these by concern (over {MAX_LINES} lines): {too_long}"
