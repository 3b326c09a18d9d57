"""Hostile configs: duplicate keys, alias bombs and plausible-looking wrong values are
refused with one line each (``FILE: KEY: expected ..., got ...``), never accepted quietly."""
from __future__ import annotations

import copy
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from detections.testing import TEST_TERMINAL
from pipelines.config import ConfigError, load_config


def _write(tmp_path: Path, data: Any) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def _errors(tmp_path: Path, data: Any) -> list[str]:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert all(line.startswith(f"{path}: ") and "\n" not in line for line in err.value.errors)
    return [line.removeprefix(f"{path}: ") for line in err.value.errors]


def test_duplicate_top_level_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    # The second export block would have replaced the redacted profiles with TLP:CLEAR.
    text = yaml.safe_dump(TEST_TERMINAL, sort_keys=False) + textwrap.dedent("""\
        export:
          tlp: amber
          profiles: [{name: isac, tlp: green, redaction: {internal_addresses: zone}}]
        export:
          tlp: clear
        """)
    errors = _errors(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].startswith("export: expected each key once, got 'export' again at line ")


def test_duplicate_nested_keys_are_named_by_their_path(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        site: {name: Port, name: Other}
        sources:
          - name: cms
            format: cms_events
            paths: [cms/*.jsonl]
            paths: [/etc/*]
        """)
    errors = _errors(tmp_path, text)
    assert errors == [
        "site.name: expected each key once, got 'name' again at line 1 (first at line 1)",
        "sources[0].paths: expected each key once, got 'paths' again at line 6 (first at line 5)",
    ]


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    text = yaml.safe_dump(data, sort_keys=False) + textwrap.dedent("""\
        correlation:
          <<: {gap: 10m, allowed_lateness: 1h}
          gap: 20m
        """)
    assert load_config(_write(tmp_path, text)).correlation.gap == 1200.0


_BOMB = "".join(
    f"{name}: &{name} [{', '.join([prev] * 9)}]\n"
    for name, prev in zip("abcdefghi", ['"lol"'] + [f"*{c}" for c in "abcdefgh"])
)


def _limit_memory() -> None:  # the unbounded expansion took 7.3 GB: keep a regression small
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_billion_laughs_is_refused_fast_in_bounded_memory(tmp_path: Path) -> None:
    # 9^9 = 387M strings once expanded, ~600 bytes of YAML; hidden under a real key.
    text = textwrap.dedent("""\
        site: {name: Port}
        sources: [{name: cms, format: cms_events, paths: [cms/*.jsonl]}]
        detections:
          remote_shared_account:
            params:
              shared_accounts: *i
        """)
    path = _write(tmp_path, "bombs:\n" + textwrap.indent(_BOMB, "  ") + text)
    code = ("import sys, time; from pipelines.config import ConfigError, load_config\n"
            "t = time.perf_counter()\n"
            "try: load_config(sys.argv[1])\n"
            "except ConfigError as e: print(*e.errors, sep='\\n')\n"
            "print(f'{time.perf_counter() - t:.3f}')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    *lines, seconds = proc.stdout.strip().splitlines()
    assert lines == [f"{path}: bombs: expected at most 100,000 values once YAML aliases are expanded, "
                     "got more (an alias bomb?)"]
    assert float(seconds) < 0.5


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "site: &a {name: x, again: *a}\n")
    assert errors == ["(yaml): expected aliases that do not contain themselves, got a recursive alias at line 1"]


@pytest.mark.parametrize("text", [
    "site:\n  name: a\nexport:\n  tlp: red\nsite:\n  name: b\n",  # duplicate key: the same lines
    "site: &a {name: x, again: *a}\n",  # recursive alias
    "site:\n  name: a\n   bad: [\n",  # syntax error: PyYAML's message and snippet
    "site: {[a, b]: c}\n",  # construction error (an unhashable key): PyYAML's snippet
])
def test_libyaml_and_pure_python_loaders_report_alike(text: str) -> None:
    from pipelines import strict_yaml

    def outcome(load: Any) -> str:
        try:
            return repr(load())
        except (strict_yaml.YamlError, yaml.YAMLError) as exc:
            return f"{type(exc).__name__}: {exc}"

    assert outcome(lambda: strict_yaml.load(text)) == outcome(lambda: strict_yaml._load(text, yaml.SafeLoader))


def test_small_aliases_still_work(tmp_path: Path) -> None:
    data = yaml.safe_dump(TEST_TERMINAL, sort_keys=False).replace(
        "inventory:", "kinds: &k [crane_plc, cms]\ninventory:", 1)
    text = data.replace("kinds: &k [crane_plc, cms]\n", "") + (
        "detections:\n  ot_unexpected_egress:\n    params:\n      asset_kinds: &k [crane_plc, cms]\n"
        "  ot_beaconing:\n    params:\n      asset_kinds: *k\n")
    cfg = load_config(_write(tmp_path, text))
    assert cfg.detections["ot_beaconing"].params["asset_kinds"] == ["crane_plc", "cms"]


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(TEST_TERMINAL)
    for dotted, value in changes.items():
        node: Any = data
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
        node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return data


MAPPED = {"name": "badges", "format": "csv_mapped", "paths": ["badges.csv"],
          "mapping": {"kind": "auth", "fields": {"when": "time", "who": "user"}}}


@pytest.mark.parametrize("data, expected", [
    (_with(maintenance_windows__0__from="25:99"),
     "maintenance_windows[0].from: expected a time of day \"HH:MM\" from \"00:00\" to \"23:59\", got '25:99'"),
    (_with(inventory__assets__0__addresses=["10.0.0.256"]),
     "inventory.assets[0].addresses[0]: expected an IP address such as 10.20.1.10, got '10.0.0.256'"),
    (_with(detections={"crane_unknown_device": {"params": {"networks": ["10.0.0.256/32"]}}}),
     "detections.crane_unknown_device.params.networks: expected an IPv4/IPv6 address or CIDR network such as "
     "10.20.0.0/16 in each item, got ['10.0.0.256/32']"),
    (_with(detections={"ot_beaconing": {"allowlist": {"addresses": ["10.0.0.256"]}}}),
     "detections.ot_beaconing.allowlist.addresses[0]: expected an IP address such as 10.20.1.10, got '10.0.0.256'"),
    (_with(inventory__internal_networks=["10.1.2.3/8"]),
     "inventory.internal_networks[0]: expected a network without host bits such as 10.0.0.0/8 "
     "(or an address without /prefix), got '10.1.2.3/8'"),
    (_with(export={"min_severity": True}), "export.min_severity: expected a valid integer, got True"),
    (_with(detections={"ot_beaconing": {"severity": "80"}}),
     "detections.ot_beaconing.severity: expected a valid integer, got '80'"),
    (_with(correlation={"gap": "0s"}),
     "correlation.gap: expected a positive duration such as 30m, 2h or a number of seconds, got '0s'"),
    (_with(detections={"ot_beaconing": {"params": {"idle": 0}}}),
     "detections.ot_beaconing.params.idle: expected a positive duration such as 30m, 2h or a number of seconds, got 0"),
    (_with(vendors__0__allowed_networks=["0.0.0.0/0"]),
     "vendors[0].allowed_networks[0]: expected a network of /16 or narrower (vendor_network_min_prefix.ipv4), "
     "got '0.0.0.0/0'"),
    (_with(vendors__0__tunnel_networks=["::/0"]),
     "vendors[0].tunnel_networks[0]: expected a network of /32 or narrower (vendor_network_min_prefix.ipv6), got '::/0'"),
    (_with(detections={"ot_unexpected_egress": {"params": {"asset_kinds": "crane_plc"}}}),
     "detections.ot_unexpected_egress.params.asset_kinds: expected a list such as [a, b] (a single value needs "
     "brackets too), got 'crane_plc'"),
    (_with(detections={"ot_unexpected_egress": {"params": {"asset_kinds": ["crane-plc"]}}}),
     "detections.ot_unexpected_egress.params.asset_kinds: expected a list of asset kinds (crane_plc, cms, "
     "jump_host, engineering_workstation, hmi, vpn_gateway, server, other), got ['crane-plc']"),
    (_with(detections={"ot_inbound_external": {"params": {"ports": [502, "102"]}}}),
     "detections.ot_inbound_external.params.ports: expected a list of port numbers 0-65535, got [502, '102']"),
    (_with(detections={"crane_unknown_device": {"params": {"prefix": "24"}}}),
     "detections.crane_unknown_device.params.prefix: expected a whole number, got '24'"),
    (_with(sources=[{**MAPPED, "mapping": {**MAPPED["mapping"], "delimiter": "\n"}}]),
     "sources[0].mapping.delimiter: expected one printable character such as , ; | or a tab (not a newline "
     "or quote), got '\\n'"),
    (_with(sources=[{**MAPPED, "mapping": {**MAPPED["mapping"], "time_format": "%d/%m/%Y %Q"}}]),
     "sources[0].mapping.time_format: expected a strptime format with % directives such as %Y-%m-%d %H:%M:%S, "
     "got '%d/%m/%Y %Q'"),
    (_with(sources=[{**MAPPED, "mapping": {**MAPPED["mapping"], "time_format": "dd/mm/yyyy"}}]),
     "sources[0].mapping.time_format: expected a strptime format with % directives such as %Y-%m-%d %H:%M:%S, "
     "got 'dd/mm/yyyy'"),
], ids=["window-25:99", "address", "param-network", "allowlist-address", "cidr-host-bits", "min_severity-bool",
        "severity-string", "gap-0s", "param-duration-0", "vendor-0/0", "vendor-tunnel-::/0", "list-as-string",
        "unknown-asset-kind", "port-string", "int-string", "delimiter-newline", "time_format-bad-directive",
        "time_format-no-directive"])
def test_wrong_value_is_one_line_naming_key_and_expectation(tmp_path: Path, data: dict, expected: str) -> None:
    assert _errors(tmp_path, data) == [expected]


def test_vendor_network_minimum_prefix_is_configurable(tmp_path: Path) -> None:
    data = _with(vendors__0__allowed_networks=["100.64.0.0/10"])
    assert _errors(tmp_path, data)[0].startswith("vendors[0].allowed_networks[0]: expected a network of /16")
    data["vendor_network_min_prefix"] = {"ipv4": 10}
    assert load_config(_write(tmp_path, data)).vendors[0].allowed_networks == ["100.64.0.0/10"]


def test_values_that_look_right_are_accepted(tmp_path: Path) -> None:
    data = _with(sources=[{**MAPPED, "mapping": {**MAPPED["mapping"], "delimiter": "\t",
                                                 "time_format": "%d/%m/%Y %H:%M:%S"}}],
                 inventory__assets__0__allowed_egress=["10.30.0.0/16", "10.40.0.5"],
                 detections={"ot_unexpected_egress": {"params": {"asset_kinds": ["crane_plc"]}},
                             "ot_beaconing": {"params": {"idle": "30m", "max_jitter": 1}, "severity": 80},
                             "crane_unknown_device": {"params": {"networks": ["10.30.0.0/16"], "prefix": 16}}})
    cfg = load_config(_write(tmp_path, data))
    assert cfg.inventory.assets[0].allowed_egress == ["10.30.0.0/16", "10.40.0.5/32"]
    assert cfg.sources[0].mapping is not None and cfg.sources[0].mapping.delimiter == "\t"


def test_cli_exits_2_without_traceback_on_each_hostile_config(tmp_path: Path) -> None:
    text = yaml.safe_dump(_with(maintenance_windows__0__from="25:99"), sort_keys=False) + "site: {name: again}\n"
    path = _write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith(str(path))] == [
        f"{path}: site: expected each key once, got 'site' again at line "
        f"{text.count(chr(10))} (first at line 1)"]


_SWAPS: list[Any] = [None, True, 0, -1, 10**30, 1.5, float("nan"), "", "x", [], [1], {}, {"a": 1}, "10.0.0.256",
                     "25:99", "Mars/Olympus", "0.0.0.0/0", [[[]]], {"x": {"y": []}}]


def _leaves(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out += _leaves(v, prefix + (k,))
    return out


def test_mutated_configs_give_one_line_errors_or_a_config_that_works(tmp_path: Path) -> None:
    """Seeded type and value swaps anywhere in a full config: every outcome is either
    one-line errors naming the file or a config whose windows and inventory evaluate."""
    import datetime as dt
    import random

    from detections.api import Inventory
    from pipelines.config import check_config

    base = _with(detections={"ot_beaconing": {"params": {"idle": "1h", "asset_kinds": ["cms"]},
                                              "allowlist": {"addresses": ["10.0.0.1"]}}},
                 sources=[*TEST_TERMINAL["sources"], {**MAPPED, "mapping": {**MAPPED["mapping"], "time_format": "%Y"}}])
    base["maintenance_windows"].append({"vendor": "zpmc", "days": ["sat"], "from": "22:00", "to": "02:00",
                                        "timezone": "Europe/Amsterdam"})
    leaves = _leaves(base)
    rng = random.Random(10)
    when = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.timezone.utc)
    outcomes = {"errors": 0, "loaded": 0}
    for _ in range(300):
        data = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(leaves)
            node = data
            try:
                for k in parents:
                    node = node[k]
                node[last] = copy.deepcopy(rng.choice(_SWAPS))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier swap replaced a parent
        checked = check_config(data, "mutated.yaml", str(tmp_path))
        assert all(e.startswith("mutated.yaml: ") and "\n" not in e for e in checked.errors), checked.errors
        if checked.errors:
            outcomes["errors"] += 1
            continue
        assert checked.cfg is not None
        inv = Inventory(checked.cfg)
        for v in checked.cfg.vendors:
            inv.in_maintenance(v.name, None, when)
            inv.vendor_networks(v.name)
        outcomes["loaded"] += 1
    assert outcomes["errors"] > 200 and outcomes["loaded"] > 3, outcomes  # both kinds were tried


def test_config_that_is_a_fifo_or_a_device_is_refused_without_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.yaml")  # opening it to read would block until a writer came
    for path in (tmp_path / "config.yaml", Path("/dev/zero")):
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert err.value.errors == [f"{path}: (file): expected a regular config file of at most 16 MiB, "
                                    "got a special file"]
