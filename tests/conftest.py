"""Shared pytest fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Third-party sample logs in ``../shared/fixtures`` beside the clone (never copied in).

    Missing means a broken checkout or CI layout: fail loudly rather than skip.
    """
    path = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    if not path.is_dir():
        pytest.fail(f"shared fixtures not found at {path} (expected ../shared/fixtures beside the clone)")
    return path
