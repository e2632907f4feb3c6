"""The shared workload: event shape and run sizes.

Every service in a run sees exactly the same events: author ``agent``, an invocation id, a model
``Content`` with 200 characters of text, and an ``actions.state_delta`` with two keys, one of which
changes on every event. Serialised with ``Event.model_dump_json(exclude_none=True)`` an event is
about 600 bytes.
"""

from __future__ import annotations

import dataclasses
import uuid

from google.adk.events import Event, EventActions
from google.genai import types

APP = "bench_app"
TEXT_LEN = 200
EVENTS_PER_INVOCATION = 10

_ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 "


def _text(i: int) -> str:
    # Deterministic, not trivially compressible, exactly TEXT_LEN characters.
    seed = (i * 2654435761) & 0xFFFFFFFF
    out = []
    for _ in range(TEXT_LEN):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(_ALPHABET[seed % len(_ALPHABET)])
    return "".join(out)


_TEXTS = [_text(i) for i in range(64)]


def invocation_id(i: int, *, prefix: str = "bench-invocation") -> str:
    """The invocation id of event ``i`` (EVENTS_PER_INVOCATION events per invocation)."""
    return f"{prefix}-{i // EVENTS_PER_INVOCATION:08d}"


def make_event(i: int, *, inv: str | None = None) -> Event:
    """Event number ``i`` of the workload (about 600 bytes as JSON)."""
    return Event(
        author="agent",
        invocation_id=inv or invocation_id(i),
        content=types.Content(role="model", parts=[types.Part(text=_TEXTS[i % len(_TEXTS)])]),
        actions=EventActions(state_delta={"turn": i, "topic": "benchmark-workload-constant-topic-padded-to-600b"}),
    )


def event_dict_template() -> dict:
    """``model_dump(mode='json', exclude_none=True)`` of a workload event, for bulk fills."""
    return make_event(0).model_dump(mode="json", exclude_none=True)


def bulk_event_dicts(n: int, *, start_ts: float, inv_prefix: str = "bench-invocation") -> list[dict]:
    """``n`` workload events as JSON-mode dicts, built without pydantic (for fast bulk fills).

    Each dict equals ``make_event(i).model_dump(mode='json', exclude_none=True)`` with a fresh id
    and strictly increasing timestamps (1 ms apart, starting at ``start_ts``).
    """
    tpl = event_dict_template()
    out = []
    for i in range(n):
        d = dict(tpl)
        d["id"] = str(uuid.uuid4())
        d["timestamp"] = start_ts + i * 0.001
        d["invocation_id"] = invocation_id(i, prefix=inv_prefix)
        d["content"] = {"parts": [{"text": _TEXTS[i % len(_TEXTS)]}], "role": "model"}
        actions = dict(tpl["actions"])
        actions["state_delta"] = {"turn": i, "topic": tpl["actions"]["state_delta"]["topic"]}
        d["actions"] = actions
        out.append(d)
    return out


def event_json_size() -> int:
    return len(make_event(12345).model_dump_json(exclude_none=True).encode())


def new_id() -> str:
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each phase is. ``default`` matches the targets in issue 2; ``quick`` is a smoke run."""

    name: str
    n_create: int  # (a) sessions created through create_session and timed
    n_append: int  # (b) events appended to one session, each timed
    n_get: int  # (c) events in the session read back whole
    get_reps: int  # (c) full reads; median reported
    recent_reps: int  # (c)/(d) reads with num_recent_events=20; median reported
    n_big: int  # (d) events in the big session
    n_list: int  # (e) sessions of one user listed
    list_reps: int  # (e)
    n_head: int  # (f) events on the head path
    fill_cap_s: float  # longest a fill through append_event may take before it stops early

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DEFAULT = Sizes("default", n_create=1000, n_append=2000, n_get=10_000, get_reps=5, recent_reps=20,
                n_big=100_000, n_list=10_000, list_reps=5, n_head=2000, fill_cap_s=150.0)
QUICK = Sizes("quick", n_create=200, n_append=500, n_get=2000, get_reps=3, recent_reps=10,
              n_big=10_000, n_list=1000, list_reps=3, n_head=400, fill_cap_s=20.0)
SIZES = {"default": DEFAULT, "quick": QUICK}
