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

import numpy as np
from isal import isal_zlib

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 8 * 1024 * 1024
_PIECE = 1 << 20  # decompressed bytes read at a time (limits are checked per piece)
_BOM = b"\xef\xbb\xbf"
_GZIP_INPUT = 128 << 10  # compressed bytes read at a time
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


class Block:
    """Consecutive lines of one file: line ``i`` is line ``first_line + i`` (1-based).

    The block is kept as the bytes read (``buffer``) with each line's span: line ``i`` is
    ``buffer[starts[i]:ends[i]]``, without its terminator (``\\n`` or ``\\r\\n``), and
    ``starts[count]`` is where the block's bytes end. Bulk parsers hand Arrow the buffer (or
    one Arrow array of all lines) without making a Python object per line; ``lines`` (bytes
    per line) is made on first use for the per-line formats. Decoding is the parser's job,
    so that a line with bad bytes can be dead-lettered alone.
    """

    def __init__(self, source: str, path: str, first_line: int, lines: list[bytes] | None = None, *,
                 buffer: bytes | None = None, starts: np.ndarray | None = None,
                 ends: np.ndarray | None = None) -> None:
        self.source, self.path, self.first_line = source, path, first_line
        if lines is not None:  # a block made from lines (tests, the line-by-line retry)
            lines = list(lines)
            lengths = np.fromiter(map(len, lines), np.int64, len(lines))
            starts = np.zeros(len(lines) + 1, np.int64)
            np.cumsum(lengths + 1, out=starts[1:])
            if len(lines):
                starts[-1] -= 1
            ends = starts[:-1] + lengths
            buffer = b"\n".join(lines)
            self.__dict__["lines"] = lines
            # A line holding a newline would read as two lines from the buffer.
            self.__dict__["verbatim"] = buffer.count(b"\n") == max(len(lines) - 1, 0)
        assert buffer is not None and starts is not None and ends is not None
        self.buffer, self.starts, self.ends = buffer, starts, ends

    @property
    def count(self) -> int:
        """The number of lines."""
        return len(self.ends)

    def line(self, i: int) -> bytes:
        return self.buffer[int(self.starts[i]):int(self.ends[i])]

    @functools.cached_property
    def lines(self) -> list[bytes]:
        """Each line as bytes (per-line formats; made once, on first use)."""
        buf = self.buffer
        return [buf[s:e] for s, e in zip(self.starts[:-1].tolist(), self.ends.tolist())]

    @functools.cached_property
    def verbatim(self) -> bool:
        """The buffer from a line's start to another's end is those lines and their
        terminators, as read (so it can be handed to Arrow's readers as it is)."""
        return True

    @functools.cached_property
    def binary(self) -> "pa.Array":
        """The lines as one Arrow binary array, made once from the buffer in a few
        vectorized passes: the record count and the Arrow parsers share it."""
        import pyarrow as pa

        n, buf = self.count, self.buffer
        if n == 0:
            return pa.array([], pa.binary())
        starts, ends = self.starts, self.ends
        end = int(starts[-1])  # the block's bytes are buffer[starts[0]:end]
        cut = starts[1:] - ends  # terminator bytes after each line
        last = int(cut[-1]) == 0 or (int(cut[-1]) == 1 and buf[int(ends[-1])] == 10)
        if last and self.verbatim and bool((cut[:-1] == 1).all()):  # newlines only: drop them all
            region = buf if int(starts[0]) == 0 and end == len(buf) else buf[int(starts[0]):end]
            data = region.replace(b"\n", b"")
        else:  # CRLF or mixed: keep the bytes inside lines
            edge = np.zeros(len(buf) + 1, np.int8)
            edge[ends] += 1  # each index once: ends and starts are strictly increasing
            edge[starts[1:]] -= 1
            inside = np.cumsum(edge[:-1]) == 0
            data = np.frombuffer(buf, np.uint8)[int(starts[0]):end][inside[int(starts[0]):end]].tobytes()
        removed = np.zeros(n + 1, np.int64)
        np.cumsum(cut, out=removed[1:])
        offsets = np.empty(n + 1, np.int64)
        offsets[:-1] = starts[:-1] - removed[:-1] - int(starts[0])
        offsets[-1] = len(data)
        if len(data) >= 2**31 - 1:
            return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
                                         ).cast(pa.binary())
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                      pa.py_buffer(data)])

    def span(self, first: int, last: int) -> "pa.Buffer":
        """Lines ``first`` to ``last`` (inclusive) as read, terminators between them
        included: a zero-copy slice of the buffer (only when ``verbatim``)."""
        import pyarrow as pa

        start, end = int(self.starts[first]), int(self.ends[last])
        return pa.py_buffer(self.buffer).slice(start, end - start)


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
                self.kind, self._dec = "gzip", _GzipMembers(self._raw)  # type: ignore[assignment]
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


class _GzipMembers(io.RawIOBase):
    """gzip members one after another (zero padding between them allowed), inflated by
    ISA-L (``isal``: ~2.3x zlib's speed on Zeek logs; CRC and length checked per member).
    Like ``gzip.GzipFile``, a file cut off inside a member raises ``EOFError`` after
    everything before the cut was returned, and bytes after a member that start no other
    raise ``BadGzipFile``. Output is at most ``n`` bytes per call (bombs stay small)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._obj: "isal_zlib.Decompress | None" = None  # the member being inflated (None: between members)
        self._pending = b""  # compressed input not yet inflated

    def readable(self) -> bool:
        return True

    def read(self, n: int = _PIECE) -> bytes:  # type: ignore[override]
        while True:
            if self._obj is None and not self._next_member():
                return b""
            if not self._pending:
                self._pending = self._fh.read(_GZIP_INPUT)
                if not self._pending:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            obj = self._obj
            out = obj.decompress(self._pending, n)
            if obj.eof:
                self._pending, self._obj = obj.unused_data, None
            else:
                self._pending = obj.unconsumed_tail
            if out:
                return out

    def _next_member(self) -> bool:
        """Past zero padding to the next member's magic bytes; False at the end of file."""
        while True:
            self._pending = self._pending.lstrip(b"\0")
            if len(self._pending) < 2:
                more = self._fh.read(_GZIP_INPUT)
                if not more:
                    if self._pending:
                        raise gzip.BadGzipFile(f"Not a gzipped file ({self._pending!r})")
                    return False
                self._pending += more
                continue
            if self._pending[:2] != b"\x1f\x8b":
                raise gzip.BadGzipFile(f"Not a gzipped file ({self._pending[:2]!r})")
            self._obj = isal_zlib.decompressobj(31)
            return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


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
        """Pieces of at most 1 MiB are scanned for newlines (numpy) as they arrive and
        kept until a block is full, then joined once: the bounds are checked per piece,
        and no Python object is made per line."""
        lim = self.limits
        piece_size = min(self.block_bytes, _PIECE)
        line_no, offset = 1, 0  # the next block's first line and its decompressed byte offset
        carry = b""  # the partial last line
        total = 0
        head: bytes | None = b""  # the first bytes, until a BOM can be told (None after)
        while True:
            pieces: list[bytes] = [carry] if carry else []
            size = len(carry)  # bytes in pieces
            newlines: list[np.ndarray] = []  # newline positions, relative to the block's bytes
            tail = len(carry)  # length of the partial last line so far
            fresh = 0  # bytes read for this block
            reason = None
            at_end = False
            cut: int | None = None  # the block-relative index of a line past the bound
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
                fresh += len(piece)
                pos = np.flatnonzero(np.frombuffer(piece, np.uint8) == 10)
                if len(pos):
                    if tail + int(pos[0]) > lim.max_line_bytes or len(piece) > lim.max_line_bytes:
                        lengths = np.diff(pos, prepend=-1 - tail) - 1
                        long = np.flatnonzero(lengths > lim.max_line_bytes)
                        if len(long):  # a line past the bound: the rest of the file is not read
                            cut = sum(map(len, newlines)) + int(long[0])
                    newlines.append(pos + size)
                    tail = len(piece) - int(pos[-1]) - 1
                else:
                    tail += len(piece)
                pieces.append(piece)
                size += len(piece)
                if cut is not None:
                    at_end = True
                    break
                if tail > lim.max_line_bytes:
                    reason = f"line {line_no + sum(map(len, newlines))} longer than max_line_bytes ({lim.max_line_bytes} bytes)"
                    at_end = True
            buf = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            nl = np.concatenate(newlines) if newlines else np.zeros(0, np.int64)
            rest = int(nl[-1]) + 1 if len(nl) else 0  # where the partial last line starts
            if cut is not None:
                start = int(nl[cut - 1]) + 1 if cut else 0
                reason = f"line {line_no + cut} longer than max_line_bytes ({lim.max_line_bytes} bytes)"
                nl, rest, carry = nl[:cut], start, buf[start:start + STOP_RAW_BYTES]
            elif at_end and reason is None and rest < len(buf):  # the last line has no newline: keep it
                nl, rest, carry = np.append(nl, len(buf)), len(buf), b""
            else:
                carry = buf[rest:]
            if len(nl):
                starts = np.zeros(len(nl) + 1, np.int64)
                starts[1:-1] = nl[:-1] + 1
                starts[-1] = rest
                ends = nl.astype(np.int64)  # copy: the CR strip below writes to it
                if b"\r" in buf:  # CRLF files: one CR before the newline belongs to the terminator
                    arr = np.frombuffer(buf, np.uint8)
                    cr = ends > starts[:-1]
                    cr[cr] = arr[ends[cr] - 1] == 13
                    ends[cr] -= 1
                yield Block(self.source, self.path, line_no, buffer=buf, starts=starts, ends=ends)
                line_no += len(nl)
                offset += rest
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
