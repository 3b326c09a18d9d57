"""iter_blocks: whole lines, right line numbers, any compression, CRLF and BOM handled."""
from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest
import zstandard

from transforms.read import RATIO_FLOOR, STOP_RAW_BYTES, Block, BlockReader, Limits, ReadStopped, iter_blocks

CONTENT = b"".join(b"line %d with some text\n" % i for i in range(1, 201)) + b"last line, no newline"
EXPECTED = CONTENT.split(b"\n")


def read_all(path: Path, block_bytes: int = 1 << 20) -> list[Block]:
    return list(iter_blocks("src", str(path), block_bytes))


def flat(blocks: list[Block]) -> list[tuple[int, bytes]]:
    """(line number, line) for every line, checking blocks are contiguous."""
    out: list[tuple[int, bytes]] = []
    for b in blocks:
        assert b.first_line == len(out) + 1
        assert b.lines, "no empty blocks"
        out.extend((b.first_line + i, line) for i, line in enumerate(b.lines))
    return out


def test_plain_file_one_block(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(CONTENT)
    blocks = read_all(p)
    assert len(blocks) == 1
    assert blocks[0].source == "src" and blocks[0].path == str(p)
    assert blocks[0].lines == EXPECTED


@pytest.mark.parametrize("block_bytes", [1, 7, 23, 24, 25, 100, 4096])
def test_small_blocks_keep_lines_whole_and_numbered(tmp_path: Path, block_bytes: int) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(CONTENT)
    lines = flat(read_all(p, block_bytes))
    assert [l for _, l in lines] == EXPECTED
    assert [n for n, _ in lines] == list(range(1, len(EXPECTED) + 1))


def test_trailing_newline_gives_no_extra_line(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"a\nb\n")
    assert [l for _, l in flat(read_all(p))] == [b"a", b"b"]


def test_blank_lines_are_kept_for_numbering(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"a\n\n\nb\n")
    assert flat(read_all(p, 2)) == [(1, b"a"), (2, b""), (3, b""), (4, b"b")]


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    assert read_all(p) == []


def test_line_longer_than_block(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"x" * 1000 + b"\nshort\n")
    assert flat(read_all(p, 64)) == [(1, b"x" * 1000), (2, b"short")]


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 1 << 20])
def test_crlf_is_stripped_even_when_split_across_blocks(tmp_path: Path, block_bytes: int) -> None:
    p = tmp_path / "crlf.log"
    p.write_bytes(CONTENT.replace(b"\n", b"\r\n") + b"\r\n")
    assert [l for _, l in flat(read_all(p, block_bytes))] == EXPECTED


def test_bom_is_stripped_once(tmp_path: Path) -> None:
    p = tmp_path / "bom.log"
    p.write_bytes(b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n")
    assert [l for _, l in flat(read_all(p, 2))] == [b"a", b"\xef\xbb\xbfb"]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _bz2(data: bytes) -> bytes:
    return bz2.compress(data)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("compress", [_gzip, _bz2, _zstd], ids=["gz", "bz2", "zst"])
@pytest.mark.parametrize("block_bytes", [50, 1 << 20])
def test_compressed_inputs(tmp_path: Path, compress, block_bytes: int) -> None:
    p = tmp_path / "a.log.cmp"  # detected by magic bytes, not by name
    p.write_bytes(compress(b"\xef\xbb\xbf" + CONTENT.replace(b"\n", b"\r\n")))
    assert [l for _, l in flat(read_all(p, block_bytes))] == EXPECTED


@pytest.mark.parametrize("compress", [_gzip, _bz2, _zstd], ids=["gz", "bz2", "zst"])
def test_concatenated_compressed_members_are_all_read(tmp_path: Path, compress) -> None:
    """Rotated/appended logs: ``cat a.gz b.gz``, and likewise for bzip2 streams and zstd frames."""
    half = CONTENT.index(b"\n", len(CONTENT) // 2) + 1
    p = tmp_path / "joined.cmp"
    p.write_bytes(compress(CONTENT[:half]) + compress(CONTENT[half:]))
    assert [l for _, l in flat(read_all(p, 100))] == EXPECTED


@pytest.mark.parametrize("tail, reason", [
    (b"", None), (b"\0" * 1000, None),  # zero padding after the last member: a clean end
    (b"garbage after the archive", "BadGzipFile: Not a gzipped file (b'ga')"),
    (b"\x1f\x8b\x08", "EOFError: Compressed file ended before the end-of-stream marker was reached"),
])
def test_gzip_members_padding_and_trailing_bytes_as_gzip_reads_them(tmp_path: Path, tail: bytes,
                                                                     reason: str | None) -> None:
    """Between and after members, what Python's ``gzip`` accepts (zero padding) reads on;
    other bytes stop reading with its wording, after every line of the members before."""
    half = CONTENT.index(b"\n", len(CONTENT) // 2) + 1
    p = tmp_path / "padded.gz"
    p.write_bytes(_gzip(CONTENT[:half]) + b"\0" * 7 + _gzip(CONTENT[half:]) + tail)
    reader = BlockReader("src", str(p), 100)
    seen = [line for block in reader for line in block.lines]
    if reason is None:
        assert seen == EXPECTED and reader.stop is None
    else:  # the last line has no newline: cut where reading stopped, it is the stop's raw
        assert seen == EXPECTED[:-1]
        assert reader.stop is not None and f"gzip data truncated or corrupt: {reason}" in reader.stop.reason
        assert reader.stop.line == len(EXPECTED) and reader.stop.raw == EXPECTED[-1]


def test_files_are_closed(tmp_path: Path) -> None:
    """Compressed files are reopened by name so closing the stream closes the file."""
    import warnings

    p = tmp_path / "a.gz"
    p.write_bytes(_gzip(CONTENT))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(3):
            read_all(p)
        import gc

        gc.collect()


@pytest.mark.parametrize("compress", [_gzip, _bz2, _zstd], ids=["gz", "bz2", "zst"])
def test_truncated_archive_keeps_the_lines_before_the_cut(tmp_path: Path, compress) -> None:
    """A cut-off archive must not look like a shorter log, nor lose what it still holds:
    the whole lines before the cut are yielded, then the reader says where it stopped."""
    import os

    data = b"".join(b"%d %s\n" % (i, os.urandom(8).hex().encode()) for i in range(150_000))
    packed = compress(data)
    p = tmp_path / "cut.cmp"
    p.write_bytes(packed[: len(packed) // 2])
    reader = BlockReader("src", str(p), 1 << 14)
    seen = [line for block in reader for line in block.lines]
    lines = data.split(b"\n")
    assert seen == lines[: len(seen)]  # whole and in order
    # bzip2 loses its last unfinished 900 kB block, gzip and zstd only the cut line
    assert len(seen) > (0.25 if compress is _bz2 else 0.45) * len(lines)
    stop = reader.stop
    assert stop is not None and "truncated" in stop.reason
    assert stop.line == len(seen) + 1
    assert stop.offset == sum(len(l) + 1 for l in seen)
    assert lines[len(seen)].startswith(stop.raw)  # the cut line, as far as it was read
    with pytest.raises(ReadStopped):
        list(iter_blocks("src", str(p), 1 << 14))


def test_missing_file_is_a_stop_not_an_exception(tmp_path: Path) -> None:
    reader = BlockReader("src", str(tmp_path / "nope.log"))
    assert list(reader) == []
    assert reader.stop is not None and "FileNotFoundError" in reader.stop.reason


LOW = Limits(max_decompressed_bytes=1 << 20, max_ratio=50, max_line_bytes=1000)


def _bomb_lines(n: int) -> bytes:
    return b"".join(b"%08d aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" % i for i in range(n))


@pytest.mark.parametrize("compress", [_gzip, _zstd], ids=["gz", "zst"])
def test_compression_bomb_stops_at_the_ratio_bound(tmp_path: Path, compress) -> None:
    """16 MB of identical lines packed far beyond the ratio bound: reading stops once the
    bytes read pass the bound (and RATIO_FLOOR), whole lines before the stop, memory small."""
    import resource

    data = b"x\n" * (8 << 20)
    p = tmp_path / "bomb.cmp"
    p.write_bytes(compress(data))
    size = p.stat().st_size
    assert len(data) / size > 500
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reader = BlockReader("src", str(p), 1 << 16, Limits(max_ratio=50))
    n = sum(len(b.lines) for b in reader)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert reader.stop is not None and "max_ratio" in reader.stop.reason
    assert 0 < n * 2 <= max(RATIO_FLOOR, 50 * size) + (1 << 20) < len(data) / 2
    assert reader.stop.offset == 2 * n and reader.stop.line == n + 1
    assert grown_kb < 100 << 10  # bounded: far from what it would expand to


def test_size_bound_keeps_whole_lines_below_it(tmp_path: Path) -> None:
    data = _bomb_lines(100_000)  # 5 MB
    p = tmp_path / "big.log.gz"
    p.write_bytes(_gzip(data))
    reader = BlockReader("src", str(p), 1 << 16, Limits(max_decompressed_bytes=1 << 20))
    seen = [line for b in reader for line in b.lines]
    assert seen == data.split(b"\n")[: len(seen)]
    assert (1 << 20) - 60 < sum(len(l) + 1 for l in seen) <= 1 << 20
    assert reader.stop is not None and "max_decompressed_bytes" in reader.stop.reason


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_long_line_stops_reading_with_bounded_memory(tmp_path: Path, block_bytes: int) -> None:
    """A line past ``max_line_bytes`` (here in the middle, never ending) ends reading there;
    the reader never holds much more than the bound."""
    p = tmp_path / "long.log"
    with open(p, "wb") as fh:
        fh.write(b"short 1\nshort 2\n")
        fh.write(b"y" * (8 << 20))
        fh.write(b"\nafter\n")
    reader = BlockReader("src", str(p), block_bytes, LOW)
    seen = [line for b in reader for line in b.lines]
    assert seen == [b"short 1", b"short 2"]
    stop = reader.stop
    assert stop is not None and "line 3 longer than max_line_bytes (1000 bytes)" in stop.reason
    assert stop.line == 3 and stop.offset == 16 and stop.raw.startswith(b"yyy") and len(stop.raw) <= STOP_RAW_BYTES


def test_long_line_inside_one_block(tmp_path: Path) -> None:
    p = tmp_path / "long.log"
    p.write_bytes(b"a\n" + b"z" * 5000 + b"\nb\n")
    reader = BlockReader("src", str(p), 1 << 20, LOW)
    assert [line for b in reader for line in b.lines] == [b"a"]
    assert reader.stop is not None and reader.stop.line == 2 and reader.stop.offset == 2
