"""The raw records behind the evidence pointers (``path:line``) of a run's findings.

Findings carry only a pointer and a SHA-256 of each raw record (the pipeline never keeps
the text), so the report reads the cited lines back from the input files, through the same
block reader the parsers use (compression, BOM, CRLF handled alike), and shows a line only
as "verified" when its hash still matches: a log rotated or edited since the run must not
be shown as the evidence it no longer is.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from transforms.model import sha256_text
from transforms.read import iter_blocks

#: A raw record longer than this is cut in the report (the evidence hash covers all of it).
MAX_RAW_CHARS = 4000


@dataclass(frozen=True)
class RawRecord:
    text: str | None  # None: could not be read back
    verified: bool  # the text's SHA-256 equals the evidence hash
    note: str  # why it is missing or unverified ("" when verified)


def split_ref(raw_ref: str) -> tuple[str, int] | None:
    """``path:line`` -> (path, line), None for a pointer that is not a line of a file."""
    path, sep, line = raw_ref.rpartition(":")
    if not sep or not line.isdigit() or int(line) < 1:
        return None
    return path, int(line)


def resolve_ref(raw_ref: str, roots: Iterable[str]) -> str:
    """An evidence pointer as a file on this host: a pointer relative to the source roots (as
    runs store them, ``transforms.locations.relative_ref``) under the first root holding the
    file; an absolute one, or one found under no root, as it is."""
    where = split_ref(raw_ref)
    if where is None or os.path.isabs(where[0]):
        return raw_ref
    for root in roots:
        path = os.path.join(root, *where[0].split("/"))
        if os.path.isfile(path):
            return f"{path}:{where[1]}"
    return raw_ref


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "surrogateescape")


def read_back(wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RawRecord]:
    """The raw records for ``(raw_ref, sha256)`` pairs; each input file is read at most once
    and only up to its last cited line."""
    by_path: dict[str, dict[int, list[tuple[str, str]]]] = {}
    out: dict[tuple[str, str], RawRecord] = {}
    for raw_ref, sha in set(wanted):
        where = split_ref(raw_ref)
        if where is None:
            out[(raw_ref, sha)] = RawRecord(None, False, "not a line of a text file")
            continue
        by_path.setdefault(where[0], {}).setdefault(where[1], []).append((raw_ref, sha))
    for path, lines in by_path.items():
        found: dict[int, bytes] = {}
        if os.path.isfile(path):
            last = max(lines)
            try:
                for block in iter_blocks("", path):
                    end = block.first_line + len(block.lines)
                    for n in lines:
                        if block.first_line <= n < end:
                            found[n] = block.lines[n - block.first_line]
                    if end > last:
                        break
            except (OSError, EOFError, ValueError) as exc:
                note = f"input file unreadable ({type(exc).__name__})"
                for keys in lines.values():
                    out.update({k: RawRecord(None, False, note) for k in keys})
                continue
        for n, keys in lines.items():
            for key in keys:
                out[key] = _record(found.get(n), key[1], os.path.isfile(path))
    return out


def _record(line: bytes | None, sha: str, exists: bool) -> RawRecord:
    if line is None:
        return RawRecord(None, False, "line no longer in the input file" if exists else "input file no longer there")
    text = _decode(line)
    verified = sha256_text(text) == sha
    shown = text.encode("utf-8", "replace").decode("utf-8")
    if len(shown) > MAX_RAW_CHARS:
        shown = shown[:MAX_RAW_CHARS] + f"… ({len(text) - MAX_RAW_CHARS:,} more characters)"
    return RawRecord(shown, verified, "" if verified else "changed since the run: hash differs")
