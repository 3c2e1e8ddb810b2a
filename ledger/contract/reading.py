"""Turning raw message bytes into plain Python values without losing a digit.

Producers send UTF-8 JSON. The standard library's decoder is told to keep numbers with a
fraction or an exponent as :class:`~ledger.contract.decimals.JsonNumber` (their literal
text) so quantities stay exact; integers are exact already. NaN and Infinity are not JSON
and are refused. Strings holding NUL or unpaired surrogates are refused too: they are
malformed for the contract and PostgreSQL's jsonb cannot store them, so letting one
through would fail a whole append batch instead of dead-lettering one message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ledger.contract.decimals import JsonNumber
from ledger.errors import ContractError, FieldError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(parse_float=JsonNumber, parse_constant=_refuse_constant)


def _invalid(message: str, path: str = "") -> ContractError:
    return ContractError([FieldError(path, "invalid_json", message)])


def load_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Decode one JSON document; raises ``ContractError`` (``invalid_json``) with the position."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid(f"not UTF-8: byte {exc.start} cannot be decoded") from None
    elif _has_surrogate(raw):
        raise _invalid("not UTF-8 text: the string holds an unpaired surrogate")
    else:
        text = raw
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _invalid(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None
    except ValueError as exc:
        raise _invalid(f"not JSON: {exc}") from None
    except RecursionError:
        raise _invalid("not JSON this contract accepts: nested too deeply") from None
    # Escapes are the only way NUL or a lone surrogate gets into a decoded string, and most
    # producers send none, so the walk below is skipped for nearly every message.
    if "\\u" in text:
        check_strings(value)
    return value


def _bad_strings(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value or (not value.isascii() and _has_surrogate(value)):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _bad_strings(key, path)
            yield from _bad_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _bad_strings(item, f"{path}.{index}" if path else str(index))


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_strings(value: Any) -> None:
    """Refuse NUL characters and unpaired surrogates anywhere in a decoded document."""
    paths = list(_bad_strings(value, ""))
    if paths:
        raise ContractError(
            [
                FieldError(p, "invalid_string", "contains NUL or an unpaired surrogate")
                for p in paths
            ]
        )
