"""Markdown and HTML renderings of a draft, laid out from its JSON.

Log text is hostile input: in HTML every value goes through Jinja2's autoescaping (and the
page loads nothing: ``default-src 'none'``); in Markdown ``<``, ``>`` and ``&`` become
entities and Markdown punctuation is backslash-escaped, so a planted ``<script>`` or
``[link](...)`` stays text in any Markdown viewer.
"""
from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*|\s*\d+(?=[.)]))([#>+=.)-])")


@dataclass(frozen=True)
class Shown:
    """A field value laid out: ``text``, or a table (``headers``/``rows``), or ``pairs``."""

    text: str = ""
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()


def _is_stamp(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"utc", "local", "timezone"}


def scalar(v: Any) -> str:
    if v is None:
        return "-"
    if _is_stamp(v):
        return f"{v['utc']} (UTC) / {v['local']} ({v['timezone']})"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {scalar(x)}" for k, x in v.items() if x not in (None, [], ""))
    if isinstance(v, list):
        return ", ".join(scalar(x) for x in v)
    return str(v)


def shown(value: Any) -> Shown:
    if isinstance(value, list) and value and all(isinstance(v, dict) and not _is_stamp(v) for v in value):
        headers = tuple(dict.fromkeys(k for v in value for k in v))
        return Shown(headers=headers, rows=tuple(tuple(scalar(v.get(h)) for h in headers) for v in value))
    if isinstance(value, dict) and not _is_stamp(value):
        return Shown(pairs=tuple((k, scalar(v)) for k, v in value.items()))
    return Shown(text=scalar(value))


def md(value: Any) -> str:
    """Escape one value for Markdown (one line; HTML special characters as entities)."""
    if type(value) is str:  # drafts repeat the same texts (labels, notices, values)
        return _md_text(value)
    return _md(value)


@functools.lru_cache(maxsize=8192)
def _md_text(value: str) -> str:
    return _md(value)


def _md(value: Any) -> str:
    s = " ".join(str(value).split())
    s = _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)


@functools.lru_cache(maxsize=2)
def _environment(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.mandated", "templates"),
        autoescape=autoescape, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.globals["shown"] = shown
    env.globals["scalar"] = scalar
    return env


def render_markdown(draft: dict[str, Any]) -> str:
    return _environment(False).get_template("draft.md.j2").render(d=draft)


def render_html(draft: dict[str, Any]) -> str:
    return _environment(True).get_template("draft.html.j2").render(d=draft)


def render_json(draft: dict[str, Any]) -> str:
    """``json.dumps(draft, indent=2, ensure_ascii=False)`` and a newline. With an indent
    ``json`` runs its pure-Python encoder; ``orjson`` writes the same text for what drafts
    hold (``stix_export.writer.serialize_bundle_bytes`` says when: no float, no huge int)."""
    from stix_export.writer import _orjson_safe

    if _orjson_safe(draft):
        import orjson

        try:
            return orjson.dumps(draft, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(draft, indent=2, ensure_ascii=False) + "\n"
