"""Sharing profiles and redaction, with the real validator and stix2: what leaves the port.

The incident is the one of test_stix_export (vendor VPN login, Modbus writes to the STS-03
PLC from the tunnel address, PLC egress to an internet address). Its id and titles name the
crane and the asset on purpose, so the text rewrite has something to find.
"""
from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import stix2

from pipelines.config import Config, ConfigError, parse_config
from stix_export import tlp
from stix_export.bundle import incident_bundle
from stix_export.redact import RedactionError, SecretError, Redactor, load_secret, strings, value_pattern
from stix_export.report import grouping_of, run_report_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import profile_dir_name, write_bundle, write_json
from tests.test_stix_export import (
    EGRESS_PEER, EXTERNAL_VPN_PEER, PLC, TUNNEL, by_type, make_config, make_incident,
)

SECRET = b"test-secret-0123456789abcdef"
ISAC = {
    "name": "isac",
    "tlp": "amber",
    "redaction": {"internal_addresses": "pseudonym", "accounts": "hash", "assets": "asset_kind", "evidence_paths": "drop"},
}
ZONE = {**ISAC, "name": "isac-zone", "redaction": {**ISAC["redaction"], "internal_addresses": "zone"}}


def profiles_config(*profiles: dict[str, Any], **export: Any) -> Config:
    base = make_config().model_dump(exclude={"base_dir"}, by_alias=True)
    base["export"] = {"tlp": "amber", "profiles": [{"name": "internal", "tlp": "red"}, *profiles], **export}
    return Config.model_validate(base)


def profile(cfg: Config, name: str):
    return next(p for p in cfg.export.effective_profiles() if p.name == name)


def redacted_values(cfg: Config) -> list[str]:
    """Everything the ISAC profile must not show: internal addresses, accounts, asset and crane ids."""
    inc = make_incident()
    values = {PLC, TUNNEL, "10.212.0.1", "zpmc-svc1", "sts-03-plc", "vpn-gw", "STS-03"}
    nets = [ipaddress.ip_network(n) for n in cfg.inventory.internal_networks]
    internal = lambda a: any(ipaddress.ip_address(a) in n for n in nets)  # noqa: E731
    values.update(a for a in inc.addresses if internal(a))
    values.update(a for asset in cfg.inventory.assets for a in asset.addresses if internal(a))
    values.update(f.raw_ref for f in (ev for f in inc.findings for ev in f.evidence))
    return sorted(values)


def leaks(bundle: dict[str, Any], values: list[str]) -> list[tuple[str, str]]:
    found = []
    for text in strings(bundle):
        for v in values:
            if re.search(value_pattern(v), text):
                found.append((v, text[:120]))
    return found


@pytest.fixture(scope="module")
def cfg() -> Config:
    return profiles_config(ISAC, ZONE)


@pytest.fixture(scope="module")
def isac(cfg: Config) -> dict[str, Any]:
    return incident_bundle(make_incident(), cfg, profile(cfg, "isac"), SECRET)


def test_default_is_one_internal_profile_at_the_configured_tlp() -> None:
    cfg = make_config("green")
    [p] = cfg.export.effective_profiles()
    assert (p.name, p.tlp, p.redaction.redacts, p.redaction.needs_secret) == ("internal", "green", False, False)
    assert load_secret(cfg) is None
    assert incident_bundle(make_incident(), cfg) == incident_bundle(make_incident(), cfg, p)


def test_no_redacted_value_appears_anywhere_in_the_isac_bundle(cfg: Config, isac: dict[str, Any], tmp_path: Path) -> None:
    values = redacted_values(cfg)
    assert leaks(isac, values) == []
    # ...while the internal profile has them all (the scan does find things).
    internal = incident_bundle(make_incident(), cfg, profile(cfg, "internal"), SECRET)
    assert {v for v, _ in leaks(internal, values)} >= {PLC, TUNNEL, "zpmc-svc1", "sts-03-plc", "STS-03"}
    assert validate_bundle_file(write_bundle(isac, tmp_path, "stix-isac")) == []
    stix2.parse(isac, allow_custom=False)


def test_external_addresses_stay_and_internal_ones_are_pseudonyms(cfg: Config, isac: dict[str, Any]) -> None:
    values = {o["value"] for o in by_type(isac, "ipv4-addr")}
    assert {EXTERNAL_VPN_PEER, EGRESS_PEER} <= values
    pseudonyms = values - {EXTERNAL_VPN_PEER, EGRESS_PEER}
    assert pseudonyms and all(ipaddress.ip_address(v) in ipaddress.ip_network("240.0.0.0/4") for v in pseudonyms)
    assert sorted(i["pattern"] for i in by_type(isac, "indicator")) == [
        f"[ipv4-addr:value = '{EGRESS_PEER}']", f"[ipv4-addr:value = '{EXTERNAL_VPN_PEER}']"
    ]
    red = Redactor(profile(cfg, "isac"), cfg, SECRET)
    flows = by_type(isac, "network-traffic")
    objs = {o["id"]: o for o in isac["objects"]}
    modbus = [f for f in flows if f["dst_port"] == 502]
    assert objs[modbus[0]["dst_ref"]]["value"] == red.pseudonym(PLC)
    assert PLC not in json.dumps(isac)
    # Texts name an internal address the way its observable does.
    assert red.rewriter(make_incident()).text(f"writes from {TUNNEL} to {PLC}.") == (
        f"writes from {red.pseudonym(TUNNEL)} to {red.pseudonym(PLC)}."
    )


def test_accounts_hashed_assets_generalized_evidence_paths_dropped(isac: dict[str, Any]) -> None:
    [acct] = by_type(isac, "user-account")
    assert re.fullmatch(r"acct-[0-9a-f]{16}", acct["account_login"])
    [infra] = by_type(isac, "infrastructure")
    ext = next(iter(infra["extensions"].values()))
    assert ext["asset_id"] == "crane_plc" and ext["asset_kind"] == "crane_plc" and "crane" not in ext
    assert ext["zone"] == "crane-ot" and ext["terminal"] == "T2"
    for obs in by_type(isac, "observed-data"):
        for ref in obs.get("external_references", []):
            assert ref["description"] == "log record (location withheld)" and "hashes" not in ref
            assert re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", ref["external_id"])
    [inc] = by_type(isac, "incident")
    assert "[crane_plc]" in inc["external_references"][0]["external_id"]  # the test id names the asset
    assert "[crane]" in inc["name"]


def test_pseudonyms_are_stable_across_runs_and_depend_on_the_secret(cfg: Config, isac: dict[str, Any], tmp_path: Path) -> None:
    again = incident_bundle(make_incident(), profiles_config(ISAC, ZONE), profile(cfg, "isac"), SECRET)
    a = write_bundle(isac, tmp_path / "a", "stix-isac")
    b = write_bundle(again, tmp_path / "b", "stix-isac")
    assert a.read_bytes() == b.read_bytes()
    other = incident_bundle(make_incident(), cfg, profile(cfg, "isac"), b"another-secret-0123456789")
    logins = lambda x: [o["account_login"] for o in by_type(x, "user-account")]  # noqa: E731
    assert logins(other) != logins(isac)
    red = Redactor(profile(cfg, "isac"), cfg, SECRET)
    assert red.pseudonym(PLC) == Redactor(profile(cfg, "isac"), cfg, SECRET).pseudonym(PLC) != red.pseudonym(TUNNEL)
    assert ipaddress.ip_address(red.pseudonym("fd00:30::10")) in ipaddress.ip_network("fd00::/8")


def test_zone_mode_drops_internal_addresses(cfg: Config, tmp_path: Path) -> None:
    b = incident_bundle(make_incident(), cfg, profile(cfg, "isac-zone"), SECRET)
    assert leaks(b, redacted_values(cfg)) == []
    assert {o["value"] for o in by_type(b, "ipv4-addr")} == {EXTERNAL_VPN_PEER, EGRESS_PEER}
    # PLC -> internet flow keeps its external end only; tunnel -> PLC flows are gone.
    [flow] = by_type(b, "network-traffic")
    assert "src_ref" not in flow and flow["dst_port"] == 443
    zone = Redactor(profile(cfg, "isac-zone"), cfg, SECRET)
    # 10.30.1.100 is no inventoried host but lies inside internal_networks: hidden as well.
    assert zone.rewriter(make_incident()).text(f"{PLC} and {TUNNEL} and {PLC}0") == (
        "[zone crane-ot] and [internal] and [internal]"
    )
    assert validate_bundle_file(write_bundle(b, tmp_path, "stix-isac-zone")) == []


def test_profiles_have_their_own_ids_and_tlp(cfg: Config, isac: dict[str, Any]) -> None:
    internal = incident_bundle(make_incident(), cfg, profile(cfg, "internal"), SECRET)
    assert by_type(internal, "marking-definition") == [tlp.tlp_marking("red")]
    assert by_type(isac, "marking-definition") == [tlp.tlp_marking("amber")]
    scoped = {o["type"] for o in isac["objects"] if "created" in o}
    shared = {"identity", "attack-pattern", "extension-definition"}
    ids_internal = {o["id"] for o in internal["objects"]}
    for o in isac["objects"]:
        if o["type"] in scoped - shared:
            assert o["id"] not in ids_internal, o["type"]
    assert internal["id"] != isac["id"]
    # The first profile keeps the ids a single-profile config gives.
    assert internal["objects"][-1]["id"] == incident_bundle(make_incident(), make_config("red"))["objects"][-1]["id"]
    assert profile_dir_name("internal", "internal") == "stix" and profile_dir_name("isac", "internal") == "stix-isac"


def test_a_missing_or_short_secret_is_a_config_error_that_never_shows_the_value(tmp_path: Path, monkeypatch) -> None:
    cfg = profiles_config(ISAC, secret_env="CW_TEST_SECRET")
    monkeypatch.delenv("CW_TEST_SECRET", raising=False)
    with pytest.raises(SecretError, match="CW_TEST_SECRET"):
        load_secret(cfg)
    monkeypatch.setenv("CW_TEST_SECRET", "short-value")
    with pytest.raises(ConfigError) as exc:
        load_secret(cfg)
    assert "short-value" not in str(exc.value)
    monkeypatch.setenv("CW_TEST_SECRET", SECRET.decode())
    assert load_secret(cfg) == SECRET
    (tmp_path / "secret").write_text(SECRET.decode() + "\n")
    from_file = Config.model_validate({**cfg.model_dump(by_alias=True), "base_dir": str(tmp_path),
                                       "export": {**cfg.export.model_dump(), "secret_file": "secret"}})
    monkeypatch.delenv("CW_TEST_SECRET")
    assert load_secret(from_file) == SECRET
    with pytest.raises(SecretError):
        incident_bundle(make_incident(), cfg, profile(cfg, "isac"), None)


def test_profile_config_is_strict() -> None:
    data = json.loads(json.dumps(profiles_config(ISAC).model_dump(exclude={"base_dir"}, by_alias=True)))
    data["export"]["profiles"][1]["redaction"]["accounts"] = "drop"
    data["export"]["profiles"].append({"name": "isac", "tlp": "green"})
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "p.yaml")
    text = str(exc.value)
    assert "export.profiles[1].redaction.accounts" in text
    data["export"]["profiles"][1]["redaction"]["accounts"] = "hash"
    with pytest.raises(ConfigError, match=r"export.profiles\[2\].name: expected a unique profile name"):
        parse_config(data, "p.yaml")


def test_the_guard_refuses_a_leaking_bundle(cfg: Config, monkeypatch) -> None:
    """If a future change lets a value through, the bundle is refused rather than shared."""
    monkeypatch.setattr(Redactor, "account", lambda self, login: login)
    with pytest.raises(RedactionError, match="bundle not written, 1 account") as exc:
        incident_bundle(make_incident(), cfg, profile(cfg, "isac"), SECRET)
    assert "zpmc-svc1" not in str(exc.value)  # the message says what kind, never the value
    assert (exc.value.profile, exc.value.kinds, exc.value.where) == ("isac", {"account": 1}, ["user-account"])


def test_run_report_bundle_references_every_grouping(cfg: Config, tmp_path: Path) -> None:
    incidents = [make_incident(), make_incident(incident_id="inc-2", modified="2026-11-20T04:00:00Z")]
    for name in ("internal", "isac"):
        prof = profile(cfg, name)
        bundles = [incident_bundle(i, cfg, prof, SECRET) for i in incidents]
        report_bundle = run_report_bundle(cfg, prof, [grouping_of(b) for b in bundles])
        path = write_json(report_bundle, tmp_path / f"{name}.json")
        assert validate_bundle_file(path) == []
        [report] = by_type(report_bundle, "report")
        assert report["object_refs"] == sorted(grouping_of(b)[0] for b in bundles)
        assert report["published"] == "2026-11-20T04:00:00.000Z"
        assert by_type(report_bundle, "identity") == by_type(bundles[0], "identity")
        again = run_report_bundle(cfg, prof, reversed([grouping_of(b) for b in bundles]))
        assert again == report_bundle
    assert leaks(json.loads((tmp_path / "isac.json").read_text()), redacted_values(cfg)) == []
    assert run_report_bundle(cfg, profile(cfg, "isac"), []) is None
