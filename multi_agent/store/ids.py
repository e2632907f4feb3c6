"""Validation of the ids the store keys everything by."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidIdError
from .schema import ID_LENGTH

__all__ = ["check_id", "check_ids", "could_be_stored", "is_printable_id"]


def check_id(kind: str, value: Any) -> str:
    """Validates an app name, user id or session id; returns it unchanged.

    Any string of 1 to 256 characters without NUL is stored exactly (quotes, SQL fragments,
    slashes, spaces and unicode included).

    Raises:
        InvalidIdError: not a string, empty, too long, or containing NUL.
    """
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} must be a string, got {type(value).__name__}.")
    if not value:
        raise InvalidIdError(f"{kind} must not be empty.")
    if len(value) > ID_LENGTH:
        raise InvalidIdError(
            f"{kind} is {len(value)} characters long; at most {ID_LENGTH} are allowed."
        )
    if "\x00" in value:
        raise InvalidIdError(f"{kind} {value!r} contains a NUL character, which cannot be stored.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidIdError(
                f"{kind} {value!r} holds a lone surrogate: not valid Unicode text."
            ) from None
    return value


def check_ids(**ids: Any) -> None:
    """``check_id`` for each keyword: ``check_ids(app_name=a, user_id=u, session_id=s)``."""
    for kind, value in ids.items():
        check_id(kind, value)


def could_be_stored(**ids: Any) -> bool:
    """For reads (``get_session``, ``list_sessions``, ``delete_session``): whether each id
    given as a keyword is one :func:`check_id` takes. One it refuses (empty, too long, NUL)
    names nothing stored, so the read finds nothing, as ADK's own services answer: ``None``,
    an empty list, a delete that removes nothing (``adk api_server``: 404, not 500).

    Raises:
        InvalidIdError: an id that is not a string at all (a caller's mistake, not an id).
    """
    for kind, value in ids.items():
        if not isinstance(value, str):
            raise InvalidIdError(f"{kind} must be a string, got {type(value).__name__}.")
        try:
            check_id(kind, value)
        except InvalidIdError:
            return False
    return True


def is_printable_id(value: str) -> bool:
    """Whether ``value`` is an id the HTTP service takes in its URLs and headers (a user, a
    thread): what :func:`check_id` stores, without control characters."""
    if not 1 <= len(value) <= ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
