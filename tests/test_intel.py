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


def test_import_lists_unsupported_patterns_with_reasons(feed_file: Path, tmp_path: Path, capsys) -> None:
    store_path = tmp_path / "store.json"
    assert main(["intel", "import", str(feed_file), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "read 10 indicator(s): 6 stored, 0 unchanged, 0 revoked, 4 unsupported; 1 other object(s) ignored" in out
    reasons = {line.split(": ", 1)[0].split()[-1]: line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("unsupported ")}
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
        assert "4 unsupported" in out and "1 revoked" in out and taxii_server.PASSWORD not in out
        store = intel.load_store(tmp_path / "intel" / "store.json")
        assert store.match_ip("198.51.100.7", WHEN)[0].source.startswith("taxii:http://127.0.0.1:")
        assert store.match_ip("192.0.2.70", WHEN) == []
