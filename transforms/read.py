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
        return _ZstdFile(path)  # type: ignore[return-value]
    return open(path, "rb")


class _ZstdFile(io.RawIOBase):
    """zstd frames one after another. Unlike ``zstandard``'s ``stream_reader``, which
    ends quietly, a file cut off inside a frame raises ``EOFError`` as gzip and bzip2 do,
    so a truncated archive is reported instead of silently read short."""

    def __init__(self, path: str) -> None:
        import zstandard

        self._fh = open(path, "rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        while not self._out:
            data = self._fh.read(1 << 20)
            if not data:
                if self._in_frame:
                    raise EOFError("zstd file ended inside a frame (truncated?)")
                return 0
            self._out = memoryview(self._decompress(data))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._obj.decompress(data))
            self._in_frame = True
            if not self._obj.eof:
                break
            data = self._obj.unused_data  # the next frame (concatenated files)
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return b"".join(out)

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def iter_blocks(source: str, path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Yield the file as blocks of complete lines (the last line may lack a newline).

    Each chunk is split where it lies and only the partial last line is carried over, so
    no multi-megabyte slice or concatenation is copied per block.
    """
    line_no = 1
    carry = b""
    first = True
    with open_maybe_compressed(path) as fh:
        reader = fh if isinstance(fh, io.BufferedReader) else io.BufferedReader(fh, 1 << 20)  # type: ignore[arg-type]
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
