"""Strict checks for threat intel coming in: feed files, the objects in them, store entries.

One implementation for every way intel enters: ``cranewatch intel import`` (files and
TAXII), the bundle files a config names (checked by ``validate``, read by ``run``) and the
entries of the store a run loads. An object or entry that fails is refused with its id and
the reason and the rest is kept, so one bad indicator can neither poison the store nor stop
a run. A whole file that is not a STIX bundle (or not an intel store) is a ``FeedError``:
one line naming the file, never a traceback.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stix_export.intel.patterns import UnsupportedPattern, parse_pattern

#: Deepest nesting accepted inside one object (a STIX indicator is 3-4 levels deep).
MAX_DEPTH = 32
#: Largest feed or store file read (bytes): far above any indicator feed, far below memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Default minimum prefix lengths of an address indicator (``intel.min_prefix_ipv4/_ipv6``).
DEFAULT_MIN_PREFIX_IPV4 = 16
DEFAULT_MIN_PREFIX_IPV6 = 32
_TERM_TYPES = ("ip", "domain", "port")
#: Properties STIX 2.1 requires that ``stix2.parse`` would otherwise make up.
_REQUIRED = {"indicator": ("id", "created", "modified", "pattern", "pattern_type", "valid_from"),
             "marking-definition": ("id", "created")}
_STIX_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")


class FeedError(ValueError):
    """A feed or store file that cannot be read as a whole; the message is one line."""


@dataclass(frozen=True)
class Policy:
    """What an indicator may claim: address ranges no broader than these prefix lengths."""

    min_prefix_ipv4: int = DEFAULT_MIN_PREFIX_IPV4
    min_prefix_ipv6: int = DEFAULT_MIN_PREFIX_IPV6

    @classmethod
    def of(cls, cfg: Any) -> "Policy":
        """The policy a config sets (``intel.min_prefix_ipv4``/``_ipv6``), else the defaults."""
        section = getattr(cfg, "intel", None)
        return cls(getattr(section, "min_prefix_ipv4", DEFAULT_MIN_PREFIX_IPV4),
                   getattr(section, "min_prefix_ipv6", DEFAULT_MIN_PREFIX_IPV6))


def printable(text: Any) -> str:
    """``text`` safe to print or write as UTF-8: lone surrogates as ``\\udxxx`` escapes."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(text: Any, limit: int = 300) -> str:
    """A library's message as one printable line of at most ``limit`` characters."""
    line = " ".join(printable(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stix_time(value: Any) -> dt.datetime:
    """A STIX timestamp (RFC 3339, UTC, ``Z``, optional fraction) as an aware datetime;
    ``ValueError`` for anything else (``"never"``, offsets, dates without a time)."""
    m = _STIX_TIME.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"expected an RFC 3339 UTC timestamp such as 2026-11-01T00:00:00Z, got {printable(repr(value))}")
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0").ljust(6, "0")[:6]),
                           tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise ValueError(f"expected a valid date and time, got {value!r} ({exc})") from None


def text_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` (decoded JSON) cannot be stored and re-shared as UTF-8 JSON, or None:
    a lone surrogate or other unencodable text (in a key or a value), NaN/Infinity, or
    nesting deeper than ``max_depth``. Walks without recursion, so depth cannot crash it."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, where, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (f"{where or 'text'}: text that is not valid Unicode "
                        f"(U+{ord(v[exc.start]):04X} at character {exc.start}, a lone surrogate)")
        elif isinstance(v, float) and not math.isfinite(v):
            return f"{where or 'value'}: {v} is not a JSON number"
        elif isinstance(v, dict):
            for k, item in v.items():
                if text_problem(k, 0) is not None:
                    return f"{where or 'object'}: a property name that is not valid Unicode ({printable(repr(k))})"
                stack.append((item, f"{where}.{k}" if where else str(k), depth + 1))
        elif isinstance(v, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(v))
    return None


# --- files --------------------------------------------------------------------------------


def read_json_file(path: str | Path, what: str) -> Any:
    """The decoded JSON of ``path``; ``FeedError`` (one line: file, expectation, what was
    found) for a missing, empty, oversized, binary, truncated or too deeply nested file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FeedError(f"{path}: expected {what} (a regular file), got a special file or folder")
        if size > MAX_FILE_BYTES:
            raise FeedError(f"{path}: expected {what} of at most {MAX_FILE_BYTES:,} bytes, got {size:,} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"{path}: expected a readable file with {what}, got {exc.strerror or exc}") from None
    if not raw.strip():
        raise FeedError(f"{path}: expected {what}, got an empty file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{path}: expected {what} as UTF-8 JSON, got undecodable bytes at offset {exc.start} "
                        "(a binary file?)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        ended = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        found = "truncated JSON" if ended else "invalid JSON"
        raise FeedError(f"{path}: expected {what}, got {found} at line {exc.lineno} column {exc.colno} "
                        f"({exc.msg})") from None
    except RecursionError:
        raise FeedError(f"{path}: expected {what}, got JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise FeedError(f"{path}: expected {what}, got {one_line(exc)}") from None


def read_feed(path: str | Path) -> list[Any]:
    """The objects of a STIX 2.1 bundle file (each still to be checked one by one)."""
    what = "a STIX 2.1 bundle"
    data = read_json_file(path, what)
    if not isinstance(data, dict):
        raise FeedError(f"{path}: expected {what} (a JSON object with \"type\": \"bundle\"), "
                        f"got a JSON {json_kind(data)}")
    if data.get("type") != "bundle":
        raise FeedError(f"{path}: expected {what} (\"type\": \"bundle\"), got type {printable(repr(data.get('type')))}")
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise FeedError(f"{path}: objects: expected a list of STIX objects, got a JSON {json_kind(objects)}")
    return objects


def json_kind(value: Any) -> str:
    """How an error message names a JSON value's type."""
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


# --- objects ------------------------------------------------------------------------------


def object_label(obj: Any, index: int) -> str:
    """How a report names an object: its id when it has a usable one, else its position."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"]:
        return printable(obj["id"])[:200]
    return f"objects[{index}]"


def _stix_problem(obj: dict[str, Any], pattern_checked_later: bool = False) -> str | None:
    """What ``stix2.parse`` (custom properties allowed: feeds carry them, matching ignores
    them) and the rules it leaves out (``spec_version`` present, timestamps in STIX form,
    ``modified`` not before ``created``) find wrong with one object. With
    ``pattern_checked_later`` stix2 is not asked to parse the pattern: ``parse_pattern``
    parses it with the same grammar next (parsing it twice doubled the import time)."""
    import stix2

    problem = text_problem(obj)
    if problem:
        return problem
    if obj.get("spec_version") != "2.1":
        return f"spec_version: expected \"2.1\", got {printable(repr(obj.get('spec_version')))}"
    # stix2 fills in id, created, modified and an indicator's valid_from when absent: a feed
    # must carry them (an invented valid_from of "now" would change what the indicator means)
    required = _REQUIRED.get(obj.get("type"), ("id", "created", "modified"))
    missing = [k for k in required if k not in obj]
    if missing:
        return f"{missing[0]}: required, missing"
    null = _null_property(obj)
    if null:  # stix2 reads a null as "absent"; STIX JSON has no nulls, and a re-shared copy would keep it
        return f"{null}: null is not a STIX value (leave the property out)"
    probe = {**obj, "pattern_type": "x-checked-by-parse-pattern"} if pattern_checked_later else obj
    try:
        stix2.parse(probe, allow_custom=True, version="2.1")
    except Exception as exc:  # stix2 raises many types; each is a reason to refuse the object
        return f"not valid STIX 2.1: {one_line(exc)}"
    times: dict[str, dt.datetime] = {}
    for key in ("created", "modified", "valid_from", "valid_until"):
        if key in obj:
            try:
                times[key] = stix_time(obj[key])
            except ValueError as exc:
                return f"{key}: {exc}"
    if "created" in times and "modified" in times and times["modified"] < times["created"]:
        return "modified: expected a time at or after created"
    return None


def _null_property(obj: dict[str, Any]) -> str | None:
    """The path of the first null value in an object (already checked for depth), or None."""
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        v, where = stack.pop()
        if v is None:
            return where or "object"
        if isinstance(v, dict):
            stack.extend((item, f"{where}.{k}" if where else str(k)) for k, item in v.items())
        elif isinstance(v, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(v))
    return None


def check_related(obj: dict[str, Any]) -> str | None:
    """Why an identity or marking definition kept beside indicators is unusable, or None."""
    return _stix_problem(obj)


def check_indicator(obj: Any, policy: Policy = Policy()) -> tuple[list[dict[str, Any]], str | None]:
    """``(terms, None)`` for an indicator the store can keep (``[]`` for a revoked one, which
    is kept only to stop older versions), ``([], reason)`` for one it must refuse: invalid
    STIX, ``valid_until`` not after ``valid_from``, text that is not valid Unicode, a pattern
    outside the supported subset, or a network broader than the policy allows."""
    if not isinstance(obj, dict):
        return [], f"expected a STIX object (a JSON object), got a JSON {json_kind(obj)}"
    ours = obj.get("type") == "indicator" and obj.get("pattern_type") == "stix" and obj.get("revoked") is not True
    problem = _stix_problem(obj, pattern_checked_later=ours)
    if problem:
        return [], problem
    if obj.get("type") != "indicator":
        return [], f"expected an indicator, got type {printable(repr(obj.get('type')))}"
    if "valid_until" in obj and stix_time(obj["valid_until"]) <= stix_time(obj["valid_from"]):
        return [], "valid_until: expected a time after valid_from"
    for key in ("name", "description"):
        if key in obj and not isinstance(obj[key], str):
            return [], f"{key}: expected a string, got a JSON {json_kind(obj[key])}"
    if obj.get("revoked") is True:
        return [], None
    if obj.get("pattern_type", "stix") != "stix":
        return [], f"pattern_type {printable(obj.get('pattern_type'))} is not supported (stix only)"
    try:
        terms = parse_pattern(obj["pattern"])
    except UnsupportedPattern as exc:
        return [], one_line(exc)
    reason = breadth_problem(terms, policy)
    return ([], reason) if reason else (terms, None)


def breadth_problem(terms: list[dict[str, Any]], policy: Policy) -> str | None:
    """Why the terms claim too much address space, or None. A network broader than the
    minimum prefix length of its IP version is refused, standalone or inside an AND term;
    the one exception is the whole address space inside an AND term (what a
    ``*_ref.type = 'ipv4-addr'`` check stands for), which narrows nothing beyond the term's
    other parts, which must themselves hold (a port, a domain, a narrow network)."""
    for term in terms:
        atoms = term.get("terms", []) if term.get("type") == "and" else [term]
        for atom in atoms:
            if atom.get("type") != "ip":
                continue
            net = ipaddress.ip_network(atom["value"])
            least = policy.min_prefix_ipv4 if net.version == 4 else policy.min_prefix_ipv6
            if net.prefixlen >= least or (term.get("type") == "and" and net.prefixlen == 0):
                continue
            return (f"{net} is broader than the minimum prefix length /{least} for IPv{net.version} indicators "
                    f"(intel.min_prefix_ipv{net.version})")
    return None


# --- store entries ------------------------------------------------------------------------


def check_entry(key: Any, entry: Any, policy: Policy = Policy()) -> str | None:
    """Why a store entry cannot be used by a run, or None. Checks everything matching and
    re-sharing rely on, so a hand-edited or older store can never stop a run: the entry's
    shape, its timestamps, its match terms, the policy's breadth, and that all its text is
    encodable. Terms of a type this version does not know are allowed (they never match)."""
    if not isinstance(entry, dict):
        return f"expected a store entry (a JSON object), got a JSON {json_kind(entry)}"
    problem = text_problem(entry, MAX_DEPTH + 4)
    if problem:
        return problem
    if entry.get("id") != key:
        return f"id: expected the entry's key {printable(repr(key))}, got {printable(repr(entry.get('id')))}"
    for name in ("name", "pattern", "source"):
        if not isinstance(entry.get(name, ""), str):
            return f"{name}: expected a string, got a JSON {json_kind(entry[name])}"
    if not isinstance(entry.get("revoked", False), bool):
        return "revoked: expected true or false"
    for name in ("modified", "valid_from", "valid_until"):
        if entry.get(name) is None and name == "valid_until":
            continue
        if entry.get(name) is None and name == "valid_from" and entry.get("revoked"):
            continue
        try:
            stix_time(entry.get(name))
        except ValueError as exc:
            return f"{name}: {exc}"
    if entry.get("valid_until") and stix_time(entry["valid_until"]) <= stix_time(entry["valid_from"]):
        return "valid_until: expected a time after valid_from"
    terms = entry.get("match")
    if not isinstance(terms, list):
        return "match: expected a list of match terms"
    for i, term in enumerate(terms):
        problem = _term_problem(term, and_ok=True)
        if problem:
            return f"match[{i}]: {problem}"
    if not entry.get("revoked"):
        reason = breadth_problem([t for t in terms if t.get("type") in (*_TERM_TYPES, "and")], policy)
        if reason:
            return reason
    obj = entry.get("object")
    if obj is not None and not (isinstance(obj, dict) and obj.get("id") == key and obj.get("type") == "indicator"):
        return "object: expected the received indicator object with the entry's id"
    related = entry.get("related", [])
    if not isinstance(related, list) or any(not isinstance(r, dict) or not isinstance(r.get("id"), str)
                                            or not isinstance(r.get("type"), str) for r in related):
        return "related: expected a list of STIX objects"
    for name, received in [("object", obj), *((f"related[{i}]", r) for i, r in enumerate(related))]:
        if received is None:
            continue
        null = _null_property(received)  # a re-shared copy must be STIX JSON (older imports kept nulls)
        if null:
            return f"{name}.{null}: null is not a STIX value"
        if not isinstance(received.get("object_marking_refs", []), list):
            return f"{name}.object_marking_refs: expected a list of marking ids"
    return None


def _term_problem(term: Any, and_ok: bool) -> str | None:
    if not isinstance(term, dict) or not isinstance(term.get("type"), str):
        return "expected a term object with a type"
    kind, side, value = term["type"], term.get("side"), term.get("value")
    if kind not in (*_TERM_TYPES, "and"):
        return None  # a newer store's term: never matches
    if side not in (None, "src", "dst"):
        return f"side: expected src or dst, got {printable(repr(side))}"
    if kind == "ip":
        try:
            ipaddress.ip_network(value)
        except (TypeError, ValueError):
            return f"expected an IP address or network, got {printable(repr(value))}"
    elif kind == "domain":
        if not isinstance(value, str) or not value:
            return f"expected a domain name, got {printable(repr(value))}"
    elif kind == "port":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535 or side is None:
            return f"expected a port number 0-65535 with a side, got {printable(repr(value))}"
    else:
        atoms = term.get("terms")
        if not and_ok or not isinstance(atoms, list) or not atoms:
            return "expected an AND term with a list of parts"
        for atom in atoms:
            if not isinstance(atom, dict) or atom.get("type") not in _TERM_TYPES:
                return "expected AND parts of type ip, domain or port"
            problem = _term_problem(atom, and_ok=False)
            if problem:
                return problem
    return None
