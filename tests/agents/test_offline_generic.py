"""The offline model in a user's own agents (issue 13): registered by ``import multi_agent``,
answering from the tools the agent has, through ADK's real Runner.

The end-to-end tests run in a fresh Python process where only ``import multi_agent`` happened
(besides ADK itself), so they prove that the import registers ``offline-rules``, and cheaply.
They run on ADK's ``InMemorySessionService`` and on ``multi_agent.DatabaseSessionService``
(a SQLite file, and PostgreSQL when configured).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.adk.models.llm_request import LlmRequest
from google.adk.tools.function_tool import FunctionTool
from google.adk.tools.transfer_to_agent_tool import TransferToAgentTool
from google.genai import types

from multi_agent.models._request import Param, Step, ToolSpec, read_request
from multi_agent.models.generic import describe_result, fill_args, rank_tools
from multi_agent.models.offline import decide, is_team_agent
from multi_agent.models.plans import Call, Say

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: argv[1] is "memory" or a database URL. Prints one JSON object.
SCRIPT = r'''
import asyncio, json, sys

import multi_agent

loaded = sorted(m for m in ("multi_agent.models.offline", "multi_agent.team.app", "manager",
                            "subagents", "state_tools") if m in sys.modules)

from google.adk.agents import LlmAgent
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

CALLS = []


def get_weather(city: str) -> dict:
    """Returns the current weather report for a city."""
    CALLS.append(("get_weather", city))
    return {"status": "success", "report": f"It is sunny and 21 degrees in {city}."}


def get_time(city: str) -> dict:
    """Returns the current local time in a city."""
    CALLS.append(("get_time", city))
    return {"status": "success", "time": "14:05", "timezone": "CET"}


AGENTS = {
    "one_tool": lambda: LlmAgent(name="helper", model="offline-rules", tools=[get_weather]),
    "two_tools": lambda: LlmAgent(name="helper", model="offline-rules",
                                  tools=[get_weather, get_time]),
}
TURNS = [
    ("one_tool", "what's the weather in Paris?"),
    ("two_tools", "what time is it in Tokyo?"),
    ("two_tools", "how is the weather in Rome today?"),
    ("one_tool", "tell me a joke"),
]


async def main(where):
    service = InMemorySessionService() if where == "memory" else (
        multi_agent.DatabaseSessionService(where))
    out = {"loaded_at_import": loaded, "turns": []}
    for key, text in TURNS:
        agent = AGENTS[key]()
        runner = Runner(app_name="demo", agent=agent, session_service=service)
        session = await service.create_session(app_name="demo", user_id="ann")
        CALLS.clear()
        calls, replies = [], []
        async for event in runner.run_async(
            user_id="ann", session_id=session.id,
            new_message=types.Content(role="user", parts=[types.Part(text=text)]),
        ):
            for part in (event.content.parts if event.content else None) or []:
                if part.function_call:
                    calls.append([part.function_call.name, dict(part.function_call.args)])
                if part.text:
                    replies.append(part.text)
        stored = await service.get_session(app_name="demo", user_id="ann", session_id=session.id)
        stored_calls = [
            [p.function_call.name, dict(p.function_call.args)]
            for e in stored.events for p in (e.content.parts if e.content else None) or []
            if p.function_call
        ]
        out["turns"].append({"agent": key, "text": text, "calls": calls, "ran": CALLS[:],
                             "replies": replies, "stored_calls": stored_calls,
                             "stored_events": len(stored.events)})
        await runner.close()
    if hasattr(service, "close"):
        await service.close()
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
'''


def _fresh_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_MODEL"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180,
        cwd=cwd or ROOT, env=env,
    )


def _run_script(where: str) -> dict[str, Any]:
    done = _fresh_python(SCRIPT, where)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_turns(out: dict[str, Any]) -> None:
    # ``import multi_agent`` registered the model without loading it or any agent
    assert out["loaded_at_import"] == []
    weather, time, rome, joke = out["turns"]

    # one tool: called with the city from the message; the reply carries its result
    assert weather["calls"] == [["get_weather", {"city": "Paris"}]]
    assert weather["ran"] == [["get_weather", "Paris"]]
    assert weather["replies"] == [
        'get_weather(city="Paris") returned: It is sunny and 21 degrees in Paris.'
    ]
    assert weather["stored_calls"] == weather["calls"]  # the call is in the stored session
    assert weather["stored_events"] == 4  # message, call, result, answer

    # two tools: the right one each time
    assert time["calls"] == [["get_time", {"city": "Tokyo"}]]
    assert time["ran"] == [["get_time", "Tokyo"]]
    assert "14:05" in time["replies"][-1] and "CET" in time["replies"][-1]
    assert rome["calls"] == [["get_weather", {"city": "Rome"}]]
    assert "sunny and 21 degrees in Rome" in rome["replies"][-1]

    # nothing matches: no tool called; it says it is rules, not an LLM, and what it can do
    assert joke["calls"] == [] and joke["ran"] == []
    [reply] = joke["replies"]
    assert "didn't understand 'tell me a joke'" in reply
    assert "offline rules model" in reply and "not an LLM" in reply
    assert "get_weather(city): Returns the current weather report for a city." in reply
    # ... and none of the team's examples
    assert "watchlist" not in reply and "AAPL" not in reply and "joke about python" not in reply


def test_own_agent_in_a_fresh_process_in_memory_sessions() -> None:
    _check_turns(_run_script("memory"))


def test_own_agent_in_a_fresh_process_on_the_database_store(team_db: str) -> None:
    _check_turns(_run_script(team_db))


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = "\n## The offline model in your own agents\n"
    assert head in text, "README section missing"
    section = text.split(head, 1)[1].split("\n## ", 1)[0]
    # it sits right after "Using a real LLM"
    before = text.split(head, 1)[0]
    assert re.findall(r"^## (.+)$", before, re.MULTILINE)[-1] == "Using a real LLM"
    return section


def test_readme_section_code_runs(tmp_path: Path) -> None:
    section = _readme_section()
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    expected = re.search(r"```text\n(.*?)```", section, re.DOTALL).group(1)
    done = _fresh_python(code, cwd=tmp_path)  # not the repository: the installed package
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == expected.splitlines()[0]
    # the README's shortened lines ("...") are prefixes of what is printed
    for want in expected.splitlines()[1:]:
        prefix = want.split("...")[0].rstrip()
        assert any(line.startswith(prefix) for line in lines), (want, lines)


# -- the decisions, on requests built by hand -------------------------------------------------


def get_weather(city: str) -> dict:
    """Returns the current weather report for a city."""
    return {"status": "success", "report": f"Sunny in {city}."}


def get_time(city: str) -> dict:
    """Returns the current local time in a city."""
    return {"time": "14:05"}


def add_note(text: str) -> dict:
    """Saves a note."""
    return {"saved": text}


def list_notes() -> list:
    """Lists the saved notes."""
    return []


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict:
    """Converts an amount of money from one currency to another."""
    return {}


def translate(text: str, target_language: str) -> str:
    """Translates text into another language."""
    return text


def set_units(system: str, city: str = "") -> dict:
    """Sets the unit system of the reports.

    Args:
        system: "metric" or "imperial".
        city: only for this city.
    """
    return {}


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def request(agent: str, text: str | list[types.Content], tools: list[Any],
            targets: dict[str, str] | None = None, parent: str | None = None) -> LlmRequest:
    """A request as ADK builds it for ``agent`` with real FunctionTools and their declarations."""
    instruction = f'You are an agent. Your internal name is "{agent}".'
    decls = []
    req = LlmRequest(model="offline-rules", contents=[user(text)] if isinstance(text, str)
                     else text, config=types.GenerateContentConfig())
    for fn in tools:
        tool = FunctionTool(fn)
        req.tools_dict[tool.name] = tool
        decls.append(tool._get_declaration())
    if targets:
        instruction += "\nYou have a list of other agents to transfer to:\n\n" + "\n".join(
            f"\nAgent name: {n}\nAgent description: {d}\n" for n, d in targets.items()
        )
        if parent:
            instruction += f"\nIf neither ... transfer to your parent agent {parent}.\n"
        tool = TransferToAgentTool(agent_names=list(targets))
        req.tools_dict["transfer_to_agent"] = tool
        decls.insert(0, tool._get_declaration())
    req.config.system_instruction = instruction
    req.config.tools = [types.Tool(function_declarations=decls)] if decls else None
    return req


def act(*args: Any, **kwargs: Any) -> Call | Say:
    return decide(read_request(request(*args, **kwargs)))


def test_declarations_are_read_from_the_request() -> None:
    view = read_request(request("helper", "hi", [convert_currency, set_units]))
    convert, units = view.declarations
    assert convert.name == "convert_currency" and "currency" in convert.description
    assert [(p.name, p.type, p.required) for p in convert.params] == [
        ("amount", "number", True), ("from_currency", "string", True),
        ("to_currency", "string", True),
    ]
    assert [(p.name, p.required) for p in units.params] == [("system", True), ("city", False)]


def test_the_teams_agents_are_told_apart_from_a_users() -> None:
    team = read_request(request("manager", "hi", []))
    team.tools = frozenset({"track_agent_delegation", "set_user_name"})
    assert is_team_agent(team)
    alone = read_request(request("funny_nerd", "hi", []))
    alone.tools = frozenset({"tell_joke", "list_joke_topics", "load_memory"})
    assert is_team_agent(alone)
    assert not is_team_agent(read_request(request("helper", "hi", [get_weather])))
    # a user's agent called "manager" is still a user's agent
    assert not is_team_agent(read_request(request("manager", "hi", [get_weather])))
    assert not is_team_agent(read_request(request("helper", "hi", [])))


@pytest.mark.parametrize(("text", "tool", "args"), [
    ("what's the weather in Paris?", "get_weather", {"city": "Paris"}),
    ("weather in New York please", "get_weather", {"city": "New York"}),
    ("Berlin weather?", "get_weather", {"city": "Berlin"}),
    ("weather lisbon", "get_weather", {"city": "lisbon"}),
    ("get_weather city=Oslo", "get_weather", {"city": "Oslo"}),
    ('weather for city: "Rio de Janeiro"', "get_weather", {"city": "Rio de Janeiro"}),
    ("hi, what time is it in Tokyo?", "get_time", {"city": "Tokyo"}),
])
def test_the_matching_tool_is_called_with_arguments_from_the_message(
    text: str, tool: str, args: dict[str, Any]
) -> None:
    assert act("helper", text, [get_weather, get_time]) == Call(tool, args)


@pytest.mark.parametrize(("text", "tool", "args"), [
    ("add a note: buy milk", "add_note", {"text": "buy milk"}),
    ("show my notes", "list_notes", {}),
    ("convert 10 usd to eur", "convert_currency",
     {"amount": 10, "from_currency": "usd", "to_currency": "eur"}),
    ("convert 2.5 from GBP to JPY", "convert_currency",
     {"amount": 2.5, "from_currency": "GBP", "to_currency": "JPY"}),
    ("translate good morning to French", "translate",
     {"text": "good morning", "target_language": "French"}),
    ("translate 'see you' into German", "translate",
     {"text": "see you", "target_language": "German"}),
])
def test_arguments_of_several_kinds(text: str, tool: str, args: dict[str, Any]) -> None:
    assert act("notes", text, [add_note, list_notes, convert_currency, translate]) == Call(
        tool, args
    )


def test_a_missing_required_argument_is_asked_for_not_guessed() -> None:
    action = act("helper", "what's the weather like?", [get_weather])
    assert isinstance(action, Say)
    assert "To use get_weather I need city" in action.text and "not an LLM" in action.text


def test_enum_values_and_optional_parameters() -> None:
    tool = ToolSpec("set_units", "Sets units.", (
        Param("system", enum=("metric", "imperial"), required=True),
        Param("city"),
    ))
    assert fill_args(tool, "use imperial units") == ({"system": "imperial"}, [])
    assert fill_args(tool, "set units to metric for city=Rome") == (
        {"system": "metric", "city": "Rome"}, []
    )
    args, missing = fill_args(tool, "set the units please")
    assert args == {} and [p.name for p in missing] == ["system"]


def test_optional_parameters_keep_their_defaults_unless_named() -> None:
    tool = ToolSpec("get_weather", "Weather for a city.", (
        Param("city", required=True), Param("unit"),
    ))
    assert fill_args(tool, "weather in Paris for my trip") == ({"city": "Paris"}, [])
    assert fill_args(tool, "weather in Paris unit=fahrenheit") == (
        {"city": "Paris", "unit": "fahrenheit"}, []
    )


def test_ranking_prefers_the_tool_the_words_name() -> None:
    tools = read_request(request("h", "x", [add_note, list_notes])).declarations
    assert [r.name for r in rank_tools(tools, "delete everything")] == []
    assert rank_tools(tools, "save a note")[0].name == "add_note"
    assert rank_tools(tools, "list notes")[0].name == "list_notes"


def test_the_answer_is_the_tool_result_said_plainly() -> None:
    contents = [
        user("what's the weather in Paris?"),
        types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
            id="c1", name="get_weather", args={"city": "Paris"}))]),
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id="c1", name="get_weather", response={"status": "success", "report": "Sunny."}))]),
    ]
    assert act("helper", contents, [get_weather]) == Say(
        'get_weather(city="Paris") returned: Sunny.'
    )


@pytest.mark.parametrize(("result", "text"), [
    ({"result": "42"}, 'f(x=1) returned: 42'),
    ({"result": None}, "f(x=1) returned nothing."),
    ({}, "f(x=1) returned nothing."),
    ({"status": "error", "error_message": "No such city."}, "f(x=1) failed: No such city."),
    ({"error": "timeout"}, "f(x=1) failed: timeout"),
    ({"temperature": 21}, "f(x=1) returned: temperature: 21"),
    ({"items": ["a", "b"]}, "f(x=1) returned: items: a, b"),
    ({"time": "14:05", "zone": "CET"}, "f(x=1) returned:\n  - time: 14:05\n  - zone: CET"),
])
def test_results_are_described_without_invention(result: dict[str, Any], text: str) -> None:
    assert describe_result(Step("f", {"x": 1}, result)) == text


def test_greeting_help_and_thanks() -> None:
    for text in ["hi", "hello there!", "help", "what can you do?", "are you an LLM?"]:
        action = act("helper", text, [get_weather])
        assert isinstance(action, Say) and action.text.startswith("I'm helper.")
        assert "not an LLM" in action.text and "get_weather(city)" in action.text
    assert act("helper", "thanks!", [get_weather]) == Say("You're welcome.")


def test_no_tools_at_all() -> None:
    action = act("helper", "what's the weather in Paris?", [])
    assert isinstance(action, Say) and "not an LLM" in action.text
    assert "I have no tools" in action.text


def test_transfers_to_a_matching_sub_agent_and_back_to_the_parent() -> None:
    targets = {"weather_agent": "Answers questions about the weather."}
    assert act("root", "what's the weather in Oslo?", [get_time], targets) == Call(
        "transfer_to_agent", {"agent_name": "weather_agent"}
    )
    assert act("root", "what time is it in Oslo?", [get_time], targets) == Call(
        "get_time", {"city": "Oslo"}
    )
    # a sub-agent that can't help hands the message back to its parent once
    back = {"root": "Routes requests."}
    assert act("weather_agent", "what time is it?", [get_weather], back, parent="root") == Call(
        "transfer_to_agent", {"agent_name": "root"}
    )


def test_one_description_word_is_not_enough_to_call_a_tool() -> None:
    action = act("helper", "report a bug", [get_weather])  # "weather report" in its docstring
    assert isinstance(action, Say) and "didn't understand" in action.text
