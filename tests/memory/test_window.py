"""The window rules and the extractive summariser, on synthetic event lists."""

from __future__ import annotations

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types

from multi_agent.memory.context import (
    BoundedContext,
    ExtractiveSummarizer,
    bounded_run_config,
    events_compaction_config,
    safe_window_start,
    trim_window,
)
from multi_agent.memory.summarizer import first_sentence
from multi_agent.memory.window import is_compaction


def human(text: str) -> Event:
    return Event(author="user", invocation_id="i",
                 content=types.Content(role="user", parts=[types.Part(text=text)]))


def say(agent: str, text: str) -> Event:
    return Event(author=agent, invocation_id="i",
                 content=types.Content(role="model", parts=[types.Part(text=text)]))


def call(agent: str, name: str, cid: str | None, **args) -> Event:
    fc = types.FunctionCall(id=cid, name=name, args=args)
    return Event(author=agent, invocation_id="i",
                 content=types.Content(role="model", parts=[types.Part(function_call=fc)]))


def result(agent: str, name: str, cid: str | None, transfer_to: str | None = None) -> Event:
    fr = types.FunctionResponse(id=cid, name=name, response={"ok": True})
    return Event(author=agent, invocation_id="i",
                 content=types.Content(role="user", parts=[types.Part(function_response=fr)]),
                 actions=EventActions(transfer_to_agent=transfer_to))


def summary(start: float, end: float) -> Event:
    return Event(author="user", invocation_id="c", actions=EventActions(compaction=EventCompaction(
        start_timestamp=start, end_timestamp=end,
        compacted_content=types.Content(role="model", parts=[types.Part(text="earlier")]))))


def transfer(frm: str, to: str, cid: str) -> list[Event]:
    return [call(frm, "transfer_to_agent", cid, agent_name=to),
            result(frm, "transfer_to_agent", cid, transfer_to=to)]


# A session cut at every possible place: the kept window must start cleanly.
SESSION = [
    human("How is Nvidia doing?"),                         # 0
    *transfer("manager", "stock_analyst", "t1"),           # 1, 2
    call("stock_analyst", "get_price", "c1"),              # 3
    result("stock_analyst", "get_price", "c1"),            # 4
    say("stock_analyst", "Nvidia is at 120. Up 3%."),      # 5
    human("And Apple?"),                                   # 6
    call("stock_analyst", "get_price", "c2"),              # 7
    call("stock_analyst", "get_news", "c3"),               # 8
    result("stock_analyst", "get_price", "c2"),            # 9
    result("stock_analyst", "get_news", "c3"),             # 10
    say("stock_analyst", "Apple is at 190."),              # 11
    human("Tell me a joke"),                               # 12
    *transfer("stock_analyst", "funny_nerd", "t2"),        # 13, 14
    say("funny_nerd", "Why do programmers prefer dark mode?"),  # 15
]


@pytest.mark.parametrize("cut", range(13))
def test_every_cut_of_a_session_starts_at_a_human_message(cut: int) -> None:
    window = SESSION[cut:]
    kept = window[safe_window_start(window):]
    first_human = next(i for i in range(cut, len(SESSION)) if SESSION[i].author == "user")
    assert kept[0] is SESSION[first_human]
    calls = {c.id for e in kept for c in e.get_function_calls()}
    assert all(r.id in calls for e in kept for r in e.get_function_responses())


def test_cuts_after_the_last_human_message() -> None:
    assert safe_window_start(SESSION[13:]) == 0   # the handoff call and its result: whole
    assert safe_window_start(SESSION[14:]) == 2   # orphan result, then words after a handoff
    assert safe_window_start(SESSION[15:]) == 0   # the handoff is not visible: cannot tell


def test_a_clean_window_is_kept_whole() -> None:
    assert safe_window_start(SESSION) == 0
    assert safe_window_start([]) == 0


def test_a_summary_is_a_clean_start() -> None:
    window = [result("a", "get_price", "c9"), summary(1, 2), say("a", "x"), human("q")]
    assert safe_window_start(window) == 1


def test_without_a_human_message_the_start_avoids_results_and_handoffs() -> None:
    # A long tool loop of one turn, cut inside: no human message in the window.
    window = [
        result("analyst", "get_price", "c1"),      # orphan: its call is outside
        call("analyst", "get_price", "c2"),        # 1: clean, but its result...
        result("analyst", "get_price", "c2"),
        *transfer("analyst", "funny_nerd", "t1"),  # 3, 4
        say("funny_nerd", "A joke."),              # 5: first words after a handoff
    ]
    assert safe_window_start(window) == 1
    assert safe_window_start(window[2:]) == 1      # starts at the transfer call, pair kept
    assert safe_window_start(window[4:]) == 2      # nothing clean: caller keeps the newest


def test_results_are_matched_by_tool_name_when_ids_are_missing() -> None:
    window = [result("a", "lookup", None), call("a", "lookup", None), result("a", "lookup", None),
              say("a", "done")]
    assert safe_window_start(window) == 1


def test_a_result_whose_call_left_the_window_blocks_every_earlier_start() -> None:
    # A long-running tool: its call is older than the window, its result came later.
    window = [human("first"), say("a", "working"), human("second"),
              result("a", "slow_job", "lr1"), say("a", "finished"), human("third")]
    assert safe_window_start(window) == 5


def test_trim_window_drops_in_place_and_keeps_the_newest() -> None:
    window = SESSION[3:]
    dropped = trim_window(window)
    assert dropped == 3 and window[0] is SESSION[6]
    lone = [result("a", "x", "gone")]
    assert trim_window(lone) == 0 and len(lone) == 1


def test_first_sentence() -> None:
    assert first_sentence("Nvidia is at 120. Up 3%.", 100) == "Nvidia is at 120."
    assert first_sentence("  line one\nline two", 100) == "line one"
    assert first_sentence("word " * 100, 30) == "word word word word word word…"
    assert len(first_sentence("x" * 500, 40)) == 40
    assert first_sentence("", 10) == ""


async def test_extractive_summary_is_bounded_and_says_who_said_what() -> None:
    summarizer = ExtractiveSummarizer(max_chars=400, max_sentence_chars=60)
    event = await summarizer.maybe_summarize_events(events=SESSION)
    assert event.author == "user" and event.content is None
    compaction = event.actions.compaction
    assert compaction.start_timestamp == SESSION[0].timestamp
    assert compaction.end_timestamp == SESSION[-1].timestamp
    text = compaction.compacted_content.parts[0].text
    assert compaction.compacted_content.role == "model"
    assert "- user: How is Nvidia doing?" in text
    assert "- stock_analyst: Nvidia is at 120." in text and "Up 3%" not in text
    assert "manager -> stock_analyst" in text and "get_price" in text and "get_news" in text
    assert len(text) <= 400
    many = [say("a", f"Message number {i} is here. More.") for i in range(200)]
    text = (await summarizer.maybe_summarize_events(events=many)).actions.compaction \
        .compacted_content.parts[0].text
    assert len(text) <= 400 and "earlier messages omitted" in text
    assert "Message number 199 is here." in text           # the newest are kept
    assert await summarizer.maybe_summarize_events(events=[]) is None
    assert await summarizer.maybe_summarize_events(events=[call("a", "t", "1")]) is None


def test_configs() -> None:
    config = bounded_run_config(window_events=30)
    assert config.get_session_config.num_recent_events == 30
    from google.adk.agents.run_config import RunConfig, StreamingMode
    copied = bounded_run_config(base=RunConfig(streaming_mode=StreamingMode.SSE))
    assert copied.streaming_mode == StreamingMode.SSE
    assert copied.get_session_config.num_recent_events == BoundedContext().window_events
    with pytest.raises(ValueError):
        bounded_run_config(window_events=1)
    compaction = events_compaction_config()
    assert isinstance(compaction.summarizer, ExtractiveSummarizer)
    assert compaction.compaction_interval == 4 and compaction.overlap_size == 1
    ctx = BoundedContext(window_events=20, compaction_interval=2, summary_chars=600)
    assert ctx.compaction_config().summarizer.max_chars == 600
    assert ctx.plugin().window_events == 20
    assert is_compaction(summary(1, 2)) and not is_compaction(human("x"))
