"""Rewrite and scan the free texts of a bundle for the values a sharing profile redacts.

Two kinds of value are looked for in every string:

* **addresses**, found by notation (``addresses.find_addresses``: dotted IPv4, IPv4-mapped
  and other IPv6 spellings) and judged per host, so an internal address that no inventory
  or finding names (a CMS ``new_value`` of ``host 10.66.9.9``) is caught as well as a known one;
* **names** (accounts, asset ids, zone names, crane ids), matched case-insensitively; a crane
  id also in its other spellings (``STS-05``, ``sts05``, ``STS 05``), since zone and host
  names are built from it.

Over-redacting a text is safe; under-redacting is what the final scan exists to stop.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterable

from stix_export.addresses import Span, iter_addresses, parse

#: Keys whose values are ids, times or hashes: never rewritten as text.
NON_TEXT_KEYS = ("id", "type", "spec_version", "created", "modified", "hashes", "pattern",
                 "valid_from", "valid_until", "first_seen", "last_seen", "first_observed", "last_observed")


def value_pattern(value: str) -> str:
    """Regex for one sensitive value in text: addresses on address boundaries (10.30.1.10 is
    not inside 10.30.1.100), names anywhere and case-insensitively (over-redacting is safe)."""
    ip = parse(value) if any(c in value for c in ".:") else None
    if ip is None:
        return "(?i:" + re.escape(value) + ")"
    if ip.version == 4 and "." in value:
        return r"(?<![0-9])(?<![0-9]\.)" + re.escape(value) + r"(?![0-9]|\.[0-9])"
    return r"(?<![0-9A-Fa-f:])(?i:" + re.escape(value) + r")(?![0-9A-Fa-f:])"


def spelling_pattern(name: str) -> str:
    """Regex for an identifier in any of its usual spellings: letters and digit groups in the
    same order, separated by nothing, ``-``, ``_``, ``.`` or a space, digits with or without
    leading zeros (``STS-05``: ``sts05``, ``STS 5``, ``sts_05``)."""
    parts = re.findall(r"[A-Za-z]+|[0-9]+", name)
    if not parts:
        return "(?i:" + re.escape(name) + ")"
    out = []
    for p in parts:
        out.append(p if not p.isdigit() else "0*" + str(int(p)))
    body = r"[\s_.-]?".join(out)
    left = r"(?<![0-9])" if parts[0].isdigit() else r"(?<![A-Za-z])"
    right = r"(?![0-9])" if parts[-1].isdigit() else r"(?![A-Za-z])"
    return f"(?i:{left}{body}{right})"


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    """``re.compile`` kept for the process: an incident's bundles, its profile report and its
    mandated drafts each build a rewriter for the same values, and one pattern of every
    inventoried name takes milliseconds to compile (more than ``re``'s own cache holds)."""
    return re.compile(pattern)


@functools.lru_cache(maxsize=256)
def _patterns(names: tuple[tuple[str, str], ...], spellings_in: tuple[tuple[str, str], ...]) -> tuple[
        dict[str, str], dict[str, str], re.Pattern[str] | None, re.Pattern[str] | None]:
    """What a ``TextRewriter`` matches with (read-only, shared by rewriters of the same
    values): replacements by lowercased name, spelling groups, the value regex, the needles."""
    lowered = {k.lower(): v for k, v in names if k}
    spellings = {k: v for k, v in spellings_in if k}
    keys = sorted(lowered, key=lambda k: (-len(k), k))
    alts = [value_pattern(k) for k in keys]
    groups = {}
    for i, k in enumerate(sorted(spellings, key=lambda k: (-len(k), k))):
        alts.append(f"(?P<s{i}>{spelling_pattern(k)})")
        groups[f"s{i}"] = spellings[k]
    value_re = _compiled("|".join(alts)) if alts else None
    # Plain substring test first: the regex costs far more than ``in``, and almost no
    # string of a bundle holds any sensitive value at all.
    needles = {*keys, *(m.lower() for k in spellings for m in re.findall(r"[A-Za-z]+|[0-9]+", k)[:1])}
    # one C-level search for "does any needle occur" instead of a Python loop over them
    needle_re = _compiled("|".join(re.escape(n) for n in sorted(needles))) if needles else None
    return lowered, groups, value_re, needle_re


#: Distinct strings a rewriter remembers before starting afresh (bounds a long-lived one).
_MEMO = 50_000


class TextRewriter:
    """Replaces every redacted value in a text and finds any that remain.

    ``names`` maps a name to what texts say instead; ``spellings`` maps an identifier
    matched in any spelling (``spelling_pattern``) to its replacement; ``address`` returns
    the replacement of an address span, or None for an address the profile does not redact.
    """

    def __init__(self, names: dict[str, str], spellings: dict[str, str] | None = None,
                 address: Callable[[Span], str | None] | None = None):
        self.names, self._spelling, self._re, self._needles = _patterns(
            tuple(names.items()), tuple((spellings or {}).items()))
        self.address = address
        # A bundle repeats the same strings many times (ids, references, keys, one finding's
        # text in each of its sightings): each distinct string is rewritten and scanned once.
        self._texts: dict[str, str] = {}
        self._found: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return self._re is not None or self.address is not None

    def _may_hold(self, value: str) -> bool:
        return self._needles is not None and self._needles.search(value.lower()) is not None

    def _name_replacement(self, m: re.Match[str]) -> str:
        if m.lastgroup in self._spelling:
            return self._spelling[m.lastgroup]
        return self.names.get(m.group(0).lower(), "[redacted]")

    def text(self, value: str) -> str:
        if type(value) is not str:
            return self._text(value)
        done = self._texts.get(value)
        if done is None:
            if len(self._texts) > _MEMO:
                self._texts.clear()
            done = self._texts[value] = self._text(value)
        return done

    def _text(self, value: str) -> str:
        if self.address is not None:
            pieces, at = [], 0
            for span in iter_addresses(value):
                shown = self.address(span)
                if shown is not None:
                    pieces += [value[at:span.start], shown]
                    at = span.end
            if pieces:
                value = "".join(pieces) + value[at:]
        if self._re is not None and self._may_hold(value):
            value = self._re.sub(self._name_replacement, value)
        return value

    def found(self, value: str) -> list[str]:
        """What of ``value`` this profile redacts (empty if nothing; do not modify the list)."""
        done = self._found.get(value)
        if done is None:
            if len(self._found) > _MEMO:
                self._found.clear()
            done = self._found[value] = self._find(value)
        return done

    def _find(self, value: str) -> list[str]:
        out = [s.text for s in iter_addresses(value) if self.address is not None and self.address(s) is not None]
        if self._re is not None and self._may_hold(value):
            out += [m.group(0) for m in self._re.finditer(value)]
        return out

    def rewrite_object(self, obj: Any, key: str = "") -> Any:
        """Rewrite every text in a JSON value, leaving ids, references, times and hashes."""
        if type(obj) is str:
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: (v if _is_non_text_key(k) else self.rewrite_object(v, k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.rewrite_object(v, key) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


_NON_TEXT: dict[str, bool] = {}


def _is_non_text_key(key: str) -> bool:
    """``key`` holds an id, reference, time or hash (memoized: bundles repeat few keys)."""
    done = _NON_TEXT.get(key)
    if done is None:
        done = key in NON_TEXT_KEYS or key.endswith("_ref") or key.endswith("_refs")
        if len(_NON_TEXT) < 4096:
            _NON_TEXT[key] = done
    return done


def string_list(value: Any) -> list[str]:
    """``strings(value)`` as a list (keys included, same order), without a generator per
    level: the leak scan walks every object of every bundle."""
    out: list[str] = []
    _collect(value, out)
    return out


def _collect(value: Any, out: list[str]) -> None:
    t = type(value)
    if t is str:
        out.append(value)
    elif t is dict:
        for k, v in value.items():
            out.append(k)
            tv = type(v)
            if tv is str:
                out.append(v)
            elif tv is dict or tv is list:
                _collect(v, out)
            elif isinstance(v, (dict, list, str)):
                _collect(v, out)
    elif t is list:
        for v in value:
            tv = type(v)
            if tv is str:
                out.append(v)
            elif tv is dict or tv is list:
                _collect(v, out)
            elif isinstance(v, (dict, list, str)):
                _collect(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(k)
            _collect(v, out)
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)
    elif isinstance(value, str):
        out.append(value)


def strings(value: Any, keys: bool = True) -> Iterable[str]:
    """Every string in a JSON value, keys included unless ``keys=False``."""
    if isinstance(value, dict):
        for k, v in value.items():
            if keys:
                yield k
            yield from strings(v, keys)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, keys)
    elif isinstance(value, str):
        yield value
