"""What one turn of the agent team costs as a session's history grows (issue 7).

    python -m bench.turn_cost            # 10, 1,000 and 10,000 prior events; 5 turns each
    python -m bench.turn_cost --quick    # same sizes, 3 turns each, writes turn_cost_quick.md
    python -m bench.turn_cost --priors 10,100000 --turns 3

For each number of prior events, a session on a fresh SQLite file is filled with synthetic
delegated turns through the store's ``append_event`` (the person's message, the manager's
``transfer_to_agent`` call and its result, the sub-agent's reply: 4 events a turn), then real
turns run through ADK's Runner with the offline model, built two ways:

* **bounded**: ``build_runner()`` as shipped: loads a window of 60 events, compacts older
  turns into an extractive summary, long memory on;
* **ADK default**: ``build_runner(window=None)``: ADK's default ``RunConfig`` loads the whole
  session on every turn (memory on as well, so only the context differs).

Each row reports the events the Runner loaded for the turn, the model calls, the approximate
tokens sent to the model (the offline model's estimate, ~4 characters a token, of every
request's instruction and contents: the turn's total and its largest request), and the turn's
wall time (median of the measured turns; the first turn on each session is a warm-up, reported
apart: it also indexes the prior messages into long memory once). Results go to
``bench/results/turn_cost.md`` (``turn_cost_quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

RESULTS = Path(__file__).resolve().parent / "results"
PRIORS = (10, 1_000, 10_000)
USER = "bench_user"
TURN_MESSAGES = ("tell me a math joke", "add NVDA to my watchlist")
TARGET_RATIO = 2.0
_TOPICS = ("Nvidia earnings", "a trip to Kyoto", "prime numbers", "the watch list", "Python",
           "a risotto recipe", "black holes", "index funds")


@dataclass(slots=True)
class Row:
    """One measured configuration."""

    prior: int
    context: str
    loaded: int
    model_calls: int
    tokens_turn: int
    tokens_max_request: int
    median_ms: float
    warmup_ms: float


def synthetic_turn(n: int, timestamp: float) -> list[Event]:
    """The 4 events of one delegated turn, as the team stores them."""
    inv = f"e-prior-{n:06d}"
    topic = _TOPICS[n % len(_TOPICS)]
    call_id = f"call-{n:06d}"
    return [
        Event(invocation_id=inv, author="user", timestamp=timestamp,
              content=types.Content(role="user", parts=[types.Part(
                  text=f"Question {n}: tell me something about {topic}, please.")])),
        Event(invocation_id=inv, author="manager", timestamp=timestamp + 0.1,
              content=types.Content(role="model", parts=[types.Part(
                  function_call=types.FunctionCall(id=call_id, name="transfer_to_agent",
                                                   args={"agent_name": "funny_nerd"}))])),
        Event(invocation_id=inv, author="manager", timestamp=timestamp + 0.2,
              actions=EventActions(transfer_to_agent="funny_nerd"),
              content=types.Content(role="user", parts=[types.Part(
                  function_response=types.FunctionResponse(
                      id=call_id, name="transfer_to_agent", response={"result": None}))])),
        Event(invocation_id=inv, author="funny_nerd", timestamp=timestamp + 0.3,
              content=types.Content(role="model", parts=[types.Part(
                  text=f"Answer {n}: here is a nerdy thought about {topic}. It is the "
                       "kind of thing a curious person asks about on a quiet evening.")])),
    ]


async def fill(runner: Any, prior: int) -> str:
    """A new session with ``prior`` synthetic events (whole turns, then single messages)."""
    from multi_agent.team.app import get_or_create_session

    service = runner.session_service
    session = await get_or_create_session(service, user_id=USER)
    start = time.time() - prior - 3600.0
    events: list[Event] = []
    n = 0
    while len(events) < prior:
        events.extend(synthetic_turn(n, start + len(events)))
        n += 1
    for event in events[:prior]:
        await service.append_event(session, event)
    session.events.clear()  # the Runner loads its own copy; do not hold 10,000 events here
    return session.id


async def one_turn(runner: Any, session_id: str, text: str) -> tuple[float, list[Event]]:
    from multi_agent.team.app import user_message

    events: list[Event] = []
    started = time.perf_counter()
    async for event in runner.run_async(user_id=USER, session_id=session_id,
                                        new_message=user_message(text)):
        events.append(event)
    return time.perf_counter() - started, events


async def measure(db_dir: Path, prior: int, context: str, turns: int) -> Row:
    from multi_agent.team.app import build_runner

    url = f"sqlite+aiosqlite:///{db_dir / f'turn_cost_{prior}_{context.split()[0]}.db'}"
    window: dict[str, Any] = {} if context == "bounded" else {"window": None}
    runner = build_runner(db_url=url, model="offline-rules", **window)
    try:
        session_id = await fill(runner, prior)
        loads: list[int] = []
        service = runner.session_service
        original = service.get_session

        async def recording(**kwargs: Any) -> Any:
            session = await original(**kwargs)
            if session is not None:
                loads.append(len(session.events))
            return session

        service.get_session = recording  # type: ignore[method-assign]
        warmup, _ = await one_turn(runner, session_id, TURN_MESSAGES[1])
        times: list[float] = []
        loaded: list[int] = []
        calls: list[int] = []
        tokens: list[int] = []
        largest: list[int] = []
        for i in range(turns):
            loads.clear()
            elapsed, events = await one_turn(runner, session_id, TURN_MESSAGES[i % 2])
            prompts = [e.usage_metadata.prompt_token_count or 0 for e in events
                       if e.usage_metadata is not None]
            times.append(elapsed)
            loaded.append(loads[0] if loads else 0)
            calls.append(len(prompts))
            tokens.append(sum(prompts))
            largest.append(max(prompts, default=0))
    finally:
        await runner.close()
    return Row(
        prior=prior, context=context, loaded=max(loaded), model_calls=max(calls),
        tokens_turn=max(tokens), tokens_max_request=max(largest),
        median_ms=statistics.median(times) * 1000, warmup_ms=warmup * 1000,
    )


def table(rows: list[Row]) -> str:
    base = {r.context: r.median_ms for r in rows if r.prior == min(x.prior for x in rows)}
    lines = [
        "| prior events | context | events loaded | model calls | ~tokens sent (turn) "
        "| ~tokens, largest request | turn time (median) | vs fewest prior | first turn |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r.median_ms / base[r.context] if base.get(r.context) else float("nan")
        lines.append(
            f"| {r.prior:,} | {r.context} | {r.loaded:,} | {r.model_calls} | "
            f"{r.tokens_turn:,} | {r.tokens_max_request:,} | {r.median_ms:,.0f} ms | "
            f"{ratio:.2f}x | {r.warmup_ms:,.0f} ms |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row]) -> str:
    bounded = sorted((r for r in rows if r.context == "bounded"), key=lambda r: r.prior)
    if len(bounded) < 2:
        return ""
    low, high = bounded[0], bounded[-1]
    ratio = high.median_ms / low.median_ms
    ok = "met" if ratio <= TARGET_RATIO else "NOT met"
    return (
        f"Target (issue 7): a turn at {high.prior:,} prior events within {TARGET_RATIO:g}x of a "
        f"turn at {low.prior:,}: bounded {ratio:.2f}x: **{ok}**."
    )


async def run(priors: tuple[int, ...], turns: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="turn_cost_") as tmp:
        for prior in priors:
            for context in ("bounded", "ADK default"):
                row = await measure(Path(tmp), prior, context, turns)
                print(f"  {prior:>7,} prior | {context:<11} | loaded {row.loaded:>6,} | "
                      f"~{row.tokens_turn:>9,} tokens | {row.median_ms:8.1f} ms", flush=True)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 measured turns per row")
    parser.add_argument("--priors", help="comma-separated prior event counts (default "
                        + ",".join(str(p) for p in PRIORS) + ")")
    parser.add_argument("--turns", type=int, help="measured turns per row (default 5, quick 3)")
    parser.add_argument("--out", type=Path, help="where to write the markdown report")
    args = parser.parse_args(argv)
    priors = tuple(int(x) for x in args.priors.split(",")) if args.priors else PRIORS
    turns = args.turns or (3 if args.quick else 5)
    out = args.out or RESULTS / ("turn_cost_quick.md" if args.quick else "turn_cost.md")
    os.environ.setdefault("MULTI_AGENT_MODEL", "offline-rules")
    print(f"turn cost: priors {priors}, {turns} measured turns each (SQLite file)", flush=True)
    started = time.perf_counter()
    rows = asyncio.run(run(priors, turns))
    report = "\n".join([
        "# Turn cost as the history grows",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; SQLite file; "
        f"offline model; {turns} measured turns per row after one warm-up turn "
        f"(`python -m bench.turn_cost{' --quick' if args.quick else ''}`, "
        f"{time.perf_counter() - started:.0f} s).",
        "",
        "*bounded* = `build_runner()` (window of 60 events + extractive compaction summary + "
        "long memory); *ADK default* = `build_runner(window=None)`: ADK's default RunConfig "
        "loads every event of the session on each turn. Prior events are synthetic delegated "
        "turns (person, transfer call, transfer result, sub-agent reply). Tokens are the "
        "offline model's estimate (~4 characters a token) of each request's instruction and "
        "contents. *first turn* is the warm-up, which also indexes the prior messages into "
        "long memory once.",
        "",
        table(rows),
        "",
        verdict(rows),
        "",
    ])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print()
    print(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
