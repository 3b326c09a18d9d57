"""Hostile threat-intel feeds and stores: bad objects are refused one by one with id and
reason, bad files are one-line errors (exit 2), and no store entry can stop a run.

Each case is a file an attacker (or a broken feed pull, or a hand edit) could produce; the
checks go through the real CLI (``cranewatch intel import``, ``validate``, ``run``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import main
from stix_export import intel
from stix_export.ids import deterministic_id
from tests.test_intel import NET_FEED, feed_bundle, indicator, strict_isac_bundle

GOOD = indicator("good", "[ipv4-addr:value = '198.51.100.7']")
CATCH_ALL = "[ipv4-addr:value ISSUBSET '0.0.0.0/0']"


def _bad(key: str, **changes: Any) -> dict[str, Any]:
    obj = indicator(key, "[ipv4-addr:value = '198.51.100.8']")
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


# (indicator, expected reason fragment): each is stored by today's import or crashes it
BAD_OBJECTS = [
    (_bad("never", valid_from="never"), "valid_from"),
    (_bad("surrogate", description="C2 \ud800 host"), "lone surrogate"),
    (_bad("surrogate-key", **{"x_n\udfffte": "a"}), "property name that is not valid Unicode"),
    (_bad("until-before", valid_until="2026-10-01T00:00:00Z"), "valid_until"),
    (_bad("until-equal", valid_until="2026-11-01T00:00:00Z"), "valid_until"),
    (_bad("modified-before-created", modified="2026-10-01T00:00:00Z"), "modified"),
    (_bad("spec-2.0", spec_version="2.0"), "spec_version"),
    (_bad("no-spec", spec_version=None), "spec_version"),
    (_bad("no-valid-from", valid_from=None), "valid_from: required, missing"),
    (_bad("no-modified", modified=None), "modified: required, missing"),
    ({**_bad("null"), "object_marking_refs": None}, "object_marking_refs: null is not a STIX value"),
    (_bad("offset", valid_from="2026-11-01T00:00:00+02:00"), "valid_from"),
    (_bad("bad-pattern", pattern="[ipv4-addr:value = "), "not a valid STIX 2.1 pattern"),
    (_bad("no-pattern", pattern=None), "pattern: required, missing"),
    (_bad("name-list", name=["a", "b"]), "name: expected a string"),
    (_bad("nan", x_score=float("nan")), "not a JSON number"),
    (_bad("deep", x_blob=_nested(40)), "nested deeper than"),
    (_bad("catch-all", pattern=CATCH_ALL), "broader than the minimum prefix length /16"),
    (_bad("slash-8", pattern="[ipv4-addr:value ISSUBSET '91.0.0.0/8']"), "/16 for IPv4"),
    (_bad("v6-all", pattern="[ipv6-addr:value ISSUBSET '::/0']"), "/32 for IPv6"),
    (_bad("nt-broad", pattern="[network-traffic:dst_ref.value ISSUBSET '0.0.0.0/1' AND network-traffic:dst_port = 443]"),
     "0.0.0.0/1 is broader"),
]


def _write_feed(path: Path, objects: list[Any]) -> Path:
    bundle = {"type": "bundle", "id": deterministic_id("bundle", "hostile", path.name), "objects": objects}
    path.write_text(json.dumps(bundle))  # ensure_ascii: a lone surrogate is written as its \\ud800 escape
    return path


def test_import_keeps_the_good_and_lists_each_bad_object(tmp_path: Path, capsys) -> None:
    feed = _write_feed(tmp_path / "feed.json", [GOOD, *(o for o, _ in BAD_OBJECTS), "not an object", 7])
    store_path = tmp_path / "store.json"
    assert main(["intel", "import", str(feed), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert f"read {1 + len(BAD_OBJECTS)} indicator(s): 1 stored, 0 unchanged, 0 revoked, {len(BAD_OBJECTS)} refused" in out
    refused = dict(line[len("refused "):].split(": ", 1) for line in out.splitlines() if line.startswith("refused "))
    for obj, reason in BAD_OBJECTS:
        assert reason in refused[obj["id"]], (obj["id"], refused[obj["id"]])
    assert "lone surrogate" in refused[BAD_OBJECTS[1][0]["id"]] and "\\ud800" not in out.encode().decode("ascii", "replace")
    n = 1 + len(BAD_OBJECTS)
    assert {f"objects[{n}]", f"objects[{n + 1}]"} <= set(refused)  # the list entries that are no objects
    store = intel.load_store(store_path)
    assert list(store.indicators) == [GOOD["id"]] and store.skipped == []
    assert store.match_ip("198.51.100.7", "2026-11-20T00:00:00Z")
    assert store.match_ip("203.0.113.9", "2026-11-20T00:00:00Z") == []  # the catch-all was not stored


def test_type_checks_beside_a_port_are_not_too_broad() -> None:
    """The whole address space inside an AND term only says "an IPv4 address" (what a
    *_ref.type check stands for): it widens nothing beyond the port it is joined with."""
    for pattern in ("[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_port = 4444]",
                    "[network-traffic:dst_ref.value ISSUBSET '0.0.0.0/0' AND network-traffic:dst_port = 4444]",
                    "[ipv4-addr:value ISSUBSET '91.92.0.0/16']"):
        terms, reason = intel.check_indicator(indicator("x", pattern))
        assert reason is None and terms, pattern
    assert intel.check_indicator(indicator("x", "[ipv4-addr:value ISSUBSET '91.92.0.0/15']"))[1]


def test_the_config_sets_the_minimum_prefix(tmp_path: Path, capsys) -> None:
    feed = _write_feed(tmp_path / "feed.json", [_bad("slash-8", pattern="[ipv4-addr:value ISSUBSET '91.0.0.0/8']")])
    cfg = tmp_path / "config.yaml"
    cfg.write_text("site: {name: P}\nsources: [{name: conn, format: zeek_conn, paths: [x]}]\n"
                   "intel: {store: store.json, min_prefix_ipv4: 8}\n")
    assert main(["intel", "import", str(feed), "--config", str(cfg)]) == 0
    assert "1 stored" in capsys.readouterr().out
    cfg.write_text(cfg.read_text().replace("min_prefix_ipv4: 8", "min_prefix_ipv4: 33"))
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "intel.min_prefix_ipv4" in capsys.readouterr().err


@pytest.mark.parametrize("content, expected", [
    (b"", "got an empty file"),
    (b"  \n", "got an empty file"),
    (json.dumps(feed_bundle([GOOD])).encode()[:-40], "truncated JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "undecodable bytes at offset 0"),
    (json.dumps([GOOD]).encode(), "got a JSON list"),
    (b'"bundle"', "got a JSON string"),
    (json.dumps({"type": "report", "objects": []}).encode(), "got type 'report'"),
    (json.dumps({"type": "bundle", "objects": {"a": 1}}).encode(), "objects: expected a list"),
    (b'{"type": "bundle", "objects": [], "x": ' + b"9" * 5000 + b"}", "expected a STIX 2.1 bundle"),
    (b"{\"type\": \"bundle\", \"objects\": [", "truncated JSON"),
])
def test_a_malformed_feed_is_one_line_exit_2_and_changes_nothing(content: bytes, expected: str, tmp_path: Path,
                                                                 capsys) -> None:
    store_path = tmp_path / "store.json"
    intel.import_files(store_path, [_write_feed(tmp_path / "ok.json", [GOOD])])
    before = store_path.read_bytes()
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    _write_feed(good, [indicator("other", "[ipv4-addr:value = '198.51.100.9']")])
    bad.write_bytes(content)
    assert main(["intel", "import", str(good), str(bad), "--store", str(store_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(bad) in err and expected in err, err
    assert store_path.read_bytes() == before  # the good file beside it was not half-imported


@pytest.mark.parametrize("content, expected", [
    (b"not json at all", "invalid JSON"),
    (b"", "empty file"),
    (b'{"version": 2, "indicators": {}}', "got version 2"),
    (b'[]', "got a JSON list"),
    (b'{"version": 1, "indicators": []}', "indicators: expected a JSON object"),
])
def test_a_store_that_is_not_a_store_is_one_line_exit_2(content: bytes, expected: str, tmp_path: Path, capsys) -> None:
    store_path = tmp_path / "store.json"
    store_path.write_bytes(content)
    feed = _write_feed(tmp_path / "feed.json", [GOOD])
    assert main(["intel", "import", str(feed), "--store", str(store_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    assert store_path.read_bytes() == content


# --- store entries a run must survive ----------------------------------------------------------


DOMAIN = NET_FEED[3]  # [domain-name:value = 'Update.Crane-Vendor.example'], the good indicator


def _entry(key: str, **changes: Any) -> dict[str, Any]:
    """A store entry matching the same name as DOMAIN, as an older import or a hand edit left it."""
    obj = indicator(key, "[domain-name:value = 'update.crane-vendor.example']")
    entry = {"id": obj["id"], "name": obj["name"], "pattern": obj["pattern"],
             "match": [{"type": "domain", "value": "update.crane-vendor.example"}],
             "valid_from": obj["valid_from"], "valid_until": None, "modified": obj["modified"], "revoked": False,
             "source": "file:old.json", "object": obj, "related": []}
    entry.update(changes)
    return entry


BAD_ENTRIES = {
    "never": (_entry("e-never", valid_from="never"), "valid_from"),
    "surrogate": (_entry("e-surrogate", object={**indicator("e-surrogate", "[domain-name:value = 'x.example']"),
                                                "description": "\ud800"}), "lone surrogate"),
    "catch-all": (_entry("e-all", match=[{"type": "ip", "value": "0.0.0.0/0"}]), "0.0.0.0/0 is broader"),
    "bad-port": (_entry("e-port", match=[{"type": "port", "side": "dst", "value": "x"}]), "port number"),
    "bad-net": (_entry("e-net", match=[{"type": "ip", "value": "10.0.0.999"}]), "IP address or network"),
    "no-list": (_entry("e-nolist", match="update.crane-vendor.example"), "match: expected a list"),
    "until": (_entry("e-until", valid_until="2026-10-01T00:00:00Z"), "valid_until"),
    "null-marking": (_entry("e-null", object={**indicator("e-null", "[domain-name:value = 'x.example']"),
                                              "object_marking_refs": None}), "object.object_marking_refs: null"),
}


def _hostile_store(path: Path) -> dict[str, str]:
    """A store holding every bad entry (keyed by id) and one good indicator; returns id -> reason fragment."""
    entries = {e["id"]: e for e, _ in BAD_ENTRIES.values()}
    entries["indicator--not-the-key"] = _entry("e-mismatch")  # its id differs from its key
    entries["not-an-entry"] = ["x"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "indicators": entries}, sort_keys=True))
    expect = {e["id"]: reason for e, reason in BAD_ENTRIES.values()}
    expect.update({"indicator--not-the-key": "id: expected the entry's key", "not-an-entry": "expected a store entry"})
    return expect


def test_unusable_store_entries_are_skipped_reported_and_kept(tmp_path: Path, capsys) -> None:
    store_path = tmp_path / "store.json"
    expect = _hostile_store(store_path)
    store = intel.load_store(store_path)
    assert {s.id: s.reason for s in store.skipped}.keys() == expect.keys()
    for s in store.skipped:
        assert expect[s.id] in s.reason, (s.id, s.reason)
    assert store.indicators == {} and store.match_domain("update.crane-vendor.example", "2026-11-20T00:00:00Z") == []
    # an import over it reports them, keeps them as found (no silent loss) and adds the good one
    feed = _write_feed(tmp_path / "feed.json", [GOOD])
    assert main(["intel", "import", str(feed), "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("store entry skipped") == len(expect) and "1 stored" in out
    saved = json.loads(store_path.read_text())["indicators"]
    assert set(saved) == {*expect, GOOD["id"]} and saved["not-an-entry"] == ["x"]


def _run_dir(tmp_path: Path, store_entries: bool = True) -> Path:
    """A zeek dns.log with three queries of a listed name, a store full of bad entries and
    a named bundle holding an unsupported indicator and a catch-all beside the good one."""
    from tests.test_parsers_zeek_dns import HEADER, NX, A

    (tmp_path / "zeek").mkdir()
    queries = [A.replace("1795162502.250000", f"{1795162502 + 30 * i}.250000") for i in range(3)]
    (tmp_path / "zeek" / "dns.log").write_text(HEADER + "\n".join([*queries, NX]) + "\n")
    bundle = strict_isac_bundle(DOMAIN)
    catch_all = {**indicator("catch-all", CATCH_ALL), "created": "2026-11-01T00:00:00.000Z",
                 "modified": "2026-11-01T00:00:00.000Z"}
    unsupported = {**catch_all, "id": deterministic_id("indicator", "isac-feed", "dga"),
                   "pattern": "[domain-name:value MATCHES '^[a-z]{12}\\\\.dga\\\\.example$']"}
    bundle["objects"] += [catch_all, unsupported]
    (tmp_path / "isac.json").write_text(json.dumps(bundle))
    if store_entries:
        _hostile_store(tmp_path / "intel" / "store.json")
    cfg = {
        "site": {"name": "Port of Example", "terminal": "T2"},
        "sources": [{"name": "dns", "format": "zeek_dns", "paths": ["zeek/dns.log"]}],
        "inventory": {"internal_networks": ["10.0.0.0/8"], "assets": [
            {"id": "sts01-cms", "kind": "cms", "addresses": ["10.30.1.20"], "zone": "crane-sts01"},
            {"id": "dns-01", "kind": "server", "addresses": ["10.40.0.53"], "zone": "ot-core"}]},
        "detections": {"threat_intel_match": {"params": {"bundles": ["isac.json"]}}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tmp_path / "config.yaml"


def test_validate_lists_every_entry_the_run_will_skip(tmp_path: Path, capsys) -> None:
    cfg = _run_dir(tmp_path)
    assert main(["validate", "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    bundle_key = "detections.threat_intel_match.params.bundles[0]: warning: isac.json: skipped "
    assert sum(bundle_key in line for line in lines) == 2
    assert any("indicator--" in line and "broader than the minimum prefix length" in line for line in lines)
    assert any("MATCHES on domain-name:value is not supported" in line for line in lines)
    assert sum(": intel.store: warning: intel/store.json: skipped " in line for line in lines) == len(BAD_ENTRIES) + 2
    assert all(line.startswith(f"{cfg}: ") for line in lines) and "OK" in captured.out


def test_a_run_skips_and_reports_unusable_intel_and_still_finds_the_match(tmp_path: Path, capsys) -> None:
    """Today a store entry with valid_from "never" or a lone surrogate makes every run fail,
    an unsupported indicator in a named bundle stops the run, and a catch-all matches every
    flow. Here the run succeeds with exactly the good indicator's finding, lists every
    skipped entry on stderr (one line each) and in summary.json, and its bundle validates."""
    from stix_export.validate import validate_bundle_file

    cfg = _run_dir(tmp_path)
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--output", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    skipped_lines = [line for line in err.splitlines() if ": skipped " in line]
    summary = json.loads((out / "summary.json").read_text())
    assert len(skipped_lines) == len(summary["intel"]["skipped"]) == len(BAD_ENTRIES) + 2 + 2
    assert summary["intel"]["indicators"] == 1
    for item in summary["intel"]["skipped"]:
        assert item["id"] and item["reason"] and item["key"] in ("intel.store", "detections.threat_intel_match.params.bundles[0]")
    assert summary["findings"]["per_detection"] == {"threat_intel_match": 1}
    (finding,) = [json.loads(line) for line in (out / "findings.jsonl").read_text().splitlines()]
    assert finding["evidence"][0]["fields"]["indicators"] == [DOMAIN["id"]]
    (bundle_path,) = sorted((out / "stix").glob("*.json"))
    assert validate_bundle_file(bundle_path) == []


@pytest.mark.parametrize("store_content, bundle_content, key", [
    (b"{not json", None, "intel.store"),
    (None, b"", "detections.threat_intel_match.params.bundles[0]"),
    (None, b"[]", "detections.threat_intel_match.params.bundles[0]"),
])
def test_an_intel_file_that_cannot_be_read_is_a_config_error(store_content: bytes | None, bundle_content: bytes | None,
                                                             key: str, tmp_path: Path, capsys) -> None:
    cfg = _run_dir(tmp_path, store_entries=False)
    if store_content is not None:
        (tmp_path / "intel").mkdir()
        (tmp_path / "intel" / "store.json").write_bytes(store_content)
    if bundle_content is not None:
        (tmp_path / "isac.json").write_bytes(bundle_content)
    for argv in (["validate", "--config", str(cfg)], ["run", "--config", str(cfg), "--output", str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"{cfg}: {key}: ") and "Traceback" not in err, err


# --- seeded mutation: whatever import keeps, a run can use ---------------------------------------


HOSTILE_VALUES: list[Any] = [
    None, "", "never", "\ud800", "a\udfffb", float("nan"), float("inf"), -1, 10 ** 40, True, [], {}, ["x"],
    {"a": {"b": {"c": "d"}}}, _nested(50), "2026-13-01T00:00:00Z", "2026-11-01T00:00:00", "2026-11-01T00:00:00+00:00",
    "2026-11-01T00:00:00.123456789Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "\x00", "\u00a0\u3000", "2.0",
    "indicator--00000000-0000-4000-8000-000000000000", "indicator--x",
    CATCH_ALL, "[ipv6-addr:value ISSUBSET '::/0']", "[ipv4-addr:value ISSUBSET '10.0.0.0/15']",
    "[ipv4-addr:value = '198.51.100.7']", "[network-traffic:dst_port = 4444]", "[domain-name:value = 'x\ud800.example']",
    "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_port = 4444]", "[ipv4-addr:value = ",
    "[ipv4-addr:value IN ('198.51.100.7', '0.0.0.0/0')]", "sigma", "stix",
]
FIELDS = ["id", "spec_version", "created", "modified", "name", "description", "pattern", "pattern_type",
          "valid_from", "valid_until", "revoked", "indicator_types", "created_by_ref", "object_marking_refs",
          "x_custom", "lang", "confidence"]


def test_seeded_mutations_never_crash_and_only_usable_entries_are_stored(tmp_path: Path) -> None:
    """400 indicators, each a valid one with 1-3 properties set to a hostile value or dropped:
    import never raises and accounts for every object (stored, unchanged, revoked or refused
    with a reason); the saved store re-loads with nothing to skip (a run can use all of it);
    every stored object serializes as UTF-8 (a bundle re-sharing it can be written); and
    matching over it never raises."""
    import random

    rnd = random.Random(10)
    objects = []
    for i in range(400):
        obj = indicator(f"m{i}", rnd.choice(["[ipv4-addr:value = '198.51.100.7']", "[network-traffic:dst_port = 4444]",
                                             "[domain-name:value = 'c2.example']"]))
        for _ in range(rnd.randint(1, 3)):
            key = rnd.choice(FIELDS)
            if rnd.random() < 0.2:
                obj.pop(key, None)
            else:
                obj[key] = rnd.choice(HOSTILE_VALUES)
        objects.append(obj)
    store = intel.IntelStore()
    report = store.import_objects(objects, "fuzz")
    assert report.indicators + len(report.refused_other) == len(objects)
    assert report.stored + report.unchanged + report.revoked + len(report.refused) == report.indicators
    assert all(reason for _, reason in report.refused)
    assert 0 < report.stored < report.indicators  # the mutations hit both ways
    path = store.save(tmp_path / "store.json")
    again = intel.load_store(path)
    assert again.skipped == [] and again.indicators.keys() == store.indicators.keys()
    for entry in again.indicators.values():
        json.dumps(entry, ensure_ascii=False).encode("utf-8")
    hosts = ["198.51.100.7", "10.30.1.10", "2001:db8::1", "0.0.0.0", "not-an-ip"]
    for _ in range(200):
        again.match_event({"time": "2026-11-20T00:00:00Z", "kind": "flow", "src_ip": rnd.choice(hosts),
                           "dst_ip": rnd.choice(hosts), "dst_port": rnd.choice([4444, 443, None]),
                           "action": "dns.query", "target": rnd.choice(["c2.example", "x.example"])})
