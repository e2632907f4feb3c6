"""The offline model's rule table, and how an agent adds its own rows to it.

The table is a list of :class:`RuleSet` s: the intents an agent handles (phrasings, in the
order they are tried), the plans that answer them, the words that name its whole area of
conversation ("jokes", "stocks": the historian's search finds that agent's exchanges by
them) and how the help text and summaries name it. The team's agents' rule sets are built
in (``team_rules.py``), so the store's offline model keeps the team's phrasings in any
installation; a new sub-agent brings its own through its ``SubAgentSpec``
(``subagents/<name>/definition.py``), whose registry calls :func:`register`.

Rule sets are tried by ``rank`` (lower first), then in the order they were registered; the
built-in ones are ranked 10 (history questions), 20 (the watch list), 30 (jokes), 40 (single
prices, whose loose patterns come after the jokes: "a joke about the stock market"), and 90
(the manager's own: names, preferences, help). The default, 50, puts a new agent's rows
after the built-in sub-agents' and before the manager's catch-alls ("I like X").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_RANK",
    "RuleSet",
    "area_labels",
    "area_words",
    "help_lines",
    "owners",
    "plans",
    "register",
    "rule_sets",
    "unregister",
]

DEFAULT_RANK = 50

_registered: dict[str, tuple[RuleSet, ...]] = {}
_cache: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One agent's rows of the offline model's table.

    Attributes:
        owner: the agent that handles these intents (its ``LlmAgent`` name).
        intents: ``intents.Intent`` rows, tried in order.
        plans: intent name -> ``plans.Plan`` answering it.
        rank: where the rows go in the table (see the module docstring).
        area_words: words naming the agent's whole area of conversation.
        area: how summaries name the area ("jokes"); the owner's name when empty.
        help: the clause the manager's help text says about the agent ("tells jokes").
        examples: one line of example requests for the help text ("jokes: 'tell me...'").
    """

    owner: str
    intents: tuple[Any, ...] = ()
    plans: Mapping[str, Any] = field(default_factory=dict)
    rank: int = DEFAULT_RANK
    area_words: frozenset[str] = frozenset()
    area: str = ""
    help: str = ""
    examples: str = ""


def register(*sets: RuleSet) -> None:
    """Adds rule sets to the table; an owner's sets replace those registered for it before.

    Raises:
        ValueError: a plan's intent name is another agent's already (each intent has one plan).
    """
    by_owner: dict[str, list[RuleSet]] = {}
    for rule_set in sets:
        by_owner.setdefault(rule_set.owner, []).append(rule_set)
    taken = {name: s.owner for s in rule_sets() if s.owner not in by_owner for name in s.plans}
    clashes = sorted(f"{name!r} ({taken[name]})" for s in sets for name in s.plans if name in taken)
    if clashes:
        raise ValueError(f"{', '.join(clashes)}: intent names another agent's plans already use; "
                         "give the new agent's intents names of their own")
    for owner, owned in by_owner.items():
        _registered[owner] = tuple(owned)
    _cache.clear()


def unregister(owner: str) -> None:
    """Removes every rule set ``register`` added for ``owner`` (built-in ones stay)."""
    _registered.pop(owner, None)
    _cache.clear()


def _registered_sets() -> list[RuleSet]:
    return [rule_set for owned in _registered.values() for rule_set in owned]


def rule_sets() -> tuple[RuleSet, ...]:
    """Every rule set, built-in and registered, in the order the table tries them."""
    cached = _cache.get("sets")
    if cached is None:
        from .team_rules import BUILTIN_RULES

        ordered = [*BUILTIN_RULES, *_registered_sets()]
        cached = tuple(sorted(ordered, key=lambda s: s.rank))  # stable: registration order
        _cache["sets"] = cached
    return cached


def plans() -> dict[str, Any]:
    """Intent name -> plan, over every rule set."""
    cached = _cache.get("plans")
    if cached is None:
        cached = {}
        for rule_set in rule_sets():
            cached.update(rule_set.plans)
        _cache["plans"] = cached
    return cached


def owners() -> frozenset[str]:
    """The agents the table routes to: the team's (the manager included) and registered ones."""
    return frozenset(s.owner for s in rule_sets())


def area_words() -> dict[str, frozenset[str]]:
    """Agent -> the words that name its whole area of conversation."""
    out: dict[str, frozenset[str]] = {}
    for rule_set in rule_sets():
        if rule_set.area_words:
            out[rule_set.owner] = out.get(rule_set.owner, frozenset()) | rule_set.area_words
    return out


def area_labels() -> dict[str, str]:
    """Agent -> how summaries name its area."""
    return {s.owner: s.area for s in rule_sets() if s.area}


def help_lines() -> tuple[list[str], list[str]]:
    """The registered (not built-in) agents' help clauses and example lines."""
    registered = sorted(_registered_sets(), key=lambda s: s.rank)
    return (
        [f"{s.owner} {s.help}" for s in registered if s.help],
        [s.examples for s in registered if s.examples],
    )
