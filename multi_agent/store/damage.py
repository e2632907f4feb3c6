"""The error for a stored row that no longer decodes (edited by hand, or disk damage)."""

from __future__ import annotations

from ..errors import DatabaseUnavailableError

__all__ = ["damaged"]


def damaged(app_name: str, user_id: str, session_id: str, exc: Exception) -> Exception:
    """A ``DatabaseUnavailableError`` (cause ``corrupt``) naming the session whose stored row
    failed to decode with ``exc``, and what to do about it."""
    return DatabaseUnavailableError(
        f"Session {session_id!r} of user {user_id!r} in app {app_name!r} has a damaged stored "
        f"row ({type(exc).__name__}: {str(exc)[:200]}). Nothing was changed. Restore the "
        "database from a backup, or export the other sessions and delete this one.",
        cause="corrupt",
    )
