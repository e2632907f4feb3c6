"""Importing a file, read incrementally in bounded memory."""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from sqlalchemy.engine import Connection

from ...errors import InvalidValueError
from ..backend import Backend
from .checks import (
    _bad,
    _reason,
)
from .format import (
    _DOC_KEYS,
    _HEADER_KEYS,
    MAX_NESTING,
    ImportResult,
)
from .replay import (
    _check_header,
    _Import,
)

# --------------------------------------------------------------------------------------------
# documents in files, read incrementally


class _Refused(Exception):
    """NaN or an infinity literal: JSON has none (raised from inside the decoder)."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_WS = re.compile(r"[ \t\n\r]*")


class ImportSource:
    """A seekable file to import from: a path opened here, or the caller's file object."""

    def __init__(self, fh: IO[Any], *, owned: bool, name: str) -> None:
        self.fh, self.owned, self.name = fh, owned, name
        self.start = fh.tell()

    def rewind(self) -> IO[Any]:
        self.fh.seek(self.start)
        return self.fh

    def close(self) -> None:
        if self.owned:
            self.fh.close()


def open_source(source: str | os.PathLike[str] | IO[Any] | ImportSource) -> ImportSource:
    """Opens a path, or wraps a file object (bytes or text; a stream that cannot seek, such as
    stdin, is first copied to a temporary file, in bounded memory).

    Raises:
        InvalidValueError: the path cannot be opened (missing, a directory, no permission).
    """
    if isinstance(source, ImportSource):
        return source
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        try:
            if os.path.isdir(name):
                raise IsADirectoryError(21, "Is a directory")
            return ImportSource(open(name, "rb"), owned=True, name=name)  # noqa: SIM115
        except OSError as exc:
            raise InvalidValueError(
                f"Cannot read the export file {name}: {exc.strerror or exc}. Nothing was "
                "imported."
            ) from exc
    name = str(getattr(source, "name", "<stream>"))
    try:
        seekable = source.seekable()
    except (AttributeError, ValueError, OSError):
        seekable = False
    if seekable:
        return ImportSource(source, owned=False, name=name)
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        if isinstance(source, io.TextIOBase):
            spool.close()
            spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
    except OSError as exc:
        spool.close()
        raise InvalidValueError(
            f"Cannot read the export from {name}: {exc.strerror or exc}. Nothing was imported."
        ) from exc
    except UnicodeError as exc:
        spool.close()
        raise _bad(f"the file is not UTF-8 text ({exc}).") from None
    return ImportSource(spool, owned=True, name=name)


class _Reader:
    """JSON values one at a time from a file, with a buffer of about one chunk."""

    CHUNK = 1 << 18

    def __init__(self, fh: IO[Any]) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = None  # bytes or text: decided on the first read
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.dropped_lines = 0

    def _more(self, grow: bool = False) -> None:
        """Drops what was consumed and reads a chunk; ``grow``: at least as much again as the
        buffer still holds (a value longer than a chunk takes a few doublings, not a re-read
        per chunk)."""
        if self.pos:
            self.dropped_lines += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        try:
            data = self.fh.read(max(self.CHUNK, len(self.buf)) if grow else self.CHUNK)
        except OSError as exc:
            raise InvalidValueError(
                f"Cannot read the export file: {exc.strerror or exc}. Nothing was imported."
            ) from exc
        except UnicodeError as exc:  # a text stream with undecodable bytes
            raise _bad(f"the file is not UTF-8 text ({exc}).") from None
        if isinstance(data, str):
            if not self.bytes_read and data.startswith("\ufeff"):
                data = data[1:]
            self.bytes_read += len(data)
            text = data
        else:
            try:
                text = self.decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                offset = self.bytes_read + exc.start
                raise _bad(f"the file is not UTF-8 text (byte {offset} cannot be decoded); "
                           "an export is UTF-8 JSON.") from None
            self.bytes_read += len(data)
        if not data:
            self.eof = True
        self.buf += text

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._more()

    def take(self, char: str, where: str) -> None:
        if self.peek() != char:
            raise self.syntax(f"expected {char!r} {where}")
        self.pos += 1

    def where(self, pos: int) -> str:
        line = self.dropped_lines + self.buf.count("\n", 0, pos) + 1
        column = pos - self.buf.rfind("\n", 0, pos)
        return f"line {line} column {column}"

    def syntax(self, what: str, pos: int | None = None) -> InvalidValueError:
        pos = self.pos if pos is None else pos
        if pos >= len(self.buf) and self.eof:
            return _bad(f"the file is not JSON: it ends early, {what} (truncated?).")
        return _bad(f"the file is not JSON: {what} at {self.where(pos)}.")

    def value(self, where: str) -> Any:
        """Decodes the JSON value that starts here (reading on until it is complete)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated")
                if not self.eof and (unterminated or exc.pos >= len(self.buf) - 16):
                    self._more(grow=True)  # perhaps only cut off by the end of the buffer
                    continue
                if unterminated or exc.pos >= len(self.buf):
                    raise _bad(f"the file is not JSON: it ends in the middle of {where} "
                               "(truncated?).") from None
                raise self.syntax(f"{exc.msg} (in {where})", exc.pos) from None
            except _Refused as exc:
                raise _bad(f"the file is not JSON: {where} holds {exc.args[0]}, which JSON "
                           f"does not have (near {self.where(self.pos)}).") from None
            except RecursionError:
                raise _bad(f"{where} is nested too deeply to read (more than ~900 levels; an "
                           f"export nests at most {MAX_NESTING}).") from None
            except ValueError as exc:  # an integer of more than 4,300 digits
                raise _bad(f"{where} holds an integer too long to read ({_reason(exc)[:80]}).") \
                    from None
            if end >= len(self.buf) and not self.eof:
                self._more(grow=True)  # a number may go on in the next chunk
                continue
            self.pos = end
            return value


def _elements(reader: _Reader, close: str, misplaced: Callable[[int], str]) -> Iterator[int]:
    """Walks the container whose opening bracket was just read: yields 0, 1, 2... once per
    element, for the caller to read that element; reads the commas and the closing bracket.

    Args:
        reader: positioned after ``[`` or ``{``.
        close: ``]`` or ``}``.
        misplaced: what was expected after element ``i`` when neither a comma nor ``close``
            follows it (for the syntax error).
    """
    if reader.peek() == close:
        reader.pos += 1
        return
    i = 0
    while True:
        yield i
        char = reader.peek()
        reader.pos += 1
        if char == close:
            return
        if char != ",":
            reader.pos -= 1
            raise reader.syntax(misplaced(i))
        i += 1


def _items(reader: _Reader) -> Iterable[Any]:
    """The items of the events array, one at a time."""
    if reader.peek() != "[":
        raise _bad("runs and events must be JSON arrays.")
    reader.pos += 1
    for i in _elements(reader, "]", lambda i: f"expected ',' or ']' after events[{i}]"):
        yield reader.value(f"events[{i}]")


def _read(
    reader: _Reader, begin: Callable[[dict[str, Any], set[str]], _Import] | None,
    known: dict[str, Any] | None,
) -> tuple[dict[str, Any], bool, _Import | None]:
    """One pass over the document.

    Streams the events into ``begin(header, keys)`` when the header is complete by then
    (``known``: the header of an earlier pass); otherwise only checks that they are JSON.
    Returns the header, whether there were events, and the import (if it began).
    """
    char = reader.peek()
    if char == "":
        raise _bad("the file is empty.")
    if char != "{":
        if char == "[":
            raise _bad("the document must be a JSON object, got list.")
        value = reader.value("the document")
        raise _bad(f"the document must be a JSON object, got {type(value).__name__}.")
    reader.pos += 1
    header: dict[str, Any] = {}
    keys: set[str] = set()
    job: _Import | None = None
    for _ in _elements(reader, "}", lambda _: "expected ',' or '}' between the document's fields"):
        if reader.peek() != '"':
            raise reader.syntax("expected a field name in double quotes")
        key = reader.value("a field name")
        reader.take(":", f"after the field name {key!r}")
        if key in keys:
            raise _bad(f"the field {key!r} appears twice.")
        keys.add(key)
        if job is not None and key not in _DOC_KEYS:  # after the streamed events
            raise _bad(f"it has unknown field(s) {key}.")
        if key == "events":
            source = known if known is not None else header
            if begin is not None and _HEADER_KEYS <= source.keys():
                job = begin(source, set(source) | {"events"})
                for item in _items(reader):
                    job.event(item)
            else:
                for _ in _items(reader):
                    pass
        else:
            value = reader.value(key if key in _DOC_KEYS else f"the field {key!r}")
            if known is None:
                header[key] = value
    if reader.peek() != "":
        raise reader.syntax("unexpected data after the end of the document")
    return header, "events" in keys, job


def import_session_file(
    conn: Connection | None, backend: Backend | None,
    source: str | os.PathLike[str] | IO[Any] | ImportSource, *, app_name: str | None = None,
    user_id: str | None = None, session_id: str | None = None,
) -> ImportResult:
    """Imports an export file, reading it incrementally (call inside one write transaction;
    without a connection it only checks the file).

    Raises:
        InvalidValueError: the file is not a valid export, or cannot be read.
        SessionAlreadyExists: the target session id is taken.
    """
    opened = open_source(source)
    try:
        def begin(header: dict[str, Any], keys: set[str]) -> _Import:
            from ..trim_import import import_class  # a trimmed session's export (trim.py)

            return import_class(header)(conn, backend, header, keys, app_name=app_name,
                                        user_id=user_id, session_id=session_id)

        header, has_events, job = _read(_Reader(opened.rewind()), begin, None)
        if job is None:
            # Events before the rest of the document (or none): check the rest, read again.
            from ..trim_import import is_trimmed

            if not is_trimmed(header):  # a trimmed session's header is checked by its job
                _check_header(header, set(header) | ({"events"} if has_events else set()))
            _, _, job = _read(_Reader(opened.rewind()), begin, header)
            assert job is not None
        return job.finish()
    finally:
        if opened is not source:
            opened.close()
