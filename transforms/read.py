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
    """Open ``path`` for binary reading, decompressing gzip, bzip2 or zstd by magic bytes."""
    raw = open(path, "rb")
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head[:3] == b"BZh":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw  # type: ignore[return-value]


def iter_blocks(source: str, path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Yield the file as blocks of complete lines (the last line may lack a newline)."""
    line_no = 1
    carry = b""
    first = True
    with open_maybe_compressed(path) as fh:
        reader = io.BufferedReader(fh, buffer_size=1 << 20) if not isinstance(fh, io.BufferedReader) else fh
        while True:
            chunk = reader.read(block_bytes)
            if first:
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM):]
                first = False
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            lines = data[:cut].split(b"\n")
            if b"\r" in data[:cut]:  # CRLF files
                lines = [l[:-1] if l.endswith(b"\r") else l for l in lines]
            yield Block(source, path, line_no, lines)
            line_no += len(lines)
        if carry:
            yield Block(source, path, line_no, [carry[:-1] if carry.endswith(b"\r") else carry])
