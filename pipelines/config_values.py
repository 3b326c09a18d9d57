"""Values of config keys whose checks are more than a type: times of day, strptime formats,
CSV delimiters. Each raises ``ValueError("expected ...")`` for the one-line config error."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional


def check_time_of_day(value: Any) -> str:
    """``HH:MM`` from 00:00 to 23:59 (``24:00`` ends a window at midnight). Unquoted, YAML
    1.1 reads 10:00 as the base-60 number 600: say so rather than "expected a string"."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        h, m = divmod(value, 60)
        raise ValueError(f'expected a time of day in quotes such as "{h:02d}:{m:02d}" (YAML reads an '
                         f"unquoted {h}:{m:02d} as the number {value}; quote it)")
    m_ = re.fullmatch(r"(\d\d):(\d\d)", value) if isinstance(value, str) else None
    if not m_ or not (int(m_.group(1)) < 24 and int(m_.group(2)) < 60 or value == "24:00"):
        raise ValueError('expected a time of day "HH:MM" from "00:00" to "23:59"')
    return value


def minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def check_time_format(value: Any) -> Optional[str]:
    """A strptime format the reader (Arrow's strptime) can apply: checked by formatting a
    sample time with it and reading it back, so a typo'd directive fails here, not per row."""
    if value is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    expected = "expected a strptime format with % directives such as %Y-%m-%d %H:%M:%S"
    if not isinstance(value, str) or "%" not in value or "\n" in value:
        raise ValueError(expected)
    sample = dt.datetime(2026, 11, 17, 9, 30, 5, tzinfo=dt.timezone.utc)
    try:
        text = sample.strftime(value)
        pc.strptime(pa.array([text]), format=value, unit="us", error_is_null=False)
    except (ValueError, pa.ArrowException):
        raise ValueError(expected) from None
    return value


def check_delimiter(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n\"" or (not value.isprintable() and value != "\t"):
        raise ValueError("expected one printable character such as , ; | or a tab (not a newline or quote)")
    return value
