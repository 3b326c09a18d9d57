"""Evidence locations relative to the configured source roots, not to this host's folders.

Parsers point at a record as ``<path>:<line>`` with the path they were given (absolute, once
the config's sources are resolved). Findings cite that pointer, their ids are derived from
it, and STIX bundles publish it; with an absolute path the same logs read from another
folder would give other ids and another bundle content under the same id + ``modified``.
``relative_ref`` rewrites the path relative to the root it was found under: the config's
folder, an ``allowed_roots`` entry, or the fixed folder an absolute source pattern names
(``/var/log/zeek`` for ``/var/log/zeek/conn*.log``), or a source's ``spool:`` directory (so a
file read from a spool cites the same path as when batch reads it from there); the longest
matching root wins.
"""
from __future__ import annotations

import functools
import os
import posixpath
import re
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from pipelines.config import Config

_GLOB = re.compile(r"[*?\[]")


def _static_dir(pattern: str) -> str:
    """The folder part of a glob pattern before its first wildcard."""
    m = _GLOB.search(pattern)
    head = pattern[: m.start()] if m else pattern
    return head if head.endswith(os.sep) or os.path.isdir(head) else os.path.dirname(head)


@functools.lru_cache(maxsize=64)
def _roots(base_dir: str, extra: tuple[str, ...], patterns: tuple[str, ...],
           spools: tuple[str, ...] = ()) -> tuple[str, ...]:
    base = os.path.abspath(base_dir)
    roots = {base}
    roots.update(os.path.abspath(os.path.join(base, r)) for r in extra)
    roots.update(os.path.abspath(_static_dir(p)) for p in patterns if os.path.isabs(p))
    roots.update(os.path.abspath(os.path.join(base, d)) for d in spools)
    return tuple(sorted(roots, key=len, reverse=True))


def source_roots(cfg: Config) -> tuple[str, ...]:
    """Folders evidence paths are made relative to, longest first."""
    extra: Iterable[str] = getattr(cfg, "allowed_roots", None) or ()
    patterns = tuple(p for s in cfg.sources for p in s.paths)
    spools = tuple(s.spool for s in cfg.sources if getattr(s, "spool", None))
    return _roots(cfg.base_dir, tuple(str(r) for r in extra), patterns, spools)


@functools.lru_cache(maxsize=4096)
def relative_path(path: str, roots: tuple[str, ...]) -> str:
    """``path`` relative to the first (longest) root holding it, ``/``-separated; a path
    under no root keeps its file name only (never a host's absolute path). Cached: every
    finding's evidence asks, for the few files of a run."""
    if not os.path.isabs(path):
        return path.replace(os.sep, "/")
    full = os.path.normpath(path)
    for root in roots:
        if full == root or full.startswith(root.rstrip(os.sep) + os.sep):
            return posixpath.join(*os.path.relpath(full, root).split(os.sep))
    return os.path.basename(full)


def relative_ref(raw_ref: str, cfg: Config) -> str:
    """A ``<path>:<line>`` pointer with its path relative to the source roots."""
    if not raw_ref or not os.path.isabs(raw_ref):
        return raw_ref
    path, sep, line = raw_ref.rpartition(":")
    if not sep or not line.isdigit():
        path, line = raw_ref, ""
    rel = relative_path(path, source_roots(cfg))
    return f"{rel}:{line}" if line else rel
