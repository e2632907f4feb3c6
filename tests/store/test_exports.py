"""The public surface: every name in a module's ``__all__`` is importable from it, and the names
other code imports from the store and the memory stay where they were."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import multi_agent.memory
import multi_agent.store

MODULES = sorted(
    {m.name for pkg in (multi_agent.store, multi_agent.memory)
     for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")}
    | {"multi_agent.store", "multi_agent.memory", "multi_agent.defaults"}
)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_importable(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


# Imported from outside the store/memory packages (the team, the CLI, the server, the tests);
# moving one must leave the old name importable.
KEPT = {
    "multi_agent.store": ["DEFAULT_DB_URL", "DatabaseSessionService", "RunTreePlugin",
                          "StateUpdates"],
    "multi_agent.store.backend": ["Backend", "SQLITE_WAL_LIMIT_BYTES", "open_backend"],
    "multi_agent.store.ops": ["append_event", "gc_paused", "_record_run"],
    "multi_agent.store.facts": ["MESSAGE_TYPES", "event_facts"],
    "multi_agent.store.service": ["check_id"],
    "multi_agent.memory.recent": ["recent_events", "MAX_RECENT", "MessageType"],
    "multi_agent.memory.tables": ["forget_session", "scope_token", "MAX_TEXT_CHARS"],
    "multi_agent.memory.context": ["DEFAULT_WINDOW_EVENTS", "BoundedContext",
                                   "RememberTurnsPlugin"],
    "multi_agent.memory.window": ["TRANSFER_TOOL", "is_compaction"],
}


@pytest.mark.parametrize("module", sorted(KEPT))
def test_names_other_code_imports_stay(module: str) -> None:
    found = importlib.import_module(module)
    assert [n for n in KEPT[module] if not hasattr(found, n)] == []
