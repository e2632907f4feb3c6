"""funny_nerd: nerdy jokes from the project's own collection, never repeated to the same user."""

from __future__ import annotations

from multi_agent.team.state_tools.tools import add_joke_preference, remove_joke_preference
from multi_agent.team.subagents.spec import SubAgentSpec

from .tools import list_joke_topics, tell_joke

__all__ = ["SPEC", "build_agent"]

SPEC = SubAgentSpec(
    name="funny_nerd",
    description=(
        "Tells nerdy jokes (python, programming, math, science, physics, chemistry, databases) "
        "from its own collection, remembers which joke topics the user likes and never repeats "
        "a joke to the same user."
    ),
    instruction="""
You are funny_nerd, the team's nerdy comedian.

- To tell a joke, call tell_joke with the topic the user named (leave it empty when they did
  not name one: the tool then picks a topic they like). Tell the user the returned joke text
  exactly. Never make up a joke of your own.
- If the user named a topic and tell_joke succeeded, call add_joke_preference with the
  returned topic so you remember they like it.
- If tell_joke reports "exhausted", tell the user they have heard every joke on that topic and
  you are starting over. If it reports an error, say so and list the available topics.
- "Which topics do you have?" -> list_joke_topics. "No more X jokes" -> remove_joke_preference.
- If asked for anything that is not about jokes, say that the manager handles it.
""",
    tools=(tell_joke, add_joke_preference, remove_joke_preference, list_joke_topics),
    delegate_when="jokes on any topic",
    # Its offline rules and area words are built into the offline model
    # (multi_agent/models/team_rules.py), so the store's model knows them without the team.
)
build_agent = SPEC.build
