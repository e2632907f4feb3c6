"""Search quality on a small labelled set (tests/memory/corpus.py): recall@5, on every backend."""

from __future__ import annotations

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import text_event
from tests.memory.corpus import DECOYS, QUERIES, SESSIONS, recall_at

RECALL_FLOOR = 0.8


async def load_corpus(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> dict[str, str]:
    """Stores the corpus as sessions of user ``ann`` (+ decoys); returns event id -> key."""
    keys: dict[str, str] = {}
    ts = 1_700_000_000.0
    for topic, messages in SESSIONS.items():
        session = await store.create_session(app_name=app_name, user_id="ann")
        for key, text in messages:
            ts += 60
            event = text_event(text, author="user" if key[0] == "u" else "manager", timestamp=ts)
            await store.append_event(session, event)
            keys[event.id] = f"{topic}.{key}"
        await memory.add_session_to_memory(session)
    for user, app in (("bob", app_name), ("ann", app_name + "_other")):
        session = await store.create_session(app_name=app, user_id=user)
        for text in DECOYS:
            ts += 60
            await store.append_event(session, text_event(text, author="user", timestamp=ts))
        await memory.add_session_to_memory(session)
    return keys


async def test_recall_at_5(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str, backend: str
) -> None:
    keys = await load_corpus(store, memory, app_name)
    recalls, misses = [], []
    for query, relevant in QUERIES:
        found = await memory.search_memory(app_name=app_name, user_id="ann", query=query)
        ranked = []
        for entry in found.memories:
            # Scoping: every result is one of ann's messages in this app, never a decoy.
            assert entry.custom_metadata["event_id"] in keys, (query, entry)
            ranked.append(keys[entry.custom_metadata["event_id"]])
        recall = recall_at(5, ranked, relevant)
        recalls.append(recall)
        if recall < 1:
            misses.append((query, sorted(relevant - set(ranked[:5])), ranked[:5]))
    mean = sum(recalls) / len(recalls)
    hits = sum(1 for r in recalls if r > 0) / len(recalls)
    print(
        f"\n[{backend}] memory search over {len(QUERIES)} labelled queries: "
        f"recall@5 = {mean:.3f}, queries with a relevant hit in the top 5 = {hits:.2f}"
    )
    for miss in misses:
        print("  partial:", miss)
    assert mean >= RECALL_FLOOR
    assert hits == 1.0
