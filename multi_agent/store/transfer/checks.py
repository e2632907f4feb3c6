"""The value checks every imported field goes through."""

from __future__ import annotations

import json
import math
from typing import Any

from ...errors import InvalidIdError, InvalidValueError
from .. import schema as s
from ..codec import (
    MAX_INT_BITS,
    check_json_value,
    check_text,
    time_problem,
)
from ..facts import MESSAGE_TYPES
from .format import (
    MAX_COUNT,
    MAX_NESTING,
    MAX_TOKENS,
)

# --------------------------------------------------------------------------------------------
# small helpers


def _bad(detail: str) -> InvalidValueError:
    return InvalidValueError(
        f"Not a valid multi-agent session export: {detail} Nothing was imported."
    )


def _reason(exc: Exception) -> str:
    """An error's message without its own "Nothing was written." ending."""
    text = str(exc)
    for tail in (" Nothing was written.", " Nothing was imported."):
        if text.endswith(tail):
            text = text[: -len(tail)]
    return text if text.endswith(".") else text + "."


def _short(value: Any) -> str:
    """A value for an error message: JSON-like, at most ~60 characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rep(value: Any) -> str:
    """``repr`` for an error message, at most ~60 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _canon(value: Any) -> str:
    """Type-exact, order-insensitive form of a JSON value (1, 1.0 and true all differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _plain_json(value: Any) -> bool:
    """Fast check: only JSON types, string keys, finite floats, no lone surrogates, integers the
    store keeps, nesting of at most MAX_NESTING levels."""
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        t = type(v)
        if t is str:
            if not v.isascii() and _lone_surrogate(v):
                return False
        elif t is dict:
            if depth >= MAX_NESTING:
                return False
            for k, item in v.items():
                if type(k) is not str or (not k.isascii() and _lone_surrogate(k)):
                    return False
                push((item, depth + 1))
        elif t is list:
            if depth >= MAX_NESTING:
                return False
            for item in v:
                push((item, depth + 1))
        elif t is int:
            if v.bit_length() > MAX_INT_BITS:
                return False
        elif t is float:
            if not math.isfinite(v):
                return False
        elif v is not None and t is not bool:
            return False
    return True


def _json_problem(value: Any) -> tuple[str, str]:
    """Where and why ``value`` fails ``_plain_json`` (the slow walk, for the message)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        v, depth, path = stack.pop()
        t = type(v)
        if t is str:
            if _lone_surrogate(v):
                return path, "holds a lone surrogate, which is not valid Unicode text"
        elif t is dict or t is list:
            if depth >= MAX_NESTING:
                return path, f"is nested deeper than {MAX_NESTING} levels"
            if t is list:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(v))
                continue
            for k, item in v.items():
                if type(k) is not str:
                    return path, f"has a key that is not a string ({_short(k)})"
                if _lone_surrogate(k):
                    return path, "has a key holding a lone surrogate"
                stack.append((item, depth + 1, f"{path}.{k}"))
        elif t is int:
            if v.bit_length() > MAX_INT_BITS:
                return path, (f"is an integer of {v.bit_length()} bits; the store keeps at "
                              f"most {MAX_INT_BITS}")
        elif t is float:
            if not math.isfinite(v):
                return path, f"is {v!r}, which JSON cannot represent"
        elif v is not None and t is not bool:
            return path, f"is a {t.__name__}, which is not JSON"
    return "", "is not plain JSON"


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The path of the first place where two JSON values differ (type-exact)."""
    if type(a) is not type(b):
        return path or "(root)"
    if isinstance(a, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}.{key}"
            if _canon(a[key]) != _canon(b[key]):
                return _first_difference(a[key], b[key], f"{path}.{key}")
        return path or "(root)"
    if isinstance(a, list):
        if len(a) != len(b):
            return path or "(root)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if _canon(x) != _canon(y):
                return _first_difference(x, y, f"{path}[{i}]")
    return path or "(root)"


def _check_value(where: str, kind: str, value: Any) -> None:
    from ..ids import check_id

    if kind == "id":
        try:
            check_id(where, value)
        except InvalidIdError as exc:
            raise _bad(str(exc)) from None
        return
    if kind in ("str", "short", "path", "key", "type"):
        if not isinstance(value, str):
            raise _bad(f"{where} must be a string, got {type(value).__name__}.")
        if "\x00" in value:
            raise _bad(f"{where} contains a NUL character.")
        if _lone_surrogate(value):
            raise _bad(f"{where} holds a lone surrogate, which is not valid Unicode text.")
        limit = {"short": 16, "path": 1024, "key": s.ID_LENGTH}.get(kind)
        if limit is not None and len(value) > limit:
            raise _bad(f"{where} is longer than {limit} characters.")
        if kind == "type" and value not in MESSAGE_TYPES:
            raise _bad(f"{where} is {value!r}; expected one of {', '.join(MESSAGE_TYPES)}.")
    elif kind in ("count", "tokens"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(f"{where} must be an integer, got {_short(value)}.")
        if value < 0:
            raise _bad(f"{where} must not be negative, got {_short(value)}.")
        limit = MAX_COUNT if kind == "count" else MAX_TOKENS
        if value > limit:
            what = "2**53 - 1: appends must be able to go on counting" if kind == "count" else (
                "2**31 - 1 (a 32-bit column)"
            )
            raise _bad(f"{where} is {_short(value)}; it must be at most {what}.")
    elif kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{where} must be a number, got {_short(value)}.")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            finite = False
        if not finite:
            raise _bad(f"{where} must be a finite number, got {_short(value)}.")
        problem = time_problem(float(value))  # every number of the format is a time
        if problem is not None:
            raise _bad(f"{where} is {_short(value)}; {problem}.")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _bad(f"{where} must be true or false, got {_short(value)}.")
    elif kind == "object" and not isinstance(value, dict):
        raise _bad(f"{where} must be a JSON object, got {type(value).__name__}.")


def _check_record(where: str, record: Any, spec: dict[str, tuple[str, bool]]) -> None:
    if not isinstance(record, dict):
        raise _bad(f"{where} must be a JSON object, got {type(record).__name__}.")
    missing = [k for k in spec if k not in record]
    if missing:
        raise _bad(f"{where} lacks {', '.join(missing)}.")
    if len(record) != len(spec):
        unknown = sorted(str(k) for k in record if k not in spec)
        raise _bad(f"{where} has unknown field(s) {', '.join(unknown)}.")
    for key, (kind, nullable) in spec.items():
        value = record[key]
        if value is None:
            if not nullable:
                raise _bad(f"{where}.{key} must not be null.")
            continue
        _check_value(f"{where}.{key}", kind, value)


def _check_state(where: str, state: dict[Any, Any]) -> None:
    """A session's own state: what ``append_event`` would accept, without scope prefixes."""
    for key, value in state.items():
        if not isinstance(key, str):
            raise _bad(f"{where} has a key that is not a string ({_short(key)}).")
        if key.startswith(("app:", "user:", "temp:")):
            raise _bad(f"{where} holds {key!r}: app:, user: and temp: keys are never part of a "
                       "session's own state.")
        try:
            check_text(key, key)
            check_json_value(key, value)
        except InvalidValueError as exc:
            raise _bad(f"{where}: {_reason(exc)}") from None
