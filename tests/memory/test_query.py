"""Query parsing: content words only, safe in any search syntax."""

from __future__ import annotations

import pytest

from multi_agent.memory.query import MAX_TERMS, fts5_match, query_terms, tsquery_text


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("what did I say about Nvidia?", ["nvidia"]),
        ("What did I say about Nvidia's earnings?", ["nvidia", "earnings"]),
        ("Do you remember my marathon goal?", ["marathon", "goal"]),
        ("what did we talk about?", []),
        ("", []),
        (None, []),
        ('"NOT" AND (near*)', ["near"]),
        ("Größe straße", ["größe", "straße"]),
        ("東京 trip 2024", ["東 京", "trip", "2024"]),  # a phrase of its characters
        ("太郎について", ["太 郎", "郎 に"]),  # pairs of a long run, not hiragana's alone
        ("太郎は？", ["太 郎", "郎 は"]),  # a word with its particle
        ("について", ["に つ", "つ い", "い て"]),  # only hiragana: all its pairs
        ("pythonで", ["python"]),  # a lone hiragana character, as a stray letter
        ("猫", ["猫"]),
        ("मुझे भारत", ["मुझे", "भारत"]),  # vowel signs (combining marks) inside the word
        ("اسمي مُحَمَّد", ["اسمي", "مُحَمَّد"]),
        ("nvidia NVIDIA Nvidia", ["nvidia"]),
        ("x_y-z", []),  # single letters are dropped
    ],
)
def test_query_terms(query: str | None, terms: list[str]) -> None:
    assert query_terms(query) == terms


def test_terms_are_capped() -> None:
    assert len(query_terms(" ".join(f"word{i}" for i in range(100)))) == MAX_TERMS


def test_match_expressions_quote_every_term() -> None:
    assert fts5_match(["nvidia", "gpu"]) == '"nvidia" OR "gpu"'
    assert fts5_match(["a1"], scope_token="z00") == 'scope : "z00" AND {text context} : ("a1")'
    assert tsquery_text(["nvidia", "gpu"]) == "nvidia or gpu"
    with pytest.raises(ValueError):
        fts5_match([])
    with pytest.raises(ValueError):
        tsquery_text([])
