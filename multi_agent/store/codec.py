"""Rows <-> ADK objects: strict JSON for state, and a fast, exact event decoder.

Events are stored as ``Event.model_dump_json(exclude_none=True)``: text that ADK's own
validation accepts. Reading them back through ``Event.model_validate`` costs ~40-70 µs an event
on this project's machines, nearly all of it Python-level ``mode="before"`` validators in
``google.genai`` and ADK whose only job is to warn or to route convenience kwargs. Data the
store wrote itself never needs them, so :class:`EventDecoder` rebuilds events from a plan
compiled once per model class (nested models, lists, enums, floats) and falls back to full
``Event.model_validate_json`` for anything the plan does not cover: unknown keys, bytes
(base64), unions, models with validators that change data. Set ``MULTI_AGENT_VERIFY_DECODE=1``
to decode every event both ways and fail loudly on any difference (the test suite does).
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import logging
import math
import os
import threading
import types as pytypes
import typing
from collections.abc import Iterable
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json as _from_json

from ..errors import StateNotSerializableError

__all__ = [
    "EventDecoder",
    "check_event_numbers",
    "check_json_value",
    "dumps",
    "encode_event",
    "event_digest",
    "loads",
]

MAX_DEPTH = 100
"""Deepest nesting of a state value the store accepts (lists/dicts inside each other).

Well below the 200 levels pydantic's JSON parser accepts, since the value sits a few levels
deep inside its event."""

MAX_INT_BITS = 13_000
"""Largest integer (in bits, ~3,900 digits) a value may hold: Python refuses to turn integers
of more than 4,300 digits into text, so a larger one could be accepted but never read back."""

_JSON_SCALARS = (str, int, float, bool, type(None))

logger = logging.getLogger("multi_agent.store")


def check_json_value(key: str, value: Any) -> None:
    """Raises StateNotSerializableError unless ``value`` is plain JSON that round-trips exactly.

    Accepted: dict with str keys, list, tuple (stored as a list), str, int, finite float, bool,
    None. Refused with the key path and type named: anything else (sets, bytes, datetimes,
    objects), NaN/Infinity, non-string dict keys, nesting deeper than MAX_DEPTH.
    """
    stack: list[tuple[str, Any, int]] = [(key, value, 0)]
    while stack:
        path, v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise StateNotSerializableError(
                f"State value {key!r} is nested deeper than {MAX_DEPTH} levels; "
                "flatten it or store it as an artifact. Nothing was written.",
                key=path,
            )
        if isinstance(v, str):
            check_text(path, v)
            continue
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int):
            if v.bit_length() > MAX_INT_BITS:
                raise StateNotSerializableError(
                    f"State value at {path!r} is an integer of {v.bit_length()} bits; the "
                    f"store keeps integers of up to {MAX_INT_BITS} bits exactly (Python "
                    "cannot print longer ones as JSON). Store it as a string. Nothing was "
                    "written.",
                    key=path,
                )
            continue
        if isinstance(v, float):
            if not math.isfinite(v):
                raise StateNotSerializableError(
                    f"State value at {path!r} is {v!r}, which JSON cannot represent; "
                    "store None or a string instead. Nothing was written.",
                    key=path,
                )
            continue
        if isinstance(v, dict):
            for k, item in v.items():
                if isinstance(k, str):
                    check_text(path, k)
                if not isinstance(k, str):
                    raise StateNotSerializableError(
                        f"State value at {path!r} has a non-string key {k!r} "
                        f"({type(k).__name__}); JSON object keys must be strings. "
                        "Nothing was written.",
                        key=path,
                    )
                stack.append((f"{path}.{k}", item, depth + 1))
            continue
        if isinstance(v, list | tuple):
            for i, item in enumerate(v):
                stack.append((f"{path}[{i}]", item, depth + 1))
            continue
        hint = ""
        if isinstance(v, BaseModel):
            hint = " Store value.model_dump(mode='json') instead."
        elif hasattr(v, "isoformat"):
            hint = " Store value.isoformat() instead."
        elif isinstance(v, set | frozenset):
            hint = " Store sorted(value) instead."
        raise StateNotSerializableError(
            f"State value at {path!r} is a {type(v).__name__}, which is not JSON.{hint} "
            "Nothing was written.",
            key=path,
        )


def check_text(path: str, text: str) -> None:
    """Refuses strings that are not valid Unicode text (lone surrogates cannot be stored)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StateNotSerializableError(
            f"State value at {path!r} holds a lone surrogate ({exc.reason}), which is not "
            "valid Unicode text and cannot be stored. Nothing was written.",
            key=path,
        ) from None


# The standard library's encoder and scanner, made once: ``json.dumps(value, **options)``
# builds a new ``JSONEncoder`` on every call and ``json.loads`` matches its whitespace regex
# twice around the scan, ~1 µs each of ~2; an append encodes ~4 small documents and parses ~5.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_SCAN = json.JSONDecoder().scan_once


def dumps(value: Any) -> str:
    """Encodes checked JSON compactly (NaN refused; non-ASCII kept as is): what
    ``json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` gives."""
    return _ENCODER.encode(value)


# The standard library on purpose: orjson parses 3x faster but silently turns integers beyond
# 64 bits into floats (2**70 comes back as 1.18e21), and the store promises exact round trips.
def loads(text: str | bytes) -> Any:
    """``json.loads(text)``: a document the store wrote (no whitespace around it) is scanned
    directly; anything else, and every error, goes through ``json.loads`` itself."""
    if type(text) is str:
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return value
    return json.loads(text)


def loads_batch(raws: list[str]) -> list[Any]:
    """Parses many stored JSON documents at once: ``[loads(r) for r in raws]``, ~2x faster.

    One parse of the joined array through pydantic-core's parser (jiter): the one pydantic
    itself uses for ``Event.model_validate_json``, so values come back exactly as ADK's own
    validation would see them (integers of any size stay ints; floats are correctly rounded;
    short strings such as keys, authors and roles are shared, which is harmless for ``str``).
    What it refuses (lone surrogate escapes, nesting deeper than 200) goes through the
    standard library, as before.
    """
    parts = raws.copy()
    parts[0] = "[" + parts[0]
    parts[-1] = parts[-1] + "]"  # one join, instead of copying ~6 MB twice more for brackets
    text = ",".join(parts)
    try:
        return _from_json(text)
    except ValueError:
        return loads(text)


def encode_event(event: Event) -> str:
    """The stored form of an event: its JSON without None fields."""
    return event.model_dump_json(exclude_none=True)


def event_digest(event_json: str) -> str:
    """A 128-bit hash of an event's stored form: tells a retry from a different event."""
    return hashlib.blake2b(event_json.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


STRICT_EVENT_FIELDS = ("actions", "custom_metadata", "output")
"""An event's fields that are the developer's own data (its state changes, metadata, output):
a non-finite number there is refused, since it could not come back as it was."""


# The times the store accepts, in seconds since the epoch: what Python's datetime can show (a
# day inside 0001-01-01 .. 9999-12-31, for any time zone). 1e300 is finite, but every listing
# that shows it as a date failed on it.
EARLIEST_TIME = -62135596800.0 + 86400
LATEST_TIME = 253402300800.0 - 86400


def time_problem(value: float) -> str | None:
    """Why ``value`` is not a time the store accepts (None: it is)."""
    if not math.isfinite(value):
        return "a time must be a finite number of seconds since the epoch"
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        return ("a time must lie between the years 1 and 9999 (seconds since the epoch, "
                f"{EARLIEST_TIME:.0f} to {LATEST_TIME:.0f})")
    return None


def check_event_numbers(event: Event, event_json: str, *, strict: bool = False) -> None:
    """Refuses an event whose timestamp, state changes, ``custom_metadata`` or ``output`` hold
    NaN or an infinity, before anything is written; elsewhere (unless ``strict``) logs them.

    Pydantic writes such numbers as ``null``: the timestamp would come back unreadable (the
    whole session then fails to load) and the developer's own values would silently change.
    In what tools and models produce (a tool's result or call arguments in ``content``, a
    model's log-probabilities) they are stored as that ``null``, which is what the model was
    sent (genai's SDK serialises a request the same way) and what ADK's own store keeps: a
    refusal there stopped every turn that used such a tool, for a value no model could see.
    The WARNING names the place. An encoding without ``null`` (``exclude_none`` leaves out
    absent fields) holds none, and only the others are walked.

    Args:
        strict: refuse them everywhere (an import file must come back exactly as it is).

    Raises:
        InvalidValueError: naming the field, e.g. ``timestamp`` or ``actions.state_delta.x``.
    """
    from ..errors import InvalidValueError

    problem = time_problem(event.timestamp)
    if problem is not None:
        raise InvalidValueError(
            f"Event {event.id} has timestamp {event.timestamp!r}; {problem}. Nothing was "
            "written."
        )
    if "null" not in event_json:
        return
    stored_as_null = None
    for name, item in event.__dict__.items():
        if item is None or isinstance(item, str | bool | int):
            continue
        path = _non_finite_path(item, name, 1)
        if path is None:
            continue
        if strict or name in STRICT_EVENT_FIELDS:
            raise InvalidValueError(
                f"Event {event.id} holds a non-finite number (NaN or infinity) at {path}, "
                "which JSON cannot represent. Nothing was written."
            )
        stored_as_null = stored_as_null or path
    if stored_as_null is not None:
        logger.warning(
            "Event %s holds a non-finite number (NaN or infinity) at %s; it is stored as null, "
            "as it was sent to the model (JSON cannot represent it).", event.id, stored_as_null)


def _non_finite_path(value: Any, path: str, depth: int) -> str | None:
    """Where ``value`` (a model, dict, list or scalar) holds NaN/inf; None when nowhere."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "(root)")
    if isinstance(value, str | int | bool) or value is None or depth > 400:
        return None
    if isinstance(value, BaseModel):
        items: Iterable[tuple[str, Any]] = value.__dict__.items()
        prefix = f"{path}." if path else ""
        for name, item in items:
            if item is not None and not isinstance(item, str | bool | int):
                found = _non_finite_path(item, prefix + name, depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            found = _non_finite_path(item, f"{path}.{name}", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            found = _non_finite_path(item, f"{path}[{i}]", depth + 1)
            if found is not None:
                return found
    return None


def make_session(
    *, id: str, app_name: str, user_id: str, state: dict[str, Any], events: list[Event],
    last_update_time: float, marker: str,
) -> Session:
    """A ``Session`` equal to ``Session.model_construct(...)``, built without pydantic's loop.

    ``model_construct`` costs ~18 µs a session (most of ``list_sessions`` over 10,000).
    """
    values = {
        "id": id, "app_name": app_name, "user_id": user_id, "state": state,
        "events": events, "last_update_time": last_update_time,
    }
    if _SESSION_EXTRA_DEFAULTS:
        values = {**_SESSION_EXTRA_DEFAULTS, **values}
    session = _new(Session)
    _setattr(session, "__dict__", values)
    _setattr(session, "__pydantic_fields_set__", set(_SESSION_GIVEN))
    _setattr(session, "__pydantic_extra__", None)
    if _SESSION_PRIVATE_PLAIN:  # only immutable defaults (ADK 2.13: just the marker)
        private = {**_SESSION_PRIVATE_PLAIN, "_storage_update_marker": marker}
    else:
        private = {name: attr.get_default() for name, attr in _SESSION_PRIVATE.items()}
        private["_storage_update_marker"] = marker
    _setattr(session, "__pydantic_private__", private)
    return session


_SESSION_GIVEN = ("id", "app_name", "user_id", "state", "events", "last_update_time")
_SESSION_PRIVATE = dict(Session.__private_attributes__)
_SESSION_PRIVATE_PLAIN: dict[str, Any] | None = (
    {name: attr.default for name, attr in _SESSION_PRIVATE.items()}
    if all(attr.default_factory is None and isinstance(attr.default, str | int | float | None)
           for attr in _SESSION_PRIVATE.values())
    else None
)
_SESSION_EXTRA_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in Session.model_fields.items()
    if name not in _SESSION_GIVEN
}


# --------------------------------------------------------------------------------------------
# Fast decoding


class _Fallback(Exception):
    """The plan does not cover this data: decode through full pydantic validation."""


_BENIGN_VALIDATORS = {
    # google.genai's BaseModel: logs a warning on type mismatches, returns data unchanged.
    "_check_field_type_mismatches",
    # ADK Event: routes message=/state=/route= convenience kwargs; stored data has none.
    "_accept_convenience_kwargs",
}

_Converter = Any  # a callable(value) -> value, or None for "identity"
_MISSING = object()


class _ModelPlan:
    """How to rebuild one model class: which keys it knows, which need converting.

    ``finish`` compiles ``build(data) -> model`` from the plan: straight-line code with the
    plan's constants bound as globals, nested models calling each other's ``build`` directly.
    A generic interpreter of the plan spent more time in its own loops and calls than in
    building the objects: ~14 µs an event of the benchmark's shape, against ~9.5 µs now.
    """

    __slots__ = (
        "build", "cls", "converted", "converters", "defaults", "factories", "known", "private"
    )

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        self.converters: dict[str, _Converter] = {}
        self.converted: frozenset[str] = frozenset()
        self.known: frozenset[str] = frozenset()
        self.defaults: dict[str, Any] = {}
        self.factories: list[tuple[str, Any]] = []
        self.private = {
            name: attr.get_default() for name, attr in cls.__private_attributes__.items()
        } or None
        self.build: Any = None

    def finish(self) -> None:
        self.known = frozenset(self.converters)
        self.converted = frozenset(k for k, c in self.converters.items() if c is not None)
        self.build = _compile_builder(self)


def _slot_setter(cls: type, name: str) -> Any:
    """The ``__set__`` of the descriptor behind ``cls.<name>`` (a slot, or ``__dict__``).

    Calling it directly skips ``object.__setattr__``'s lookup: half the cost, for four
    attributes on each of ~50,000 objects in a 10,000-event read.
    """
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name].__set__
    raise TypeError(f"{cls.__name__} has no {name}")


_BUILDER_SOURCE = """\
def build(data):
    if type(data) is not dict or not data.keys() <= known:
        raise _Fallback  # not an object, or a key the model does not have: ask pydantic
{convert}    values = {{**defaults, **data}}
{factories}    obj = new(cls)
    set_dict(obj, values)
    set_fields(obj, set(data))
    set_extra(obj, None)
    set_private(obj, {private})
    return obj
"""

_CONVERT_SOURCE = """\
    for name in data:
        if name in converted:
            value = data[name]
            if value is not None:
                data[name] = converters[name](value)
"""


def _compile_builder(plan: _ModelPlan) -> Any:
    """``build(data)`` for one plan: what ``model_construct`` would do, minus its generality.

    The object gets exactly the ``__dict__``, fields set, extra and private values pydantic's
    validation gives it (``EventDecoder.verify`` checks that on every event in the tests).
    """
    cls = plan.cls
    factories = "".join(
        f"    if {name!r} not in data:\n        values[{name!r}] = factory_{i}()\n"
        for i, (name, _) in enumerate(plan.factories)
    )
    source = _BUILDER_SOURCE.format(
        convert=_CONVERT_SOURCE if plan.converted else "",
        factories=factories,
        private="private.copy()" if plan.private else "None",
    )
    namespace: dict[str, Any] = {
        "_Fallback": _Fallback,
        "cls": cls,
        "known": plan.known,
        "converted": plan.converted,
        "converters": {k: c for k, c in plan.converters.items() if c is not None},
        "defaults": plan.defaults,
        "private": plan.private,
        "new": _new,
        "set_dict": _slot_setter(cls, "__dict__"),
        "set_fields": _slot_setter(cls, "__pydantic_fields_set__"),
        "set_extra": _slot_setter(cls, "__pydantic_extra__"),
        "set_private": _slot_setter(cls, "__pydantic_private__"),
        **{f"factory_{i}": factory for i, (_, factory) in enumerate(plan.factories)},
    }
    exec(compile(source, f"<build {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    return namespace["build"]


_new = object.__new__
_setattr = object.__setattr__


class EventDecoder:
    """Turns stored event JSON back into ``Event`` objects equal to the ones that were stored."""

    def __init__(self, *, verify: bool | None = None) -> None:
        self._plans: dict[type, _ModelPlan | None] = {}
        self._compiling: set[type] = set()  # plans being compiled (models nest each other)
        self._lock = threading.RLock()
        self.verify = (
            os.environ.get("MULTI_AGENT_VERIFY_DECODE") == "1" if verify is None else verify
        )
        self.fallbacks = 0

    # -- public ---------------------------------------------------------------------------

    def decode_many(self, raws: Iterable[str]) -> list[Event]:
        """Decodes a batch of stored events (one JSON parse for the whole batch)."""
        raws = list(raws)
        if not raws:
            return []
        datas = loads_batch(raws)
        if len(datas) != len(raws):
            raise ValueError(f"{len(raws)} stored events parsed as {len(datas)} JSON values")
        plan = self._plan(Event)
        build = plan.build if plan is not None else _fallback
        out = []
        append = out.append
        for raw, data in zip(raws, datas, strict=True):
            try:
                event = build(data)
            except _Fallback:
                event = self._validate(raw)
            else:
                if self.verify:
                    self._check(raw, event)
            append(event)
        return out

    def decode(self, raw: str) -> Event:
        """Decodes one stored event."""
        return self.decode_many([raw])[0]

    # -- internals ------------------------------------------------------------------------

    def _validate(self, raw: str) -> Event:
        """Full pydantic validation, for data the plan does not cover."""
        self.fallbacks += 1
        try:
            return Event.model_validate_json(raw)
        except ValidationError as exc:
            if "recursion limit" not in str(exc):
                raise
            # Nested deeper than pydantic's JSON parser goes: validate the parsed data.
            return Event.model_validate(json.loads(raw))

    @staticmethod
    def _check(raw: str, event: Event) -> None:
        expected = Event.model_validate_json(raw)
        if expected != event or expected.model_fields_set != event.model_fields_set:
            raise AssertionError(
                f"fast event decode differs from pydantic validation for {raw[:300]}"
            )

    def _plan(self, cls: type[BaseModel]) -> _ModelPlan | None:
        plan = self._plans.get(cls, _MISSING)
        if plan is not _MISSING:
            return plan
        # Worker threads share the decoder: one compiles while the others wait (~30 ms, once).
        # Re-entrant: compiling a plan compiles the plans of the models it nests.
        with self._lock:
            if cls in self._plans:
                return self._plans[cls]
            self._compiling.add(cls)
            try:
                plan = _compile_plan(cls, self)
            finally:
                self._compiling.discard(cls)
            self._plans[cls] = plan  # published only when complete
            return plan

    def _build(self, cls: type[BaseModel], data: Any) -> Any:
        plan = self._plans.get(cls)
        if plan is None:
            plan = self._plan(cls)
            if plan is None:
                raise _Fallback
        return plan.build(data)


def _fallback(_value: Any) -> Any:
    raise _Fallback


def _empty_or_fallback(value: Any) -> Any:
    """For a field with a validator: an empty value needs none; anything else goes to pydantic."""
    if value:
        raise _Fallback
    return value


def _compile_plan(cls: type[BaseModel], decoder: EventDecoder) -> _ModelPlan | None:
    decorators = cls.__pydantic_decorators__
    model_level = set(decorators.model_validators) | set(decorators.root_validators)
    if model_level - _BENIGN_VALIDATORS:
        return None
    if cls.model_config.get("extra") == "allow":
        return None
    validated_fields: set[str] = set()
    for name, dec in decorators.field_validators.items():
        if name not in _BENIGN_VALIDATORS:
            validated_fields.update(dec.info.fields)
    plan = _ModelPlan(cls)
    hints = typing.get_type_hints(cls, include_extras=True)
    for name, field in cls.model_fields.items():
        if name in validated_fields or "*" in validated_fields:
            plan.converters[name] = _empty_or_fallback
        else:
            plan.converters[name] = _compile_type(hints.get(name, field.annotation), decoder)
        if field.default_factory is not None:
            plan.factories.append((name, field.default_factory))
        else:
            default = field.default
            if isinstance(default, list | dict | set):
                plan.factories.append((name, lambda d=default: copy.copy(d)))
            else:
                plan.defaults[name] = default
    plan.finish()
    return plan


def _compile_type(tp: Any, decoder: EventDecoder) -> _Converter:
    """A converter from the JSON form of ``tp`` to the value validation would produce."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(tp)
        if any(not isinstance(x, str) for x in extras):
            return _fallback  # validators/constraints in metadata: let pydantic apply them
        return _compile_type(base, decoder)
    if origin in (typing.Union, pytypes.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _compile_type(args[0], decoder)
        if all(a in _JSON_SCALARS and a is not float for a in args):
            return None
        return _fallback
    if tp is Any or tp in (str, int, bool) or tp is object:
        return None
    if tp is float:
        return float
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in decoder._compiling:  # a model that contains itself: look it up when used
            return lambda v, cls=tp: decoder._build(cls, v)
        plan = decoder._plan(tp)
        return _fallback if plan is None else plan.build
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        conv = _compile_type(item, decoder)
        if conv is None:
            return lambda v: v if type(v) is list else _fallback(v)
        return lambda v: list(map(conv, v)) if type(v) is list else _fallback(v)
    if origin is dict:
        key_t, val_t = typing.get_args(tp) or (str, Any)
        if key_t is not str:
            return _fallback
        conv = _compile_type(val_t, decoder)
        if conv is None:
            return lambda v: v if type(v) is dict else _fallback(v)
        # An empty dict (the usual case) is returned as is: it is the parser's fresh object.
        return lambda v: (
            (dict(zip(v, map(conv, v.values()), strict=True)) if v else v)
            if type(v) is dict
            else _fallback(v)
        )
    if origin in (set, frozenset):
        (item,) = typing.get_args(tp) or (Any,)
        if item is not str:
            return _fallback
        return lambda v, o=origin: o(v)
    if origin is typing.Literal:
        return None
    return _fallback
