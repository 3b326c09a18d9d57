"""Stable codes for dead-letter reasons, so runs can be counted and compared by kind.

Parsers write a human reason ("invalid JSON: Expecting value at column 1"); the code beside
it (``invalid_json``) is derived here, in one place, from the reason's wording, so parsers
need not agree on anything but their text. The first matching rule wins; a reason no rule
knows is ``other``, never an error. Codes are part of the output contract
(``deadletter.jsonl`` and ``summary.json``): add codes, do not rename them.
"""
from __future__ import annotations

import re

#: (code, pattern searched in the lower-cased reason), first match wins.
RULES: tuple[tuple[str, str], ...] = (
    ("late", r"^late |allowed.lateness"),
    ("too_large", r"decompress\w* (size|ratio)|too large|size limit|ratio limit|expands? (past|beyond)"),
    ("too_long", r"too long|longer than|line length"),
    ("truncated", r"truncat|ended inside|unexpected end|eoferror"),
    ("not_utf8", r"utf-?8|surrogate|unicodedecodeerror"),
    ("unreadable_file", r"^unreadable file|^cannot (open|read)|no such file|permission denied"),
    ("invalid_json", r"invalid (\w+ )?json|not a json object|jsondecodeerror"),
    ("bad_time", r"timestamp|time zone|timezone|\btime\b.*(invalid|unparseable|offset|range)"),
    ("wrong_format", r"^not (a|an|part of) |^unsupported .*separator"),
    ("field_count", r"-separated fields|fields after|column count|row count"),
    ("missing_field", r"^missing|^no \S+ field|required key"),
    ("control_char", r"carriage return|nul byte|control char"),
    ("bad_value", r"^invalid |expected (an? |true)|^unknown |out of range"),
    ("unreadable", r"^unreadable"),
)
_COMPILED = tuple((code, re.compile(pattern)) for code, pattern in RULES)
CODES = tuple(code for code, _ in RULES) + ("other",)


def reason_code(reason: str) -> str:
    """The stable code of a dead-letter reason (``other`` when no rule matches)."""
    text = (reason or "").lower()
    for code, pattern in _COMPILED:
        if pattern.search(text):
            return code
    return "other"


def reason_label(reason: str) -> str:
    """The reason without its particulars ("not a Zeek Modbus log (...)" → "not a Zeek Modbus log")."""
    head = re.split(r"[(:{\[]| \d| '", reason or "", maxsplit=1)[0].strip()
    return head or reason_code(reason)
