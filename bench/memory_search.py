"""What long-memory search costs per mode as a user's memory grows (issue 7).

    python -m bench.memory_search                  # 1,000 and 10,000 memories
    python -m bench.memory_search --sizes 500 --queries 10

For each size, one user's memory on a fresh SQLite file is filled with that many distinct
messages (sentences built from a fixed vocabulary of topics, so the full-text index has real
work), added through ``add_events_to_memory`` in batches of 100 as the team does after turns.
The same messages are indexed three ways on three files: ``fulltext`` (FTS5), and ``hybrid``
(FTS5 + all-MiniLM-L6-v2 vectors, fused with RRF), whose adding time includes embedding every
message. Then the labelled queries of the tests (``tests/memory/corpus.py``, both sets) are
searched; the median and max latency per search are reported. Results go to
``bench/results/memory_search.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.adk.events.event import Event
from google.genai import types

from multi_agent.memory import DatabaseMemoryService, default_embedder

ROOT = Path(__file__).resolve().parents[1]

SUBJECTS = ["my sister", "the new laptop", "our trip to Lisbon", "the quarterly report",
            "Nvidia stock", "the garden", "my marathon training", "the dentist", "grandma's cake",
            "the jazz concert", "my bike", "the tax return", "a chess opening", "the kitchen tap"]
VERBS = ["needs", "reminds me of", "was better than", "costs more than", "is waiting for",
         "should be booked before", "keeps breaking", "made me think about"]
OBJECTS = ["the weekend", "a long walk", "next Tuesday", "two hundred euros", "the old one",
           "a cup of coffee", "my neighbour", "the winter holidays", "an early start"]


def messages(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
            f"(note {i})." for i in range(n)]


def event(text: str, i: int) -> Event:
    return Event(id=f"e{i}", invocation_id=f"i{i}", author="user", timestamp=1.7e9 + i,
                 content=types.Content(role="user", parts=[types.Part(text=text)]))


async def measure(size: int, mode: str, queries: list[str], tmp: Path) -> dict[str, float]:
    memory = DatabaseMemoryService(f"sqlite+aiosqlite:///{tmp}/{mode}-{size}.db", search=mode)
    try:
        await memory.prepare()  # loads the model once, outside the timing
        texts = messages(size)
        start = time.perf_counter()
        for at in range(0, size, 100):
            await memory.add_events_to_memory(
                app_name="bench", user_id="ann", session_id=f"s{at // 100}",
                events=[event(t, at + k) for k, t in enumerate(texts[at : at + 100])],
            )
        added = time.perf_counter() - start
        latencies = []
        for query in queries:
            t0 = time.perf_counter()
            await memory.search_memory(app_name="bench", user_id="ann", query=query)
            latencies.append((time.perf_counter() - t0) * 1000)
        return {"add_per_msg_ms": added / size * 1000, "p50": statistics.median(latencies),
                "max": max(latencies)}
    finally:
        await memory.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--queries", type=int, default=32, help="how many queries per size")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.memory.corpus import PARAPHRASES, QUERIES

    queries = [q for q, _ in QUERIES + PARAPHRASES][: args.queries]
    default_embedder()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for mode in ("fulltext", "hybrid"):
                result = await measure(size, mode, queries, Path(tmp))
                rows.append((size, mode, result))
                print(size, mode, {k: round(v, 2) for k, v in result.items()}, flush=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Memory search cost — {now}",
        "",
        f"Machine: {os.cpu_count()} CPU, Python {platform.python_version()}. One user's memory "
        f"on a fresh SQLite file; {len(queries)} queries from tests/memory/corpus.py. "
        "`hybrid` = FTS5 + all-MiniLM-L6-v2 (NumPy) vectors fused with RRF; its adding time "
        "includes embedding each message.",
        "",
        "| memories | mode | add, per message (ms) | search p50 (ms) | search max (ms) |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {size:,} | {mode} | {r['add_per_msg_ms']:.2f} | {r['p50']:.1f} | "
              f"{r['max']:.1f} |" for size, mode, r in rows]
    out = ROOT / "bench" / "results" / "memory_search.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    asyncio.run(main())
