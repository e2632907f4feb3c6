"""Every error the session store raises, in one place.

The tree (ADK's own classes in brackets; ADK code that catches those keeps working)::

    MultiAgentError
    ├── StoreError                      the database cannot do what was asked
    │   ├── DatabaseUnavailableError    cannot connect / locked / read-only / disk full / corrupt
    │   ├── SchemaVersionError          the database was written by a newer (or unknown) schema
    │   ├── ForeignDatabaseError        the file/database belongs to another program
    │   ├── EncryptionError             encryption at rest cannot do what was asked
    │   │   ├── EncryptionKeyError      a key is missing, wrong or malformed (nothing written)
    │   │   └── EncryptionUnavailableError  the encryption extra is not installed
    │   └── InvalidValueError (ValueError)
    │       ├── StateNotSerializableError   a state value is not JSON (nothing written)
    │       ├── InvalidIdError              an app/user/session id we refuse to store
    │       └── EventIdConflict             a different event under an id already stored
    ├── RunNotFound (LookupError)       a branch/query named a run the session does not have
    │   └── HistoryPrunedError          a branch to a run whose history a trim deleted
    ├── SessionNotFound   [google.adk.errors.SessionNotFoundError]
    ├── SessionAlreadyExists  [google.adk.errors.AlreadyExistsError]
    └── StaleSession      [google.adk StaleSessionError]

Reads of something missing return ``None`` (as ADK's contract says); writes raise.
Every message says what went wrong and what to do about it.
"""

from __future__ import annotations

from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError

__all__ = [
    "AdkTablesError",
    "DatabaseUnavailableError",
    "EncryptionError",
    "EncryptionKeyError",
    "EncryptionUnavailableError",
    "EventIdConflict",
    "ForeignDatabaseError",
    "HistoryPrunedError",
    "InvalidIdError",
    "InvalidValueError",
    "MultiAgentError",
    "RunConflict",
    "RunNotFound",
    "SchemaVersionError",
    "ServiceClosedError",
    "SessionAlreadyExists",
    "SessionNotFound",
    "StaleSession",
    "StateNotSerializableError",
    "StoreError",
]


class MultiAgentError(Exception):
    """Base class of every error raised by multi_agent."""


class StoreError(MultiAgentError):
    """The database could not do what was asked."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached or written (connection, lock, permissions, disk, corruption).

    Attributes:
        cause: a short machine-readable cause: ``unreachable``, ``timeout``, ``pool_exhausted``,
            ``locked``, ``contention`` (PostgreSQL kept choosing the write as a deadlock's
            victim), ``read_only``, ``disk_full``, ``io_error`` (the OS refused a file
            write or read), ``corrupt``, ``no_such_path``, ``deleted`` (the SQLite file was
            deleted while open), ``replaced`` (another file was renamed over it, e.g. a backup
            restored) or ``other``. After ``deleted``/``replaced`` the store stays unusable:
            restart the program.
    """

    def __init__(self, message: str, *, cause: str = "other") -> None:
        super().__init__(message)
        self.cause = cause


class ServiceClosedError(StoreError, RuntimeError):
    """The service was closed (``close()``, or the end of ``async with``); nothing was done.
    Make a new service to use the database again."""


class SchemaVersionError(StoreError):
    """The database was written by a newer version of multi-agent (or is otherwise unknown)."""

    def __init__(self, message: str, *, found: int | None, supported: int) -> None:
        super().__init__(message)
        self.found = found
        self.supported = supported


class ForeignDatabaseError(StoreError):
    """The database holds tables of the same names that another program wrote."""


class AdkTablesError(ForeignDatabaseError):
    """The database holds sessions of ADK's own session service, which the store does not
    read; ``multi-agent import-adk`` copies them in (``multi_agent.store.adk_import``)."""


class EncryptionError(StoreError):
    """Encryption at rest (``multi_agent.store.sealing``) cannot do what was asked, e.g. a
    stored value fails authentication (it was changed, or sealed for another column)."""


class EncryptionKeyError(EncryptionError):
    """The database holds encrypted rows and no key, or not the right key, was given; or a
    key given is malformed. Raised when the store opens, before anything is written."""


class EncryptionUnavailableError(EncryptionError):
    """Encryption was asked for but the ``cryptography`` package (the ``encryption`` extra)
    is not installed."""


class InvalidValueError(StoreError, ValueError):
    """A value given to the store cannot be stored as given."""


class StateNotSerializableError(InvalidValueError, TypeError):
    """A state value is not JSON; nothing was written.

    Attributes:
        key: the state key (dotted path for nested values) that holds the bad value.
    """

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class InvalidIdError(InvalidValueError):
    """An app name, user id or session id that the store refuses (empty, too long, NUL...)."""


class EventIdConflict(InvalidValueError):
    """An append gave a *different* event under an id the session already holds.

    Nothing was written. Appending the *same* event again (a retry) is a no-op instead.
    """


class RunNotFound(MultiAgentError, LookupError):
    """A branch or query named a run that the session does not have."""


class RunConflict(MultiAgentError):
    """``start_run`` could not claim the session: another run started on it since the caller
    looked (its head moved), or the run id is taken. Nothing was written.

    Attributes:
        run_id: the run that was to start.
        head_run_id: the session's head now.
        exists: True when ``run_id`` itself is already a run of the session.
    """

    def __init__(self, session_id: str, *, run_id: str, head_run_id: str | None,
                 exists: bool = False) -> None:
        if exists:
            what = f"Session {session_id!r} already has a run {run_id!r}; use a new run id."
        else:
            what = (f"Run {run_id!r} was not started: another run ({head_run_id!r}) started "
                    f"on session {session_id!r} meanwhile. Wait for it to finish, then start "
                    "again from the new head.")
        super().__init__(what)
        self.run_id = run_id
        self.head_run_id = head_run_id
        self.exists = exists


class HistoryPrunedError(RunNotFound):
    """A branch named a run whose history a trim (retention, ``store/trim.py``) deleted: its
    events, or the state its earlier runs left, are gone. Branch from a later run."""


class SessionNotFound(MultiAgentError, SessionNotFoundError):
    """A write or a command named a session that does not exist."""

    def __init__(self, app_name: str, user_id: str, session_id: str) -> None:
        SessionNotFoundError.__init__(
            self,
            f"Session {session_id!r} of user {user_id!r} in app {app_name!r} does not exist. "
            "List the user's sessions (multi-agent sessions --user ID) or create it first.",
        )
        self.app_name = app_name
        self.user_id = user_id
        self.session_id = session_id


class SessionAlreadyExists(MultiAgentError, AlreadyExistsError):
    """``create_session`` was given an id that is already taken."""

    def __init__(self, app_name: str, user_id: str, session_id: str) -> None:
        AlreadyExistsError.__init__(
            self,
            f"Session {session_id!r} of user {user_id!r} in app {app_name!r} already exists. "
            "Load it with get_session, or create one without a session_id to get a fresh id.",
        )


class StaleSession(MultiAgentError, StaleSessionError):
    """The session object is behind storage in a way the store will not paper over.

    Nothing was written. Reload the session with ``get_session`` and append again.

    Attributes:
        reason: ``behind`` (another writer appended to this session since the copy was
            loaded; with ``on_stale="merge"`` the store merges that case instead),
            ``keys`` (a state key the event writes with a plain value was written in
            storage after the copy was loaded: at any scope, in either mode; write it with
            ``multi_agent.store.updates.StateUpdates`` to have the change applied to the
            stored value instead), ``branched`` (the session was branched since the copy was
            loaded: its history is another one) or ``recreated`` (the session was deleted
            and created again under the same id).
        keys: the conflicting state keys, with their prefixes (for ``keys``).
    """

    def __init__(
        self, session_id: str, *, local: int | None, stored: int, reason: str = "behind",
        keys: list[str] | tuple[str, ...] = (),
    ) -> None:
        copy_at = local if local is not None else "unknown"
        if reason == "keys":
            names = ", ".join(repr(k) for k in keys)
            what = (
                f"State {names} of session {session_id!r} changed in storage after this copy "
                "read it (another session of the user or app, or another writer, wrote it), "
                "so the value computed from the copy would undo that change."
            )
            fix = (
                "Reload with get_session() and compute the value again, or write it with "
                "multi_agent.store.updates.StateUpdates, which the store applies to the "
                "stored value."
            )
        elif reason == "branched":
            what = (
                f"Session {session_id!r} was branched (time travel) after this copy was "
                f"loaded (copy at revision {copy_at}, storage at {stored}); its history is "
                "now another one."
            )
            fix = "Reload it with get_session() and continue from the new head."
        elif reason == "recreated":
            what = (
                f"Session {session_id!r} was deleted and created again after this copy was "
                "loaded; the copy belongs to the deleted session."
            )
            fix = "Load the new session with get_session()."
        else:
            what = (
                f"Session {session_id!r} was modified in storage since this copy was loaded "
                f"(copy is at revision {copy_at}, storage at {stored})."
            )
            fix = (
                "Reload it with get_session() and append again, or use "
                "DatabaseSessionService(on_stale='merge') to merge concurrent writers."
            )
        StaleSessionError.__init__(self, f"{what} Nothing was written. {fix}")
        self.session_id = session_id
        self.local_revision = local
        self.stored_revision = stored
        self.reason = reason
        self.keys = tuple(keys)
