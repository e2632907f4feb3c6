"""The offline rules model on its own: phrasings, reading ADK requests, routing, responses."""

from __future__ import annotations

from typing import Any

import pytest
from google.adk.models.llm_request import LlmRequest
from google.adk.models.registry import LLMRegistry
from google.adk.tools.transfer_to_agent_tool import TransferToAgentTool
from google.genai import types

from multi_agent.models import OfflineRulesModel
from multi_agent.models._request import read_request
from multi_agent.models.intents import classify
from multi_agent.models.offline import decide
from multi_agent.models.plans import Call, Say

PHRASINGS = [
    ("Tell me a joke about Python", "joke", {"topic": "python"}),
    ("tell me a python joke please", "joke", {"topic": "python"}),
    ("Got any jokes on databases?", "joke", {"topic": "databases"}),
    ("make me laugh", "joke", {"topic": ""}),
    ("another one", "joke", {"topic": ""}),
    ("tell me a funny joke", "joke", {"topic": ""}),
    ("what joke topics do you have?", "joke_topics", {}),
    ("I like chemistry jokes", "joke_like", {"topic": "chemistry"}),
    ("no more math jokes", "joke_forget", {"topic": "math"}),
    ("Add AAPL to my watchlist", "watchlist_add", {"tickers": ["AAPL"]}),
    ("please add msft, nvda and goog to the watch list", "watchlist_add",
     {"tickers": ["msft", "nvda", "goog"]}),
    ("watch TSLA", "watchlist_add", {"tickers": ["TSLA"]}),
    ("Remove AAPL from my watchlist", "watchlist_remove", {"tickers": ["AAPL"]}),
    ("stop tracking nvda", "watchlist_remove", {"tickers": ["nvda"]}),
    ("show my watchlist", "watchlist_show", {}),
    ("what's on my watch list?", "watchlist_show", {}),
    ("prices for my watchlist", "watchlist_prices", {}),
    ("What is the price of AAPL?", "price", {"ticker": "AAPL"}),
    ("how is tsla doing", "price", {"ticker": "tsla"}),
    ("$NVDA?", "price", {"ticker": "NVDA"}),
    ("stock price", "price", {"ticker": None}),
    ("What did we talk about?", "history_summary", {}),
    ("summarise our conversation", "history_summary", {}),
    ("What did I ask about stocks last week?", "history_search", {"query": "stocks", "days": 7}),
    ("did we talk about python yesterday?", "history_search", {"query": "python", "days": 2}),
    ("how many sessions have we had?", "list_sessions", {}),
    ("My name is Arvind Mehta", "set_name", {"name": "Arvind Mehta"}),
    ("what's my name?", "get_name", {}),
    ("set my favourite agent to the historian", "favorite_agent", {"agent": "historian"}),
    ("show my stats", "stats", {}),
    ("what do you know about me?", "profile", {}),
    ("I'm into quantum physics", "nerd_topic", {"topic": "quantum physics"}),
    ("help", "help", {}),
    ("are you an LLM?", "help", {}),
    ("hello there", "greeting", {}),
    ("thanks!", "thanks", {}),
]


@pytest.mark.parametrize(("text", "intent", "args"), PHRASINGS)
def test_phrasings(text: str, intent: str, args: dict[str, Any]) -> None:
    match = classify(text)
    assert match is not None and match.intent.name == intent
    assert match.args == args


@pytest.mark.parametrize("text", ["blorp", "the weather in Paris", "42", ""])
def test_unknown_phrasings(text: str) -> None:
    assert classify(text) is None


# -- reading requests ---------------------------------------------------------------------------

RELAY = (
    "For context: below is a transcript of what another agent did, quoted between "
    "<<<BEGIN_QUOTED_AGENT_CONTENT>>> and <<<END_QUOTED_AGENT_CONTENT>>>."
)


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def relay(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=RELAY), types.Part(text=text)])


def call(name: str, args: dict[str, Any], cid: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(
        function_call=types.FunctionCall(id=cid, name=name, args=args))])


def response(name: str, result: dict[str, Any], cid: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(
        function_response=types.FunctionResponse(id=cid, name=name, response=result))])


def request(agent: str, contents: list[types.Content], tools: list[str],
            targets: list[str] | None = None, parent: str | None = None) -> LlmRequest:
    instruction = f'You are an agent. Your internal name is "{agent}".'
    if parent:
        instruction += f"\nIf neither ... transfer to your parent agent {parent}.\n"
    req = LlmRequest(
        model="offline-rules", contents=contents,
        config=types.GenerateContentConfig(system_instruction=instruction),
    )
    req.tools_dict = {name: object() for name in tools}  # type: ignore[misc]
    if targets:
        tool = TransferToAgentTool(agent_names=targets)
        req.tools_dict["transfer_to_agent"] = tool
        req.config.tools = [types.Tool(function_declarations=[tool._get_declaration()])]
    return req


def test_the_humans_message_is_found_behind_relayed_agent_events() -> None:
    contents = [
        user("Tell me a joke about Python"),
        relay("[manager] called tool `transfer_to_agent` with parameters: {'agent_name': 'x'}"),
        relay("[manager] `transfer_to_agent` tool returned result: None"),
        call("tell_joke", {"topic": "python"}, "c1"),
        response("tell_joke", {"status": "ok", "topic": "python"}, "c1"),
    ]
    view = read_request(request("funny_nerd", contents, ["tell_joke"], ["manager"], "manager"))
    assert view.agent_name == "funny_nerd" and view.parent == "manager"
    assert view.human_text == "Tell me a joke about Python"
    assert [(s.name, s.result) for s in view.steps] == [
        ("tell_joke", {"status": "ok", "topic": "python"})
    ]
    assert view.transfer_targets == ("manager",) and view.transfers_this_turn == 1


def test_steps_of_earlier_turns_are_not_this_turns() -> None:
    contents = [
        user("Add AAPL to my watchlist"),
        call("add_to_stock_watchlist", {"ticker": "AAPL"}, "c1"),
        response("add_to_stock_watchlist", {"status": "ok"}, "c1"),
        types.Content(role="model", parts=[types.Part(text="Added AAPL.")]),
        user("show my watchlist"),
    ]
    view = read_request(request("stock_analyst", contents, ["get_stock_watchlist"]))
    assert view.human_text == "show my watchlist" and view.steps == []


# -- routing ------------------------------------------------------------------------------------

MANAGER_TOOLS = ["track_agent_delegation", "get_user_profile", "set_user_name"]
TEAM = ["funny_nerd", "historian", "stock_analyst"]


def test_manager_records_the_delegation_then_transfers() -> None:
    first = decide(read_request(request("manager", [user("Tell me a joke about Python")],
                                        MANAGER_TOOLS, TEAM)))
    assert first == Call("track_agent_delegation",
                         {"agent_name": "funny_nerd", "task": "Tell me a joke about Python"})
    contents = [user("Tell me a joke about Python"),
                call("track_agent_delegation", first.args, "c1"),
                response("track_agent_delegation", {"status": "ok"}, "c1")]
    second = decide(read_request(request("manager", contents, MANAGER_TOOLS, TEAM)))
    assert second == Call("transfer_to_agent", {"agent_name": "funny_nerd"})


def test_manager_handles_its_own_intents_and_admits_not_understanding() -> None:
    action = decide(read_request(request("manager", [user("my name is Ada")], MANAGER_TOOLS,
                                         TEAM)))
    assert action == Call("set_user_name", {"name": "Ada"})
    action = decide(read_request(request("manager", [user("blorp")], MANAGER_TOOLS, TEAM)))
    assert isinstance(action, Say)
    assert "didn't understand 'blorp'" in action.text and "not an LLM" in action.text


def test_sub_agent_hands_foreign_requests_back_or_explains() -> None:
    to_parent = decide(read_request(request("funny_nerd", [user("Add AAPL to my watchlist")],
                                            ["tell_joke"], ["manager"], "manager")))
    assert to_parent == Call("transfer_to_agent", {"agent_name": "manager"})
    alone = decide(read_request(request("funny_nerd", [user("Add AAPL to my watchlist")],
                                        ["tell_joke"])))
    assert isinstance(alone, Say) and "stock_analyst" in alone.text


def test_routing_loops_are_cut_off() -> None:
    hops = [relay("[x] called tool `transfer_to_agent` with parameters: {}") for _ in range(4)]
    action = decide(read_request(request("manager", [user("tell me a joke"), *hops],
                                         MANAGER_TOOLS, TEAM)))
    assert isinstance(action, Say) and "couldn't work out" in action.text


def test_no_human_message() -> None:
    action = decide(read_request(request("manager", [], MANAGER_TOOLS, TEAM)))
    assert isinstance(action, Say) and "didn't receive" in action.text


# -- the model ----------------------------------------------------------------------------------


async def test_model_emits_function_calls_and_text_with_usage() -> None:
    model = OfflineRulesModel()
    req = request("manager", [user("tell me a joke about math")], MANAGER_TOOLS, TEAM)
    [out] = [r async for r in model.generate_content_async(req)]
    fc = out.content.parts[0].function_call
    assert fc.name == "track_agent_delegation" and fc.args["agent_name"] == "funny_nerd"
    usage = out.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    req = request("manager", [user("help")], MANAGER_TOOLS, TEAM)
    [out] = [r async for r in model.generate_content_async(req)]
    assert "offline rules model" in out.content.parts[0].text
    assert out.partial is False


def test_registered_in_adks_registry() -> None:
    assert isinstance(LLMRegistry.new_llm("offline-rules"), OfflineRulesModel)
    assert LLMRegistry.new_llm("offline-v2").model == "offline-v2"
    assert OfflineRulesModel().capabilities.output_schema_and_tools is False
