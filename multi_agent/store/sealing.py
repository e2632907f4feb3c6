"""Encryption at rest: the content columns sealed with AES-256-GCM under the operator's key.

One mechanism: the content columns of ``schema.py`` have the column type :class:`Sealed`.
Its bind and result processors seal and open values with the :class:`Keyring` attached to the
engine's dialect (:func:`attach`, done once when the service opens its backend), for every
statement: SQLAlchemy Core ones and the store's precompiled driver SQL (``sql.Prepared`` asks
:func:`sealed_binds` / :func:`sealed_results` which of a statement's parameters and result
columns are sealed). An engine without a keyring gets no processor at all: with encryption
off the store runs exactly the code it ran before.

Sealed (content; the store never queries it in SQL):
    ``ma_events.event_data`` and ``ma_events.text``, ``ma_sessions.state`` and
    ``initial_state``, ``ma_app_states.state``, ``ma_user_states.state``.
In clear (the store queries them): ids, run tree, source/target, branch, message types,
timestamps, sequence numbers, revisions, token counts, ``agent_paths`` and ``key_revs``
(state key *names* and the revision that wrote each; the values are sealed).

The stored form of a sealed value is text, the same on SQLite and PostgreSQL::

    $ma1$<key id>$<base64(12-byte nonce | ciphertext | 16-byte tag)>

The key id is the first 8 hex digits of the key's fingerprint, so several keys can be in use
at once (rotation: :mod:`multi_agent.cli.keys`). The table's name is the associated data: a
value moved to another table fails authentication (within a table it does not). A value
without the ``$ma1$`` prefix is a row written before encryption was turned on and is returned
as it is (``multi-agent rekey`` seals those).

``ma_meta`` row ``encryption`` (JSON) records that the database holds sealed rows, the
fingerprints of the keys they may be sealed with and whether clear rows may remain. Opening
such a database without a key, or without one of those keys, raises
:class:`~multi_agent.errors.EncryptionKeyError` before anything is written.

Keys: 32 random bytes in URL-safe base64 (``multi-agent keygen`` prints one), given in
``MULTI_AGENT_ENCRYPTION_KEY`` or in a key file (``MULTI_AGENT_ENCRYPTION_KEY_FILE``, the URI
option ``encryption_key_file`` or ``DatabaseSessionService(encryption_key_file=...)``). Several
keys, separated by commas or newlines: the first seals new values, all of them open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Text, inspect, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

from ..errors import EncryptionError, EncryptionKeyError, EncryptionUnavailableError

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "META_KEY",
    "PREFIX",
    "Keyring",
    "Sealed",
    "attach",
    "check_marker",
    "generate_key",
    "keyring_of",
    "load_keyring",
    "read_marker",
    "record_marker",
]

ENV_KEY = "MULTI_AGENT_ENCRYPTION_KEY"
"""Environment variable holding the key(s): the first seals, every one opens."""

ENV_KEY_FILE = "MULTI_AGENT_ENCRYPTION_KEY_FILE"
"""Environment variable naming a key file (one key a line; the first seals)."""

META_KEY = "encryption"
"""The ``ma_meta`` row that records the keys in use."""

PREFIX = "$ma1$"
"""How every sealed value starts (``ma1``: format version 1, AES-256-GCM)."""

CIPHER = "aes-256-gcm"
INSTALL_HINT = (
    "Encryption at rest needs the encryption extra: "
    "pip install 'adk-lossless-sessions[encryption]'"
)
_ATTR = "_multi_agent_keyring"
_a2b = binascii.a2b_base64
_b2a = binascii.b2a_base64
_NONCE = 12
_KEY_BYTES = 32


def generate_key() -> str:
    """A new random key: 32 bytes from the OS's CSPRNG, in URL-safe base64 (44 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def fingerprint(key: bytes) -> str:
    """A key's public name (16 hex digits): it identifies the key and reveals nothing of it."""
    return hashlib.sha256(b"multi-agent encryption key v1\x00" + key).hexdigest()[:16]


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise EncryptionUnavailableError(INSTALL_HINT) from None
    return AESGCM


def _parse_key(text: str, where: str) -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise EncryptionKeyError(
            f"{where}: a key is 32 random bytes in URL-safe base64 (44 characters), got "
            f"{len(raw)} characters that are not one. Make a key with `multi-agent keygen`."
        )
    return key


class Keyring:
    """The keys a store seals and opens with: the first key seals, every key opens.

    Args:
        keys: raw 32-byte keys, the sealing key first.
    """

    def __init__(self, keys: Iterable[bytes]) -> None:
        aesgcm = _aesgcm()
        self.keys: list[bytes] = []
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)
        if not self.keys:
            raise EncryptionKeyError("No encryption key was given.")
        self.fingerprints = [fingerprint(k) for k in self.keys]
        self._ciphers = {fp[:8]: aesgcm(k) for fp, k in zip(self.fingerprints, self.keys,
                                                              strict=True)}
        self.current = self.fingerprints[0]
        self._kid = self.current[:8]
        self._sealer = self._ciphers[self._kid]
        self.current_prefix = f"{PREFIX}{self._kid}$"
        from cryptography.exceptions import InvalidTag

        self._invalid_tag = InvalidTag

    @classmethod
    def from_text(cls, text: str, where: str) -> Keyring:
        """Keys separated by commas, spaces or newlines (``#`` starts a comment line)."""
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        parts = [p for p in " ".join(lines).replace(",", " ").split() if p]
        if not parts:
            raise EncryptionKeyError(f"{where} holds no key. Make one with `multi-agent keygen`.")
        return cls(_parse_key(p, where) for p in parts)

    def seal(self, column: str, value: str) -> str:
        """The stored form of ``value`` in ``column`` (a fresh random nonce each time)."""
        nonce = os.urandom(_NONCE)
        body = self._sealer.encrypt(
            nonce, value.encode("utf-8", "surrogatepass"), _aad(column))
        return self.current_prefix + _b2a(nonce + body, newline=False).decode("ascii")

    def open(self, column: str, stored: str) -> str:
        """The value sealed in ``stored``; a value without the prefix (a clear row) as is.

        Raises:
            EncryptionKeyError: sealed with a key that is not in this keyring.
            EncryptionError: the value fails authentication (changed, or from another table).
        """
        if not stored.startswith(PREFIX) or stored[13:14] != "$":
            return stored
        kid = stored[5:13]
        cipher = self._ciphers.get(kid)
        try:
            blob = _a2b(stored[14:], strict_mode=True)
        except (binascii.Error, ValueError):
            return stored  # not a sealed value: clear text that happens to start like one
        if cipher is None:
            if len(blob) < _NONCE + 16:
                return stored
            raise EncryptionKeyError(
                f"A value in {column} is sealed with key {kid}..., which is not among the "
                f"keys given ({', '.join(f[:8] + '...' for f in self.fingerprints)}). Give "
                f"that key too (in {ENV_KEY}, comma-separated, new key first)."
            )
        try:
            plain = cipher.decrypt(blob[:_NONCE], blob[_NONCE:], _aad(column))
        except self._invalid_tag:
            raise EncryptionError(
                f"A value in {column} fails authentication: it was changed in the database, "
                "or copied from another table. Restore the row from a backup."
            ) from None
        return plain.decode("utf-8", "surrogatepass")


def _aad(column: str) -> bytes:
    """The associated data of a value: its table (one statement parameter may fill two
    columns of a table, e.g. a new session's ``state`` and ``initial_state``)."""
    aad = _AAD.get(column)
    if aad is None:
        aad = _AAD[column] = column.partition(".")[0].encode("ascii")
    return aad


_AAD: dict[str, bytes] = {}


def load_keyring(
    *, key: str | None = None, key_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Keyring | None:
    """The keyring the operator configured, or None (encryption off).

    Precedence: ``key`` (the keys' text), ``key_file``, then ``$MULTI_AGENT_ENCRYPTION_KEY``,
    then ``$MULTI_AGENT_ENCRYPTION_KEY_FILE``.

    Raises:
        EncryptionKeyError: a key file cannot be read, or a key is malformed.
        EncryptionUnavailableError: a key is given but ``cryptography`` is not installed.
    """
    env = os.environ if env is None else env
    if key:
        return Keyring.from_text(key, "the encryption key given")
    if key_file is None and env.get(ENV_KEY):
        return Keyring.from_text(env[ENV_KEY], ENV_KEY)
    path = key_file if key_file is not None else env.get(ENV_KEY_FILE) or None
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EncryptionKeyError(
            f"Cannot read the encryption key file {os.fspath(path)!r}: {exc.strerror or exc}."
        ) from None
    return Keyring.from_text(text, f"the key file {os.fspath(path)!r}")


# -- the engine's keyring -----------------------------------------------------------------------


def attach(dialect: Dialect, keyring: Keyring | None) -> None:
    """Makes every ``Sealed`` column on ``dialect``'s engine seal and open with ``keyring``.

    Done before the engine runs a statement (SQLAlchemy caches a type's processors per
    dialect). A second service on the same engine must use the same keys.
    """
    present = dialect.__dict__.get(_ATTR)
    if present is not None and (keyring is None or present.keys != keyring.keys):
        raise EncryptionKeyError(
            "This database engine is already open with other encryption keys; open the store "
            "with the same keys (or with its own engine)."
        )
    if keyring is None:
        return
    if dialect.__dict__.get("_type_memos"):
        dialect._type_memos.clear()  # type: ignore[attr-defined]
    setattr(dialect, _ATTR, keyring)


def keyring_of(dialect: Dialect) -> Keyring | None:
    """The keyring attached to ``dialect`` (None: encryption off)."""
    return dialect.__dict__.get(_ATTR)


class Sealed(TypeDecorator[str]):
    """A TEXT column whose values are sealed when the engine has a keyring.

    Args:
        column: ``table.column``, the associated data of every value sealed in it.
    """

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def bind_processor(self, dialect: Dialect) -> Any:
        keyring = dialect.__dict__.get(_ATTR)
        if keyring is None:
            return None
        seal, column = keyring.seal, self.column
        return lambda value: None if value is None else seal(column, value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        keyring = dialect.__dict__.get(_ATTR)
        if keyring is None:
            return None
        open_, column = keyring.open, self.column
        return lambda value: None if value is None else open_(column, value)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # ``text LIKE '%x%'`` compares the stored form: the pattern is not sealed.
        return Text()


def sealed_binds(compiled: Any) -> dict[str, str]:
    """``{parameter name: column}`` of a compiled statement's parameters that are sealed."""
    out: dict[str, str] = {}
    for bind in compiled.binds.values():
        if isinstance(bind.type, Sealed):
            out[compiled.bind_names[bind]] = bind.type.column
    for column in getattr(compiled, "insert_prefetch", ()) or ():
        if isinstance(column.type, Sealed):
            out[column.key] = column.type.column
    return out


def sealed_results(compiled: Any) -> list[tuple[int, str]]:
    """``[(index, column)]`` of a compiled SELECT's result columns that are sealed."""
    return [
        (i, rc.type.column) for i, rc in enumerate(getattr(compiled, "_result_columns", ()))
        if isinstance(rc.type, Sealed)
    ]


class OpenedResult:
    """A result (SQLAlchemy's, or the store's SQLite one) whose sealed columns come opened."""

    __slots__ = ("_columns", "_keyring", "_result")

    def __init__(self, result: Any, columns: list[tuple[int, str]], keyring: Keyring) -> None:
        self._result, self._columns, self._keyring = result, columns, keyring

    @property
    def rowcount(self) -> int:
        return int(self._result.rowcount)

    def _rows(self) -> tuple[list[Any], tuple[str, ...]]:
        cursor = getattr(self._result, "_cursor", None)  # the store's SQLite result
        if cursor is not None:
            rows = cursor.fetchall()
            fields = tuple(d[0] for d in cursor.description or ())
            cursor.close()
            return rows, fields
        rows = self._result.fetchall()
        return rows, tuple(self._result.keys())

    def _open(self, row: Any, fields: tuple[str, ...]) -> _Row:
        values = list(row)
        for i, column in self._columns:
            if values[i] is not None:
                values[i] = self._keyring.open(column, values[i])
        return _Row(values, fields)

    def fetchall(self) -> list[Any]:
        rows, fields = self._rows()
        return [self._open(r, fields) for r in rows]

    def first(self) -> Any:
        rows = self.fetchall()
        return rows[0] if rows else None

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        row = self.first()
        if row is None:
            raise LookupError("expected one row, found none")
        return row[0]

    def scalars(self) -> list[Any]:
        rows, _ = self._rows()
        if self._columns and self._columns[0][0] == 0:  # a sealed first column (event JSON)
            open_, column = self._keyring.open, self._columns[0][1]
            return [None if r[0] is None else open_(column, r[0]) for r in rows]
        return [r[0] for r in rows]

    def __iter__(self) -> Any:
        return iter(self.fetchall())


class _Row(tuple):  # type: ignore[type-arg]
    """A row whose columns are also attributes (``row.state``)."""

    _fields: tuple[str, ...]

    def __new__(cls, values: list[Any], fields: tuple[str, ...]) -> _Row:
        row = super().__new__(cls, values)
        row._fields = fields
        return row

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._fields.index(name)]
        except ValueError:
            raise AttributeError(name) from None


# -- the marker in ma_meta ----------------------------------------------------------------------


def read_marker(conn: Connection) -> dict[str, Any] | None:
    """The database's ``encryption`` marker (None: no sealed rows were ever written)."""
    from . import schema

    if schema.meta.name not in inspect(conn).get_table_names():
        return None
    raw = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == META_KEY)
    ).scalar()
    if raw is None:
        return None
    try:
        marker = json.loads(raw)
        marker["keys"] = [str(k) for k in marker["keys"]]
    except (ValueError, KeyError, TypeError):
        raise EncryptionError(
            f"The database's encryption marker (ma_meta {META_KEY!r}) is damaged: {raw[:100]!r}."
        ) from None
    return marker


def check_marker(conn: Connection, keyring: Keyring | None, where: str) -> dict[str, Any] | None:
    """Refuses to open an encrypted database without every key its rows may be sealed with.

    Runs before anything is written. Returns the marker (None for a database never encrypted).

    Raises:
        EncryptionKeyError: encrypted and no key given, or a key it needs is not given.
    """
    marker = read_marker(conn)
    if marker is None:
        return None
    keys = marker["keys"]
    if keyring is None:
        raise EncryptionKeyError(
            f"{where} is encrypted (key {', '.join(keys)}) and no encryption key was given. "
            f"Set {ENV_KEY} (or {ENV_KEY_FILE}, or the URI option "
            "?encryption_key_file=PATH) to its key. Nothing was written."
        )
    missing = [k for k in keys if k not in keyring.fingerprints]
    if missing:
        raise EncryptionKeyError(
            f"{where} is encrypted with key {', '.join(missing)}, which is not among the keys "
            f"given ({', '.join(keyring.fingerprints)}): a wrong key, or an old key retired "
            "too early. Give the right key (during a rotation: new key first, then the old "
            f"one, comma-separated in {ENV_KEY}). Nothing was written."
        )
    return marker


def record_marker(
    conn: Connection, keyring: Keyring, marker: dict[str, Any] | None, *,
    keys: list[str] | None = None, clear_rows: bool | None = None,
) -> dict[str, Any]:
    """Writes the marker: the sealing key joins the keys in use (a no-op when it is there).

    A database that already holds sessions when it is first opened with a key is recorded
    with ``clear_rows: true`` (its old rows stay readable; ``multi-agent rekey`` seals them).
    """
    from . import schema

    new: dict[str, Any]
    if marker is None:
        has_rows = conn.execute(select(schema.sessions.c.id).limit(1)).first() is not None
        has_rows = has_rows or conn.execute(
            select(schema.app_states.c.app_name).limit(1)).first() is not None
        new = {"cipher": CIPHER, "keys": [keyring.current], "clear_rows": has_rows}
    else:
        new = dict(marker)
        if keyring.current not in new["keys"]:
            new["keys"] = [keyring.current, *new["keys"]]
    if keys is not None:
        new["keys"] = keys
    if clear_rows is not None:
        new["clear_rows"] = clear_rows
    if new == marker:
        return new
    value = json.dumps(new, sort_keys=True)
    if marker is None:
        conn.execute(schema.meta.insert().values(key=META_KEY, value=value))
    else:
        conn.execute(
            schema.meta.update().where(schema.meta.c.key == META_KEY).values(value=value))
    return new


def attach_to_backend(backend: Any, keyring: Keyring | None) -> Keyring | None:
    """:func:`attach` for the engine of a store's ``Backend``; returns ``keyring``."""
    engine = backend.sync_engine if backend.sync_engine is not None else (
        backend.async_engine.sync_engine)
    attach(engine.dialect, keyring)
    return keyring


def guard_open(conn: Connection, keyring: Keyring | None, where: str, ensure: Any) -> Any:
    """The store's opening transaction: the keys checked first (nothing is written when they
    are wrong or missing), then ``ensure()`` (schema created or upgraded), then the marker
    recorded when a key is given."""
    marker = check_marker(conn, keyring, where)
    result = ensure()
    if keyring is not None:
        record_marker(conn, keyring, marker)
    return result
