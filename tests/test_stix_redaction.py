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
    # the port's incident id is a plain hash of guessable parts: shared as a keyed reference
    assert re.fullmatch(r"cwi-[0-9a-f]{32}", inc["external_references"][0]["external_id"])
    assert make_incident().incident_id not in json.dumps(isac)
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
    shared = {"identity", "attack-pattern", "extension-definition", "course-of-action"}
    ids_internal = {o["id"] for o in internal["objects"]}
    for o in isac["objects"]:
        if o["type"] in scoped - shared and o.get("relationship_type") != "mitigates":
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


# -- addresses in free text and in every notation ---------------------------------------------

MAPPED, MAPPED_HEX = "::ffff:10.30.5.21", "::ffff:a1e:515"
SPELLINGS = (MAPPED, MAPPED_HEX, "0:0:0:0:0:FFFF:0A1E:0515", "[::ffff:10.30.1.10]:502", "010.030.001.010",
             "fd12:3456:0:0:0:0:0:1", "FD12:3456::1")


def _notations_incident():
    """A CMS change whose new value names a host no inventory lists, and a Modbus write from
    an IPv4-mapped IPv6 address, titled with every spelling of internal hosts."""
    from transforms.model import Finding

    from tests.test_stix_export import _evidence

    cms = Finding(
        finding_id="f-cms-1", detection_id="cms_safety_parameter_change",
        title="parameter_change on sts-03-plc set host 10.30.1.99 → host 10.66.9.9 by zpmc-svc1",
        severity=80, confidence=80, stage="impair", techniques=("T0836",),
        first_seen="2026-11-20T02:18:00Z", last_seen="2026-11-20T02:18:00Z", asset_id="sts-03-plc",
        zone="crane-ot", addresses=(PLC,), accounts=("zpmc-svc1",), link_keys=("asset:sts-03-plc",),
        evidence=(_evidence("logs/cms.jsonl:4", "2026-11-20T02:18:00Z", src_ip=PLC, user="zpmc-svc1",
                            action="cms.parameter_change", value_new="host 10.66.9.9"),),
    )
    mapped = Finding(
        finding_id="f-mapped-1", detection_id="modbus_write_non_engineering",
        title="Modbus writes to sts-03-plc from " + ", ".join(SPELLINGS),
        severity=85, confidence=90, stage="command", techniques=("T0855",),
        first_seen="2026-11-20T02:19:00Z", last_seen="2026-11-20T02:19:00Z", asset_id="sts-03-plc",
        zone="crane-ot", addresses=(MAPPED_HEX, PLC), accounts=(), link_keys=("asset:sts-03-plc",),
        evidence=(_evidence("logs/modbus.log:9", "2026-11-20T02:19:00Z", src_ip=MAPPED_HEX, src_port=40000,
                            dst_ip=PLC, dst_port=502, proto="tcp", service="modbus"),),
    )
    return make_incident(findings=(cms, mapped), stages=("command", "impair"), accounts=("zpmc-svc1",),
                         last_seen="2026-11-20T02:19:00Z", modified="2026-11-20T02:19:00Z")


def _v6_config() -> Config:
    base = profiles_config(ISAC, ZONE).model_dump(exclude={"base_dir"}, by_alias=True)
    base["inventory"]["internal_networks"] = [*base["inventory"]["internal_networks"], "fd12:3456::/32"]
    return Config.model_validate(base)


def _internal_hosts_in(bundle: dict[str, Any], red: Redactor) -> list[str]:
    from stix_export.addresses import find_addresses

    return [s.text for text in strings(bundle) for s in find_addresses(text) if red.is_internal(str(s.address))]


@pytest.mark.parametrize("name", ["isac", "isac-zone"])
def test_internal_addresses_in_free_text_and_every_notation_are_hidden(name: str, tmp_path: Path) -> None:
    cfg = _v6_config()
    red = Redactor(profile(cfg, name), cfg, SECRET)
    b = incident_bundle(_notations_incident(), cfg, profile(cfg, name), SECRET)
    text = json.dumps(b)
    for spelled in ("10.66.9.9", "10.30.1.99", *SPELLINGS, "a1e:515", "A1E:515", "10.30.5.21"):
        assert spelled.lower() not in text.lower(), spelled
    assert _internal_hosts_in(b, red) == []
    assert validate_bundle_file(write_bundle(b, tmp_path, f"stix-{name}")) == []
    stix2.parse(b, allow_custom=False)
    # The internal profile shows them (the scan has something to find).
    internal = incident_bundle(_notations_incident(), cfg, profile(cfg, "internal"), SECRET)
    assert "host 10.66.9.9" in json.dumps(internal) and _internal_hosts_in(internal, red)


def test_a_host_gets_one_pseudonym_whatever_its_spelling() -> None:
    cfg = _v6_config()
    red = Redactor(profile(cfg, "isac"), cfg, SECRET)
    b = incident_bundle(_notations_incident(), cfg, profile(cfg, "isac"), SECRET)
    v4 = red.pseudonym("10.30.5.21")
    # the structured mapped address: an ipv6-addr holding the IPv4 host's pseudonym
    [v6] = by_type(b, "ipv6-addr")
    assert ipaddress.ip_address(v6["value"]).ipv4_mapped == ipaddress.ip_address(v4)
    sighting = next(s for s in by_type(b, "sighting") if "Modbus writes" in s["description"])
    assert f"::ffff:{v4}, ::ffff:{v4}, ::ffff:{v4}, [::ffff:{red.pseudonym(PLC)}]:502, {red.pseudonym(PLC)}" in sighting["description"]
    assert red.pseudonym("fd12:3456::1") in sighting["description"]
    cms = next(s for s in by_type(b, "sighting") if "parameter_change" in s["description"])
    assert f"host {red.pseudonym('10.66.9.9')}" in cms["description"]
    # no indicator for an internal host written as IPv6
    assert [i["pattern"] for i in by_type(b, "indicator")] == []


def test_text_received_from_a_feed_goes_through_the_same_scan(tmp_path: Path) -> None:
    from stix_export import intel
    from tests.test_stix_intel_sighting import IND, intel_config, intel_incident, isac_bundle

    leaky = isac_bundle()
    for o in leaky["objects"]:
        if o["id"] == IND:
            o["description"] = "Seen beaconing from ::ffff:a1e:10a (member port STS-03) in 2026."
            o["modified"] = "2026-10-02T00:00:00.000Z"
    cfg = intel_config(tmp_path, profiles=[ISAC])
    (tmp_path / "isac-v2.json").write_text(json.dumps(leaky), encoding="utf-8")
    intel.import_files(tmp_path / "intel" / "store.json", [tmp_path / "isac-v2.json"])  # a later version
    intel.store._CONFIG_CACHE.clear()
    inc = intel_incident([IND])
    inc = type(inc)(**{**inc.__dict__, "findings": tuple(
        type(f)(**{**f.__dict__, "title": f.title.replace("Bulletproof hosting range", "C2 seen at 10.30.1.10")})
        for f in inc.findings)})
    internal = incident_bundle(inc, cfg, profile(cfg, "internal"), SECRET)
    assert IND in index_of(internal) and "::ffff:a1e:10a" in json.dumps(internal)
    b = incident_bundle(inc, cfg, profile(cfg, "isac"), SECRET)
    red = Redactor(profile(cfg, "isac"), cfg, SECRET)
    # the received indicator names an internal host: not re-shared (it cannot be rewritten
    # without publishing other content under the ISAC's id), and no sighting points at it
    assert IND not in index_of(b)
    assert not [s for s in by_type(b, "sighting") if s["sighting_of_ref"] == IND]
    # feed text inside the port's own objects (the finding title quotes the indicator's name)
    # is rewritten like any other text
    assert f"C2 seen at {red.pseudonym(PLC)}" in json.dumps(b)
    assert _internal_hosts_in(b, red) == [] and leaks(b, redacted_values(cfg)) == []
    assert validate_bundle_file(write_bundle(b, tmp_path / "out", "stix-isac")) == []


def index_of(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in bundle["objects"]}


def test_the_final_scan_fails_closed_on_every_notation(cfg: Config) -> None:
    """What the rewrite does not touch (observables are built, not rewritten) is still
    scanned: a bundle holding an internal address in any spelling is refused."""
    from stix_export.redact import leaks as scan_leaks, redact_objects

    red = Redactor(profile(_v6_config(), "isac"), _v6_config(), SECRET)
    inc = make_incident()
    for spelled in (*SPELLINGS, "host 10.66.9.9", "sts03", "STS 3", "zpmc-svc1"):
        sco = {"type": "software", "id": "software--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a02", "name": f"agent {spelled}"}
        assert scan_leaks(red, red.rewriter(inc), [sco]), spelled
        with pytest.raises(RedactionError, match="bundle not written"):
            redact_objects(red, inc, [sco])
    clean = {"type": "software", "id": "software--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a02",
             "name": f"agent {red.pseudonym(MAPPED)} {red.pseudonym('10.66.9.9')} 203.0.113.9 costs 3"}
    assert scan_leaks(red, red.rewriter(inc), [clean]) == {}


# -- zone names, crane ids and vendor accounts ----------------------------------------------------

def _crane_zone_config(**redaction: Any) -> Config:
    """The test terminal with the PLC in a zone named after its crane, and a vendor whose
    accounts no finding of the incident names."""
    base = profiles_config({**ISAC, "redaction": {**ISAC["redaction"], **redaction}}).model_dump(
        exclude={"base_dir"}, by_alias=True)
    for a in base["inventory"]["assets"]:
        if a["id"] == "sts-03-plc":
            a["zone"] = "crane-sts03"
    base["vendors"] = [{"name": "zpmc", "accounts": ["zpmc-svc1", "zpmc-eng2"]}]
    return Config.model_validate(base)


def _crane_zone_incident():
    inc = make_incident(zone="crane-sts03")
    findings = tuple(
        type(f)(**{**f.__dict__, "zone": "crane-sts03" if f.zone == "crane-ot" else f.zone,
                   "title": f.title + " (zone crane-sts03, crane Sts 03, shared login zpmc-eng2)"})
        for f in inc.findings
    )
    return make_incident(findings=findings, zone="crane-sts03")


def test_zone_names_that_name_a_crane_are_redacted_with_assets(tmp_path: Path) -> None:
    cfg = _crane_zone_config()
    b = incident_bundle(_crane_zone_incident(), cfg, profile(cfg, "isac"), SECRET)
    text = json.dumps(b).lower()
    for name in ("crane-sts03", "sts03", "sts 03", "sts-03", "zpmc-eng2", "zpmc-svc1"):
        assert name not in text, name
    [infra] = by_type(b, "infrastructure")
    ext = next(iter(infra["extensions"].values()))
    assert ext["zone"] == "crane-zone" and "zone crane-zone" in infra["description"]
    assert all("zone crane-zone" in s["description"] for s in by_type(b, "sighting") if "STS" not in s["description"])
    assert validate_bundle_file(write_bundle(b, tmp_path, "stix-isac")) == []
    # the internal profile keeps the zone, and a zone that names nothing stays in the ISAC set
    internal = incident_bundle(_crane_zone_incident(), cfg, profile(cfg, "internal"), SECRET)
    assert "crane-sts03" in json.dumps(internal)
    assert "zone dmz" in json.dumps(b)


def test_zone_labels_generalise_by_a_configured_rule() -> None:
    cfg = _crane_zone_config(zone_labels={"crane-sts03": "crane-ot"})
    b = incident_bundle(_crane_zone_incident(), cfg, profile(cfg, "isac"), SECRET)
    [infra] = by_type(b, "infrastructure")
    assert next(iter(infra["extensions"].values()))["zone"] == "crane-ot"
    assert "crane-sts03" not in json.dumps(b) and "zone crane-ot" in json.dumps(b)
    # a label that itself names a crane is caught by the final scan: the bundle is refused
    bad = _crane_zone_config(zone_labels={"crane-sts03": "quay-STS03"})
    with pytest.raises(RedactionError, match="crane id"):
        incident_bundle(_crane_zone_incident(), bad, profile(bad, "isac"), SECRET)


# -- readable titles ----------------------------------------------------------------------------

@pytest.mark.parametrize("subject, readable", [
    ("sts-03-plc", "a crane PLC in zone crane-ot"),
    ("10.212.0.1", "a VPN gateway in zone dmz"),
    ("10.10.0.53", "an internal host"),
    ("zpmc-svc1", "a zpmc vendor account"),
    ("203.0.113.45", "203.0.113.45"),
])
def test_incident_titles_stay_readable_in_redacted_profiles(subject: str, readable: str, tmp_path: Path) -> None:
    cfg = _crane_zone_config(zone_labels={"crane-sts03": "crane-ot"})
    inc = make_incident(title=f"High: access on {subject}")
    b = incident_bundle(inc, cfg, profile(cfg, "isac"), SECRET)
    [incident], [grouping] = by_type(b, "incident"), by_type(b, "grouping")
    assert incident["name"] == grouping["name"] == f"High: access on {readable}"
    assert grouping["description"].startswith(f"High: access on {readable}. ")
    internal = incident_bundle(inc, cfg, profile(cfg, "internal"), SECRET)
    assert by_type(internal, "incident")[0]["name"] == f"High: access on {subject}"
    assert validate_bundle_file(write_bundle(b, tmp_path, "stix-isac")) == []
