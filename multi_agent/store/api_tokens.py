"""API tokens of ``multi-agent serve``: one JSON file of salted hashes, managed from the CLI.

The store keeps them (``multi-agent serve`` verifies them, ``multi-agent serve token`` manages
them, ``forget_user`` removes a user's), so that where they live, beside the database file or
not, is decided here with the database URL's other facts, not by each caller.

A token looks like ``mat_<id>_<secret>``: ``id`` (8 hex digits) names it in ``token list`` and
``token revoke``; ``secret`` is 256 random bits. The file keeps, per token, the id, the user,
when it was made, a random salt and ``sha256(salt + secret)``; never the token itself, which is
printed once by ``token add``. A salted SHA-256 is enough for 256-bit random secrets (there is
nothing to guess a dictionary for) and costs microseconds per request.

The file is written atomically (a temporary file renamed over it) with mode 0600. The server
re-reads it whenever its modification time or size changes, so ``token add`` and ``token
revoke`` take effect on the next request, without a restart.

Every change (``add``, ``revoke``, and so ``forget_user``, which revokes through them) reads,
edits and renames the file while holding an exclusive ``flock`` on ``<token file>.lock`` (made
beside it, mode 0600, and left there: removing it would let two writers lock different files).
Without it two ``token add`` run at once could each write its own token over the other's, and
an ``add`` racing a ``revoke`` could write the revoked token back. Readers (the server) take no
lock: the rename means they always see a whole file, the one before a change or the one after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FILE_NAME", "FORMAT", "PREFIX", "TOKENS_ENV", "TokenError", "TokenFile", "TokenRecord",
           "default_tokens_path"]

TOKENS_ENV = "MULTI_AGENT_TOKENS_FILE"
FILE_NAME = "multi_agent_tokens.json"
PREFIX = "mat_"
FORMAT = "multi-agent-tokens"


class TokenError(Exception):
    """The token file cannot be read or written, or a token command has nothing to act on."""


@dataclass(slots=True, frozen=True)
class TokenRecord:
    """One token as the file keeps it (no secret)."""

    id: str
    user: str
    created: str
    salt: str
    hash: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "user": self.user, "created": self.created, "salt": self.salt,
                "hash": self.hash}


def default_tokens_path(db_url: str) -> Path:
    """``$MULTI_AGENT_TOKENS_FILE``, else ``multi_agent_tokens.json`` beside the SQLite file
    (in the working directory for PostgreSQL or an in-memory SQLite database)."""
    env = os.environ.get(TOKENS_ENV)
    if env:
        return Path(env).expanduser()
    folder = _database_folder(db_url)
    return (folder if folder is not None else Path.cwd()) / FILE_NAME


def _database_folder(db_url: str) -> Path | None:
    """The folder of the SQLite file ``db_url`` names; None for any other database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db_url)
    except ArgumentError:
        return None
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or \
            path.startswith("file:"):
        return None
    return Path(path).expanduser().resolve().parent


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


class TokenFile:
    """The token file: add, list, revoke (CLI) and verify (server)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._by_id: dict[str, TokenRecord] = {}

    # -- reading ----------------------------------------------------------------------------

    def records(self) -> list[TokenRecord]:
        """Every token in the file, oldest first (empty when there is no file)."""
        self._refresh()
        return sorted(self._by_id.values(), key=lambda r: (r.created, r.id))

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._by_id = None, {}
            return
        except OSError as exc:
            raise TokenError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._seen:
            return
        self._by_id = {r.id: r for r in self._load()}
        self._seen = stamp

    def _load(self) -> list[TokenRecord]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TokenError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        except ValueError:
            raise TokenError(f"the token file {self.path} is not valid JSON; remove it and "
                             "make new tokens with: multi-agent serve token add USER") from None
        if not isinstance(doc, dict):
            held = {list: "a JSON list", str: "a JSON string", bool: "a JSON boolean",
                    type(None): "JSON null"}.get(type(doc), "a JSON number")
            raise TokenError(f"{self.path} is not a multi-agent token file (it holds {held}, "
                             "not an object with a \"tokens\" list); check --tokens or "
                             f"${TOKENS_ENV}, or remove it and make new tokens with: "
                             "multi-agent serve token add USER")
        rows = doc.get("tokens")
        if doc.get("format") != FORMAT or not isinstance(rows, list):
            raise TokenError(f"{self.path} is not a multi-agent token file")
        out = []
        for row in rows:
            try:
                out.append(TokenRecord(**{k: str(row[k]) for k in
                                          ("id", "user", "created", "salt", "hash")}))
            except (KeyError, TypeError):
                raise TokenError(f"the token file {self.path} has a damaged entry") from None
        return out

    # -- the server -------------------------------------------------------------------------

    def verify(self, token: str) -> str | None:
        """The user a token belongs to, or ``None`` for an unknown or revoked token."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        ident, _, secret = token[len(PREFIX):].partition("_")
        if not ident or not secret:
            return None
        self._refresh()
        record = self._by_id.get(ident)
        if record is None:
            return None
        try:
            expected = _digest(record.salt, secret)
        except ValueError:
            return None
        return record.user if hmac.compare_digest(expected, record.hash) else None

    # -- the CLI ----------------------------------------------------------------------------

    def add(self, user: str) -> tuple[str, TokenRecord]:
        """Makes a token for ``user``; returns it (shown once) and its record.

        Raises:
            TokenError: ``user`` is not a user id (1 to 256 printable characters: the server
                refuses others in its URLs and headers), or the file cannot be changed.
        """
        # (ids.is_printable_id's rule, written out: this module imports nothing of the
        # package, so that a process can load it alone)
        if not 1 <= len(user) <= 256 or any(ord(c) < 32 or ord(c) == 127 for c in user):
            raise TokenError(f"{user!r} is not a user id: 1 to 256 printable characters, no "
                             "control characters (nothing written)")
        with self._locked() as records:
            taken = {r.id for r in records}
            ident = secrets.token_hex(4)
            while ident in taken:
                ident = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            record = TokenRecord(ident, user, created, salt, _digest(salt, secret))
            self._write([*records, record])
        return f"{PREFIX}{ident}_{secret}", record

    def revoke(self, what: str) -> list[TokenRecord]:
        """Removes every token of the user ``what``, or those whose id (or token text) starts
        with ``what``; returns the removed ones.

        Raises:
            TokenError: nothing matched (nothing written).
        """
        with self._locked() as records:
            gone = [r for r in records if r.user == what]
            if not gone:
                prefix = what[len(PREFIX):] if what.startswith(PREFIX) else what
                gone = [r for r in records
                        if prefix and r.id.startswith(prefix.split("_", 1)[0])]
            if not gone:
                raise TokenError(f"no token of a user {what!r} and none whose id starts with "
                                 f"{what!r} in {self.path} (multi-agent serve token list)")
            self._write([r for r in records if r not in gone])
        return gone

    def revoke_user(self, user: str) -> list[TokenRecord]:
        """Removes every token of ``user`` (whole-user matches only, never an id prefix: for a
        user id like ``3f`` that would be another user's token); returns them, empty when the
        user has none (nothing written then)."""
        with self._locked() as records:
            gone = [r for r in records if r.user == user]
            if gone:
                self._write([r for r in records if r not in gone])
        return gone

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[TokenRecord]]:
        """Holds the exclusive lock of the token file (across processes and threads) and gives
        its tokens as they are now on disk, oldest first; a change is written inside.

        Raises:
            TokenError: the lock file cannot be made or locked (nothing written), or the
                token file cannot be read.
        """
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TokenError(f"cannot write the token file {self.path}: cannot create its lock "
                             f"file {lock}: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise TokenError(f"cannot write the token file {self.path}: cannot lock "
                                 f"{lock}: {exc.strerror}") from None
            # Read afresh under the lock: the cached copy (keyed on mtime and size) may be
            # from before another writer's change.
            self._seen = None
            yield self.records()
        finally:
            os.close(fd)  # releases the lock

    def _write(self, records: list[TokenRecord]) -> None:
        doc: dict[str, Any] = {"format": FORMAT, "version": 1,
                               "tokens": [r.to_dict() for r in records]}
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=folder)  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(doc, out, indent=2)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TokenError(f"cannot write the token file {self.path}: {exc.strerror}") from None
        self._seen = None
