"""Decoding one JSON record safely: every way a JSON text can fail becomes a ``Reject``
(the dead letter's reason) instead of an exception that escapes the parser — syntax,
nesting deep enough to hit Python's recursion limit, integers of thousands of digits, and
lone surrogate escapes, which Python accepts but no UTF-8 output can hold."""
from __future__ import annotations

import json
import re
from typing import Callable


class Reject(ValueError):
    """A record that does not follow its format; the message is the dead-letter reason."""


def json_value(text: str, decode: Callable[[str], object] = json.loads) -> object:
    """One JSON text decoded, or ``Reject`` naming why not: bad syntax, nesting too deep,
    an integer of thousands of digits, or a lone surrogate escape (``"\\ud800"``), which
    Python accepts but no UTF-8 output (Arrow, JSON files) can hold."""
    try:
        obj = decode(text)
    except Reject:
        raise
    except json.JSONDecodeError as e:
        raise Reject(f"invalid JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise Reject("invalid JSON: nested too deeply") from None
    except ValueError as e:
        raise Reject(f"invalid JSON: {e}") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
        raise Reject(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("invalid JSON: lone surrogate escape in a string (not a character)") from None
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
MAX_JSON_DEPTH = 100  # log records nest a few levels; deeper is an attack on recursion


def _json_depth(text: str) -> int:
    """Nesting depth of JSON text (strings skipped)."""
    depth = top = 0
    for ch in _JSON_STRING.sub("", text):
        if ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth -= 1
    return top


def json_object(text: str, decode: Callable[[str], object] = json.loads) -> dict:
    """One JSON-lines record as an object, or ``Reject`` with the reason a dead letter names."""
    obj = json_value(text, decode)
    if not isinstance(obj, dict):
        raise Reject(f"not a JSON object ({type(obj).__name__})")
    return obj


