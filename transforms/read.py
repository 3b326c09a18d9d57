"""Read log files in blocks of whole lines, whatever their compression.

Per-line Python work is the slow path in Beam's Python SDK (ARCHITECTURE.md), so files are
read in multi-megabyte blocks and each block is handed to a parser that works on it as a
whole (Arrow where the format allows). Line numbers are tracked so every record and every
dead letter can point back to ``path:line``.
"""
from __future__ import annotations

import bz2
import gzip
import io
from dataclasses import dataclass
from typing import BinaryIO, Iterator

BLOCK_BYTES = 8 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Block:
    """Consecutive lines of one file: ``lines[i]`` is line ``first_line + i`` (1-based).

    Lines are bytes without the line terminator (``\\n`` or ``\\r\\n``); decoding is the
    parser's job, so that a line with bad bytes can be dead-lettered alone.
    """

    source: str
    path: str
    first_line: int
    lines: list[bytes]


def open_maybe_compressed(path: str) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing gzip, bzip2 or zstd by magic bytes.

    Compressed files are reopened by name so that closing the returned stream closes the
    file too (``GzipFile(fileobj=...)`` would leave it open); concatenated gzip members,
    bzip2 streams and zstd frames (appended or rotated logs) are all read.
    """
    with open(path, "rb") as probe:
        head = probe.read(4)
    if head[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head[:3] == b"BZh":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(  # type: ignore[return-value]
            open(path, "rb"), closefd=True, read_across_frames=True)
    return open(path, "rb")


def iter_blocks(source: str, path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Yield the file as blocks of complete lines (the last line may lack a newline).

    Each chunk is split where it lies and only the partial last line is carried over, so
    no multi-megabyte slice or concatenation is copied per block.
    """
    line_no = 1
    carry = b""
    first = True
    with open_maybe_compressed(path) as fh:
        reader = fh if isinstance(fh, io.BufferedReader) else io.BufferedReader(fh, buffer_size=1 << 20)  # type: ignore[arg-type]
        while True:
            chunk = reader.read(block_bytes)
            at_end = len(chunk) < block_bytes  # buffered reads come up short only at EOF
            if first:
                while not at_end and len(chunk) < len(_BOM) and _BOM.startswith(chunk):  # tiny blocks
                    more = reader.read(block_bytes)
                    at_end = len(more) < block_bytes
                    chunk += more
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM):]
                first = False
            if not chunk:
                break
            parts = chunk.split(b"\n")
            parts[0] = carry + parts[0]
            carry = parts.pop()
            if carry and at_end:  # the last line has no newline: keep it in this block
                parts.append(carry)
                carry = b""
            if not parts:
                continue
            if b"\r" in chunk or parts[0].endswith(b"\r"):  # CRLF files
                parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
            yield Block(source, path, line_no, parts)
            line_no += len(parts)
        if carry:
            yield Block(source, path, line_no, [carry[:-1] if carry.endswith(b"\r") else carry])
