"""Sharing a real run: both profile sets on disk, then TAXII 2.1 push with the real clients.

One generated terminal is run through the batch pipeline with the generator's config (an
``internal`` profile at TLP:RED, an ``isac`` profile at TLP:AMBER with redaction, run
reports on). Then ``cranewatch share`` pushes the ISAC set to medallion (MemoryBackend,
127.0.0.1, in this process) with taxii2-client, the test pulls everything back and compares,
and a second push of the unchanged bundles is a reported no-op.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

# medallion is in setup.py's test extra (make test installs it): a missing one fails, never skips.
from taxii2client.v21 import Collection, as_pages  # noqa: E402

from pipelines.batch import run_batch  # noqa: E402
from pipelines.cli import main  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.generate import generate  # noqa: E402
from pipelines.summary import build_summary, write_summary  # noqa: E402
from stix_export import tlp  # noqa: E402
from stix_export.redact import strings, value_pattern  # noqa: E402
from stix_export.share import collection_url, profile_files, received_ids  # noqa: E402
from stix_export.validate import validate_bundle_file  # noqa: E402
from stix_export.bundle import incident_bundle  # noqa: E402
from stix_export.redact import load_secret  # noqa: E402
from stix_export.writer import serialize_bundle, write_bundle  # noqa: E402
from transforms.model import Incident  # noqa: E402
from tests import taxii_server  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_out(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("share")
    corpus, out = root / "corpus", root / "out"
    generate(str(corpus), events=8000, seed=11)
    cfg = load_config(corpus / "config.yaml")
    write_summary(build_summary(cfg, run_batch(cfg, str(out))), str(out))
    return corpus, out


@pytest.fixture(scope="module")
def server() -> Iterator[taxii_server.TaxiiServer]:
    yield from taxii_server.serve()


def _bundles(d: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]


def test_the_run_writes_an_internal_and_an_isac_set(run_out: tuple[Path, Path]) -> None:
    corpus, out = run_out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profiles"] == {
        "internal": {"dir": "stix", "tlp": "red", "bundles": summary["bundles"], "redacted": False},
        "isac": {"dir": "stix-isac", "tlp": "amber", "bundles": summary["bundles"], "redacted": True},
    }
    assert summary["bundles"] > 0
    internal, isac = out / "stix", out / "stix-isac"
    # one bundle per incident in each set (redacted files are named by the keyed incident reference)
    assert len(list(internal.glob("*.json"))) == len(list(isac.glob("*.json"))) == summary["bundles"]
    for path in [*internal.glob("*.json"), *isac.glob("*.json"), *(out / "reports").glob("*.json")]:
        assert validate_bundle_file(path) == [], path
    # Every cranewatch object is AMBER; a matched ISAC indicator (scenario 11) comes with the
    # ISAC's own marking (TLP:GREEN in the generated corpus), never a more restrictive one.
    received = {o["id"] for o in json.loads((corpus / "intel" / "isac-indicators.json").read_text())["objects"]}
    for b in _bundles(isac):
        markings = {o["id"] for o in b["objects"] if o["type"] == "marking-definition"}
        assert tlp.tlp_marking_id("amber") in markings
        assert markings <= {tlp.tlp_marking_id("amber"), tlp.tlp_marking_id("green")}
        for o in b["objects"]:
            if o["type"] != "marking-definition" and o["id"] not in received:
                assert o["object_marking_refs"] == [tlp.tlp_marking_id("amber")], o["id"]


def test_no_internal_value_leaves_in_the_isac_set(run_out: tuple[Path, Path]) -> None:
    corpus, out = run_out
    cfg = load_config(corpus / "config.yaml")
    secret = (corpus / "export.secret").read_text().strip()
    values = {a for asset in cfg.inventory.assets for a in asset.addresses if a.startswith(("10.", "172.", "192.168."))}
    values |= {acc for v in cfg.vendors for acc in v.accounts}
    values |= {a.id for a in cfg.inventory.assets} | {a.crane for a in cfg.inventory.assets if a.crane}
    incidents = [json.loads(l) for l in (out / "incidents.jsonl").read_text().splitlines()]
    values |= {a for i in incidents for a in i["addresses"] if a.startswith(("10.", "172.", "192.168."))}
    values |= {a for i in incidents for a in i["accounts"]}
    seen_in_internal: set[str] = set()
    for b in _bundles(out / "stix"):
        seen_in_internal |= {v for s in strings(b) for v in values if re.search(value_pattern(v), s)}
    assert seen_in_internal, "the internal set should show the values the ISAC set hides"
    for b in [*_bundles(out / "stix-isac"), json.loads((out / "reports" / "isac.json").read_text())]:
        for s in strings(b):
            assert secret not in s
            for v in values:
                assert not re.search(value_pattern(v), s), (v, s[:100])


def test_the_run_report_references_every_grouping(run_out: tuple[Path, Path]) -> None:
    _, out = run_out
    for name, d in (("internal", "stix"), ("isac", "stix-isac")):
        report = next(o for o in json.loads((out / "reports" / f"{name}.json").read_text())["objects"] if o["type"] == "report")
        groupings = {o["id"] for b in _bundles(out / d) for o in b["objects"] if o["type"] == "grouping"}
        assert set(report["object_refs"]) == groupings


def test_the_run_report_is_self_contained(run_out: tuple[Path, Path]) -> None:
    """Every reference in reports/<profile>.json (the report's object_refs, the groupings'
    object_refs, every *_ref/*_refs) names an object inside that same file."""
    _, out = run_out
    for name in ("internal", "isac"):
        objects = json.loads((out / "reports" / f"{name}.json").read_text())["objects"]
        ids = {o["id"] for o in objects}
        assert len(ids) == len(objects), "each object once"
        types = {o["type"] for o in objects}
        assert {"report", "grouping", "incident", "sighting"} <= types

        def refs(value: Any, key: str = "") -> list[str]:
            if isinstance(value, dict):
                return [r for k, v in value.items() for r in refs(v, k)]
            if isinstance(value, list):
                return [r for v in value for r in refs(v, key)]
            return [value] if isinstance(value, str) and key.endswith(("_ref", "_refs")) and "--" in value else []

        dangling = sorted({r for o in objects for r in refs(o)} - ids)
        # a received indicator's creator may not have come with it: the incident bundles leave
        # that reference out, so nothing may dangle here either
        assert dangling == [], (name, dangling[:5])


#: medallion 3.0.0 answers 500 to any Get Objects page holding an ``extension-definition``: its
#: find_att() takes the object's own ``version`` property ("1.0", required on extension
#: definitions) for a timestamp. Those objects are checked through the manifest and the
#: server's store instead; every other type is pulled back over TAXII.
MEDALLION_UNPULLABLE = {"extension-definition"}


def _pull(url: str, types: set[str]) -> dict[tuple[str, str | None], dict[str, Any]]:
    col = Collection(url, user=taxii_server.USER, password=taxii_server.PASSWORD)
    objs: dict[tuple[str, str | None], dict[str, Any]] = {}
    wanted = ",".join(sorted(types - MEDALLION_UNPULLABLE))
    for page in as_pages(col.get_objects, per_request=100, version="all", type=wanted):
        for o in page.get("objects", []):
            objs[(o["id"], o.get("modified") or o.get("created"))] = o
    for page in as_pages(col.get_manifest, per_request=100, version="all", type=",".join(sorted(MEDALLION_UNPULLABLE))):
        for rec in page.get("objects", []):
            objs[(rec["id"], rec["version"])] = {"manifest": rec}
    return objs


def _stored(server: taxii_server.TaxiiServer, object_id: str) -> dict[str, Any]:
    collections = server.backend.data[taxii_server.API_ROOT]["collections"]
    col = next(c for c in collections if c["id"] == taxii_server.COLLECTION_ID)
    return next(o for o in col["objects"] if o["id"] == object_id)


def test_share_pushes_pulls_back_equal_and_repeats_as_noop(
    run_out: tuple[Path, Path], server: taxii_server.TaxiiServer, monkeypatch, capsys
) -> None:
    _, out = run_out
    monkeypatch.setenv("CRANEWATCH_TAXII_USER", taxii_server.USER)
    monkeypatch.setenv("CRANEWATCH_TAXII_PASSWORD", taxii_server.PASSWORD)
    args = ["share", "--taxii", server.url, "--collection", taxii_server.COLLECTION_ID, "--output", str(out), "--profile", "isac"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert first.out.startswith("pushed ") and taxii_server.PASSWORD not in first.out + first.err

    expected: dict[tuple[str, str | None], dict[str, Any]] = {}
    for path in profile_files(out, "isac"):
        objects = json.loads(path.read_text())["objects"]
        others = received_ids(objects)  # the ISAC's own indicators and identity are not pushed back
        for o in objects:
            if o["id"] not in others:
                expected[(o["id"], o.get("modified") or o.get("created"))] = o
    assert "created by others (received threat intel) not pushed back" in first.out
    assert any(p.parent.name == "reports" for p in profile_files(out, "isac"))
    types = {o["type"] for o in expected.values()}
    pulled = _pull(collection_url(server.url, taxii_server.COLLECTION_ID), types)
    assert set(pulled) == set(expected)
    for key, obj in expected.items():
        if obj["type"] in MEDALLION_UNPULLABLE:
            assert _stored(server, obj["id"]) == obj, key
        else:
            assert pulled[key] == obj, key

    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.startswith("no-op: all ") and "nothing sent" in second
    assert len(_pull(collection_url(server.url, taxii_server.COLLECTION_ID), types)) == len(expected)


def _revised(incident: Incident) -> Incident:
    """The same incident after one more hit on its first finding, a minute after its end."""
    f = incident.findings[0]
    later = (dt.datetime.fromisoformat(max(incident.last_seen, f.last_seen).replace("Z", "+00:00"))
             + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    f2 = dataclasses.replace(f, count=f.count + 1, last_seen=later)
    return dataclasses.replace(incident, findings=(f2, *incident.findings[1:]), last_seen=later, modified=later)


def test_a_revised_push_sends_only_the_changed_objects(
    run_out: tuple[Path, Path], server: taxii_server.TaxiiServer, monkeypatch, capsys, tmp_path: Path
) -> None:
    corpus, out = run_out
    monkeypatch.setenv("CRANEWATCH_TAXII_USER", taxii_server.USER)
    monkeypatch.setenv("CRANEWATCH_TAXII_PASSWORD", taxii_server.PASSWORD)
    args = ["share", "--taxii", server.url, "--collection", taxii_server.COLLECTION_ID, "--profile", "isac"]
    assert main([*args, "--output", str(out)]) == 0  # the run as it was (a no-op if already pushed)
    capsys.readouterr()
    url = collection_url(server.url, taxii_server.COLLECTION_ID)
    held = set(_pull(url, set(_TYPES)))

    # late data revises one incident: rebuild its ISAC bundle in a copy of the run's output
    revised_out = tmp_path / "revised"
    shutil.copytree(out, revised_out)
    cfg = load_config(corpus / "config.yaml")
    isac = next(p for p in cfg.export.effective_profiles() if p.name == "isac")
    incident = Incident.from_dict(json.loads((out / "incidents.jsonl").read_text().splitlines()[0]))
    old = incident_bundle(incident, cfg, isac, load_secret(cfg))
    new = incident_bundle(_revised(incident), cfg, isac, load_secret(cfg))
    path = write_bundle(new, revised_out, "stix-isac")
    assert (out / "stix-isac" / path.name).read_text() == serialize_bundle(old)  # the file it replaces
    before = {(o["id"], o.get("modified")) for o in old["objects"]}
    changed = [o for o in new["objects"] if (o["id"], o.get("modified")) not in before]
    assert {o["type"] for o in changed} <= {"observed-data", "sighting", "incident", "grouping"}
    assert {"observed-data", "incident", "grouping"} <= {o["type"] for o in changed}
    assert len(changed) < len(new["objects"]) / 3, (len(changed), len(new["objects"]))

    assert main([*args, "--output", str(revised_out)]) == 0
    pushed = capsys.readouterr().out
    assert pushed.startswith(f"pushed {len(changed)} new object(s) "), pushed
    after = set(_pull(url, set(_TYPES)))
    assert after - held == {(o["id"], o["modified"]) for o in changed}
    assert main([*args, "--output", str(revised_out)]) == 0  # and the revision once only
    assert capsys.readouterr().out.startswith("no-op: all ")


#: every object type a run's bundles hold, for pulling a collection back
_TYPES = ("attack-pattern", "course-of-action", "domain-name", "extension-definition", "grouping", "identity",
          "incident", "indicator", "infrastructure", "ipv4-addr", "ipv6-addr", "location", "mac-addr",
          "marking-definition", "network-traffic", "note", "observed-data", "relationship", "report", "sighting",
          "user-account")


def test_share_credentials_never_on_the_command_line_or_in_output(
    run_out: tuple[Path, Path], server: taxii_server.TaxiiServer, monkeypatch, capsys, tmp_path: Path
) -> None:
    _, out = run_out
    monkeypatch.delenv("CRANEWATCH_TAXII_USER", raising=False)
    monkeypatch.delenv("CRANEWATCH_TAXII_PASSWORD", raising=False)
    base = ["share", "--taxii", server.url, "--collection", taxii_server.COLLECTION_ID, "--output", str(out)]
    assert main([*base, "--password", "x"]) == 2  # no such option
    wrong = tmp_path / "creds"
    wrong.write_text(f"{taxii_server.USER}:wrong-password-123\n")
    assert main([*base, "--profile", "isac", "--credentials-file", str(wrong)]) == 1
    err = capsys.readouterr()
    assert "wrong-password-123" not in err.out + err.err
    good = tmp_path / "good"
    good.write_text(f"{taxii_server.USER}:{taxii_server.PASSWORD}\n")
    # The first profile (internal) is TLP:RED in the generated config: refused unless asked for.
    assert main([*base, "--credentials-file", str(good)]) == 2
    assert "TLP:RED" in capsys.readouterr().err
    assert main([*base, "--credentials-file", str(good), "--allow-red"]) == 0
    assert taxii_server.PASSWORD not in capsys.readouterr().out
    assert main([*base, "--profile", "nope"]) == 2


def test_every_profile_set_is_byte_identical_on_a_second_run(run_out: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, out = run_out
    again = tmp_path / "again"
    cfg = load_config(corpus / "config.yaml")
    run_batch(cfg, str(again))
    for sub in ("stix", "stix-isac", "reports"):
        names = sorted(p.name for p in (out / sub).glob("*.json"))
        assert names and names == sorted(p.name for p in (again / sub).glob("*.json")), sub
        for name in names:
            assert (out / sub / name).read_bytes() == (again / sub / name).read_bytes(), (sub, name)
