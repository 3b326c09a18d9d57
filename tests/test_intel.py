"""ISAC feeds in: indicator bundles -> the intel store, from a file and from a TAXII collection.

The feed is built as an ISAC would publish it and checked with ``stix2.parse`` first; the
TAXII case uses medallion on 127.0.0.1 with taxii2-client, like test_share.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stix2

from pipelines.cli import main
from stix_export import intel
from stix_export.ids import deterministic_id

ISAC_ID = deterministic_id("identity", "Maritime Transportation System ISAC (test)")
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


def indicator(key: str, pattern: str, valid_from: str = "2026-11-01T00:00:00Z", modified: str = "2026-11-01T00:00:00Z",
              **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator", "spec_version": "2.1", "id": deterministic_id("indicator", "isac-feed", key),
        "created_by_ref": ISAC_ID, "created": "2026-11-01T00:00:00Z", "modified": modified,
        "name": f"ISAC {key}", "pattern": pattern, "pattern_type": extra.pop("pattern_type", "stix"),
        "valid_from": valid_from, "indicator_types": ["malicious-activity"], **extra,
    }


FEED = [
    indicator("c2-ip", "[ipv4-addr:value = '198.51.100.7']"),
    indicator("c2-net", "[ipv4-addr:value ISSUBSET '203.0.113.0/24'] OR [domain-name:value = 'Update.Crane-Vendor.example']"),
    indicator("v6", "[ipv6-addr:value = '2001:db8::/32']"),
    indicator("expired", "[ipv4-addr:value = '192.0.2.50']", valid_until="2026-11-10T00:00:00Z"),
    indicator("future", "[ipv4-addr:value IN ('192.0.2.60', '192.0.2.61')]", valid_from="2026-12-01T00:00:00Z"),
    indicator("to-revoke", "[ipv4-addr:value = '192.0.2.70']"),
    indicator("and", "[ipv4-addr:value = '192.0.2.80' AND ipv4-addr:value = '192.0.2.81']"),
    indicator("hash", "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"),
    indicator("within", "[ipv4-addr:value = '192.0.2.90'] FOLLOWEDBY [domain-name:value = 'x.example'] WITHIN 60 SECONDS"),
    indicator("sigma", "title: x", pattern_type="sigma"),
]
REVOKED = indicator("to-revoke", "[ipv4-addr:value = '192.0.2.70']", modified="2026-11-15T00:00:00Z", revoked=True)
WHEN = "2026-11-20T02:20:00Z"


def feed_bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    identity = {"type": "identity", "spec_version": "2.1", "id": ISAC_ID, "created": "2026-01-01T00:00:00Z",
                "modified": "2026-01-01T00:00:00Z", "name": "Maritime Transportation System ISAC (test)",
                "identity_class": "organization"}
    bundle = {"type": "bundle", "id": deterministic_id("bundle", "isac-feed", str(len(objects))),
              "objects": [identity, *({**o, "object_marking_refs": [AMBER]} for o in objects)]}
    stix2.parse(bundle, allow_custom=False)  # what an ISAC publishes is valid STIX
    return bundle


@pytest.fixture()
def feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(feed_bundle(FEED)))
    return path


def test_import_lists_refused_patterns_with_reasons(feed_file: Path, tmp_path: Path, capsys) -> None:
    store_path = tmp_path / "store.json"
    assert main(["intel", "import", str(feed_file), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "read 10 indicator(s): 6 stored, 0 unchanged, 0 revoked, 4 refused; 1 other object(s) ignored" in out
    reasons = {line.split(": ", 1)[0].split()[-1]: line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("refused ")}
    by_key = {k: FEED[i]["id"] for i, k in enumerate(["c2-ip", "c2-net", "v6", "expired", "future", "to-revoke", "and", "hash", "within", "sigma"])}
    assert "AND inside an observation" in reasons[by_key["and"]]
    assert "file:hashes.SHA-256 is not a supported object path" in reasons[by_key["hash"]]
    assert "qualifiers" in reasons[by_key["within"]] or "FOLLOWEDBY" in reasons[by_key["within"]]
    assert "pattern_type sigma" in reasons[by_key["sigma"]]
    assert json.loads(store_path.read_text())["version"] == intel.STORE_VERSION


def test_matching_honours_validity_networks_domains_and_revocation(feed_file: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "store.json"
    intel.import_files(store_path, [feed_file])
    store = intel.load_store(store_path)
    [hit] = store.match_ip("198.51.100.7", WHEN)
    assert hit.indicator_id == FEED[0]["id"] and hit.name == "ISAC c2-ip" and hit.source == "file:feed.json"
    assert [h.value for h in store.match_ip("203.0.113.45", WHEN)] == ["203.0.113.0/24"]
    assert store.match_ip("2001:db8::7", WHEN)[0].indicator_id == FEED[2]["id"]
    assert store.match_domain("update.crane-vendor.example.", WHEN)[0].indicator_id == FEED[1]["id"]
    assert store.match_domain("crane-vendor.example", WHEN) == []
    # valid_until in the past, valid_from in the future
    assert store.match_ip("192.0.2.50", WHEN) == [] and store.match_ip("192.0.2.50", "2026-11-05T00:00:00Z")
    assert store.match_ip("192.0.2.61", WHEN) == [] and store.match_ip("192.0.2.61", "2026-12-02T00:00:00Z")
    assert store.match_ip("192.0.2.70", WHEN)
    assert store.match_ip("10.30.1.10", WHEN) == [] and store.match_ip("not an ip", WHEN) == []

    revocation = tmp_path / "revocation.json"
    revocation.write_text(json.dumps(feed_bundle([REVOKED])))
    report = intel.import_files(store_path, [revocation])
    assert report.revoked == 1
    store = intel.load_store(store_path)
    assert store.match_ip("192.0.2.70", WHEN) == []
    # an older version arriving later does not undo the revocation; a re-import changes nothing
    again = intel.import_files(store_path, [feed_file])
    assert again.stored == 0 and again.unchanged == 6
    assert intel.load_store(store_path).match_ip("192.0.2.70", WHEN) == []
    before = store_path.read_bytes()
    intel.import_files(store_path, [feed_file, revocation])
    assert store_path.read_bytes() == before


def test_newer_version_replaces_the_older(tmp_path: Path) -> None:
    store = intel.IntelStore()
    store.import_objects([indicator("x", "[ipv4-addr:value = '192.0.2.1']")], "t")
    store.import_objects([indicator("x", "[ipv4-addr:value = '192.0.2.2']", modified="2026-11-02T00:00:00Z")], "t")
    assert store.match_ip("192.0.2.1", WHEN) == [] and store.match_ip("192.0.2.2", WHEN)


def test_import_from_a_taxii_collection(tmp_path: Path, monkeypatch, capsys) -> None:
    from taxii2client.v21 import Collection

    from stix_export.share import collection_url
    from tests import taxii_server

    for server in taxii_server.serve():
        url = collection_url(server.url, taxii_server.INTEL_COLLECTION_ID)
        col = Collection(url, user=taxii_server.USER, password=taxii_server.PASSWORD)
        col.add_objects(feed_bundle([*FEED, REVOKED]), wait_for_completion=True, poll_interval=0.2)
        monkeypatch.setenv("CRANEWATCH_TAXII_USER", taxii_server.USER)
        monkeypatch.setenv("CRANEWATCH_TAXII_PASSWORD", taxii_server.PASSWORD)
        cfg = tmp_path / "config.yaml"
        cfg.write_text("site: {name: Port of Example}\nsources: [{name: conn, format: zeek_conn, paths: [x]}]\n"
                       "intel: {store: intel/store.json}\n")
        rc = main(["intel", "import", "--taxii", server.url, "--collection", taxii_server.INTEL_COLLECTION_ID,
                   "--config", str(cfg)])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "4 refused" in out and "1 revoked" in out and taxii_server.PASSWORD not in out
        store = intel.load_store(tmp_path / "intel" / "store.json")
        assert store.match_ip("198.51.100.7", WHEN)[0].source.startswith("taxii:http://127.0.0.1:")
        assert store.match_ip("192.0.2.70", WHEN) == []


# --- ports, sides, domains and AND terms (scenario 11 beyond addresses) -----------------------


@pytest.mark.parametrize("pattern, terms", [
    ("[network-traffic:dst_port = 4444]", [{"type": "port", "side": "dst", "value": 4444}]),
    ("[network-traffic:src_port IN (4444, 5555)]",
     [{"type": "port", "side": "src", "value": 4444}, {"type": "port", "side": "src", "value": 5555}]),
    ("[network-traffic:dst_ref.value = '203.0.113.5']", [{"type": "ip", "side": "dst", "value": "203.0.113.5/32"}]),
    ("[network-traffic:src_ref.value ISSUBSET '203.0.113.0/24']",
     [{"type": "ip", "side": "src", "value": "203.0.113.0/24"}]),
    ("[network-traffic:dst_ref.value IN ('2001:db8::5', 'C2.Example.NET.')]",
     [{"type": "ip", "side": "dst", "value": "2001:db8::5/128"}, {"type": "domain", "side": "dst", "value": "c2.example.net"}]),
    ("[network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 8443]",
     [{"type": "and", "terms": [{"type": "ip", "side": "dst", "value": "198.51.100.7/32"},
                                {"type": "port", "side": "dst", "value": 8443}]}]),
    # the type comparison is a consistency check beside a value on that side ...
    (("([network-traffic:dst_ref.type = 'ipv4-addr' AND (network-traffic:dst_ref.value = '198.51.100.7' "
      "AND network-traffic:dst_port = 8443)])"),
     [{"type": "and", "terms": [{"type": "ip", "side": "dst", "value": "198.51.100.7/32"},
                                {"type": "port", "side": "dst", "value": 8443}]}]),
    # ... and without one it asks for an address of that version
    ("[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_port = 8443]",
     [{"type": "and", "terms": [{"type": "port", "side": "dst", "value": 8443},
                                {"type": "ip", "side": "dst", "value": "::/0"}]}]),
    ("[network-traffic:dst_ref.value IN ('198.51.100.7', '198.51.100.8') AND network-traffic:dst_port IN (80, 8443)]",
     [{"type": "and", "terms": [{"type": "ip", "side": "dst", "value": f"198.51.100.{h}/32"},
                                {"type": "port", "side": "dst", "value": p}]} for h in (7, 8) for p in (80, 8443)]),
    ("[network-traffic:src_ref.value = '192.0.2.1' AND network-traffic:dst_ref.value = '198.51.100.7']",
     [{"type": "and", "terms": [{"type": "ip", "side": "src", "value": "192.0.2.1/32"},
                                {"type": "ip", "side": "dst", "value": "198.51.100.7/32"}]}]),
    ("[ipv4-addr:value = '198.51.100.7'] OR [network-traffic:dst_port = 4444 OR network-traffic:src_port = 4444]",
     [{"type": "ip", "value": "198.51.100.7/32"}, {"type": "port", "side": "dst", "value": 4444},
      {"type": "port", "side": "src", "value": 4444}]),
])
def test_supported_network_traffic_patterns(pattern: str, terms: list[dict[str, Any]]) -> None:
    assert intel.parse_pattern(pattern) == terms


@pytest.mark.parametrize("pattern, reason", [
    ("[domain-name:value = 'c2.example'] AND [ipv4-addr:value = '198.51.100.9']", "observation operators other than OR (AND)"),
    ("[network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 8443] OR [ipv4-addr:value = '192.0.2.1']",
     "not combined with OR"),
    ("[network-traffic:dst_ref.value = '198.51.100.7' AND (network-traffic:dst_port = 1 OR network-traffic:dst_port = 2)]",
     "AND and OR mixed"),
    ("[network-traffic:dst_port = 1 OR network-traffic:dst_port = 2 AND network-traffic:dst_ref.value = '198.51.100.7']",
     "AND and OR mixed"),
    ("[network-traffic:dst_port = 4444 AND ipv4-addr:value = '198.51.100.7']", "only between network-traffic comparisons"),
    ("[domain-name:value MATCHES '^[a-z]+\\\\.dga\\\\.example$']", "operator MATCHES on domain-name:value"),
    ("[domain-name:value LIKE '%.dga.example']", "operator LIKE on domain-name:value"),
    ("[network-traffic:dst_port NOT = 4444]", "negated comparisons"),
    ("[network-traffic:dst_port != 4444]", "operator != on network-traffic:dst_port"),
    ("[network-traffic:dst_port > 1024]", "operator > on network-traffic:dst_port"),
    ("[network-traffic:dst_port = '4444']", "port numbers"),
    ("[network-traffic:dst_port = 70000]", "port numbers"),
    ("[network-traffic:protocols[*] = 'tcp']", "network-traffic:protocols[*] is not a supported object path"),
    ("[network-traffic:dst_ref.type = 'ipv4-addr']", "consistency check"),
    ("[network-traffic:dst_ref.type = 'mac-addr' AND network-traffic:dst_port = 1]", "may only be compared"),
    ("[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_ref.value = '198.51.100.7']", "does not match"),
    ("[network-traffic:src_ref.value = 'evil.example']", "no domain name of the source"),
    ("[network-traffic:dst_ref.value ISSUBSET 'evil.example']", "not an IP address or network"),
    ("[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:src_ref.type = 'ipv4-addr']", "only *_ref.type"),
    ("[network-traffic:dst_port = 1] FOLLOWEDBY [network-traffic:dst_port = 2]", "FOLLOWEDBY"),
    ("[network-traffic:dst_port = 1] REPEATS 5 TIMES", "qualifiers"),
])
def test_unsupported_patterns_say_why(pattern: str, reason: str) -> None:
    with pytest.raises(intel.UnsupportedPattern, match=None) as err:
        intel.parse_pattern(pattern)
    assert reason in str(err.value)


NET_FEED = [
    indicator("c2-port", "[network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 8443]"),
    indicator("shell-port", "[network-traffic:dst_port IN (4444, 4445)]", valid_until="2026-12-01T00:00:00Z"),
    indicator("scanner-src", "[network-traffic:src_ref.value ISSUBSET '192.0.2.0/24']"),
    indicator("domain", "[domain-name:value = 'Update.Crane-Vendor.example']"),
    indicator("v6-port", "[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_port = 5555]"),
    indicator("late", "[network-traffic:dst_port = 6666]", valid_from="2026-12-01T00:00:00Z"),
]


def _event(**kw: Any) -> dict[str, Any]:
    return {"time": intel.stix_time(WHEN), "kind": "flow", **kw}


def test_match_event_ports_sides_domains_and_terms() -> None:
    store = intel.IntelStore()
    report = store.import_objects(feed_bundle(NET_FEED)["objects"], "net")
    assert (report.stored, report.refused) == (6, [])
    ids = {k: NET_FEED[i]["id"] for i, k in enumerate(["c2-port", "shell-port", "scanner-src", "domain", "v6-port", "late"])}

    def hits(**kw: Any) -> list[tuple[str, str, str]]:
        return [(h.indicator_id, h.kind, h.matched) for h in store.match_event(_event(**kw))]

    # ip:port on one flow; the same address on another port, or the port on the source side, is not
    assert hits(src_ip="10.30.1.10", src_port=50000, dst_ip="198.51.100.7", dst_port=8443) == [
        (ids["c2-port"], "and", "198.51.100.7:8443")]
    (h,) = store.match_event(_event(src_ip="10.30.1.10", dst_ip="198.51.100.7", dst_port=8443))
    assert h.value == "dst_ref.value = 198.51.100.7/32 AND dst_port = 8443"
    assert hits(src_ip="10.30.1.10", dst_ip="198.51.100.7", dst_port=443) == []
    assert hits(src_ip="198.51.100.7", src_port=8443, dst_ip="10.30.1.10", dst_port=50000) == []
    # port-only, either port of an IN list, destination side only
    assert hits(src_ip="10.30.1.10", dst_ip="100.71.20.5", dst_port=4445) == [(ids["shell-port"], "port", "port 4445")]
    assert hits(src_ip="100.71.20.5", src_port=4444, dst_ip="10.30.1.10", dst_port=50000) == []
    # a side-specific network matches on its side only
    assert hits(src_ip="192.0.2.77", dst_ip="10.30.1.10", dst_port=502) == [(ids["scanner-src"], "ip", "192.0.2.77")]
    assert hits(src_ip="10.30.1.10", dst_ip="192.0.2.77", dst_port=443) == []
    # domains: a dns.query's target (any case, trailing dot), TLS/HTTP names in attrs, never another action's target
    dns = {"action": "dns.query", "src_ip": "10.30.1.20", "dst_ip": "10.40.0.53", "dst_port": 53}
    assert hits(**dns, target="UPDATE.crane-vendor.example.") == [(ids["domain"], "domain", "update.crane-vendor.example")]
    assert hits(**dns, target="cdn.update.crane-vendor.example") == []
    assert hits(action="flow", target="update.crane-vendor.example") == []
    assert hits(dst_ip="203.0.113.80", dst_port=443, attrs={"server_name": "update.crane-vendor.example"})[0][0] == ids["domain"]
    assert hits(dst_ip="203.0.113.80", dst_port=80, attrs=[("host", "Update.Crane-Vendor.Example")])[0][0] == ids["domain"]
    # the type check of an AND term: an IPv6 destination on that port only
    assert hits(src_ip="2001:db8::1", dst_ip="2001:db8::2", dst_port=5555) == [(ids["v6-port"], "and", "[2001:db8::2]:5555")]
    assert hits(src_ip="10.30.1.10", dst_ip="198.51.100.9", dst_port=5555) == []
    # validity: before valid_from, after valid_until; an explicit time overrides the event's
    assert hits(src_ip="10.30.1.10", dst_ip="198.51.100.9", dst_port=6666) == []
    assert store.match_event(_event(dst_ip="198.51.100.9", dst_port=6666), "2026-12-02T00:00:00Z")[0].indicator_id == ids["late"]
    assert store.match_event(_event(dst_ip="100.71.20.5", dst_port=4444), "2026-12-02T00:00:00Z") == []
    # an event several indicators match: AND terms first
    assert [k for _, k, _ in hits(src_ip="192.0.2.5", dst_ip="198.51.100.7", dst_port=8443)] == ["and", "ip"]
    # match_ip / match_domain see the standalone terms, whatever their side
    assert store.match_ip("192.0.2.5", WHEN)[0].indicator_id == ids["scanner-src"]
    assert store.match_ip("198.51.100.7", WHEN) == []  # only as part of an AND term
    assert store.match_domain("update.crane-vendor.example", WHEN)[0].indicator_id == ids["domain"]


def test_revocation_stops_port_and_and_terms() -> None:
    store = intel.IntelStore()
    store.import_objects(feed_bundle(NET_FEED)["objects"], "net")
    flow = _event(src_ip="10.30.1.10", dst_ip="198.51.100.7", dst_port=8443)
    assert store.match_event(flow)
    revoked = [dict(o, modified="2026-11-15T00:00:00Z", revoked=True) for o in NET_FEED[:2]]
    assert store.import_objects(revoked, "net").revoked == 2
    assert store.match_event(flow) == []
    assert store.match_event(_event(dst_ip="100.71.20.5", dst_port=4444)) == []
    assert sorted(a["value"] for a in store.prefilter_atoms() if a["type"] == "port") == [5555, 6666]


def test_a_store_written_before_sides_and_ports_still_matches(tmp_path: Path) -> None:
    """Term dicts without a side (the only ones older versions wrote) mean either side."""
    old = {"version": 1, "indicators": {"indicator--1": {
        "id": "indicator--1", "name": "old", "pattern": "[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'c2.example']",
        "match": [{"type": "ip", "value": "198.51.100.7/32"}, {"type": "domain", "value": "c2.example"}],
        "valid_from": "2026-11-01T00:00:00Z", "valid_until": None, "modified": "2026-11-01T00:00:00Z",
        "revoked": False, "source": "file:old.json"}}}
    path = tmp_path / "store.json"
    path.write_text(json.dumps(old))
    store = intel.load_store(path)
    for side in ("src_ip", "dst_ip"):
        assert [h.matched for h in store.match_event(_event(**{side: "198.51.100.7"}))] == ["198.51.100.7"]
    assert store.match_event(_event(action="dns.query", target="c2.example"))[0].kind == "domain"
    assert store.match_ip("198.51.100.7", WHEN) and store.match_domain("C2.example.", WHEN)
    assert store.prefilter_atoms() == old["indicators"]["indicator--1"]["match"]


def test_prefilter_takes_the_most_selective_part_of_an_and_term() -> None:
    store = intel.IntelStore(policy=intel.Policy(min_prefix_ipv4=8))  # a /8 beside a port, allowed here
    store.import_objects([
        indicator("a", "[network-traffic:dst_port = 8443 AND network-traffic:dst_ref.value = '198.51.100.7']"),
        indicator("b", "[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_port = 5555]"),
        indicator("c", "[network-traffic:dst_ref.value = '10.0.0.0/8' AND network-traffic:dst_port = 23]"),
        indicator("d", "[network-traffic:dst_ref.value = 'c2.example' AND network-traffic:dst_ref.type = 'domain-name']"),
    ], "t")
    assert sorted(map(json.dumps, store.prefilter_atoms())) == sorted(map(json.dumps, [
        {"type": "ip", "side": "dst", "value": "198.51.100.7/32"},
        {"type": "port", "side": "dst", "value": 5555},
        {"type": "port", "side": "dst", "value": 23},
        {"type": "domain", "side": "dst", "value": "c2.example"},
    ]))


# --- the detection: prefilter, load errors, a DNS log end to end -------------------------------


BUILTIN = Path(__file__).resolve().parents[1] / "detections" / "builtin"


def _detector(params: dict[str, Any]):
    from detections.api import TestCase
    from detections.registry import load_registry
    from detections.testing import case_config
    from transforms.detect import Detector

    det = load_registry()["threat_intel_match"]
    cfg = case_config(TestCase("t", (), 0, {"detections": {"threat_intel_match": {"params": params}}}), str(BUILTIN))
    return Detector(cfg, {det.meta.id: det})


def test_an_unsupported_indicator_in_a_named_bundle_is_skipped_with_the_reason() -> None:
    """One unsupported indicator in a bundle the config names neither stops the run nor
    hides the others: it is skipped and listed (id, reason); the supported one matches."""
    detector = _detector({"bundles": ["testdata/isac-network-indicators.json", "testdata/isac-unsupported.json"]})
    _, ctx = detector.by_id["threat_intel_match"]
    store = ctx.params["_store"]
    skipped = {s.id: (s.key, s.file, s.reason) for s in store.skipped}
    key = "detections.threat_intel_match.params.bundles[1]"
    assert skipped == {
        "indicator--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a21": (key, "testdata/isac-unsupported.json",
                                                           "observation operators other than OR (AND)"),
        "indicator--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a22": (key, "testdata/isac-unsupported.json",
                                                           "operator MATCHES on domain-name:value is not supported"),
    }
    [hit] = store.match_ip("45.83.64.12", WHEN)  # the supported indicator beside them
    assert hit.indicator_id.endswith("0a23")


def test_the_prefilter_passes_every_row_the_store_matches() -> None:
    """Random flows and DNS queries around the test bundles' indicators: the vectorized
    where: keeps every row match_event matches (and few others); no row-by-row Python."""
    import random

    from detections.api import where_mask
    from detections.testing import events_table
    from transforms.enrich import Enricher

    detector = _detector({"bundles": ["testdata/isac-indicators.json", "testdata/isac-network-indicators.json"]})
    _, ctx = detector.by_id["threat_intel_match"]
    rnd = random.Random(11)
    hosts = ["10.30.1.10", "10.30.1.20", "198.51.100.7", "198.51.100.8", "192.0.2.77", "45.83.64.11",
             "91.92.243.200", "91.92.244.1", "100.71.20.5"]
    names = ["update.crane-vendor.example", "update.crane-vendor.example.", "cdn.update.crane-vendor.example",
             "crane-vendor.example", "ntp.terminal.example"]
    events = []
    for i in range(3000):
        e = {"time": "2026-11-17T03:00:00Z", "kind": "flow", "src_ip": rnd.choice(hosts), "dst_ip": rnd.choice(hosts),
             "src_port": rnd.choice([4444, 8443, 50000 + i % 1000]), "dst_port": rnd.choice([53, 443, 4444, 8443, 502])}
        if rnd.random() < 0.3:
            e.update(action="dns.query", target=rnd.choice(names))
        events.append(e)
    table = Enricher(detector.active[0][1].cfg)(events_table(events))
    mask = where_mask(table, detector.where["threat_intel_match"]).to_numpy(zero_copy_only=False)
    rows = table.to_pylist()
    matched = [i for i, r in enumerate(rows) if ctx.params["_store"].match_event({**r, "attrs": dict(r["attrs"] or [])})]
    assert matched and all(mask[i] for i in matched)
    assert len(matched) <= int(mask.sum()) < len(rows)


def strict_isac_bundle(ind: dict[str, Any]) -> dict[str, Any]:
    """``ind`` as an ISAC publishes it when strict validation is to pass on a copy of it:
    millisecond timestamps, a description, the TLP marking object beside it."""
    from stix_export import tlp

    ms = {"created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z"}
    green = tlp.tlp_marking_id("green")
    return {"type": "bundle", "id": deterministic_id("bundle", "isac-strict", ind["id"]), "objects": [
        tlp.tlp_marking("green"),
        {"type": "identity", "spec_version": "2.1", "id": ISAC_ID, **ms, "name": "Maritime Transportation System ISAC (test)",
         "description": "The ISAC.", "identity_class": "organization", "object_marking_refs": [green]},
        {**ind, **ms, "description": f"{ind['name']}, for the test.", "object_marking_refs": [green]},
    ]}


def test_a_zeek_dns_log_of_a_listed_domain_is_a_finding_and_a_sighting(tmp_path: Path) -> None:
    """Scenario 11 with a domain: zeek dns.log + an ISAC bundle with a domain indicator →
    one threat_intel_match finding naming the domain and the indicator; the incident's bundle
    validates strictly and holds a sighting of the ISAC's indicator."""
    import yaml

    from pipelines.batch import run_batch
    from pipelines.config import load_config
    from pipelines.summary import build_summary
    from stix_export.validate import validate_bundle_file
    from tests.test_parsers_zeek_dns import HEADER, NX, A

    (tmp_path / "zeek").mkdir()
    queries = [A.replace("1795162502.250000", f"{1795162502 + 30 * i}.250000")
               .replace("update.crane-vendor.example", "Update.Crane-Vendor.Example." if i else "update.crane-vendor.example")
               for i in range(3)]
    (tmp_path / "zeek" / "dns.log").write_text(HEADER + "\n".join([*queries, NX]) + "\n")
    (tmp_path / "isac.json").write_text(json.dumps(strict_isac_bundle(NET_FEED[3])))
    cfg = {
        "site": {"name": "Port of Example", "terminal": "T2"},
        "sources": [{"name": "dns", "format": "zeek_dns", "paths": ["zeek/dns.log"]}],
        "inventory": {"internal_networks": ["10.0.0.0/8"], "assets": [
            {"id": "sts01-cms", "kind": "cms", "addresses": ["10.30.1.20"], "zone": "crane-sts01"},
            {"id": "dns-01", "kind": "server", "addresses": ["10.40.0.53"], "zone": "ot-core"}]},
        "detections": {"threat_intel_match": {"params": {"bundles": ["isac.json"]}}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = load_config(str(tmp_path / "config.yaml"))
    out = tmp_path / "out"
    summary = build_summary(config, run_batch(config, str(out)))
    assert summary["sources"]["dns"]["read"] == summary["sources"]["dns"]["parsed"] == 4
    assert summary["findings"]["per_detection"] == {"threat_intel_match": 1}
    (finding,) = [json.loads(line) for line in (out / "findings.jsonl").read_text().splitlines()]
    assert finding["count"] == 3 and finding["asset_id"] == "sts01-cms"
    assert "update.crane-vendor.example" in finding["title"] and "Update" not in finding["title"]
    assert finding["evidence"][0]["fields"]["indicators"] == [NET_FEED[3]["id"]]
    assert finding["evidence"][0]["fields"]["intel_matched"] == ["update.crane-vendor.example"]
    (bundle_path,) = sorted((out / "stix").glob("*.json"))
    assert validate_bundle_file(bundle_path) == []
    objs = json.loads(bundle_path.read_text())["objects"]
    assert NET_FEED[3]["id"] in {o.get("sighting_of_ref") for o in objs if o["type"] == "sighting"}
    # the matched name is an observable of the finding (the resolver's address is too)
    (domain,) = [o for o in objs if o["type"] == "domain-name"]
    assert domain["value"] == "update.crane-vendor.example"
    (observed,) = [o for o in objs if o["type"] == "observed-data"]
    assert domain["id"] in observed["object_refs"]
