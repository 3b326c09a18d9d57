"""The sample-data generator: deterministic, self-consistent, and benign where it must be.

The checks read the generated files back with simple code of their own (not the project's
parsers), so a generator bug cannot hide behind a matching parser bug. The round-trip test
at the end runs the real parsers when they are all registered.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from pipelines.config import Config
from pipelines.generate import generate

UTC = dt.timezone.utc
WRITE = re.compile(r"^(WRITE_|MASK_WRITE|READ_WRITE)")
OT_KINDS = {"crane_plc", "cms", "hmi"}


# --- reading our own outputs ----------------------------------------------------------------


def _open_text(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8").splitlines()


def read_zeek(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Header directives and rows (field name → text) of a Zeek TSV log."""
    header: dict[str, str] = {}
    rows = []
    fields: list[str] = []
    for line in _open_text(path):
        if line.startswith("#"):
            key, _, value = line[1:].partition("\t") if "\t" in line else line[1:].partition(" ")
            header[key] = value
            if key == "fields":
                fields = value.split("\t")
            continue
        rows.append(dict(zip(fields, line.split("\t"))))
    return header, rows


def conn_rows(corpus: Path) -> Iterator[dict[str, str]]:
    for p in sorted((corpus / "zeek").glob("conn*.log*")):
        yield from read_zeek(p)[1]


def fortigate(corpus: Path) -> list[dict[str, str]]:
    out = []
    for line in _open_text(corpus / "fortigate" / "fortigate.log"):
        out.append({k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)})
    return out


def ts_of(text: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(text), UTC)


def vpn_time(rec: dict[str, str]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(rec["eventtime"]) // 1000 / 1e6, UTC)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_cfg(corpus: Path) -> Config:
    raw = yaml.safe_load((corpus / "config.yaml").read_text(encoding="utf-8"))
    return Config.model_validate({**raw, "base_dir": str(corpus)})


def in_window(cfg: Config, vendor: str, t: dt.datetime) -> bool:
    for w in cfg.maintenance_windows:
        if w.vendor != vendor:
            continue
        if w.start is not None and w.start <= t < w.end:
            return True
        if w.days and ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[t.weekday()] in w.days:
            if w.from_ <= t.strftime("%H:%M") < w.to:
                return True
    return False


def scenario_covers(truth: dict[str, Any], kind: int, t: dt.datetime, *addresses: str) -> bool:
    """Is ``t`` inside a planted scenario of ``kind`` that names all ``addresses``?"""
    for s in truth["scenarios"]:
        if s["scenario"] == kind and parse_time(s["start"]) <= t <= parse_time(s["end"]):
            if set(addresses) <= set(s["addresses"]) | set(s["accounts"]):
                return True
    return False


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate(str(out), events=20000, seed=7)
    return out


@pytest.fixture(scope="module")
def truth(corpus: Path) -> dict[str, Any]:
    return json.loads((corpus / "truth.json").read_text())


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- tests ----------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(str(a), events=4000, seed=11)
    generate(str(b), events=4000, seed=11)
    generate(str(c), events=4000, seed=12)
    assert _hashes(a) == _hashes(b)
    assert _hashes(a) != _hashes(c)


def test_small_chunks_stream_the_same_complete_files(corpus: Path, truth: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Draws and writes in chunks of a few hundred rows give the default corpus byte for
    byte, every file written in many bounded writes, complete and with its exact count."""
    from pipelines.generate import columns, writers

    monkeypatch.setattr(columns, "DRAW_CHUNK", 301)
    monkeypatch.setattr(writers, "CHUNK", 257)
    writes: dict[str, list[int]] = {}
    real_init, real_write = writers._Sink.__init__, writers._Sink.write

    def init(self: Any, path: str, compress: bool) -> None:
        real_init(self, path, compress)
        self.name = Path(path).relative_to(tmp_path).as_posix()

    def write(self: Any, data: bytes) -> None:
        writes.setdefault(self.name, []).append(data.count(b"\n") - data.count(b"\n#") - data.startswith(b"#"))
        real_write(self, data)

    monkeypatch.setattr(writers._Sink, "__init__", init)
    monkeypatch.setattr(writers._Sink, "write", write)
    generate(str(tmp_path), events=20000, seed=7)
    assert _hashes(tmp_path) == _hashes(corpus)
    assert max(n for counts in writes.values() for n in counts) <= 257
    for name in ("zeek/conn.log", "zeek/modbus.log", "zeek/dns.log", "cms/cms-events.jsonl"):
        assert len([n for n in writes[name] if n]) >= 3, name  # several chunks of data lines
        assert sum(writes[name]) == truth["files"][name]
    for name, n in truth["files"].items():
        lines = _open_text(tmp_path / name)
        assert len([line for line in lines if not line.startswith("#")]) == n, name
        if name.endswith(".gz"):
            assert lines[-1].startswith("#close"), name


def test_regenerating_over_a_bigger_corpus_leaves_no_stale_files(tmp_path: Path) -> None:
    generate(str(tmp_path), events=400_000, seed=1)
    info = generate(str(tmp_path), events=3000, seed=1)
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == set(info["files"]) | {"config.yaml", "truth.json", "export.secret", "intel/isac-indicators.json",
                                            "geo/country-lite.csv"}


def test_config_validates(corpus: Path) -> None:
    cfg = load_cfg(corpus)
    assert cfg.site.terminal == "T3"
    assert {s.format for s in cfg.sources} == {"zeek_conn", "zeek_modbus", "zeek_dns", "zeek_s7comm", "zeek_cip",
                                               "cms_events", "fortigate_vpn"}
    from pipelines.config import resolve_sources

    for src in resolve_sources(cfg):
        assert src.files, f"{src.name} matches no generated file"
    kinds = {a.kind for a in cfg.inventory.assets}
    assert {"crane_plc", "cms", "hmi", "engineering_workstation", "jump_host", "vpn_gateway"} <= kinds
    try:
        from transforms.parsers import PARSERS
    except ImportError:
        return
    if {s.format for s in cfg.sources} <= set(PARSERS):  # every parser exists: full check
        from pipelines.config import load_config

        load_config(corpus / "config.yaml")


def test_truth_lists_each_scenario_inside_the_corpus(corpus: Path, truth: dict[str, Any]) -> None:
    cfg = load_cfg(corpus)
    assets = {a.id: a.kind for a in cfg.inventory.assets}
    start, end = parse_time(truth["start"]), parse_time(truth["end"])
    assert {s["scenario"] for s in truth["scenarios"]} == set(range(1, 12))
    assert len({s["id"] for s in truth["scenarios"]}) == len(truth["scenarios"])
    from pipelines.generate.scenarios import EXPECTED, NEW_MASTER_KINDS

    vendor_accounts = {a: v.name for v in cfg.vendors for a in v.accounts}
    spans = []
    for s in truth["scenarios"]:
        a, b = parse_time(s["start"]), parse_time(s["end"])
        assert start <= a <= b < end, s["id"]
        kind = s["id"][1:].split("-")[0]
        extra = ["modbus_new_master"] if kind in NEW_MASTER_KINDS and a - start >= dt.timedelta(minutes=70) else []
        assert s["expected_detections"] == EXPECTED[kind] + extra, s["id"]
        assert (s["asset"] is None) == (s["scenario"] in (2, 3, 9, 11)), s["id"]
        if s["asset"]:
            assert assets[s["asset"]] in ({"crane_plc", "cms"} if s["scenario"] in (1, 10) else {"crane_plc"})
        for acct in s["accounts"]:
            if acct in vendor_accounts:
                assert not in_window(cfg, vendor_accounts[acct], a)
        crane = s["asset"].split("-")[0] if s["asset"] else None
        spans.append((a, b, crane, set(s["accounts"]) | set(s["addresses"]), s["id"]))
    # Scenarios side by side (one slot) share no crane, account or address; the same crane
    # or account is reused only in another slot, more than the correlation gap later.
    for i, (a1, b1, c1, e1, id1) in enumerate(spans):
        for a2, b2, c2, e2, id2 in spans[i + 1:]:
            if a1 <= b2 + dt.timedelta(minutes=30) and a2 <= b1 + dt.timedelta(minutes=30):
                assert not (c1 and c1 == c2) and not (e1 & e2), (id1, id2)


def test_record_counts_match_the_lines_written(corpus: Path, truth: dict[str, Any]) -> None:
    assert truth["events"] == 20000
    counted = {}
    for rel in truth["files"]:
        counted[rel] = sum(1 for l in _open_text(corpus / rel) if l and not l.startswith("#"))
    assert counted == truth["files"]
    assert sum(truth["records"].values()) == truth["events"] == sum(counted.values())
    assert set(truth["records"]) == {"zeek_conn", "zeek_modbus", "zeek_dns", "zeek_s7comm", "zeek_cip", "cms_events",
                                     "fortigate_vpn"}


def test_zeek_files_look_like_zeek(corpus: Path) -> None:
    archives = sorted((corpus / "zeek").glob("conn.*.log.gz"))
    assert archives and (corpus / "zeek" / "conn.log").exists()
    for p in [*archives, corpus / "zeek" / "conn.log"]:
        lines = _open_text(p)
        assert lines[0] == "#separator \\x09"
        assert lines[1:5] == ["#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn"]
        assert lines[6].startswith("#fields\tts\tuid\tid.orig_h") and lines[7].startswith("#types\ttime\tstring")
        assert lines[-1].startswith("#close\t") == (p.suffix == ".gz")  # the current file is still open
        header, rows = read_zeek(p)
        opened = dt.datetime.strptime(header["open"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)
        if p.suffix == ".gz":
            assert p.name == f"conn.{header['open']}.log.gz"
        stamps = [r["ts"] for r in rows]
        assert all(re.fullmatch(r"\d{10}\.\d{6}", s) for s in stamps)
        assert stamps == sorted(stamps, key=float)
        assert opened <= ts_of(stamps[0]) and ts_of(stamps[-1]) < opened + dt.timedelta(hours=1)
        assert all(len(r) == 21 for r in rows)
    fixture = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "zeek-icsnpp-modbus" / "modbus_detailed.log"
    ours = _open_text(corpus / "zeek" / "modbus_detailed.log")
    if fixture.exists():
        theirs = fixture.read_text().splitlines()
        assert [l for l in ours if l.startswith(("#fields", "#types"))] == \
               [l for l in theirs if l.startswith(("#fields", "#types"))]


def test_every_modbus_transaction_has_its_conn_flow(corpus: Path) -> None:
    conns = {r["uid"]: r for r in conn_rows(corpus)}
    assert len(conns) == sum(1 for _ in conn_rows(corpus))  # uids are unique
    for name in ("modbus.log", "modbus_detailed.log"):
        _, rows = read_zeek(corpus / "zeek" / name)
        assert rows
        for r in rows:
            c = conns[r["uid"]]
            assert (c["id.orig_h"], c["id.orig_p"], c["id.resp_h"], c["id.resp_p"]) == \
                   (r["id.orig_h"], r["id.orig_p"], r["id.resp_h"], "502")
            assert c["service"] == "modbus" and float(c["ts"]) <= float(r["ts"])
    _, basic = read_zeek(corpus / "zeek" / "modbus.log")
    assert {r["pdu_type"] for r in basic} == {"REQ", "RESP"}


def test_benign_traffic_never_triggers_the_three_detections(corpus: Path, truth: dict[str, Any]) -> None:
    """(a) vendor tunnel-up outside its windows, (b) OT asset egress outside allowed_egress,
    (c) Modbus write to a crane PLC from a non-engineering host: only where planted."""
    cfg = load_cfg(corpus)
    by_addr = {addr: a for a in cfg.inventory.assets for addr in a.addresses}
    vendor_of = {acct: v.name for v in cfg.vendors for acct in v.accounts}
    # (a)
    ups = [r for r in fortigate(corpus) if r["action"] == "tunnel-up"]
    assert any(in_window(cfg, vendor_of[r["user"]], vpn_time(r)) for r in ups), \
        "no benign in-window vendor session"
    for r in ups:
        t = vpn_time(r)
        if not in_window(cfg, vendor_of[r["user"]], t):
            assert any(scenario_covers(truth, k, t, r["user"], r["tunnelip"]) for k in (2, 3, 4, 6, 9)), r
    # (b)
    egress_hits = 0
    for r in conn_rows(corpus):
        a = by_addr.get(r["id.orig_h"])
        if a is None or a.kind not in OT_KINDS:
            continue
        dst = ipaddress.ip_address(r["id.resp_h"])
        if not any(dst in ipaddress.ip_network(n) for n in a.allowed_egress):
            assert any(scenario_covers(truth, k, ts_of(r["ts"]), r["id.orig_h"], r["id.resp_h"]) for k in (1, 10)), r
            egress_hits += 1
    assert egress_hits >= sum(1 for s in truth["scenarios"] if s["scenario"] in (1, 10))
    # (c)
    write_hits = 0
    ews_writes = 0
    _, rows = read_zeek(corpus / "zeek" / "modbus_detailed.log")
    for r in rows:
        dst, src = by_addr.get(r["id.resp_h"]), by_addr.get(r["id.orig_h"])
        if not WRITE.match(r["func"]) or dst is None or dst.kind != "crane_plc":
            continue
        if src is not None and src.kind == "engineering_workstation":
            ews_writes += 1
            continue
        assert any(scenario_covers(truth, k, ts_of(r["ts"]), r["id.orig_h"]) for k in (4, 6)), r
        write_hits += 1
    assert ews_writes > 0, "benign engineering writes are missing"
    assert write_hits >= sum(1 for s in truth["scenarios"] if s["scenario"] == 4 or s.get("chain"))


def test_planted_scenarios_are_in_the_data(corpus: Path, truth: dict[str, Any]) -> None:
    ups = {(r["user"], r["tunnelip"]) for r in fortigate(corpus) if r["action"] == "tunnel-up"}
    downs = {(r["user"], r["tunnelip"]) for r in fortigate(corpus) if r["action"] == "tunnel-down"}
    _, detailed = read_zeek(corpus / "zeek" / "modbus_detailed.log")
    conns = list(conn_rows(corpus))
    for s in truth["scenarios"]:
        if s["scenario"] in (2, 3, 4, 9) or s.get("chain"):
            key = (s["accounts"][0], s["addresses"][1])
            assert key in ups and key in downs, s["id"]
        if s["scenario"] == 4 or s.get("chain"):
            writes = [r for r in detailed if r["id.orig_h"] == s["addresses"][1] and WRITE.match(r["func"])]
            assert writes and all(parse_time(s["start"]) <= ts_of(r["ts"]) <= parse_time(s["end"]) for r in writes)
        if s["scenario"] == 1:
            out = [r for r in conns if r["id.orig_h"] == s["addresses"][0] and r["id.resp_h"] == s["addresses"][1]]
            assert len(out) >= 3, s["id"]
        if s["scenario"] == 11:
            out = [r for r in conns if r["id.orig_h"] == s["addresses"][0] and r["id.resp_h"] == s["addresses"][1]]
            assert len(out) >= 3, s["id"]


def test_scenario_11_reaches_an_isac_indicator_the_config_reads(corpus: Path, truth: dict[str, Any]) -> None:
    """The ISAC bundle is written beside config.yaml, named by threat_intel_match's params,
    and every scenario-11 address matches one of its indicators; benign traffic never does."""
    from stix_export.intel import IntelStore

    cfg = load_cfg(corpus)
    (bundle_file,) = cfg.detections["threat_intel_match"].params["bundles"]
    bundle = json.loads((corpus / bundle_file).read_text(encoding="utf-8"))
    store = IntelStore()
    report = store.import_objects(bundle["objects"], bundle_file)
    assert report.stored == 4 and not report.refused
    planted = {s["addresses"][1] for s in truth["scenarios"] if s["scenario"] == 11}
    assert planted and all(store.match_ip(a, truth["start"]) for a in planted)
    for r in conn_rows(corpus):
        for side in ("id.orig_h", "id.resp_h"):
            if r[side] not in planted:
                assert not store.match_ip(r[side], truth["start"]), r
    # the planted hosts looked up the ISAC's C2 domain first; nobody else did
    hosts = {s["addresses"][0] for s in truth["scenarios"] if s["scenario"] == 11}
    asked = {}
    for line in _open_text(corpus / "zeek" / "dns.log"):
        if line and not line.startswith("#"):
            f = line.split("\t")
            if store.match_domain(f[9], truth["start"]):
                asked[f[2]] = f[21]
    assert set(asked) == hosts and set(asked.values()) == planted


def test_cms_and_fortigate_records_follow_their_formats(corpus: Path) -> None:
    event_types = {"login", "logout", "mode_change", "program_download", "program_upload",
                   "firmware_update", "parameter_change", "alarm", "estop", "remote_command"}
    last = None
    for line in _open_text(corpus / "cms" / "cms-events.jsonl"):
        rec = json.loads(line)
        assert {"time", "crane_id", "event_type"} <= set(rec) and rec["event_type"] in event_types
        t = parse_time(rec["time"])
        assert last is None or last <= t
        last = t
        if rec["event_type"] in ("parameter_change", "mode_change"):
            assert rec["parameter"] and "old_value" in rec and "new_value" in rec
    for r in fortigate(corpus):
        assert r["logid"] in {"0101039424", "0101039425", "0101039426"}
        t = dt.datetime.strptime(f"{r['date']} {r['time']}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert int(r["eventtime"]) // 10**9 == int(t.timestamp())
        if r["action"] == "tunnel-down":
            assert int(r["duration"]) > 0 and "sentbyte" in r and "rcvdbyte" in r


def test_a_large_corpus_plants_more_and_keeps_its_count(tmp_path: Path) -> None:
    info = generate(str(tmp_path), events=520_000, seed=3)
    assert info["events"] == 520_000
    kinds = [s.split("-")[0] for s in info["scenarios"]]
    assert kinds.count("s1") == kinds.count("s2") == kinds.count("s4") == 2


def test_every_generated_file_parses_without_dead_letters(corpus: Path, truth: dict[str, Any]) -> None:
    parsers = pytest.importorskip("transforms.parsers")
    cfg = load_cfg(corpus)
    missing = {s.format for s in cfg.sources} - set(parsers.PARSERS)
    if missing:
        pytest.skip(f"parsers not written yet: {', '.join(sorted(missing))}")
    from pipelines.config import resolve_sources

    for src in resolve_sources(cfg):
        for path in src.files:
            parsed = records = 0
            for result in parsers.parse_file(src.format, src.name, path):
                assert not result.dead_letters, (path, result.dead_letters[:3])
                parsed += result.events.num_rows
                records += result.records
            rel = str(Path(path).relative_to(corpus))
            assert parsed == records == truth["files"][rel], rel
