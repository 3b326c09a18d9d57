"""Redaction on a real run: the attacker's view of the ISAC set, and runs from two folders.

One generated corpus is copied to two folders and run through the batch pipeline from each
(the generator's config: an ``internal`` profile at TLP:RED, an ``isac`` profile at
TLP:AMBER with every redaction rule on).

* The attacker holds the ISAC bundles and knows the generator: every crane, asset,
  account and tunnel address it can produce, and the exact text of every log line the
  evidence stands for, except the redacted values. Filling the redacted fields with every
  combination and hashing each candidate (SHA-256, as a plain evidence hash would allow)
  must match nothing in the bundle; the same attack on the internal set (plain hashes)
  recovers every value, so the attack is real.
* Both runs give byte-identical bundles in every profile, and no bundle names a folder of
  the host.
"""
from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.generate.terminal import build_terminal
from stix_export.redact import Redactor, load_secret, strings, value_pattern

pytestmark = pytest.mark.slow

EVENTS = 3000


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("redaction-run")
    first = root / "site-a" / "corpus"
    generate(str(first), events=EVENTS, seed=7)
    second = root / "elsewhere" / "deeper" / "corpus"
    shutil.copytree(first, second)
    for corpus in (first, second):
        run_batch(load_config(corpus / "config.yaml"), str(corpus.parent / "out"))
    return first, first.parent / "out", second.parent / "out"


def _bundles(d: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(d.glob("*.json"))}


def value_space() -> dict[str, list[tuple[str, ...]]]:
    """What the generator can put in a redacted field, by class. A crane is one choice that
    fixes all its spellings, asset ids and addresses together (they travel together in a line)."""
    term = build_terminal()
    cranes = [(c.id, c.slug, c.plc_id, c.cms_id, c.hmi_id, c.plc, c.cms, c.hmi) for c in term.cranes]
    accounts = sorted({*(a for v in term.vendors for a in v.accounts), *(e for e, _ in term.engineers), *term.operators})
    tunnels = sorted({t for v in term.vendors for t in (*v.benign_tunnels, *v.scenario_tunnels)})
    hosts = [(h.id, h.address) for h in (*term.engineering, term.jump_host, term.historian, term.ntp, term.vpn_gateway,
                                          *term.it_servers)]
    return {"crane": cranes, "account": [(a,) for a in accounts], "tunnel": [(t,) for t in tunnels], "host": hosts}


def _present(line: str, value: str) -> bool:
    return re.search(value_pattern(value), line) is not None


def candidates(line: str, space: dict[str, list[tuple[str, ...]]]) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Every line the generator's value space gives for ``line``'s template, and the truth."""
    truth: dict[str, tuple[str, ...]] = {}
    for cls, members in space.items():
        for m in members:
            if any(_present(line, v) for v in m):
                truth[cls] = m
                break
    template = line
    slots: list[tuple[str, int]] = []
    for cls, m in truth.items():
        for i, v in sorted(enumerate(m), key=lambda x: -len(x[1])):
            if _present(template, v):
                template = re.sub(value_pattern(v), "\x00%s:%d\x00" % (cls, i), template)
                slots.append((cls, i))
    classes = sorted(truth)
    out = []
    for combo in itertools.product(*(space[c] for c in classes)):
        choice = dict(zip(classes, combo))
        out.append(re.sub("\x00([a-z]+):([0-9]+)\x00", lambda m: choice[m.group(1)][int(m.group(2))], template))
    return out, truth


def _read_line(corpus: Path, ref: str) -> str:
    path, _, line = ref.rpartition(":")
    full = corpus / path
    opener = gzip.open if full.suffix == ".gz" else open
    with opener(full, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for n, text in enumerate(fh, 1):
            if n == int(line):
                return text.rstrip("\r\n")
    raise AssertionError(ref)


def _digests(bundle: dict[str, Any]) -> set[str]:
    """Every 64-hex-digit string in the bundle, wherever it sits (hashes, ids, texts)."""
    return {m.lower() for s in strings(bundle) for m in re.findall(r"[0-9a-fA-F]{64}", s)}


def _pairs(corpus: Path, out: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """internal bundle file name -> (internal bundle, ISAC bundle of the same incident), found
    the way the port finds it: the keyed incident reference names the ISAC file."""
    cfg = load_config(corpus / "config.yaml")
    red = Redactor(next(p for p in cfg.export.effective_profiles() if p.name == "isac"), cfg, load_secret(cfg))
    internal, isac = _bundles(out / "stix"), _bundles(out / "stix-isac")
    assert len(internal) == len(isac)
    return {name: (b, isac[red.incident_ref(name.removesuffix(".json")) + ".json"]) for name, b in internal.items()}


def test_brute_forcing_the_generators_values_against_the_isac_set_finds_nothing(runs) -> None:
    corpus, out, _ = runs
    pairs = _pairs(corpus, out)
    internal = {name: p[0] for name, p in pairs.items()}
    isac = {name: p[1] for name, p in pairs.items()}
    assert isac
    space = value_space()
    attacked = recovered = 0
    classes_seen: set[str] = set()
    for name, plain in internal.items():
        refs = {r["description"]: r["hashes"]["SHA-256"] for o in plain["objects"]
                for r in o.get("external_references", []) if r.get("source_name") == "cranewatch-evidence"}
        red_digests, plain_digests = _digests(isac[name]), _digests(plain)
        for ref, sha in sorted(refs.items())[:6]:
            line = _read_line(corpus, ref)
            assert hashlib.sha256(line.encode()).hexdigest() == sha  # the evidence hash is the line's
            lines, truth = candidates(line, space)
            if not truth:
                continue
            attacked += 1
            classes_seen |= set(truth)
            hashes = {hashlib.sha256(c.encode()).hexdigest(): c for c in lines}
            # against the internal set the attack works: the true line is among the guesses
            assert hashes.keys() & plain_digests == {sha}
            recovered += 1
            # against the ISAC set it finds nothing, for any guess
            assert not hashes.keys() & red_digests, (name, ref)
    assert attacked >= 10 and recovered == attacked
    assert classes_seen >= {"crane", "account", "tunnel"}
    # and the ISAC set carries keyed digests, named as such
    for b in isac.values():
        for o in b["objects"]:
            for r in o.get("external_references", []):
                if r.get("source_name") == "cranewatch-evidence":
                    assert "hashes" not in r and re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", r["external_id"])


def test_no_id_of_the_isac_set_confirms_a_guess_of_the_ports_incident_or_finding_ids(runs) -> None:
    """The port's incident and finding ids are plain hashes of what a detection keyed on (an
    account, a tunnel address, a log location) and a time the bundle shows: an attacker who
    guessed them right must still have nothing to check the guess against."""
    from stix_export.ids import deterministic_id

    corpus, out, _ = runs
    incidents = {i["incident_id"]: i for i in map(json.loads, (out / "incidents.jsonl").read_text().splitlines())}
    for name, (plain, red) in _pairs(corpus, out).items():
        [inc] = [o for o in plain["objects"] if o["type"] == "incident"]
        incident_id = inc["external_references"][0]["external_id"]
        finding_ids = [f["finding_id"] for f in incidents[incident_id]["findings"]]
        text = json.dumps(red)
        assert incident_id not in text and not any(f in text for f in finding_ids)
        ids = {o["id"] for o in red["objects"]} | {red["id"]}
        guesses = {deterministic_id(t, "profile:isac", incident_id, *key) for t, key in (
            ("incident", ("incident",)), ("grouping", ("grouping",)),
            *(("observed-data", ("finding", f)) for f in finding_ids), *(("sighting", ("finding", f)) for f in finding_ids))}
        assert not guesses & ids, name
        # the internal set keeps the plain derivation (the check above can fail)
        assert deterministic_id("incident", incident_id, "incident") == inc["id"]


def test_runs_from_two_folders_give_byte_identical_bundles(runs) -> None:
    corpus, out_a, out_b = runs
    for sub in ("stix", "stix-isac", "reports"):
        a, b = sorted((out_a / sub).glob("*.json")), sorted((out_b / sub).glob("*.json"))
        assert a and [p.name for p in a] == [p.name for p in b], sub
        for pa, pb in zip(a, b):
            assert pa.read_bytes() == pb.read_bytes(), (sub, pa.name)
    # evidence points into the corpus relative to the config's folder, never at the host's folders
    for p in (out_a / "stix").glob("*.json"):
        text = p.read_text(encoding="utf-8")
        assert str(corpus.parent) not in text and "/tmp" not in text, p.name
        refs = [r["description"] for o in json.loads(text)["objects"] for r in o.get("external_references", [])
                if r.get("source_name") == "cranewatch-evidence"]
        assert refs and all(re.fullmatch(r"(zeek|cms|fortigate)/[^/]+:[0-9]+", r) for r in refs), refs[:3]
