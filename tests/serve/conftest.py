"""Fixtures: one real ``multi-agent serve`` per backend (SQLite file, PostgreSQL) per module,
with tokens for ann, bob and a revoked carol."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from multi_agent.store.api_tokens import TokenFile
from tests.conftest import fresh_pg_database
from tests.serve._server import Server, serve


@dataclass
class Deployment:
    server: Server
    db: str
    tmp: Path
    tokens: Path
    ann: str
    bob: str
    carol: str  # revoked


def sqlite_db(tmp: Path) -> str:
    return str(tmp / "serve.db")


def pg_db() -> str:
    return asyncio.run(fresh_pg_database())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    db = sqlite_db(tmp) if request.param == "sqlite" else pg_db()
    tokens = tmp / "tokens.json"
    # the library, not the CLI (each CLI start costs seconds); the CLI has tests of its own
    ann, bob, carol = (TokenFile(tokens).add(u)[0] for u in ("ann", "bob", "carol"))
    TokenFile(tokens).revoke("carol")
    with serve(db, tmp=tmp, tokens=tokens) as server:
        yield Deployment(server, db, tmp, tokens, ann, bob, carol)
