"""YAML for config files: a key given twice is an error and alias expansion is bounded.

PyYAML's ``safe_load`` lets the last of two equal keys win without a word (a second
``export:`` block silently replaced the redacted sharing profiles), and it expands aliases
without limit: a "billion laughs" document of a few hundred bytes is shared references in
memory, but every step after loading (validation, copies) walks it as gigabytes. Both are
checked here on the composed node graph, before anything is constructed, in time and memory
proportional to the file itself.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: At most this many values once aliases are expanded (a large terminal config has a few
#: thousand; a config past this is refused as a likely alias bomb).
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(Exception):
    """Problems found while loading: ``errors`` are ``(key, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))


def _key_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else f"<{node.id} key>"


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _duplicates(root: Node) -> list[tuple[str, str]]:
    """Every mapping key given twice, named by its key path (each node visited once)."""
    errors: list[tuple[int, str, str]] = []
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:  # ``<<: *base``: later keys override on purpose
                    stack.append((value, path))
                    continue
                name = _key_text(key)
                if isinstance(key, ScalarNode):
                    ident = (key.tag, key.value)
                    if ident in first:
                        errors.append((key.start_mark.line, _join(path, name),
                                       f"expected each key once, got {name!r} again at line "
                                       f"{key.start_mark.line + 1} (first at line {first[ident].start_mark.line + 1})"))
                    else:
                        first[ident] = key
                stack.append((value, _join(path, name)))
        elif isinstance(node, SequenceNode):
            stack.extend((child, _join(path, i)) for i, child in enumerate(node.value))
    return [(k, m) for _, k, m in sorted(errors)]


def _expanded_size(root: Node, limit: int) -> tuple[int, str | None]:
    """Values the document holds once aliases are expanded (stops counting past ``limit``);
    the second item names a recursive alias if there is one."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        active.add(key)
        total = 1
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        for child in children:
            total += size(child)
            if total > limit:
                break
        active.discard(key)
        sizes[key] = total
        return total

    try:
        return size(root), None
    except _Recursive as exc:
        return 0, f"line {exc.node.start_mark.line + 1}"


class _Recursive(Exception):
    def __init__(self, node: Node):
        self.node = node


def _top_key_over_limit(root: Node, limit: int) -> str:
    """The top-level key whose value takes the document past ``limit`` (for the message)."""
    if not isinstance(root, MappingNode):
        return "(top level)"
    total = 0
    for key, value in root.value:
        total += _expanded_size(value, limit)[0]
        if total > limit:
            return _key_text(key)
    return "(top level)"


#: libyaml's loader when PyYAML has it: it composes a config's node graph several times
#: faster than the pure-Python one (marks, and so line numbers, included); construction
#: is the same Python code either way. libyaml also reads a few documents PyYAML's own
#: scanner refuses though YAML allows them (a tab inside a plain value, ``?`` inside a flow
#: value); those load, as the detections' YAML already does (``detections/registry.py``).
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def load(text: str) -> Any:
    """Parse one YAML document strictly; raise ``YamlError`` (key, message) or
    ``yaml.YAMLError`` (syntax, with a mark).

    A document libyaml rejects is read again by the pure-Python loader, whose message (with
    the offending line quoted) is the one raised, whichever loader is installed."""
    if _FAST_LOADER is not None:
        try:
            return _load(text, _FAST_LOADER)
        except yaml.YAMLError:
            pass
    return _load(text, yaml.SafeLoader)


def _load(text: str, loader_class: type) -> Any:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        size, recursive = _expanded_size(root, MAX_EXPANDED_NODES)
        if recursive:
            raise YamlError([("(yaml)", f"expected aliases that do not contain themselves, got a recursive alias at {recursive}")])
        if size > MAX_EXPANDED_NODES:
            raise YamlError([(_top_key_over_limit(root, MAX_EXPANDED_NODES),
                              f"expected at most {MAX_EXPANDED_NODES:,} values once YAML aliases are expanded, "
                              "got more (an alias bomb?)")])
        dups = _duplicates(root)
        if dups:
            raise YamlError(dups)
        return loader.construct_document(root)
    finally:
        loader.dispose()
