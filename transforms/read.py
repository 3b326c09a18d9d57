"""Read log files in blocks of whole lines, whatever their compression, within set limits.

Per-line Python work is the slow path in Beam's Python SDK (ARCHITECTURE.md), so files are
read in multi-megabyte blocks and each block is handed to a parser that works on it as a
whole (Arrow where the format allows). Line numbers are tracked so every record and every
dead letter can point back to ``path:line``.

Reading is bounded (``Limits``: decompressed size, compression ratio, line length) so that a
decompression bomb or a file that is one endless line cannot exhaust memory or time. When
reading stops early — a bound is passed, or a truncated or corrupt archive ends — the lines
read so far are still yielded and the reader records a ``ReadStop``: the rest of the file,
from the cut line and byte offset, becomes one dead letter naming the reason.
"""
from __future__ import annotations

import bz2
import functools
import gzip
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Iterator

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 8 * 1024 * 1024
_PIECE = 1 << 20  # decompressed bytes read at a time (limits are checked per piece)
_BOM = b"\xef\xbb\xbf"
#: The compression ratio is judged only past this many decompressed bytes: a small file's
#: header and framing make its ratio meaningless.
RATIO_FLOOR = 1 << 20
#: How much of the unread rest a read-stop dead letter quotes.
STOP_RAW_BYTES = 4096


@dataclass(frozen=True)
class Limits:
    """Bounds on reading one input file (config ``limits:``; docs/limits.md)."""

    max_decompressed_bytes: int = 64 << 30  # bytes read from one file, after decompression
    max_ratio: float = 500.0  # decompressed / compressed bytes, for compressed files
    max_line_bytes: int = 16 << 20  # longest line (record) accepted


DEFAULT_LIMITS = Limits()


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

    @functools.cached_property
    def binary(self) -> "pa.Array":
        """The lines as one Arrow binary array, made once: the record count and the Arrow
        parsers share it."""
        import pyarrow as pa

        return pa.array(self.lines, pa.binary())


@dataclass(frozen=True)
class ReadStop:
    """Reading ended before the end of the file: everything from ``line`` (1-based) and
    decompressed byte ``offset`` on is unread; ``raw`` is its start (the cut line)."""

    line: int
    offset: int
    reason: str
    raw: bytes


class ReadStopped(ValueError):
    """Raised by ``iter_blocks`` after its last block when reading stopped early."""

    def __init__(self, stop: ReadStop) -> None:
        super().__init__(stop.reason)
        self.stop = stop


def open_maybe_compressed(path: str) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing gzip, bzip2 or zstd by magic bytes.

    Concatenated gzip members, bzip2 streams and zstd frames (appended or rotated logs) are
    all read.
    """
    return _Stream(path)  # type: ignore[return-value]


class _Stream(io.RawIOBase):
    """The decompressed bytes of a file, with the compressed bytes consumed so far
    (``compressed_pos``) for the ratio bound. Closing it closes the file."""

    def __init__(self, path: str) -> None:
        self._raw = open(path, "rb")
        try:
            head = self._raw.read(4)
            self._raw.seek(0)
            self.kind: str | None = None
            self._dec: BinaryIO
            if head[:2] == b"\x1f\x8b":
                self.kind, self._dec = "gzip", gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
            elif head[:3] == b"BZh":
                self.kind, self._dec = "bzip2", bz2.BZ2File(self._raw, "rb")  # type: ignore[assignment]
            elif head == b"\x28\xb5\x2f\xfd":
                self.kind, self._dec = "zstd", _ZstdFile(self._raw)  # type: ignore[assignment]
            else:
                self._dec = self._raw
        except BaseException:
            self._raw.close()
            raise

    @property
    def compressed_pos(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def read1(self, n: int = _PIECE) -> bytes:
        """Up to ``n`` bytes; what was decompressed before an error is returned first."""
        read1 = getattr(self._dec, "read1", None)
        return read1(n) if read1 is not None else self._dec.read(n)

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._dec is not self._raw:
                    self._dec.close()
            finally:
                self._raw.close()
        super().close()


class _ZstdFile(io.RawIOBase):
    """zstd frames one after another. Unlike ``zstandard``'s ``stream_reader``, which
    ends quietly, a file cut off inside a frame raises ``EOFError`` as gzip and bzip2 do,
    so a truncated archive is reported instead of silently read short. Output is produced
    at most ``n`` bytes per call, so a bomb never inflates in memory."""

    def __init__(self, fh: BinaryIO) -> None:
        import zstandard

        self._fh = fh
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._pending = b""  # compressed input not yet fed
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, n: int = _PIECE) -> bytes:  # type: ignore[override]
        while not self._out:
            if not self._pending:
                self._pending = self._fh.read(64 << 10)
                if not self._pending:
                    if self._in_frame:
                        raise EOFError("zstd file ended inside a frame (truncated?)")
                    return b""
            self._out = memoryview(self._feed())
        out = bytes(self._out[:n])
        self._out = self._out[n:]
        return out

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _feed(self) -> bytes:
        """Decompress some pending input; small input pieces keep each output bounded."""
        data, self._pending = self._pending[:4096], self._pending[4096:]
        out = self._obj.decompress(data)
        self._in_frame = True
        if self._obj.eof:
            self._pending = self._obj.unused_data + self._pending  # the next frame
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return out


class BlockReader:
    """Iterate a file's blocks of complete lines (the last line may lack a newline); after
    the iteration ``stop`` says whether, where and why reading ended early.

    Each chunk is split where it lies and only the partial last line is carried over, so
    no multi-megabyte slice or concatenation is copied per block.
    """

    def __init__(self, source: str, path: str, block_bytes: int = BLOCK_BYTES,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.source, self.path, self.block_bytes, self.limits = source, path, max(1, block_bytes), limits
        self.stop: ReadStop | None = None
        self.next_line = 1

    def __iter__(self) -> Iterator[Block]:
        try:
            fh = _Stream(self.path)
        except OSError as exc:
            self.stop = ReadStop(1, 0, f"unreadable file: {type(exc).__name__}: {exc}", b"")
            return
        with fh:
            yield from self._blocks(fh)

    def _blocks(self, fh: _Stream) -> Iterator[Block]:
        """Pieces of at most 1 MiB are split as they arrive and their lines collected until
        a block is full: the bounds are checked per piece, and nothing but the carried
        partial line is ever copied."""
        lim = self.limits
        piece_size = min(self.block_bytes, _PIECE)
        line_no, offset = 1, 0  # the next block's first line and its decompressed byte offset
        carry = b""  # the partial last line
        total = 0
        head: bytes | None = b""  # the first bytes, until a BOM can be told (None after)
        while True:
            parts: list[bytes] = []
            got = len(carry)  # bytes of this block's lines and the carry
            fresh = 0  # bytes read for this block
            crlf = False
            reason = None
            at_end = False
            while fresh < self.block_bytes and not at_end:
                try:
                    piece = fh.read1(piece_size)
                except Exception as exc:  # noqa: BLE001 - any decompressor failure ends reading here
                    what = f": {fh.kind} data truncated or corrupt" if fh.kind else ""
                    reason = f"unreadable file{what}: {type(exc).__name__}: {exc}"
                    piece = b""
                if piece:
                    total += len(piece)
                    if total > lim.max_decompressed_bytes:
                        piece = piece[: len(piece) - (total - lim.max_decompressed_bytes)]
                        reason = f"file larger than max_decompressed_bytes ({lim.max_decompressed_bytes} bytes)"
                    elif fh.kind and total > RATIO_FLOOR and total > lim.max_ratio * max(fh.compressed_pos, 1):
                        reason = (f"{fh.kind} data expands more than max_ratio ({lim.max_ratio:g}:1): "
                                  f"{total} bytes from {fh.compressed_pos} (decompression bomb?)")
                        piece = b""
                at_end = not piece or reason is not None
                if head is not None:
                    head += piece
                    if len(head) < len(_BOM) and not at_end and _BOM.startswith(head):
                        continue  # too short to tell yet (tiny blocks)
                    if head.startswith(_BOM):
                        head, offset = head[len(_BOM):], len(_BOM)
                    piece, head = head, None
                if not piece:
                    continue
                got += len(piece)
                fresh += len(piece)
                lines = piece.split(b"\n")
                if carry:
                    lines[0] = carry + lines[0]  # only the carried line is copied
                carry = lines.pop()
                if lines:
                    parts.extend(lines)
                    if len(lines[0]) > lim.max_line_bytes or len(piece) > lim.max_line_bytes:
                        cut = next((i for i, p in enumerate(parts) if len(p) > lim.max_line_bytes), None)
                        if cut is not None:  # a line past the bound: the rest of the file is not read
                            reason = f"line {line_no + cut} longer than max_line_bytes ({lim.max_line_bytes} bytes)"
                            carry = b"\n".join([*parts[cut:], carry])[:STOP_RAW_BYTES]
                            del parts[cut:]
                            got = sum(map(len, parts)) + len(parts) + len(carry)
                            at_end = True
                            break
                crlf = crlf or b"\r" in piece
                if len(carry) > lim.max_line_bytes:
                    reason = f"line {line_no + len(parts)} longer than max_line_bytes ({lim.max_line_bytes} bytes)"
                    at_end = True
            if at_end and reason is None and carry:  # the last line has no newline: keep it
                parts.append(carry)
                carry = b""
            if parts:
                if crlf or parts[0].endswith(b"\r"):  # CRLF files
                    parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
                yield Block(self.source, self.path, line_no, parts)
                line_no += len(parts)
                offset += got - len(carry)
                self.next_line = line_no
            if reason is not None:
                self.stop = ReadStop(line_no, offset, f"{reason}; reading stopped at line {line_no}, "
                                     f"byte {offset}: the rest of the file is not read", carry[:STOP_RAW_BYTES])
                return
            if at_end:
                return


def iter_blocks(source: str, path: str, block_bytes: int = BLOCK_BYTES,
                limits: Limits = DEFAULT_LIMITS) -> Iterator[Block]:
    """``BlockReader`` as a generator that raises ``ReadStopped`` after the last block
    when reading ended early (tools and prescans that need no dead letters)."""
    reader = BlockReader(source, path, block_bytes, limits)
    yield from reader
    if reader.stop is not None:
        raise ReadStopped(reader.stop)
