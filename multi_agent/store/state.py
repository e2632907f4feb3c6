"""ADK state scoping, shared by every code path that reads or writes state.

``app:k`` lives in the app's row (stored as ``k``), ``user:k`` in the user's row, ``temp:k``
is never stored, everything else belongs to the session. Reads merge them back with prefixes.
Setting a key to ``None`` stores null (ADK semantics), it does not delete the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from google.adk.sessions.state import State

from .codec import check_json_value, check_text

__all__ = ["SCOPES", "ScopedDelta", "merge_scopes", "scope_of", "scoped_key", "split_delta"]

Scope = Literal["app", "user", "session"]

SCOPES: tuple[Scope, ...] = ("app", "user", "session")
"""The stored scopes (``temp:`` is never stored), also the field names of ``ScopedDelta``."""

_PREFIXES: dict[Scope, str] = {"app": State.APP_PREFIX, "user": State.USER_PREFIX, "session": ""}


def scope_of(key: str) -> tuple[Scope, str]:
    """The stored scope of a state key that is not ``temp:``, and the key without its prefix:
    ``scope_of("user:name") == ("user", "name")``."""
    if key.startswith(State.APP_PREFIX):
        return "app", key[len(State.APP_PREFIX):]
    if key.startswith(State.USER_PREFIX):
        return "user", key[len(State.USER_PREFIX):]
    return "session", key


def scoped_key(scope: Scope, key: str) -> str:
    """The state key a Session shows for ``key`` of ``scope`` (the inverse of ``scope_of``)."""
    return _PREFIXES[scope] + key


@dataclass(slots=True)
class ScopedDelta:
    """A state delta split by scope, keys without their prefixes."""

    app: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)


def split_delta(delta: dict[str, Any] | None) -> ScopedDelta:
    """Splits and checks a state delta (``temp:`` keys dropped).

    Raises:
        StateNotSerializableError: a value is not plain JSON (nothing is written).
    """
    out = ScopedDelta()
    if not delta:
        return out
    for key, value in delta.items():
        if not isinstance(key, str):
            from ..errors import StateNotSerializableError

            raise StateNotSerializableError(
                f"State keys must be strings, got {key!r} ({type(key).__name__}). "
                "Nothing was written.",
                key=str(key),
            )
        if key.startswith(State.TEMP_PREFIX):
            continue
        check_text(key, key)
        check_json_value(key, value)
        scope, bare = scope_of(key)
        getattr(out, scope)[bare] = value
    return out


def merge_scopes(
    app: dict[str, Any], user: dict[str, Any], session: dict[str, Any]
) -> dict[str, Any]:
    """The state a Session shows: session keys plus ``app:``/``user:`` prefixed keys."""
    merged = dict(session)
    for key, value in app.items():
        merged[State.APP_PREFIX + key] = value
    for key, value in user.items():
        merged[State.USER_PREFIX + key] = value
    return merged
