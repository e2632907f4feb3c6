"""Reads an ADK ``LlmRequest`` the way the offline model needs it.

What the model gets from ADK, and what this module makes of it:

* the system instruction carries the agent's name (``Your internal name is "X"``), for a
  sub-agent its parent (``transfer to your parent agent X``), and for the historian the current
  session's id (``The current session id is "X"``: memories of this session are told apart);
* ``tools_dict`` and the ``transfer_to_agent`` declaration name the tools and transfer targets;
  the function declarations in ``config.tools`` describe each tool (description, parameters),
  and the transfer instruction describes each target (``Agent name: X`` / ``Agent
  description: Y``): agents that are not the team's choose from these (``generic.py``);
* ``contents`` is the whole conversation. The human's messages are ``role='user'`` text, but so
  are other agents' events after a transfer (``For context: ... [manager] called tool ...``),
  so the human's latest message is the last user text that is *not* such a relay. The agent's
  own progress in this turn is the run of its own function calls and responses at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.adk.models.llm_request import LlmRequest
from google.genai import types

from ..defaults import TRANSFER_TOOL
from ..store.facts import content_texts

__all__ = ["Param", "RequestView", "Step", "ToolSpec", "read_request"]

_NAME = re.compile(r'Your internal name is "([^"]+)"')
_PARENT = re.compile(r"transfer to your parent agent (\w+)")
_DESCRIPTION = re.compile(r'The description about you is "([^"]*)"')
_SESSION = re.compile(r'The current session id is "([^"]+)"')
_RELAY_PREFIX = "For context:"
_INSTRUCTION_MARK = "<<<BEGIN_SYSTEM_INSTRUCTION>>>"
_RELAYED_TRANSFER = f"called tool `{TRANSFER_TOOL}`"
# One transfer target in ADK's transfer instruction; a description runs to the next blank line.
_TARGET = re.compile(r"^Agent name: (.+)\nAgent description: (.*(?:\n.+)*)", re.MULTILINE)


@dataclass(slots=True)
class Step:
    """One tool call this agent made in the current turn, with its result once it has one."""

    name: str
    args: dict[str, Any]
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a tool, from its function declaration."""

    name: str
    type: str = "string"  # JSON schema type: string, integer, number, boolean, array, object
    description: str = ""
    required: bool = False
    enum: tuple[str, ...] = ()
    items: str = "string"  # for arrays: the items' type


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the agent has, as the model is told about it."""

    name: str
    description: str = ""
    params: tuple[Param, ...] = ()


@dataclass(slots=True)
class RequestView:
    """The parts of a request the offline model decides on."""

    agent_name: str
    human_text: str | None
    description: str = ""
    steps: list[Step] = field(default_factory=list)
    tools: frozenset[str] = frozenset()
    transfer_targets: tuple[str, ...] = ()
    parent: str | None = None
    transfers_this_turn: int = 0
    prompt_chars: int = 0
    session_id: str | None = None
    declarations: tuple[ToolSpec, ...] = ()
    target_descriptions: dict[str, str] = field(default_factory=dict)


def _instruction_text(config: types.GenerateContentConfig | None) -> str:
    si = config.system_instruction if config else None
    if si is None:
        return ""
    if isinstance(si, str):
        return si
    if isinstance(si, types.Content):
        return "\n".join(p.text or "" for p in si.parts or [])
    if isinstance(si, list):
        return "\n".join(x if isinstance(x, str) else getattr(x, "text", "") or "" for x in si)
    return str(si)


def _is_tool_traffic(content: types.Content) -> bool:
    parts = content.parts or []
    return bool(parts) and all(p.function_call or p.function_response for p in parts)


def _is_human(content: types.Content) -> bool:
    if content.role != "user" or _is_tool_traffic(content):
        return False
    texts = content_texts(content)
    if not texts:
        return False
    first = texts[0].lstrip()
    return not first.startswith(_RELAY_PREFIX) and _INSTRUCTION_MARK not in first


def _transfer_targets(llm_request: LlmRequest) -> tuple[str, ...]:
    tools = (llm_request.config.tools if llm_request.config else None) or []
    for tool in tools:
        for decl in getattr(tool, "function_declarations", None) or []:
            if decl.name != TRANSFER_TOOL:
                continue
            schema = decl.parameters_json_schema
            if isinstance(schema, dict):
                enum = schema.get("properties", {}).get("agent_name", {}).get("enum")
                if enum:
                    return tuple(str(x) for x in enum)
            params = decl.parameters
            if params is not None and params.properties and "agent_name" in params.properties:
                enum = params.properties["agent_name"].enum
                if enum:
                    return tuple(str(x) for x in enum)
    return ()


def _own_steps(tail: list[types.Content]) -> list[Step]:
    steps: list[Step] = []
    by_id: dict[str, Step] = {}
    for content in tail:
        for part in content.parts or []:
            if part.function_call:
                call = part.function_call
                step = Step(name=call.name or "", args=dict(call.args or {}))
                steps.append(step)
                if call.id:
                    by_id[call.id] = step
            elif part.function_response:
                resp = part.function_response
                match = by_id.get(resp.id or "") or next(
                    (s for s in steps if s.name == resp.name and s.result is None), None
                )
                if match is not None:
                    result = resp.response or {}
                    match.result = result if isinstance(result, dict) else {"result": result}
    return steps


def _schema_type(schema: Any) -> str:
    """The JSON schema type of a property (``Optional[str]`` is ``anyOf`` string/null)."""
    if not isinstance(schema, dict):
        return "string"
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for option in schema.get("anyOf") or schema.get("oneOf") or []:
            found = _schema_type(option) if isinstance(option, dict) else None
            if found and option.get("type") != "null":
                return found
        return "string"
    return str(kind).lower()


def _params_from_json(schema: dict[str, Any]) -> tuple[Param, ...]:
    required = set(schema.get("required") or [])
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        enum = prop.get("enum") or next(
            (o.get("enum") for o in prop.get("anyOf") or [] if isinstance(o, dict)
             and o.get("enum")), None,
        ) or ()
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        out.append(Param(
            name=str(name), type=_schema_type(prop), description=str(prop.get("description") or ""),
            required=name in required, enum=tuple(str(e) for e in enum),
            items=_schema_type(items) if items else "string",
        ))
    return tuple(out)


def _params_from_schema(schema: types.Schema) -> tuple[Param, ...]:
    required = set(schema.required or [])
    out = []
    for name, prop in (schema.properties or {}).items():
        def kind(s: types.Schema | None) -> str:
            value = getattr(s, "type", None) if s is not None else None
            return str(getattr(value, "value", value) or "string").lower()

        out.append(Param(
            name=name, type=kind(prop), description=prop.description or "",
            required=name in required, enum=tuple(prop.enum or ()),
            items=kind(prop.items) if prop.items is not None else "string",
        ))
    return tuple(out)


def _spec(decl: types.FunctionDeclaration) -> ToolSpec:
    if isinstance(decl.parameters_json_schema, dict):
        params = _params_from_json(decl.parameters_json_schema)
    elif decl.parameters is not None:
        params = _params_from_schema(decl.parameters)
    else:
        params = ()
    return ToolSpec(name=decl.name or "", description=decl.description or "", params=params)


def _declarations(llm_request: LlmRequest) -> tuple[ToolSpec, ...]:
    """Every tool but ``transfer_to_agent``, from the declarations sent with the request; a tool
    in ``tools_dict`` without one (built-in tools) is named with its description only."""
    specs: dict[str, ToolSpec] = {}
    for tool in (llm_request.config.tools if llm_request.config else None) or []:
        for decl in getattr(tool, "function_declarations", None) or []:
            if decl.name and decl.name != TRANSFER_TOOL:
                specs.setdefault(decl.name, _spec(decl))
    for name, tool in (llm_request.tools_dict or {}).items():
        if name not in specs and name != TRANSFER_TOOL:
            description = getattr(tool, "description", "")
            specs[name] = ToolSpec(name=name, description=description if isinstance(
                description, str) else "")
    return tuple(specs.values())


def read_request(llm_request: LlmRequest) -> RequestView:
    """Builds the :class:`RequestView` of ``llm_request``."""
    instruction = _instruction_text(llm_request.config)
    name_match = _NAME.search(instruction)
    parent_match = _PARENT.search(instruction)
    description_match = _DESCRIPTION.search(instruction)
    session_match = _SESSION.search(instruction)
    contents = list(llm_request.contents or [])
    human_at = next((i for i in range(len(contents) - 1, -1, -1) if _is_human(contents[i])), None)
    after = contents[human_at + 1:] if human_at is not None else contents
    tail_start = len(after)
    while tail_start > 0 and _is_tool_traffic(after[tail_start - 1]):
        tail_start -= 1
    tail = after[tail_start:]
    relayed = sum(t.count(_RELAYED_TRANSFER) for c in after for t in content_texts(c))
    own = sum(
        1 for c in after for p in c.parts or []
        if p.function_call and p.function_call.name == TRANSFER_TOOL
    )
    chars = len(instruction) + sum(
        len(p.text or "") + len(str(p.function_response.response) if p.function_response else "")
        + len(str(p.function_call.args) if p.function_call else "")
        for c in contents for p in c.parts or []
    )
    return RequestView(
        agent_name=name_match.group(1) if name_match else "",
        human_text=(
            " ".join(content_texts(contents[human_at])).strip() if human_at is not None else None
        ),
        description=description_match.group(1) if description_match else "",
        steps=_own_steps(tail),
        tools=frozenset(llm_request.tools_dict or {}),
        transfer_targets=_transfer_targets(llm_request),
        parent=parent_match.group(1) if parent_match else None,
        transfers_this_turn=relayed + own,
        prompt_chars=chars,
        session_id=session_match.group(1) if session_match else None,
        declarations=_declarations(llm_request),
        target_descriptions={
            m.group(1).strip(): " ".join(m.group(2).split()) for m in _TARGET.finditer(instruction)
        },
    )
