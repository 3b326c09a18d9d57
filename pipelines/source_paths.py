"""Which files a config may make the pipeline read.

A source's records end up in outputs (dead letters quote their raw text, findings keep
evidence), so a source path is a way to copy a file into a shareable place: with
``/proc/self/environ`` as a source, the process environment, export secret included, went
into ``deadletter.jsonl``. So a config reads only regular files inside its own folder or
under a root it names in ``allowed_roots:`` (or the CLI's ``--allow-root``), resolved through
symlinks, and never anything under ``/proc``, ``/sys`` or ``/dev``, nor a FIFO, socket or
device, however a glob or a symlink reaches it.
"""
from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

#: Kernel and device trees: never a log archive, whatever ``allowed_roots`` says.
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
_GLOB_CHARS = set("*?[")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def roots(base_dir: str, allowed: list[str] | tuple[str, ...]) -> list[str]:
    """The config's folder and each allowed root (relative ones from the config's folder),
    symlinks resolved."""
    out = [os.path.realpath(base_dir)]
    for r in allowed:
        out.append(os.path.realpath(r if os.path.isabs(r) else os.path.join(base_dir, r)))
    return out


def _special(real: str) -> bool:
    return any(_within(real, s) for s in SPECIAL_ROOTS)


def static_prefix(pattern: str) -> str:
    """The part of a path pattern before its first glob character (a directory)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return os.path.join(*fixed) if fixed else "."


def pattern_problem(pattern: str, base_dir: str, allowed: list[str]) -> str | None:
    """Why a ``paths:`` entry may not be read (None: it may), before anything is listed."""
    full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
    parts = Path(pattern).parts
    first_glob = next((i for i, p in enumerate(parts) if _GLOB_CHARS & set(p)), len(parts))
    if ".." in parts[first_glob:]:
        return "expected a path without '..' after a glob character"
    real = os.path.realpath(static_prefix(full))
    if _special(real):
        return "expected log files, not a path under /proc, /sys or /dev"
    if not any(_within(real, r) for r in roots(base_dir, allowed)):
        return ("expected a path inside the config's folder or under allowed_roots "
                "(config key allowed_roots: or --allow-root DIR)")
    return None


def file_problem(path: str, base_dir: str, allowed: list[str]) -> str | None:
    """Why one matched file may not be read (None: it may)."""
    real = os.path.realpath(path)
    if _special(real):
        return "expected log files, not a file under /proc, /sys or /dev"
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        return f"expected a readable file ({exc.strerror})"
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        return f"expected regular files, got {kind}"
    if not any(_within(real, r) for r in roots(base_dir, allowed)):
        return ("expected files inside the config's folder or under allowed_roots "
                "(a symlink may not lead out of them)")
    return None


def expand(pattern: str, base_dir: str) -> list[str]:
    """Files a pattern names: a directory's files (recursively), a glob's matches or the
    path itself; directories are left out, every other entry is kept (to be checked)."""
    full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
    if os.path.isdir(full):
        return [str(p) for p in Path(full).rglob("*") if not p.is_dir()]
    return [m for m in glob.glob(full, recursive=True) if not os.path.isdir(m)]
