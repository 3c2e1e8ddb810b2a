"""``json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False, default=...)``, faster.

The replay's JSON is indented, and with ``indent`` the standard library falls back to its
pure-Python, generator-based encoder: serialising a patient-day took four times as long as
replaying it. Frames share their unchanged state parts (:mod:`projections.replay.state`),
so most of the document is the same few objects at the same depth again and again; this
encoder writes each such object once per depth and reuses the text. The output is the
standard library's, byte for byte (the determinism tests and ``test_replay_jsontext``
compare the two), which is what keeps replay JSON stable across this change.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

_KEY = itemgetter(0)
#: The document (0), its timeline (1) and the frames (2) are unique: not worth remembering.
_SHARED_FROM_LEVEL = 3


def dumps(document: Any, default: Callable[[Any], Any]) -> str:
    return _Encoder(default).encode(document, 0)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    """A dict key as the standard encoder writes it (strings, numbers, booleans, null)."""
    if isinstance(key, str):
        return encode_basestring(key)
    if isinstance(key, float):
        return encode_basestring(_float(key))
    if key is True or key is False or key is None:
        return encode_basestring({True: "true", False: "false", None: "null"}[key])
    if isinstance(key, int):
        return encode_basestring(int.__repr__(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


class _Encoder:
    def __init__(self, default: Callable[[Any], Any]):
        self.default = default
        # (id, depth) -> (the object, its text): holding the object keeps its id unique.
        self.memo: dict[tuple[int, int], tuple[Any, str]] = {}

    def encode(self, value: Any, level: int) -> str:
        # The standard encoder's order of checks (a bool is an int, so it comes first).
        if isinstance(value, str):
            return encode_basestring(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            return int.__repr__(value)
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, (list, tuple, dict)):
            return self.container(value, level)
        return self.encode(self.default(value), level)

    def container(self, value: list[Any] | tuple[Any, ...] | dict[Any, Any], level: int
                  ) -> str:
        if level < _SHARED_FROM_LEVEL:
            return self._write(value, level)
        key = (id(value), level)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = (value, self._write(value, level))
        return found[1]

    def _write(self, value: list[Any] | tuple[Any, ...] | dict[Any, Any], level: int) -> str:
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        # The common cases (exact str, None, dict, list) inline: the document is thousands
        # of small dicts of strings, and a call per value is most of the cost.
        inner = "\n" + " " * (level + 1)
        below = level + 1
        items = []
        if isinstance(value, dict):
            for k, v in sorted(value.items(), key=_KEY):
                kind = type(v)
                text = (encode_basestring(v) if kind is str else "null" if v is None
                        else self.container(v, below) if kind is dict or kind is list
                        else self.encode(v, below))
                items.append((encode_basestring(k) if type(k) is str else _key(k)) + ": "
                             + text)
            opening, closing = "{", "}"
        else:
            for v in value:
                kind = type(v)
                items.append(encode_basestring(v) if kind is str else "null" if v is None
                             else self.container(v, below) if kind is dict or kind is list
                             else self.encode(v, below))
            opening, closing = "[", "]"
        return opening + inner + ("," + inner).join(items) + "\n" + " " * level + closing
