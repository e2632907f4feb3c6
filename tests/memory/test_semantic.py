"""Semantic and hybrid memory search with the bundled all-MiniLM-L6-v2, on every backend.

The encoder is checked against vectors that sentence-transformers itself produced for the same
model (``data/minilm_reference.json``); search quality is measured on the labelled corpus and
on queries that say things in other words (``corpus.PARAPHRASES``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from multi_agent import DatabaseSessionService
from multi_agent.memory import (
    DatabaseMemoryService,
    MemoryConfigError,
    MiniLMEmbedder,
    SemanticSearchUnavailable,
)
from multi_agent.memory.embeddings import bundled_model_dir
from tests.helpers import text_event
from tests.memory.corpus import PARAPHRASES, QUERIES, recall_at
from tests.memory.test_search_quality import load_corpus

DATA = Path(__file__).parent / "data"
DOG = "My dog Rex loves chasing waves at the beach."


def test_encoder_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    """Same vectors as sentence-transformers + PyTorch (incl. truncation and non-ASCII text)."""
    ref = json.loads((DATA / "minilm_reference.json").read_text())
    expected = np.array(ref["embeddings"], dtype=np.float32)
    got = minilm.embed(ref["sentences"])
    assert got.shape == expected.shape == (len(ref["sentences"]), 384)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # Meaning, not words: the two sentences about a dog and the beach are close.
    assert float(got[0] @ got[1]) > 0.6 > float(got[0] @ got[2])


async def test_missing_or_broken_model_is_a_clear_error(
    tmp_path: Path, minilm: MiniLMEmbedder
) -> None:
    empty = MiniLMEmbedder(model_dir=tmp_path)
    with pytest.raises(SemanticSearchUnavailable, match="Cannot load the embedding model"):
        empty.embed(["x"])
    broken = tmp_path / "broken"
    shutil.copytree(bundled_model_dir(), broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1_000_000])
    with pytest.raises(SemanticSearchUnavailable, match="truncated"):
        MiniLMEmbedder(model_dir=broken).embed(["x"])
    memory = DatabaseMemoryService(f"sqlite+aiosqlite:///{tmp_path}/m.db", search="hybrid",
                                   embedder=MiniLMEmbedder(broken))
    try:
        with pytest.raises(SemanticSearchUnavailable, match="reinstall"):
            await memory.prepare()
    finally:
        await memory.close()


def test_unknown_search_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    with pytest.raises(MemoryConfigError, match="not a memory search mode"):
        DatabaseMemoryService(store, search="vector")  # type: ignore[arg-type]
    monkeypatch.setenv("MULTI_AGENT_MEMORY_SEARCH", "bogus")
    with pytest.raises(ValueError, match=r"\$MULTI_AGENT_MEMORY_SEARCH='bogus'"):
        DatabaseMemoryService(store)
    monkeypatch.setenv("MULTI_AGENT_MEMORY_SEARCH", "Hybrid")
    assert DatabaseMemoryService(store).search_mode == "hybrid"
    monkeypatch.delenv("MULTI_AGENT_MEMORY_SEARCH")
    assert DatabaseMemoryService(store).search_mode == "fulltext"


async def remember(store: DatabaseSessionService, memory: DatabaseMemoryService, app: str,
                   user: str, *texts: str) -> str:
    session = await store.create_session(app_name=app, user_id=user)
    for text in texts:
        await store.append_event(session, text_event(text, author="user"))
    await memory.add_session_to_memory(session)
    return session.id


async def test_a_paraphrase_is_found_by_meaning(
    store: DatabaseSessionService, app_name: str, minilm: MiniLMEmbedder
) -> None:
    fulltext = DatabaseMemoryService(store, search="fulltext")
    hybrid = DatabaseMemoryService(store, search="hybrid", embedder=minilm)
    sid = await remember(store, hybrid, app_name, "ann", DOG, "I bought Nvidia shares today.")
    await remember(store, hybrid, app_name, "bob", "My puppy sleeps all day.")  # another user
    query = "what did I tell you about my puppy?"
    assert (await fulltext.search_memory(app_name=app_name, user_id="ann", query=query)
            ).memories == []
    found = (await hybrid.search_memory(app_name=app_name, user_id="ann", query=query)).memories
    assert [m.content.parts[0].text for m in found] == [DOG]  # not Nvidia, not bob's puppy
    meta = found[0].custom_metadata
    assert meta["session_id"] == sid and meta["similarity"] > 0.3
    assert "fulltext_rank" not in meta  # found by meaning alone
    # A word match still counts in hybrid mode, and ranks first.
    both = (await hybrid.search_memory(app_name=app_name, user_id="ann",
                                       query="my dog")).memories
    assert both[0].content.parts[0].text == DOG
    assert both[0].custom_metadata["fulltext_rank"] == 1


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
async def test_recall_at_5_with_embeddings(
    store: DatabaseSessionService, app_name: str, backend: str, mode: str,
    minilm: MiniLMEmbedder,
) -> None:
    memory = DatabaseMemoryService(store, search=mode, embedder=minilm)
    fulltext = DatabaseMemoryService(store, search="fulltext")
    keys = await load_corpus(store, memory, app_name)
    results: dict[tuple[str, str], float] = {}
    for service in (memory, fulltext):
        for name, queries in (("labelled", QUERIES), ("paraphrases", PARAPHRASES)):
            recalls = []
            for query, relevant in queries:
                found = await service.search_memory(app_name=app_name, user_id="ann",
                                                    query=query)
                # Scoping: only ann's messages in this app, never a decoy.
                ranked = [keys[m.custom_metadata["event_id"]] for m in found.memories]
                recalls.append(recall_at(5, ranked, relevant))
            results[(service.search_mode, name)] = sum(recalls) / len(recalls)
    print(f"\n[{backend}] recall@5: " + ", ".join(
        f"{m} on {n} = {r:.3f}" for (m, n), r in results.items()))
    # Measured (all backends): fulltext 0.975 / 0.083, semantic 0.925 / 0.833,
    # hybrid 0.975 / 0.833 (labelled / paraphrases).
    assert results[("fulltext", "paraphrases")] < 0.3
    assert results[(mode, "paraphrases")] >= 0.75
    assert results[(mode, "labelled")] >= (0.95 if mode == "hybrid" else 0.85)


async def count_vectors(store: DatabaseSessionService, **where: str) -> int:
    from sqlalchemy import text

    clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
    return await store.backend.run(
        lambda conn: conn.execute(
            text(f"SELECT count(*) FROM ma_memory_vectors WHERE {clause}"), where
        ).scalar_one(),
        write=False,
    )


async def test_vectors_are_made_once_and_deleted_with_their_memory(
    store: DatabaseSessionService, app_name: str, minilm: MiniLMEmbedder
) -> None:
    memory = DatabaseMemoryService(store, search="hybrid", embedder=minilm)
    session = await store.create_session(app_name=app_name, user_id="ann")
    await store.append_event(session, text_event(DOG, author="user"))
    await memory.add_session_to_memory(session)
    await memory.add_session_to_memory(session)  # idempotent: no second vector
    assert await count_vectors(store, app_name=app_name, user_id="ann") == 1
    found = (await memory.search_memory(app_name=app_name, user_id="ann",
                                        query="puppy")).memories
    await memory.delete_memory(app_name=app_name, user_id="ann", memory_id=found[0].id)
    assert await count_vectors(store, app_name=app_name, user_id="ann") == 0
    assert (await memory.search_memory(app_name=app_name, user_id="ann",
                                       query="puppy")).memories == []


async def test_what_an_add_call_indexes_is_embedded_by_that_call(
    store: DatabaseSessionService, app_name: str, minilm: MiniLMEmbedder
) -> None:
    plain = DatabaseMemoryService(store, search="fulltext")
    await remember(store, plain, app_name, "ann", "An old note about taxes.", "Another one.")
    memory = DatabaseMemoryService(store, search="hybrid", embedder=minilm,
                                   backfill_per_search=1)
    # Three new messages: all three are embedded, plus one of the two-message backlog.
    await remember(store, memory, app_name, "ann", DOG, "Lunch was soup.", "Rain all day.")
    assert await count_vectors(store, app_name=app_name, user_id="ann") == 4
    await memory.add_events_to_memory(
        app_name=app_name, user_id="ann", session_id="elsewhere",
        events=[text_event("My cat ignores me.", author="user")],
    )
    assert await count_vectors(store, app_name=app_name, user_id="ann") == 6


async def test_memories_from_before_semantic_search_are_embedded_later(
    store: DatabaseSessionService, app_name: str, minilm: MiniLMEmbedder
) -> None:
    plain = DatabaseMemoryService(store, search="fulltext")
    await remember(store, plain, app_name, "ann", DOG, "Lunch was a tuna sandwich.")
    assert await count_vectors(store, app_name=app_name) == 0
    lazy = DatabaseMemoryService(store, search="hybrid", embedder=minilm,
                                 backfill_per_search=0)
    assert (await lazy.search_memory(app_name=app_name, user_id="ann",
                                     query="puppy")).memories == []
    assert await lazy.embed_pending(app_name=app_name, user_id="ann") == 2
    assert await lazy.embed_pending(app_name=app_name, user_id="ann") == 0
    found = (await lazy.search_memory(app_name=app_name, user_id="ann",
                                      query="puppy")).memories
    assert [m.content.parts[0].text for m in found] == [DOG]
    # Another model's vectors are kept apart: a renamed model embeds everything again.
    other = DatabaseMemoryService(store, search="semantic",
                                  embedder=MiniLMEmbedder(name="minilm-renamed"))
    assert (await other.search_memory(app_name=app_name, user_id="ann",
                                      query="puppy")).memories[0].content.parts[0].text == DOG
    assert await count_vectors(store, app_name=app_name, model="minilm-renamed") == 2
    assert await count_vectors(store, app_name=app_name) == 4


async def test_adk_memory_uri_picks_the_search_mode(tmp_path: Path, minilm: MiniLMEmbedder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``adk web --memory_service_uri 'multi-agent://?search=hybrid'`` goes through ADK's own
    service registry to a hybrid DatabaseMemoryService on the agents directory's database."""
    from google.adk.cli.service_registry import get_service_registry

    import multi_agent.services  # noqa: F401  (registers the schemes)

    monkeypatch.delenv("MULTI_AGENT_MEMORY_SEARCH", raising=False)
    registry = get_service_registry()
    hybrid = registry.create_memory_service("multi-agent://?search=hybrid",
                                            agents_dir=str(tmp_path))
    plain = registry.create_memory_service(f"multi-agent+sqlite:///{tmp_path}/other.db")
    try:
        assert isinstance(hybrid, DatabaseMemoryService) and hybrid.search_mode == "hybrid"
        assert plain.search_mode == "fulltext"
        await hybrid.add_events_to_memory(app_name="app", user_id="ann", session_id="s1",
                                          events=[text_event(DOG, author="user")])
        found = await hybrid.search_memory(app_name="app", user_id="ann", query="puppy")
        assert [m.content.parts[0].text for m in found.memories] == [DOG]
        assert (tmp_path / "multi_agent_data.db").exists()
    finally:
        await hybrid.close()
        await plain.close()
    with pytest.raises(ValueError, match="not a memory search mode"):
        registry.create_memory_service("multi-agent://?search=vectors", agents_dir=str(tmp_path))
