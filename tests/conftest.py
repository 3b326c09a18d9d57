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


EXAMPLE_PLUGIN = Path(__file__).resolve().parent / "example_plugin"


@pytest.fixture
def example_plugin(tmp_path_factory: pytest.TempPathFactory):
    """tests/example_plugin, discoverable through its entry points inside this test process only.

    The plugin is never pip-installed into the project's venv (``make demo`` and the CLI
    run exactly the built-in detections). Here its folder goes on ``sys.path`` beside a
    dist-info written from its pyproject.toml, which is all ``importlib.metadata`` reads to
    find entry points; both are removed and the registries reloaded afterwards.
    """
    import importlib
    import sys
    import tomllib

    from detections.registry import load_registry
    from pipelines.mandated.registry import load_regimes

    project = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = tmp_path_factory.mktemp("example-plugin-site")
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8")
    groups = project["entry-points"]
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items()) + "\n"
        for group, eps in groups.items()), encoding="utf-8")
    added = [str(EXAMPLE_PLUGIN), str(site)]

    def reload() -> None:
        importlib.invalidate_caches()
        load_registry.cache_clear()
        load_regimes.cache_clear()

    sys.path[:0] = added
    reload()
    try:
        yield groups
    finally:
        for entry in added:
            sys.path.remove(entry)
        for name in [m for m in sys.modules if m.split(".")[0] == "cranewatch_example_plugin"]:
            del sys.modules[name]
        reload()
