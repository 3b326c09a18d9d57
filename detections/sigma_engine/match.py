"""Value matchers: one Sigma value (after its modifiers) against one event field.

Each matcher answers twice, with the same semantics: ``vector`` on a whole Arrow column
(pyarrow.compute) and ``one`` on a single Python value (the row-wise path, and the
reference the vectorized path is tested against). Strings are matched with RE2 on both
paths (Arrow's regex engine; the ``re2`` module row-wise), so case folding is the same.
A matcher whose ``vectorizable`` is False (a regex RE2 cannot run, a field reference with
``startswith``/``endswith``) is evaluated row-wise only.

Sigma semantics kept here: plain strings match case-insensitively and whole (``*`` and
``?`` are wildcards), ``cased`` makes them case-sensitive, ``re`` searches (unanchored,
case-sensitive unless ``i``), a missing field matches only ``null`` and ``exists: false``.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import re2

from sigma.types import (
    CompareOperators, SigmaBool, SigmaCasedString, SigmaCIDRExpression, SigmaCompareExpression,
    SigmaExists, SigmaExpansion, SigmaFieldReference, SigmaNull, SigmaNumber, SigmaRegularExpression,
    SigmaRegularExpressionFlag, SigmaString, SpecialChars,
)

_RE2_SPECIAL = set("\\.^$|?*+()[]{}")
#: A number as text, the same on both paths (Python's float() accepts more: "inf", "1_0").
_NUMBER = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_NUMBER_RE = re.compile(_NUMBER)


class Unsupported(ValueError):
    """A Sigma value this engine cannot evaluate; the message says which and why."""


def _escape(s: str) -> str:
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in s)


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def as_text(col: Any) -> Any:
    """A column as strings (numbers in Arrow's decimal form, the same as ``text``)."""
    if is_text(col.type):
        return col
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.string())
    return pc.cast(col, pa.string())


def text(v: Any) -> str | None:
    """A Python value as Arrow writes it as text (``as_text``), for the row-wise path."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return pa.scalar(v).cast(pa.string()).as_py()


def as_number(col: Any) -> Any:
    """A column as float64: numbers as they are, text that is a number parsed, else null."""
    if is_numeric(col.type):
        return pc.cast(col, pa.float64())
    if not is_text(col.type):
        return pa.nulls(len(col), pa.float64())
    ok = pc.match_substring_regex(col, _NUMBER)
    return pc.cast(pc.utf8_trim_whitespace(pc.if_else(ok, col, pa.scalar(None, pa.string()))), pa.float64())


def number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and _NUMBER_RE.match(v):
        return float(v.strip())
    return None


@lru_cache(maxsize=4096)
def re2_ok(pattern: str) -> bool:
    """Can Arrow (RE2) run this pattern?"""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


@lru_cache(maxsize=4096)
def _re2(pattern: str) -> Any:
    return re2.compile(pattern)


class View:
    """One field of one batch as the matchers read it, each form computed once per batch
    and shared by every rule (``cache``): the column, as text, as numbers, lowercased."""

    def __init__(self, col: Any, memo: dict[str, Any], name: str):
        self.raw, self._memo, self._name = col, memo, name

    def _get(self, kind: str, fn: Callable[[], Any]) -> Any:
        key = f"\x00sigma-{kind}:{self._name}"
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def text(self) -> Any:
        return self._get("text", lambda: as_text(self.raw))

    @property
    def number(self) -> Any:
        return self._get("number", lambda: as_number(self.raw))

    @property
    def lower(self) -> Any:
        return self._get("lower", lambda: pc.utf8_lower(self.text))

    @property
    def ascii(self) -> Any:
        return self._get("ascii", lambda: pc.string_is_ascii(self.text))

    @property
    def all_ascii(self) -> bool:
        return self._get("all-ascii", lambda: bool(pc.all(pc.fill_null(self.ascii, True)).as_py() is not False))


class Matcher:
    vectorizable = True
    #: Other event fields this matcher reads (a field reference).
    refs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Identifies what this matcher tests, so rules testing the same share the result."""
        parts = {k: (v.key if isinstance(v, Matcher) else [p.key for p in v] if k == "parts" else v)
                 for k, v in sorted(vars(self).items()) if not k.startswith("_") and k not in ("py",)}
        return f"{type(self).__name__}{parts!r}"

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        raise NotImplementedError

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        raise NotImplementedError


class StringMatch(Matcher):
    """A Sigma string with wildcards; ``cased``: case-sensitive."""

    def __init__(self, s: SigmaString, cased: bool = False):
        if s.contains_placeholder():
            raise Unsupported(f"placeholder in {s.original!r} (the expand modifier needs a pipeline that fills it)")
        parts = list(s.s)
        self.cased = cased
        self.plain = all(isinstance(p, str) for p in parts)
        self.value = "".join(p for p in parts if isinstance(p, str))
        body = "".join(_escape(p) if isinstance(p, str) else (".*" if p == SpecialChars.WILDCARD_MULTI else ".")
                       for p in parts)
        self.regex = ("" if cased else "(?i)") + "(?s)^" + body + "$"
        self.ascii = all(p.isascii() for p in parts if isinstance(p, str))
        self.lowered = "(?s)^" + "".join(
            _escape(p.lower()) if isinstance(p, str) else (".*" if p == SpecialChars.WILDCARD_MULTI else ".")
            for p in parts) + "$"
        # A value with no letters that change case matches by plain equality, also uncased.
        self.exact = self.plain and (cased or (self.value.lower() == self.value == self.value.upper()))
        strs = [p for p in parts if isinstance(p, str)]
        wild = [p for p in parts if not isinstance(p, str)]
        self.shape = "regex"
        if len(strs) == 1 and all(w == SpecialChars.WILDCARD_MULTI for w in wild):
            if parts == [strs[0], SpecialChars.WILDCARD_MULTI]:
                self.shape = "prefix"
            elif parts == [SpecialChars.WILDCARD_MULTI, strs[0]]:
                self.shape = "suffix"
            elif parts == [SpecialChars.WILDCARD_MULTI, strs[0], SpecialChars.WILDCARD_MULTI]:
                self.shape = "contains"

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        if self.exact:
            return pc.equal(col.text, pa.scalar(self.value, pa.string()))
        if self.cased or not self.ascii:
            return self._shaped(col.text, self.value, not self.cased, self.regex)
        # ASCII value, uncased: on ASCII text, RE2's case folding is plain ASCII lowercase,
        # so the (shared) lowercased column answers without a case-insensitive scan.
        fast = self._shaped(col.lower, self.value.lower(), False, self.lowered)
        if col.all_ascii:
            return fast
        return pc.if_else(col.ascii, fast, self._shaped(col.text, self.value, True, self.regex))

    def _shaped(self, col: Any, value: str, ic: bool, regex: str) -> Any:
        if self.shape == "prefix":
            return pc.starts_with(col, value, ignore_case=ic)
        if self.shape == "suffix":
            return pc.ends_with(col, value, ignore_case=ic)
        if self.shape == "contains":
            return pc.match_substring(col, value, ignore_case=ic)
        if self.plain and not ic:
            return pc.equal(col, pa.scalar(value, pa.string()))
        return pc.match_substring_regex(col, regex)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        t = text(v)
        if t is None:
            return False
        if self.exact:
            return t == self.value
        return _re2(self.regex).search(t) is not None


class NumberMatch(Matcher):
    def __init__(self, n: SigmaNumber):
        self.n = float(n.number)

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.equal(col.number, self.n)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        x = number(v)
        return x is not None and x == self.n


class NumbersMatch(Matcher):
    """Several numbers of one field or-ed (a list of ports): one set look-up."""

    def __init__(self, numbers: list[float]):
        self.ns = sorted(set(numbers))
        self._set = set(self.ns)

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.is_in(col.number, value_set=pa.array(self.ns, pa.float64()))

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        x = number(v)
        return x is not None and x in self._set


class BoolMatch(Matcher):
    def __init__(self, b: SigmaBool):
        self.word = "true" if b.boolean else "false"
        self.inner = StringMatch(SigmaString(self.word))

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return self.inner.vector(col, other)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        return self.inner.one(v, other)


class NullMatch(Matcher):
    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.is_null(col.raw)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        return v is None


class ExistsMatch(Matcher):
    def __init__(self, exists: bool):
        self.exists = exists

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.is_valid(col.raw) if self.exists else pc.is_null(col.raw)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        return (v is not None) == self.exists


_PY_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: ("i", re.IGNORECASE),
             SigmaRegularExpressionFlag.MULTILINE: ("m", re.MULTILINE),
             SigmaRegularExpressionFlag.DOTALL: ("s", re.DOTALL)}


class RegexMatch(Matcher):
    """``re`` (flags ``i``, ``m``, ``s``): a search, RE2 where it can run the pattern,
    else Python's ``re`` row by row (lookaround, back-references)."""

    def __init__(self, r: SigmaRegularExpression, keyword: bool = False):
        body = str(r.regexp)
        letters = "".join(sorted(_PY_FLAGS[f][0] for f in r.flags))
        self.pattern = (f"(?{letters})" if letters else "") + body
        self.vectorizable = re2_ok(self.pattern)
        flags = 0
        for f in r.flags:
            flags |= _PY_FLAGS[f][1]
        self.py = None if self.vectorizable else re.compile(body, flags)

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.match_substring_regex(col.text, self.pattern)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        t = text(v)
        if t is None:
            return False
        if self.py is not None:
            return self.py.search(t) is not None
        return _re2(self.pattern).search(t) is not None


class CidrMatch(Matcher):
    """``cidr``: the address is in the network. Vectorized over the batch's distinct
    values (addresses repeat), each judged by the same function as the row-wise path."""

    def __init__(self, c: SigmaCIDRExpression):
        self.network = c.network

    @lru_cache(maxsize=65536)
    def _inside(self, v: str) -> bool:
        try:
            addr = ipaddress.ip_address(v.strip())
        except ValueError:
            return False
        return addr.version == self.network.version and addr in self.network

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        uniq = pc.unique(col.text)
        hits = [v for v in uniq.to_pylist() if v is not None and self._inside(v)]
        return pc.is_in(col.text, value_set=pa.array(hits, pa.string()))

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        t = text(v)
        return t is not None and self._inside(t)


_CMP = {CompareOperators.LT: ("less", lambda a, b: a < b), CompareOperators.LTE: ("less_equal", lambda a, b: a <= b),
        CompareOperators.GT: ("greater", lambda a, b: a > b), CompareOperators.GTE: ("greater_equal", lambda a, b: a >= b),
        CompareOperators.NEQ: ("not_equal", lambda a, b: a != b)}


class CompareMatch(Matcher):
    """``lt``/``lte``/``gt``/``gte``/``neq``: on numbers, and on text that is a number."""

    def __init__(self, c: SigmaCompareExpression):
        self.n = float(c.number.number)
        self.fn, self.py = _CMP[c.op]

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return getattr(pc, self.fn)(col.number, self.n)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        x = number(v)
        return x is not None and self.py(x, self.n)


class FieldRefMatch(Matcher):
    """``fieldref``: equal to another field of the same event (case-sensitive text);
    with ``startswith``/``endswith`` row-wise only."""

    def __init__(self, ref: SigmaFieldReference, resolve: Callable[[str], str]):
        self.ref = resolve(ref.field)
        self.refs = (self.ref,)
        self.starts, self.ends = ref.starts_with, ref.ends_with
        self.vectorizable = not (self.starts or self.ends)

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        return pc.equal(col.text, other(self.ref).text)

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        a, b = text(v), text(other(self.ref))
        if a is None or b is None:
            return False
        if self.starts:
            return a.startswith(b)
        if self.ends:
            return a.endswith(b)
        return a == b


class AnyMatch(Matcher):
    """A modifier's expansion (``windash``, ``base64offset``): any of its values."""

    def __init__(self, parts: list[Matcher]):
        self.parts = parts
        self.vectorizable = all(p.vectorizable for p in parts)
        self.refs = tuple(r for p in parts for r in p.refs)

    def vector(self, col: Any, other: Callable[[str], Any]) -> Any:
        out = None
        for p in self.parts:
            m = pc.fill_null(p.vector(col, other), False)
            out = m if out is None else pc.or_(out, m)
        return out if out is not None else pa.array([False] * len(col))

    def one(self, v: Any, other: Callable[[str], Any]) -> bool:
        return any(p.one(v, other) for p in self.parts)


def matcher(value: Any, resolve: Callable[[str], str], keyword: bool = False) -> Matcher:
    """The matcher of one Sigma value; ``keyword``: a value without a field, searched for
    in the raw record text (a plain keyword is a substring, as Sigma's keyword lists mean)."""
    if isinstance(value, SigmaExpansion):
        return AnyMatch([matcher(v, resolve, keyword) for v in value.values])
    if isinstance(value, SigmaString):
        cased = isinstance(value, SigmaCasedString)
        if keyword:
            if not value.startswith(SpecialChars.WILDCARD_MULTI):
                value = SpecialChars.WILDCARD_MULTI + value
            if not value.endswith(SpecialChars.WILDCARD_MULTI):
                value = value + SpecialChars.WILDCARD_MULTI
        return StringMatch(value, cased)
    if isinstance(value, SigmaRegularExpression):
        return RegexMatch(value)
    if keyword and isinstance(value, (SigmaNumber, SigmaBool)):
        return matcher(SigmaString(str(value.number if isinstance(value, SigmaNumber) else value).lower()), resolve, True)
    if isinstance(value, SigmaBool):
        return BoolMatch(value)
    if isinstance(value, SigmaNumber):
        if type(value) is not SigmaNumber:
            raise Unsupported(f"{type(value).__name__} values (timestamp part modifiers) are not supported")
        return NumberMatch(value)
    if isinstance(value, SigmaNull):
        return NullMatch()
    if isinstance(value, SigmaExists):
        return ExistsMatch(value.exists)
    if isinstance(value, SigmaCIDRExpression):
        return CidrMatch(value)
    if isinstance(value, SigmaCompareExpression):
        return CompareMatch(value)
    if isinstance(value, SigmaFieldReference):
        return FieldRefMatch(value, resolve)
    raise Unsupported(f"{type(value).__name__} values are not supported")
