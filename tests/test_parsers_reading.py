"""The reading rules hold for the formats added with issue 3: compressed archives, a BOM,
CRLF endings and a ``###`` banner change nothing; and the run's parse stage
(``transforms.parse.parse_file``) passes a source's mapping and calls ``finish_file``."""
from __future__ import annotations

import bz2
import gzip
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import zstandard
from parse_helpers import parse_all

from pipelines.config import SourceMapping
from transforms.parse import Counts, InputFile, parse_file

OPENVPN_LOG = ("2026-11-20 09:15:02 203.0.113.45:51234 [zpmc-svc1] Peer Connection Initiated with "
               "[AF_INET]203.0.113.45:51234\n"
               "2026-11-20 10:42:10 zpmc-svc1/203.0.113.45:51234 SIGTERM[soft,remote-exit] received, "
               "client-instance exiting\n")
EVE = (json.dumps({"timestamp": "2026-11-20T08:20:00.000000+0000", "event_type": "flow", "src_ip": "10.40.0.5",
                   "src_port": 53000, "dest_ip": "10.40.0.1", "dest_port": 53, "proto": "UDP",
                   "flow": {"pkts_toserver": 1, "pkts_toclient": 1, "bytes_toserver": 74, "bytes_toclient": 90,
                            "start": "2026-11-20T08:20:00.000000+0000"}}) + "\n") * 2
STATUS_V2 = ("TITLE,OpenVPN 2.6.3\nTIME,2026-11-20 09:30:00,1795163400\n"
             "HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,"
             "Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher\n"
             "CLIENT_LIST,a,203.0.113.45:1,10.8.0.2,,1,2,2026-11-20 09:15:02,1795162502,UNDEF,1,0,AES-256-GCM\n"
             "CLIENT_LIST,b,203.0.113.46:1,10.8.0.3,,1,2,2026-11-20 09:15:02,1795162502,UNDEF,2,1,AES-256-GCM\n"
             "END\n")
CASES = [("openvpn_log", OPENVPN_LOG, 2), ("suricata_eve", EVE, 2), ("openvpn_status", STATUS_V2, 2)]


def _variant(text: str, kind: str) -> bytes:
    data = text.encode()
    if kind == "crlf_bom_banner":
        return b"\xef\xbb\xbf### test banner\r\n" + data.replace(b"\n", b"\r\n")
    if kind == "gz":
        return gzip.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("variant", ["crlf_bom_banner", "gz", "bz2", "zst"])
@pytest.mark.parametrize("fmt,text,count", CASES)
def test_archives_bom_crlf(tmp_path: Path, fmt: str, text: str, count: int, variant: str) -> None:
    plain = tmp_path / "plain.log"
    plain.write_text(text)
    path = tmp_path / f"log.{variant}"
    path.write_bytes(_variant(text, variant))
    want, _, _ = parse_all(fmt, "s", plain)
    got, dead, records = parse_all(fmt, "s", path)
    assert (records, got.num_rows, dead) == (count, count, [])
    cols = [c for c in got.column_names if c not in ("raw_ref", "raw")]
    assert got.select(cols).to_pylist() == want.select(cols).to_pylist()


def test_run_parse_stage_calls_finish_file(tmp_path: Path) -> None:
    path = tmp_path / "flows.json"
    path.write_text('[\n{\n\t"type" : "FLOW",\n\t"first" : "2026-11-20T09:15:02.250",\n')  # cut off
    out = list(parse_file(InputFile("nf", "nfdump_json", str(path))))
    dead = [o[1] for o in out if isinstance(o, tuple) and o[0] == "dead"]
    counts = [o[1] for o in out if isinstance(o, tuple) and o[0] == "counts"]
    assert [(d.location, d.reason) for d in dead] == [(f"{path}:2", "nfdump JSON record cut off at the end of the file")]
    assert counts == [("nf", Counts(read=1, parsed=0, dead_lettered=1, files=1))]


def test_run_parse_stage_passes_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("t,u\n2026-11-20T08:15:02Z,zpmc-svc1\n")
    mapping = SourceMapping(kind="auth", fields={"t": "time", "u": "user"}, constants={"action": "auth.success"})
    out = list(parse_file(InputFile("x", "csv_mapped", str(path), "UTC", mapping.model_dump_json())))
    (table,) = [o for o in out if not isinstance(o, tuple)]
    row = table.to_pylist()[0]
    assert (row["user"], row["action"], row["kind"], row["format"]) == ("zpmc-svc1", "auth.success", "auth", "csv_mapped")
    assert out[-1] == ("counts", ("x", Counts(read=1, parsed=1, dead_lettered=0, files=1)))


def _ahead_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "cranewatch-parse-ahead"]


def test_parse_stage_reads_ahead_in_order_and_raises_where_the_source_raised() -> None:
    """The parse stage produces a file's results on a thread of its own (``ahead``): the
    consumer sees them in order, then the source's own exception, and no thread stays."""
    from transforms.parse import ahead

    def source():
        yield from range(5)
        raise ValueError("cut at 5")

    seen = []
    with pytest.raises(ValueError, match="cut at 5"):
        for item in ahead(source()):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    assert not _ahead_threads()


def test_parse_stage_stopped_early_closes_its_source() -> None:
    from transforms.parse import ahead

    closed = []

    def source():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)  # the file the source reads is closed here

    items = ahead(source())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed == [True] and not _ahead_threads()


def test_parse_stage_parses_files_side_by_side_with_every_output_once(tmp_path: Path) -> None:
    """The Beam parse step runs several files at once on threads of their own: each file's
    tables, dead letters and counts arrive once and equal the file parsed alone (a
    truncated archive and a missing file among them), and no thread outlives the run."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.parse import COUNTS, DEAD, EVENTS, ParseSources

    files = []
    for i, (fmt, text, _) in enumerate(CASES * 3):
        path = tmp_path / f"f{i}.log.gz"
        data = _variant(text * (i + 1), "gz")
        path.write_bytes(data[: len(data) // 2] if i == 4 else data)  # one archive cut off
        files.append(InputFile(f"s{i}", fmt, str(path)))
    files.append(InputFile("gone", "suricata_eve", str(tmp_path / "missing.json")))

    def rows(table: Any) -> list[tuple[str, str]]:
        return [(r["raw_ref"], r["raw"]) for r in table.to_pylist()]

    want_rows, want_dead, want_counts = [], [], []
    for f in files:
        for out in parse_file(f):
            if isinstance(out, tuple) and out[0] == "dead":
                want_dead.append(out[1])
            elif isinstance(out, tuple):
                want_counts.append(out[1])
            else:
                want_rows += rows(out)
    assert want_dead and len(want_rows) > 20
    with beam.Pipeline("FnApiRunner") as p:
        parsed = p | beam.Create(files, reshuffle=False) | ParseSources()
        assert_that(parsed[EVENTS] | beam.FlatMap(rows), equal_to(want_rows), label="tables")
        assert_that(parsed[DEAD], equal_to(want_dead), label="dead letters")
        assert_that(parsed[COUNTS], equal_to(want_counts), label="counts")
    assert not [t for t in threading.enumerate() if t.name.startswith("cranewatch-parse")]


def test_event_tables_travel_with_the_arrow_coder_and_are_sized_without_encoding(tmp_path: Path) -> None:
    """The parse step's tables are typed, so Beam codes them with ``EventTableCoder``:
    Arrow IPC both ways, and the size Beam samples for metrics read off the buffers."""
    import apache_beam as beam

    from transforms.coders import EventTableCoder
    from transforms.parse import EVENTS, ParseSources

    path = tmp_path / "eve.json"
    path.write_text(EVE)
    (table,) = [o for o in parse_file(InputFile("s", "suricata_eve", str(path))) if not isinstance(o, tuple)]
    coder = beam.coders.registry.get_coder(table.__class__)
    assert isinstance(coder, EventTableCoder)
    assert coder.decode(coder.encode(table)).equals(table)
    assert coder.estimate_size(table) == table.nbytes
    p = beam.Pipeline("FnApiRunner")
    parsed = p | beam.Create([InputFile("s", "suricata_eve", str(path))]) | ParseSources()
    assert parsed[EVENTS].element_type is table.__class__
