"""The offline model in agents that are not the team's: it chooses among the agent's own tools.

``LlmAgent(name="helper", model="offline-rules", tools=[get_weather])`` gets no phrase table
(that is the team's, ``intents.py``). Instead, for each message:

1. a greeting, "help", "what can you do", "are you an LLM?" gets an introduction: the agent's
   name and description, that this is a rules model and not an LLM, and its tools;
2. otherwise every tool is scored by the words the message shares with the tool's name (3 per
   word; 1 for generic verbs such as get/list/add), its parameter names and enum values (2)
   and its description (1); words are compared after light stemming ("notes" = "note") and a
   few verbs count as synonyms ("show" = "list", "delete" = "remove"). Transfer targets are
   scored the same way from their names and descriptions. The best tool is called (it needs a
   score of 2: one description word alone is not enough), unless a target scores higher (then
   the agent transfers); a tie asks which one was meant;
3. the tool's required arguments are read from the message (:func:`fill_args`): ``name=value``
   or ``name: value``, quoted text, "from X" / "to X" for from/to parameters, a phrase after a
   preposition ("in Paris", "about cats"), capitalised words, then the words left over;
   numbers for numeric parameters, an enum value named in the message. A required argument
   that cannot be found is asked for instead of guessed; optional ones keep their defaults
   unless named (``unit=fahrenheit``, or an enum value);
4. after the tool result comes back, the answer is that result, said plainly: the call and
   what it returned, or that it failed and why. Nothing else is added;
5. nothing matches: a sub-agent hands the message back to its parent (once per turn), any
   other agent says it didn't understand, that it is a rules model, and lists its tools.
"""

from __future__ import annotations

import json
import os.path
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..defaults import TRANSFER_TOOL
from ._request import Param, RequestView, Step, ToolSpec
from .intents import normalize
from .plans import Call, Done, Say

__all__ = ["GENERIC_IDENTITY", "decide_generic", "describe_result", "fill_args", "rank_tools"]

GENERIC_IDENTITY = (
    "I'm running on the built-in offline rules model: simple word matching, not an LLM. I call "
    "the tool whose name or description shares words with your message, fill in its "
    "arguments from what you wrote, and tell you what it returned."
)
# Longest text of one value in an answer; longer values are cut with "…".
MAX_VALUE_CHARS = 1500
# Transfers a generic agent may already have seen this turn and still transfer (see decide).
MAX_GENERIC_HOPS = 1
# The least score that picks a tool (a name word is 3, a description word 1) or a transfer
# target (whose description is often all there is to go by).
MIN_TOOL_SCORE = 2.0
MIN_AGENT_SCORE = 1.0

_STOP = frozenset("""
a an the and or but if then so to of in on at for from by with about into over under as
is are was were be been being am do does did done can could would will shall should may might
must i me my mine myself you your yours we us our ours it its this that these those there here
what whats which who whom whose when where why how please pls plz thanks thank thx hi hello hey
s t d ll re ve m not no yes just also some any tell give let like want need know got one ok
okay now today right really much many very up out than too only own same such more most
other else again further once all both each few nor don doesn didn isn aren wasn won cannot
lets
""".split())
# Verbs that say little about which tool is meant: they count, but less than other name words.
_GENERIC = frozenset(
    "get set list add remove fetch retrieve find show make create update delete check look "
    "read run do call use return returns give".split()
)
_SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset("list show display view see enumerate".split()),
    frozenset("add create new insert put save store record remember".split()),
    frozenset("remove delete drop erase forget clear cancel".split()),
    frozenset("get fetch retrieve find lookup look check read".split()),
    frozenset("set change update edit modify".split()),
    frozenset("search find lookup look query".split()),
    frozenset("calculate compute calc".split()),
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening))"
    r"(?:\s+there)?\b[\s,.!]*",
    re.IGNORECASE,
)
_HELP = re.compile(
    r"^\s*(?:help|\?+|what can you do|what do you do|what can i ask|who are you|what are you|"
    r"what tools do you have|which tools do you have|list (?:your )?tools|show (?:your )?tools|"
    r"how do i use you|are you (?:an? )?(?:llm|ai|bot|robot|human|person|real|language model)|"
    r"is this (?:an? )?(?:llm|ai|bot))[\s.!?]*$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\s*(?:thanks|thank you|thx|ty|cheers)(?: (?:a lot|so much|very much))?[\s.!]*$",
    re.IGNORECASE,
)
_PREP_WORDS = "in|for|of|at|near|from|to|into|about|on|called|named|regarding|with|by"
_PREPS = f"(?:{_PREP_WORDS})"
# Where a phrase after a preposition ends: the next preposition, "and", a time word, punctuation.
_ENDS = (
    r"(?=\s+(?:" + _PREP_WORDS + r"|and|or|please|today|tomorrow|tonight|now|right now)\b"
    r"|\s*[,.;!?]|\s*$)"
)
_PREP_PHRASE = re.compile(r"\b" + _PREPS + r"\s+(?P<p>.+?)" + _ENDS, re.IGNORECASE)
_QUERY_PHRASE = re.compile(
    r"\b(?:for|about|on|regarding)\s+(?P<p>[^,;!?]+?)\s*[.!?]*\s*$", re.IGNORECASE
)
_TO_PHRASE = re.compile(r"\b(?:to|into)\s+(?P<p>.+?)" + _ENDS, re.IGNORECASE)
_FROM_PHRASE = re.compile(r"\bfrom\s+(?P<p>.+?)" + _ENDS, re.IGNORECASE)
_QUOTED = re.compile(r'"(?P<a>[^"]+)"|(?<!\w)\'(?P<b>[^\']+)\'(?!\w)')
_CAPITALISED = re.compile(r"\b[A-Z][\w'.&-]*(?:\s+[A-Z][\w'.&-]*)*")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]*\w)")
_LEADING = re.compile(r"^(?:the|a|an|my|your|our|this|that|some)\s+", re.IGNORECASE)
_FILLER = re.compile(
    r"^\s*(?:(?:please|pls|can you|could you|would you|will you|ok(?:ay)?|so|now|then|i want "
    r"to|i'd like to|i would like to|let's|lets)[\s,]+)*",
    re.IGNORECASE,
)
# Parameters that take the whole message (or what is left of it), a search phrase, or one end
# of a from/to pair.
_WHOLE = frozenset("text message content body sentence note comment".split())
# ... and parameters that pass the message on as it is (an AgentTool's ``request``).
_PASS = frozenset("request prompt input instruction instructions utterance".split())
_QUERY = frozenset(
    "query q search question topic keyword keywords term terms subject phrase".split()
)
_FROM = frozenset("from source origin src start departure".split())
_TO = frozenset("to target destination dest end arrival into".split())
_GENERIC_KEYS = frozenset(
    "result results report message text output answer content response summary value data "
    "reply".split()
)
_OK = frozenset("ok success succeeded successful done completed".split())
_FAILED = frozenset("error failed failure unavailable".split())


# -- words ------------------------------------------------------------------------------------


def _stem(word: str) -> str:
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "")
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 5 and w.endswith("ed"):
        w = w[:-2]
    return w


def _words(text: str) -> list[str]:
    """Lower-case words of ``text``; ``get_weather`` and ``getWeather`` are two words."""
    out: list[str] = []
    for part in re.split(r"[_\W]+", _CAMEL.sub(" ", text or "")):
        out.extend(w.lower() for w in part.split() if w)
    return out


def _is_stop(word: str) -> bool:
    """A word that names nothing ("what's" is "what", "don't" is "don")."""
    low = word.lower()
    return low.split("'")[0] in _STOP or low.replace("'", "") in _STOP


def _content(words: Iterable[str]) -> list[str]:
    return [_stem(w) for w in words if not _is_stop(w) and not w.isdigit()]


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    if any(a in group and b in group for group in _SYNONYMS):
        return True
    prefix = len(os.path.commonprefix([a, b]))
    return prefix >= max(5, 0.75 * min(len(a), len(b)))


@dataclass(slots=True)
class _Features:
    """The words a tool or agent is known by, each with its weight."""

    weights: dict[str, float] = field(default_factory=dict)
    name: tuple[str, ...] = ()

    def add(self, words: Iterable[str], weight: float) -> None:
        for word in words:
            self.weights[word] = max(self.weights.get(word, 0.0), weight)

    def score(self, message: list[str]) -> tuple[float, int]:
        """(score, how many name words the message names)."""
        total = 0.0
        for word in dict.fromkeys(message):
            total += max((w for f, w in self.weights.items() if _same(word, f)), default=0.0)
        named = sum(1 for n in self.name if any(_same(n, m) for m in message))
        return total, named


def _name_words(name: str) -> list[str]:
    return [_stem(w) for w in _words(name) if w not in _STOP]


def _tool_features(tool: ToolSpec) -> _Features:
    features = _Features()
    features.add(_content(_words(tool.description)), 1.0)
    features.add((w for p in tool.params for w in _content(_words(p.description))), 1.0)
    features.add((_stem(w) for p in tool.params for e in p.enum for w in _words(e)), 2.0)
    features.add((w for p in tool.params for w in _name_words(p.name)), 2.0)
    names = _name_words(tool.name)
    features.add((w for w in names if w not in _GENERIC), 3.0)
    features.add((w for w in names if w in _GENERIC), 1.0)
    features.name = tuple(names)
    return features


def _agent_features(name: str, description: str) -> _Features:
    features = _Features()
    features.add(_content(_words(description)), 1.0)
    names = _name_words(name)
    features.add((w for w in names if w not in {"agent", "assistant", "bot"}), 3.0)
    features.name = tuple(names)
    return features


@dataclass(frozen=True, slots=True)
class Ranked:
    """A tool or transfer target with how well the message matches it."""

    name: str
    score: float
    coverage: float  # share of its name's words the message names (breaks ties)


def _rank(candidates: dict[str, _Features], text: str, minimum: float) -> list[Ranked]:
    message = _content(_words_of_message(text))
    lowered = text.lower()
    ranked = []
    for name, features in candidates.items():
        score, named = features.score(message)
        if re.search(r"(?<![\w])" + re.escape(name.lower()) + r"(?![\w])", lowered):
            score += 10.0  # the tool named outright: "use get_weather"
        coverage = named / len(features.name) if features.name else 0.0
        if score >= minimum:
            ranked.append(Ranked(name, score, coverage))
    return sorted(ranked, key=lambda r: (-r.score, -r.coverage))


def _words_of_message(text: str) -> list[str]:
    return [m.group(0) for m in _WORD.finditer(text or "")]


def rank_tools(tools: Iterable[ToolSpec], text: str) -> list[Ranked]:
    """The tools that share words with ``text``, best first (one description word is not
    enough: "report a bug" is no call of a weather tool "returning the weather report")."""
    return _rank({t.name: _tool_features(t) for t in tools}, text, MIN_TOOL_SCORE)


# -- arguments --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Message:
    text: str
    used: list[tuple[int, int]] = field(default_factory=list)

    def free(self, start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in self.used)

    def take(self, start: int, end: int) -> None:
        self.used.append((start, end))


def _tidy(value: str) -> str:
    value = " ".join(value.split()).strip(" \t.,;:!?")
    previous = None
    while previous != value:
        previous = value
        value = _LEADING.sub("", value).strip()
    return value


def _kind(param: Param) -> str:
    words = set(_words(param.name))
    if words & _FROM:
        return "from"
    if words & _TO:
        return "to"
    if words & _QUERY:
        return "query"
    if words & _PASS:
        return "pass"
    if words & _WHOLE:
        return "whole"
    return "plain"


def _meaningful(value: str, tool_words: set[str]) -> bool:
    return any(
        not _is_stop(w) and not any(_same(_stem(w), t) for t in tool_words)
        for w in _words_of_message(value)
    )


def _explicit(param: Param, message: _Message) -> str | None:
    """``city=Paris``, ``city: "New York"``."""
    variants = {param.name, param.name.replace("_", " "), " ".join(_words(param.name))}
    for variant in sorted(variants, key=len, reverse=True):
        pattern = re.compile(
            r"(?<![\w])" + re.escape(variant) + r"\s*[=:]\s*(?:\"(?P<a>[^\"]*)\"|'(?P<b>[^']*)'|"
            r"(?P<c>[^,;\n]+?))\s*(?=[,;\n]|\s+[\w ]{1,30}\s*[=:]|$)",
            re.IGNORECASE,
        )
        for m in pattern.finditer(message.text):
            if message.free(m.start(), m.end()):
                message.take(m.start(), m.end())
                return (m.group("a") if m.group("a") is not None else m.group("b")
                        if m.group("b") is not None else _tidy(m.group("c") or ""))
    return None


def _phrase(pattern: re.Pattern[str], message: _Message, tool_words: set[str]) -> str | None:
    for m in pattern.finditer(message.text):
        start, end = m.span("p")
        value = _tidy(m.group("p"))
        if value and message.free(start, end) and _meaningful(value, tool_words):
            message.take(start, end)
            return value
    return None


def _quoted(message: _Message) -> str | None:
    for m in _QUOTED.finditer(message.text):
        if message.free(m.start(), m.end()):
            message.take(m.start(), m.end())
            return m.group("a") if m.group("a") is not None else m.group("b")
    return None


def _capitalised(message: _Message, tool_words: set[str]) -> str | None:
    for m in _CAPITALISED.finditer(message.text):
        words = list(re.finditer(r"\S+", m.group(0)))
        keep = [w for w in words if _meaningful(w.group(0), tool_words)]
        if not keep:
            continue
        # the longest run of kept words (split where a stop or tool word sits)
        runs: list[list[re.Match[str]]] = [[]]
        for w in words:
            if w in keep:
                runs[-1].append(w)
            elif runs[-1]:
                runs.append([])
        run = max(runs, key=len)
        start, end = m.start() + run[0].start(), m.start() + run[-1].end()
        if message.free(start, end):
            message.take(start, end)
            return _tidy(message.text[start:end])
    return None


def _leftover(message: _Message, tool_words: set[str]) -> str | None:
    found = []
    for m in _WORD.finditer(message.text):
        if not message.free(m.start(), m.end()) or m.group(0).isdigit():
            continue
        if _meaningful(m.group(0), tool_words):
            found.append(m)
    if not found:
        return None
    for m in found:
        message.take(m.start(), m.end())
    return " ".join(m.group(0) for m in found)


def _remainder(message: _Message, tool_words: set[str], original: str) -> str:
    """What is left of the message once other arguments took their parts, without the leading
    words that named the tool ("translate good morning" -> "good morning")."""
    chars = list(message.text)
    for a, b in message.used:
        for i in range(a, b):
            chars[i] = " "
    text = " ".join("".join(chars).split())
    # drop a dangling preposition whose object another argument took ("... to")
    text = re.sub(r"\s+" + _PREPS + r"\s*$", "", text, flags=re.IGNORECASE)
    text = _FILLER.sub("", text)
    words = text.split()
    while words and not _meaningful(words[0], tool_words):
        words.pop(0)
    return _tidy(" ".join(words)) or original.strip()


def _number(message: _Message) -> int | float | None:
    for m in _NUMBER.finditer(message.text):
        if message.free(m.start(), m.end()):
            message.take(m.start(), m.end())
            value = float(m.group(0).replace(",", ""))
            return int(value) if value.is_integer() else value
    return None


def _convert(value: str, param: Param) -> Any:
    """An explicit ``name=value`` in the parameter's type (None if it is not one)."""
    kind = param.type
    try:
        if kind == "integer":
            return int(float(value))
        if kind == "number":
            return float(value)
    except ValueError:
        return None
    if kind == "boolean":
        low = value.strip().lower()
        return True if low in ("true", "yes", "on", "1") else False if low in (
            "false", "no", "off", "0") else None
    if kind == "array":
        return [v for v in (_tidy(x) for x in re.split(r",|\band\b", value)) if v]
    return value


def _enum(param: Param, message: _Message) -> str | None:
    for value in param.enum:
        m = re.search(r"(?<![\w])" + re.escape(value) + r"(?![\w])", message.text, re.IGNORECASE)
        if m and message.free(m.start(), m.end()):
            message.take(m.start(), m.end())
            return value
    return None


def fill_args(tool: ToolSpec, text: str) -> tuple[dict[str, Any], list[Param]]:
    """The arguments for calling ``tool`` read from ``text``, and the required parameters it
    could not find (the caller asks for those instead of guessing)."""
    message = _Message(text)
    tool_words = {w for w in _name_words(tool.name)} | {
        w for p in tool.params for w in _name_words(p.name)
    }
    args: dict[str, Any] = {}
    for param in tool.params:  # said outright, required or not
        found = _explicit(param, message)
        if found is not None and (value := _convert(found, param)) is not None:
            args[param.name] = value
    for param in tool.params:  # an enum value named in the message
        if param.name not in args and param.enum and (found := _enum(param, message)):
            args[param.name] = found
    required = [p for p in tool.params if p.required and p.name not in args]
    for param in required:
        if param.type in ("integer", "number"):
            value = _number(message)
            if value is not None:
                args[param.name] = value
        elif param.type == "boolean":
            low = f" {text.lower()} "
            if re.search(r"\b(?:yes|true|on|enable|enabled)\b", low):
                args[param.name] = True
            elif re.search(r"\b(?:no|false|off|disable|disabled)\b", low):
                args[param.name] = False
        elif param.type == "array" and param.items in ("integer", "number"):
            numbers = []
            while (n := _number(message)) is not None:
                numbers.append(n)
            if numbers:
                args[param.name] = numbers
    strings = [p for p in required if p.name not in args and p.type in ("string", "array")
               and not p.enum]

    def put(param: Param, value: str | None) -> None:
        if value is not None:
            args[param.name] = _convert(value, param) if param.type == "array" else value

    for param in strings:  # "from X", "to X" first: the general rules below would take them
        kind = _kind(param)
        if kind in ("from", "to"):
            put(param, _phrase(_FROM_PHRASE if kind == "from" else _TO_PHRASE, message,
                               tool_words))
    for param in strings:
        if param.name in args or _kind(param) not in ("plain", "from", "to"):
            continue
        put(param, _quoted(message) or _phrase(_PREP_PHRASE, message, tool_words)
            or _capitalised(message, tool_words) or _leftover(message, tool_words))
    for param in strings:
        if param.name not in args and _kind(param) == "query":
            put(param, _quoted(message) or _phrase(_QUERY_PHRASE, message, tool_words)
                or _leftover(message, tool_words) or _remainder(message, tool_words, text))
    for param in strings:  # the rest of the message, or all of it for a request to pass on
        if param.name not in args and _kind(param) == "whole":
            put(param, _quoted(message) or _remainder(message, tool_words, text))
        elif param.name not in args and _kind(param) == "pass":
            put(param, text.strip() or None)
    missing = [p for p in tool.params if p.required and p.name not in args]
    return {p.name: args[p.name] for p in tool.params if p.name in args}, missing


# -- answers ----------------------------------------------------------------------------------


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _cut(" ".join(value.split()))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        if not value:
            return "nothing"
        if all(isinstance(v, str | int | float | bool) or v is None for v in value):
            return _cut(", ".join(_value(v) for v in value))
        return _cut(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, dict):
        return _cut("; ".join(f"{k}: {_value(v)}" for k, v in value.items()))
    return _cut(str(value))


def _call_text(step: Step) -> str:
    args = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in step.args.items()
    )
    return f"{step.name}({args})"


def describe_result(step: Step) -> str:
    """One tool call and its result, said plainly: what was called and what came back."""
    call = _call_text(step)
    result = step.result
    if result is None:
        return f"I called {call}; it has not returned a result yet."
    data = dict(result)
    status = data.get("status")
    status = status.lower() if isinstance(status, str) else None
    error = data.get("error_message", data.get("error"))
    if status in _FAILED or (error and status not in _OK):
        if error is None:
            data.pop("status", None)
            error = _value(data) if data else status
        return f"{call} failed: {_value(error)}"
    if status in _OK:
        data.pop("status")
    if not data or (len(data) == 1 and next(iter(data.values())) in (None, "", [], {})):
        return f"{call} returned nothing."
    if len(data) == 1:
        key, value = next(iter(data.items()))
        text = _value(value) if key in _GENERIC_KEYS else f"{key}: {_value(value)}"
        return f"{call} returned: {text}"
    lines = [f"  - {k}: {_value(v)}" for k, v in data.items()]
    return f"{call} returned:\n" + "\n".join(lines)


def _first_sentence(text: str, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    m = re.match(r"(.+?[.!?])(?:\s|$)", text)
    text = m.group(1) if m else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signature(tool: ToolSpec) -> str:
    required = [p.name for p in tool.params if p.required]
    optional = [p.name for p in tool.params if not p.required]
    inner = ", ".join(required)
    if optional:
        inner += ("[, " if inner else "[") + ", ".join(optional) + "]"
    return f"{tool.name}({inner})"


def _capabilities(view: RequestView) -> str:
    lines = []
    if view.declarations:
        lines.append("My tools:")
        for tool in view.declarations:
            about = _first_sentence(tool.description)
            lines.append(f"  - {_signature(tool)}" + (f": {about}" if about else ""))
    targets = [t for t in view.transfer_targets if t != view.parent]
    if targets:
        lines.append("Agents I can hand you over to:")
        for name in targets:
            about = _first_sentence(view.target_descriptions.get(name, ""))
            lines.append(f"  - {name}" + (f": {about}" if about else ""))
    if not lines:
        return "I have no tools and no other agents to hand you over to."
    return "\n".join(lines)


def _example(tool: ToolSpec) -> str:
    words = " ".join(w for w in _words(tool.name) if w not in _STOP) or tool.name
    params = " ".join(f"{p.name}=..." for p in tool.params if p.required)
    return f"{words} {params}".strip()


def _introduce(view: RequestView) -> Say:
    about = f": {view.description}" if view.description else "."
    return Say(f"I'm {view.agent_name or 'an agent'}{about} {GENERIC_IDENTITY}\n"
               f"{_capabilities(view)}")


def _not_understood(view: RequestView, text: str) -> Say:
    hint = (
        f"\nUse words from a tool's name or description, e.g. '{_example(view.declarations[0])}'."
        if view.declarations else ""
    )
    return Say(
        f"Sorry, I didn't understand {text[:200]!r}: nothing in it matches my tools. "
        f"{GENERIC_IDENTITY}\n{_capabilities(view)}{hint}"
    )


def _ask(tool: ToolSpec, missing: list[Param]) -> Say:
    wanted = ", ".join(
        p.name + (f" ({_first_sentence(p.description, 80)})" if p.description else "")
        + (f", one of {', '.join(p.enum)}" if p.enum else "")
        for p in missing
    )
    return Say(
        f"To use {tool.name} I need {wanted}, and I couldn't find "
        f"{'it' if len(missing) == 1 else 'them'} in your message. Say it like "
        f"'{_example(tool)}'. (I'm the offline rules model, not an LLM: I read values from "
        f"forms like '{missing[0].name}=...', a phrase such as 'in Paris', or text in quotes.)"
    )


def decide_generic(view: RequestView) -> Call | Say:
    """The next action of an agent that is not one of the team's (see the module docstring)."""
    done = Done(view.steps)
    if done.steps:
        return Say("\n".join(describe_result(step) for step in done.steps))
    text = normalize(view.human_text or "")
    body = _GREETING.sub("", text, count=1).strip()
    if not body.strip(" .,!?") or _HELP.match(body):
        return _introduce(view)
    if _THANKS.match(body):
        return Say("You're welcome.")
    tools = {t.name: t for t in view.declarations}
    ranked_tools = rank_tools(tools.values(), body)
    targets = {
        name: _agent_features(name, view.target_descriptions.get(name, ""))
        for name in view.transfer_targets if name not in (view.parent, view.agent_name)
    }
    ranked_targets = (
        _rank(targets, body, MIN_AGENT_SCORE) if view.transfers_this_turn <= MAX_GENERIC_HOPS
        else []
    )
    best_tool = ranked_tools[0] if ranked_tools else None
    best_target = ranked_targets[0] if ranked_targets else None
    if best_target and (best_tool is None or best_target.score > best_tool.score):
        return Call(TRANSFER_TOOL, {"agent_name": best_target.name})
    if best_tool is not None:
        ties = [r.name for r in ranked_tools
                if (r.score, r.coverage) == (best_tool.score, best_tool.coverage)]
        if len(ties) > 1:
            return Say(
                f"That could be {' or '.join(ties)}. Which one do you mean? Name it, e.g. "
                f"'{_example(tools[ties[0]])}'. (I'm the offline rules model, not an LLM.)"
            )
        tool = tools[best_tool.name]
        args, missing = fill_args(tool, body)
        if missing:
            return _ask(tool, missing)
        return Call(tool.name, args)
    if view.parent and view.parent in view.transfer_targets and view.transfers_this_turn == 0:
        return Call(TRANSFER_TOOL, {"agent_name": view.parent})
    return _not_understood(view, view.human_text or "")
