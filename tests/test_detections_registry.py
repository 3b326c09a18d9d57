"""Discovery (built-ins and the entry-point group) and load-time checks of detection YAML."""
from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from detections.registry import ENTRY_POINT_GROUP, DetectionError, load_meta, load_registry
from detections.testing import run_case

EXAMPLE = "example_cms_remote_command"


def test_example_plugin_is_found_through_the_entry_point_group(example_plugin) -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert EXAMPLE in names, "the example_plugin fixture did not make tests/example_plugin discoverable"
    det = load_registry()[EXAMPLE]
    assert det.module.__name__ == f"cranewatch_example_plugin.{EXAMPLE}"
    assert "tests/example_plugin" in Path(det.meta.path).as_posix()
    results = [len(run_case(det, case)) == case.expect for case in det.meta.tests]
    assert results and all(results)


def test_builtins_are_found_and_have_their_yaml() -> None:
    registry = load_registry()
    builtin = Path(__file__).resolve().parents[1] / "detections" / "builtin"
    assert {p.stem for p in builtin.glob("*.yml")} <= set(registry)
    stateful = {i for i, d in registry.items() if d.stateful is not None}
    assert {"vpn_failed_logins_then_success", "vpn_concurrent_sessions", "modbus_new_master", "ot_beaconing"} <= stateful


def _yml(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / f"{name}.yml"
    p.write_text(textwrap.dedent(body))
    return p


BASE = """\
    id: {id}
    title: t
    description: d
    severity: 50
    stage: command
    techniques: {techniques}
    kinds: [ot]
    where: {where}
    params: {{ports: [502]}}
"""


def test_unknown_technique_is_rejected_at_load(tmp_path: Path) -> None:
    p = _yml(tmp_path, "bad_tech", BASE.format(id="bad_tech", techniques="[T0886, T9999]", where="{kind: ot}"))
    with pytest.raises(DetectionError) as exc:
        load_meta(p)
    msg = str(exc.value)
    assert str(p) in msg and "techniques[1]" in msg and "T9999" in msg


def test_broken_yaml_names_the_file_and_the_place(tmp_path: Path) -> None:
    p = _yml(tmp_path, "broken", BASE.format(id="broken", techniques="[T0886", where="{kind: ot}"))
    with pytest.raises(DetectionError) as exc:
        load_meta(p)
    msg = str(exc.value)
    assert str(p) in msg and "expected valid YAML" in msg and "line 7" in msg


def test_builtin_yaml_reads_the_same_with_either_yaml_loader() -> None:
    import yaml

    from detections.registry import BUILTIN_DIR, _load_yaml

    for yml in sorted(BUILTIN_DIR.glob("*.yml")):
        text = yml.read_text(encoding="utf-8")
        assert _load_yaml(text) == yaml.safe_load(text), yml.name


def test_revoked_technique_is_accepted(tmp_path: Path) -> None:
    # T0855 is revoked in ATT&CK v19; it still resolves (to its replacement) at export.
    p = _yml(tmp_path, "old_tech", BASE.format(id="old_tech", techniques="[T0855]", where="{kind: ot}"))
    assert load_meta(p).techniques == ("T0855",)


def test_where_parameter_reference_must_be_declared(tmp_path: Path) -> None:
    p = _yml(tmp_path, "bad_ref", BASE.format(id="bad_ref", techniques="[T0886]",
                                                where="{dst_port: {in: $port_list}}"))
    with pytest.raises(DetectionError) as exc:
        load_meta(p)
    assert "where.dst_port.in" in str(exc.value) and "$port_list" in str(exc.value)
    ok = _yml(tmp_path, "good_ref", BASE.format(id="good_ref", techniques="[T0886]", where="{dst_port: {in: $ports}}"))
    assert load_meta(ok).where == {"dst_port": {"in": "$ports"}}


def test_detections_list_shows_every_detection_and_what_config_disabled(tmp_path: Path, capsys) -> None:
    import yaml

    from detections.testing import TEST_TERMINAL
    from pipelines.cli import main

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({**TEST_TERMINAL, "detections": {"ot_beaconing": {"enabled": False}}}))
    assert main(["detections", "list", "--config", str(cfg)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "enabled", "shape", "kinds", "techniques", "title"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    registry = load_registry()
    assert set(rows) == set(registry)
    for det_id, det in registry.items():
        assert rows[det_id][1] == ("no" if det_id == "ot_beaconing" else "yes")
        want = "row" if det.stateful is None else (
            f"stateful:{det.meta.pattern[0]}" if det.meta.pattern else "stateful")
        assert rows[det_id][2:5] == [want, ",".join(det.meta.kinds), ",".join(det.meta.techniques)]
        assert lines[1 + sorted(registry).index(det_id)].endswith(det.meta.title)


def test_detections_show_prints_description_parameters_and_cases(capsys) -> None:
    from pipelines.cli import main

    assert main(["detections", "show", "vpn_failed_logins_then_success"]) == 0
    out = capsys.readouterr().out
    det = load_registry()["vpn_failed_logins_then_success"]
    assert out.startswith(f"vpn_failed_logins_then_success: {det.meta.title}\n")
    assert "shape stateful" in out
    assert "  min_failures = 5  [count]\n      Failures (within the window before the success) that make it a finding." in out
    assert "  window = '15m'  [duration]" in out
    for case in det.meta.tests:
        assert f"  - {case.name}: {len(case.events)} event(s), expect {case.expect} finding(s)" in out
    assert main(["detections", "show", "ot_exfiltration_low_and_slow"]) == 0
    out = capsys.readouterr().out
    assert "shape stateful:threshold" in out and "  min_bytes = 5000000  [bytes]" in out
    assert main(["detections", "show", "nope"]) == 2


def test_project_venv_runs_exactly_the_builtin_detections_the_readme_counts() -> None:
    """``make test`` leaves the CLI's detections alone: no test plugin in the project's venv."""
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([str(Path(sys.executable).with_name("cranewatch")), "detections", "list"],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    listed = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    builtin = sorted(p.stem for p in (root / "detections" / "builtin").glob("*.yml"))
    assert sorted(listed) == builtin, "a detection package is installed in the project's venv (an older `make test` " \
        "installed tests/example_plugin: pip uninstall cranewatch-example-plugin)"
    stated = re.search(r"cranewatch ships (\d+) built-in detections", (root / "README.md").read_text(encoding="utf-8"))
    assert stated, "README lost its stated detection count"
    assert int(stated.group(1)) == len(listed)


def test_example_plugin_is_gone_after_its_fixture() -> None:
    assert EXAMPLE not in load_registry()
