"""A small labelled corpus for memory search: four sessions on different topics, 20 queries.

Each message has a key (``stocks.u1`` = the first human message of the stocks session,
``stocks.a1`` the agent's reply to it). Each query lists the messages a person asking it would
want back. The queries were written as a user would ask them, not copied from the messages: some
share only one word with the answer, some share words with messages of other topics (``stock``
is also in the cooking session, ``plan`` in the travel one).
"""

from __future__ import annotations

SESSIONS: dict[str, list[tuple[str, str]]] = {
    "stocks": [
        ("u1", "I'm thinking about buying Nvidia stock before their earnings report next week."),
        ("a1", "Nvidia reports quarterly earnings on Wednesday; data-center revenue from AI GPUs "
               "is what analysts watch most."),
        ("u2", "I already hold 40 shares of Apple and some Microsoft in my retirement account."),
        ("a2", "Your portfolio is heavy on big tech: Apple and Microsoft together are a large "
               "part of it."),
        ("u3", "My budget for new investments this month is 2,000 dollars."),
        ("a3", "With 2,000 dollars you could buy about a dozen Nvidia shares at today's price, or "
               "spread it over an index fund."),
        ("u4", "I prefer low fees, so maybe a Vanguard index fund is better than picking single "
               "stocks."),
        ("a4", "Vanguard's total market fund has an expense ratio of 0.03 percent."),
    ],
    "cooking": [
        ("u1", "I'm hosting a dinner party on Saturday for six friends."),
        ("a1", "Nice! For six people a risotto or a slow-roasted lamb shoulder works well."),
        ("u2", "One of my friends is vegetarian and another is allergic to peanuts."),
        ("a2", "A mushroom risotto is vegetarian and naturally free of peanuts; just check the "
               "label of the vegetable stock."),
        ("u3", "For dessert I want to bake a lemon tart like my grandmother made."),
        ("a3", "A lemon tart needs shortcrust pastry, eggs, sugar, butter and four lemons."),
        ("u4", "What wine goes with mushroom risotto?"),
        ("a4", "A dry white such as Pinot Grigio, or a light red like Pinot Noir, pairs well "
               "with mushrooms."),
    ],
    "travel": [
        ("u1", "I'm planning a two-week trip to Japan in April to see the cherry blossoms."),
        ("a1", "April is peak sakura season; Kyoto and Tokyo get very busy, so book hotels "
               "early."),
        ("u2", "I want to take the bullet train from Tokyo to Kyoto."),
        ("a2", "The Shinkansen takes about two hours fifteen minutes; a Japan Rail Pass covers "
               "it."),
        ("u3", "My passport expires in May, is that a problem?"),
        ("a3", "Japan requires a passport valid for your whole stay; renew it before you travel "
               "to be safe."),
        ("u4", "I'd love to try a traditional ryokan with an onsen."),
        ("a4", "Hakone has many ryokan with hot-spring baths and views of Mount Fuji."),
    ],
    "running": [
        ("u1", "I'm training for my first marathon in October."),
        ("a1", "A 16-week plan with one long run a week builds up safely to race distance."),
        ("u2", "My knee hurts after long runs over 20 kilometres."),
        ("a2", "Knee pain after long runs often comes from worn shoes or a sudden jump in "
               "mileage; see a physiotherapist if it persists."),
        ("u3", "I run in Brooks Ghost shoes, bought them two years ago."),
        ("a3", "Running shoes usually last 500 to 800 kilometres; two-year-old shoes may need "
               "replacing."),
        ("u4", "My goal is to finish under four hours."),
        ("a4", "A sub-4 marathon means an average pace of about 5:41 per kilometre."),
    ],
}

QUERIES: list[tuple[str, set[str]]] = [
    ("what did I say about Nvidia?", {"stocks.u1", "stocks.a1", "stocks.a3"}),
    ("Which stocks do I already own?", {"stocks.u2", "stocks.a2"}),
    ("how much money can I invest this month", {"stocks.u3"}),
    ("index fund fees", {"stocks.u4", "stocks.a4", "stocks.a3"}),
    ("Apple shares", {"stocks.u2", "stocks.a2"}),
    ("who is coming to my dinner party?", {"cooking.u1"}),
    ("food allergies of my friends", {"cooking.u2"}),
    ("vegetarian main course", {"cooking.u2", "cooking.a2"}),
    ("my grandmother's dessert", {"cooking.u3"}),
    ("which wine did you suggest?", {"cooking.u4", "cooking.a4"}),
    ("how many people are coming on Saturday", {"cooking.u1", "cooking.a1"}),
    ("when is my trip to Japan?", {"travel.u1"}),
    ("bullet train from Tokyo", {"travel.u2", "travel.a2"}),
    ("Is my passport OK for the trip?", {"travel.u3", "travel.a3"}),
    ("hot spring hotel", {"travel.u4", "travel.a4"}),
    ("cherry blossom season", {"travel.u1", "travel.a1"}),
    ("what's my marathon goal?", {"running.u4", "running.a4"}),
    ("knee pain", {"running.u2", "running.a2"}),
    ("what running shoes do I have", {"running.u3", "running.a3"}),
    ("my marathon training plan", {"running.u1", "running.a1"}),
]

# Another user of the same app, and the same user in another app, talk about the same things:
# none of it may ever come back for the labelled user.
DECOYS: list[str] = [
    "I sold all my Nvidia stock and Apple shares yesterday.",
    "My dinner party needs a vegetarian risotto and a lemon tart.",
    "Our Japan trip: bullet train to Kyoto, passport renewed, ryokan with onsen booked.",
    "My marathon goal is three hours; my knee pain is gone with new running shoes.",
]


def recall_at(k: int, ranked: list[str], relevant: set[str]) -> float:
    """The share of the relevant messages among the first ``k`` results."""
    return len(set(ranked[:k]) & relevant) / len(relevant)

# Queries that say it in other words: few or none of their content words (after stemming)
# appear in the messages they are after, so full-text search alone misses most of them. This is
# the set that shows what semantic search adds (test_semantic.py).
PARAPHRASES: list[tuple[str, set[str]]] = [
    ("what did I tell you about my sore joint?", {"running.u2", "running.a2"}),
    ("which chip maker was I going to put money into?", {"stocks.u1", "stocks.a1"}),
    ("my holiday abroad in spring", {"travel.u1", "travel.a1"}),
    ("the high-speed rail journey", {"travel.u2", "travel.a2"}),
    ("pudding recipe from my nana", {"cooking.u3", "cooking.a3"}),
    ("what should we drink with the meal?", {"cooking.u4", "cooking.a4"}),
    ("ID document that is about to lapse", {"travel.u3", "travel.a3"}),
    ("guests who can't eat meat or nuts", {"cooking.u2", "cooking.a2"}),
    ("how quick do I have to be to reach my target time?", {"running.u4", "running.a4"}),
    ("are my sneakers worn out?", {"running.u3", "running.a3"}),
    ("Japanese inn with thermal baths", {"travel.u4", "travel.a4"}),
    ("cheap passive investing", {"stocks.u4", "stocks.a4"}),
]
