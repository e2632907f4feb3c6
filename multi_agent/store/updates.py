"""Atomic state updates: changes the store applies to what is stored *now*, not to a copy.

ADK records a state change as the key's whole new value. When two sessions of one user each
add a ticker to ``user:preferences`` from the copy they loaded, the second value written
drops the first ticker: a lost update. The store refuses that (``StaleSession``; see
``service.py``), which is safe but fails the turn. For the changes that commute, say what
the change *is* and the store applies it to the stored value in the append's transaction::

    from multi_agent.store.updates import StateUpdates

    updates = StateUpdates(tool_context)          # a ToolContext or CallbackContext
    updates.add_unique("user:preferences", ("stock_watchlist",), "NVDA")
    updates.increment("user:agent_stats", ("funny_nerd", "delegations"))
    updates.append("user:conversation_log", (), entry, keep_last=50)
    updates.set("user:user_name", (), "Dana")

Each call writes the key's new value through the context's state exactly as a plain
assignment would (so later reads in the same turn, other session services and ADK itself see
an ordinary value), and also records the operation for this store. When the event carrying the
value is appended, the store re-applies the recorded operations to the key's stored value,
under the write lock, instead of writing the value computed from the copy. Nothing to retry,
nothing lost, at any scope (``app:``, ``user:``, session).

Operations (``path`` is a tuple of dict keys inside the key's value; ``()`` is the value itself;
missing dicts on the path are created, and a non-dict in the way is replaced by one):

``set(path, value)``            the value at ``path`` becomes ``value`` (a blind write)
``increment(path, by=1)``       adds ``by``; a missing or non-numeric value counts as 0
``add_unique(path, item)``      removes ``item`` from the list at ``path``, appends it at the end
``remove(path, item)``          removes every ``item`` from the list at ``path``
``append(path, item, keep_last=None)``  appends, keeping the newest ``keep_last`` items

A list operation on a missing or non-list value starts from ``[]``.

The operations travel beside the session object (a weak map from the ``Session`` to its
pending operations), not inside the value, because ADK copies and merges state deltas on the way
to the store (parallel tool calls are merged through ``model_dump``). The store uses them only
while the delta still holds exactly the value they produced; a value changed in between (by a
plain assignment) is written as a plain value, with the usual per-key conflict check.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError

__all__ = ["Op", "StateUpdates", "apply_ops", "take_all_pending", "take_pending"]

_KINDS = ("set", "increment", "add_unique", "remove", "append")


@dataclass(frozen=True, slots=True)
class Op:
    """One atomic change at ``path`` inside a state key's value."""

    kind: str
    path: tuple[str, ...]
    value: Any = None
    keep_last: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.kind, "path": list(self.path), "value": self.value}
        if self.keep_last is not None:
            out["keep_last"] = self.keep_last
        return out


def _apply_one(root: Any, op: Op) -> Any:
    """``root`` with ``op`` applied; ``root`` itself is not changed (copied where touched)."""
    if not op.path:
        return _leaf(root, op)
    top = dict(root) if isinstance(root, dict) else {}
    node = top
    for name in op.path[:-1]:
        child = node.get(name)
        child = dict(child) if isinstance(child, dict) else {}
        node[name] = child
        node = child
    last = op.path[-1]
    node[last] = _leaf(node.get(last), op)
    return top


def _leaf(current: Any, op: Op) -> Any:
    kind = op.kind
    if kind == "set":
        return copy.deepcopy(op.value)
    if kind == "increment":
        base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
        return base + op.value
    items = list(current) if isinstance(current, list) else []
    if kind == "add_unique":
        items = [x for x in items if x != op.value]
        items.append(copy.deepcopy(op.value))
    elif kind == "remove":
        items = [x for x in items if x != op.value]
    else:  # append
        items.append(copy.deepcopy(op.value))
    if op.keep_last is not None and len(items) > op.keep_last:
        items = items[len(items) - op.keep_last:]
    return items


def apply_ops(value: Any, ops: Sequence[Op]) -> Any:
    """``value`` with every operation applied in order (``value`` is left unchanged)."""
    for op in ops:
        value = _apply_one(value, op)
    return value


# --------------------------------------------------------------------------------------------
# Pending operations, per session object


class _Pending:
    """The operations recorded for one session object's keys, and the value each produced."""

    __slots__ = ("keys", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # full state key -> (ops since the key was last stored, the value they produced)
        self.keys: dict[str, tuple[list[Op], Any]] = {}


# id(session) -> (a weak reference to it, its pending operations). Sessions are pydantic
# models (unhashable), so they are keyed by identity; the entry goes when the session does.
_pending: dict[int, tuple[weakref.ref[Any], _Pending]] = {}
_pending_lock = threading.Lock()
# Weak-reference callbacks only note a dead entry here (list.append takes no lock): the garbage
# collector may run them on a thread that holds _pending_lock, mid-way through _pending_for,
# and a callback that took the lock would wait for itself forever. The next _pending_for
# removes the noted entries under the lock (WeakValueDictionary's "pending removals").
_dead: list[tuple[int, weakref.ref[Any]]] = []


def _forget(ref: weakref.ref[Any], key: int) -> None:
    _dead.append((key, ref))


def _drop_dead() -> None:
    """Under ``_pending_lock``: removes the entries whose session is gone."""
    while _dead:
        key, ref = _dead.pop()
        entry = _pending.get(key)
        if entry is not None and entry[0] is ref:
            del _pending[key]


def _pending_for(session: Any, create: bool) -> _Pending | None:
    key = id(session)
    with _pending_lock:
        _drop_dead()
        entry = _pending.get(key)
        if entry is not None and entry[0]() is session:
            return entry[1]
        if not create:
            return None
        found = _Pending()
        _pending[key] = (weakref.ref(session, lambda ref, key=key: _forget(ref, key)), found)
        return found


def take_all_pending(session: Any, delta: dict[str, Any]) -> dict[str, list[Op]]:
    """:func:`take_pending` for every key of ``delta`` at once: the operations behind each
    value they produced exactly (one look-up of the session's record, none when it has none;
    an append's usual case)."""
    if not _pending and not _dead:
        return {}
    pending = _pending_for(session, create=False)
    if pending is None:
        return {}
    out: dict[str, list[Op]] = {}
    with pending.lock:
        if not pending.keys:
            return out
        for key, value in delta.items():
            entry = pending.keys.pop(key, None)
            if entry is not None and entry[1] == value:
                out[key] = entry[0]
    return out


def take_pending(session: Any, key: str, value: Any) -> list[Op] | None:
    """The operations behind ``value`` for ``key`` of ``session``, if they produced exactly it.

    Called by the store when it appends an event whose delta holds ``key``. The record is
    consumed either way: after this append the copy holds the stored value.
    """
    pending = _pending_for(session, create=False)
    if pending is None:
        return None
    with pending.lock:
        entry = pending.keys.pop(key, None)
    if entry is None:
        return None
    ops, produced = entry
    return ops if produced == value else None


def restore_pending(session: Any, key: str, ops: list[Op], value: Any) -> None:
    """Puts back what :func:`take_pending` consumed (the append failed; it may be retried)."""
    pending = _pending_for(session, create=True)
    assert pending is not None
    with pending.lock:
        pending.keys.setdefault(key, (ops, value))


# --------------------------------------------------------------------------------------------
# The tools' side


def _check_path(path: Any) -> tuple[str, ...]:
    if isinstance(path, str):
        path = (path,)
    if not isinstance(path, tuple | list) or not all(isinstance(p, str) for p in path):
        raise InvalidValueError(f"A state path is a tuple of dict keys, got {path!r}.")
    return tuple(path)


class StateUpdates:
    """Atomic updates of state keys through an ADK context (see the module docstring).

    Args:
        context: a ``ToolContext`` or ``CallbackContext``: anything with ``.state`` (ADK's
            ``State``, which puts the new value into the event's delta) and ``.session``.
    """

    def __init__(self, context: Any) -> None:
        self._state = context.state
        self._session = getattr(context, "session", None)

    @classmethod
    def for_event(cls, session: Any, event: Any) -> StateUpdates:
        """Updates recorded into ``event``'s state delta, for appending it to ``session`` by
        hand (``await service.append_event(session, event)``)::

            event = Event(author="worker", invocation_id=...)
            StateUpdates.for_event(session, event).increment("user:visits", ())
        """
        from google.adk.events.event_actions import EventActions
        from google.adk.sessions.state import State

        if event.actions is None:
            event.actions = EventActions()

        class _Context:
            pass

        context = _Context()
        # Reads see the session's state with this event's changes; writes go to the delta
        # only (the store applies the event to the session when it is appended).
        context.state = State(value=dict(session.state), delta=event.actions.state_delta)
        context.session = session
        return cls(context)

    def set(self, key: str, path: Any, value: Any) -> Any:
        """Sets the value at ``path`` (a blind write: it does not depend on what is stored)."""
        return self._do(key, Op("set", _check_path(path), copy.deepcopy(value)))

    def increment(self, key: str, path: Any, by: int | float = 1) -> Any:
        """Adds ``by`` to the number at ``path`` (missing counts as 0)."""
        if isinstance(by, bool) or not isinstance(by, int | float) or not math.isfinite(by):
            raise InvalidValueError(f"increment needs a finite number, got {by!r}.")
        return self._do(key, Op("increment", _check_path(path), by))

    def add_unique(self, key: str, path: Any, item: Any) -> Any:
        """Makes ``item`` the last element of the list at ``path``, present once."""
        return self._do(key, Op("add_unique", _check_path(path), copy.deepcopy(item)))

    def remove(self, key: str, path: Any, item: Any) -> Any:
        """Removes every ``item`` from the list at ``path``."""
        return self._do(key, Op("remove", _check_path(path), copy.deepcopy(item)))

    def append(self, key: str, path: Any, item: Any, *, keep_last: int | None = None) -> Any:
        """Appends ``item`` to the list at ``path``, keeping the newest ``keep_last`` items."""
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(
            keep_last, int
        ) or keep_last < 1):
            raise InvalidValueError(f"keep_last must be a positive integer, got {keep_last!r}.")
        return self._do(
            key, Op("append", _check_path(path), copy.deepcopy(item), keep_last=keep_last)
        )

    def _do(self, key: str, op: Op) -> Any:
        if not isinstance(key, str) or not key or key.startswith("temp:"):
            raise InvalidValueError(f"Atomic updates need a stored state key, got {key!r}.")
        current = self._state.get(key)
        new = _apply_one(current, op)
        if self._session is not None:
            pending = _pending_for(self._session, create=True)
            assert pending is not None
            with pending.lock:
                entry = pending.keys.get(key)
                # Chain onto operations not stored yet, as long as the copy still holds the
                # value they produced; otherwise the value came from storage (or a plain
                # assignment) and the chain starts afresh.
                ops = [*entry[0], op] if entry is not None and entry[1] == current else [op]
                pending.keys[key] = (ops, copy.deepcopy(new))
        self._state[key] = new
        return new
