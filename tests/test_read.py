"""iter_blocks: whole lines, right line numbers, any compression, CRLF and BOM handled."""
from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest
import zstandard

from transforms.read import Block, iter_blocks

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
def test_truncated_archive_is_an_error_not_a_short_read(tmp_path: Path, compress) -> None:
    """A cut-off archive must not look like a shorter log (the pipeline dead-letters it)."""
    import os

    data = b"".join(b"%d %s\n" % (i, os.urandom(8).hex().encode()) for i in range(50_000))
    packed = compress(data)
    p = tmp_path / "cut.cmp"
    p.write_bytes(packed[: len(packed) // 2])
    seen: list[bytes] = []
    with pytest.raises(EOFError):
        for block in iter_blocks("src", str(p), 1 << 14):
            seen.extend(block.lines)
    assert seen == data.split(b"\n")[: len(seen)]  # what was yielded is whole and in order
