"""The joke collection (``jokes.json``, written for this project) and how jokes are picked."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Joke", "JokeBook", "load_jokes"]


@dataclass(frozen=True, slots=True)
class Joke:
    """One joke with a stable id."""

    id: str
    topic: str
    text: str


@dataclass(frozen=True, slots=True)
class JokeBook:
    """Jokes by topic plus topic aliases ("maths" -> "math")."""

    topics: dict[str, tuple[Joke, ...]]
    aliases: dict[str, str]

    def resolve(self, topic: str) -> str | None:
        """The collection's name for ``topic`` (already lower-cased), or None."""
        if topic in self.topics:
            return topic
        if topic in self.aliases:
            return self.aliases[topic]
        if topic.endswith("s") and topic[:-1] in self.topics:
            return topic[:-1]
        return None

    def pick(self, topic: str, heard: list[str], rng: random.Random | None = None) -> tuple[
        Joke, bool
    ]:
        """Picks a joke on ``topic`` the user has not heard.

        Returns:
            ``(joke, exhausted)``: ``exhausted`` is True when every joke on the topic had been
            heard, in which case any joke but the last one told is picked.
        """
        chooser = rng or random
        jokes = self.topics[topic]
        unheard = [j for j in jokes if j.id not in heard]
        if unheard:
            return chooser.choice(unheard), False
        last = heard[-1] if heard else None
        fresh = [j for j in jokes if j.id != last] or list(jokes)
        return chooser.choice(fresh), True


@cache
def load_jokes() -> JokeBook:
    """Loads ``jokes.json`` shipped next to this module (once per process)."""
    raw: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath("jokes.json").read_text(encoding="utf-8")
    )
    topics = {
        name: tuple(Joke(id=str(j["id"]), topic=name, text=str(j["text"])) for j in items)
        for name, items in raw["topics"].items()
    }
    return JokeBook(topics=topics, aliases={str(k): str(v) for k, v in raw["aliases"].items()})
