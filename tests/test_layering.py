"""The detection plugin API stands below the CLI's config loader (no import circle)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(out.split())


def test_plugin_api_does_not_load_the_config_loader() -> None:
    loaded = _loaded_after("import detections.api")
    assert "detections.api" in loaded and "pipelines.config_site" in loaded
    assert "pipelines.config" not in loaded


def test_registry_and_declarative_detections_do_not_load_the_config_loader() -> None:
    loaded = _loaded_after("import detections.registry, detections.declarative; "
                           "detections.registry.load_registry()")
    assert "pipelines.config" not in loaded


def test_config_loader_re_exports_the_site_model_and_validates_with_the_registry() -> None:
    from detections import api
    from pipelines import config, config_site

    for name in ("Asset", "Inventory", "Vendor", "MaintenanceWindow", "DetectionSettings", "Duration", "_parse_duration"):
        assert getattr(config, name) is getattr(config_site, name)
    assert api.Asset is config.Asset and api.duration_seconds("2h") == 7200.0
    loaded = _loaded_after("import pipelines.config_checks")  # the loader's cross-key checks
    assert "detections.registry" in loaded
