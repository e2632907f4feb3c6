"""Turning what a person types into a safe full-text query.

A memory query is natural language ("what did I say about Nvidia?"), not search syntax. Passed
to SQLite FTS5 as is, its ``?``, quotes, ``-``, ``*``, ``AND``/``NOT`` or an unbalanced
parenthesis raise a syntax error; and its words "what", "did", "I", "say", "about" would make
every message that contains them a match. So the query is reduced to its content words:

1. split into words (letters and digits of any script, and tickers such as ``BRK.B``;
   everything else separates words),
2. lower-cased, de-duplicated, words of English grammar and of "asking about memory"
   (say, said, remember, mention...) dropped,
3. each remaining word is quoted for FTS5 (so no word can act as an operator) and the words are
   OR-ed: a message that mentions any of them is a candidate, and the ranking (bm25 on SQLite,
   ``ts_rank_cd`` on PostgreSQL) puts the messages matching more and rarer words first.

A query with no content word left ("what did I say?", "", "???") has no terms, and the memory
service answers it with no memories instead of an error.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from ..store.memory_tables import UNSPACED_RANGES

__all__ = ["MAX_TERMS", "STOP_WORDS", "fts5_match", "query_terms", "tsquery_text"]

MAX_TERMS = 32
"""The most content words of one query that are searched for (the first ones are kept; a
Chinese or Japanese question gives a term for each pair of its characters)."""

_GRAMMAR = """
a about above after again against all also am an and any are aren as at be because been before
being below between both but by can cannot could couldn did didn do does doesn doing don down
during each either else ever every few for from further get gets got had hadn has hasn have
haven having he her here hers herself him himself his how i if in into is isn it its itself
just let lets ll me might mine more most must mustn my myself neither no nor not now of off on
once only or other ought our ours ourselves out over own per quite re rather s same shall shan
she should shouldn so some such t than that the their theirs them themselves then there these
they this those through to too under until up upon us ve very via was wasn we were weren what
whatever when whenever where wherever whether which while who whoever whom whose why will with
within without won would wouldn yes yet you your yours yourself yourselves d m o y
"""

_ASKING = """
say says said saying tell tells told telling mention mentions mentioned mentioning talk talks
talked talking discuss discussed discussing speak spoke spoken remember remembered recall
recalled recollect ask asked asking earlier previously previous ago before last time times
once thing things something anything everything stuff please could would hey hi hello thanks
thank ok okay
"""

STOP_WORDS = frozenset((_GRAMMAR + _ASKING).split())
"""Words that never become search terms: English function words and the vocabulary of asking
about past conversations."""

# A word is a run of letters and digits, or a ticker with a class suffix ("BRK.B"), kept whole
# because PostgreSQL indexes "BRK.B" as the one token 'brk.b' (SQLite FTS5 reads the quoted term
# as the phrase "brk b", which matches it too); two letters at least before the dot, so "e.g."
# stays two stray letters.
_WORD = re.compile(r"[^\W\d_]{2,5}\.[^\W\d_](?!\w)|[^\W_]+", re.UNICODE)
_UNSPACED = re.compile(f"[{UNSPACED_RANGES}]")


@functools.cache
def _word_with_marks() -> re.Pattern[str]:
    """:data:`_WORD` whose words also take combining marks (Unicode categories M*: Devanagari
    and Thai vowel signs, Arabic and Hebrew vowel points), which Python's ``\\w`` leaves out:
    ``भारत`` was the two terms ``भ`` and ``रत``, neither a word PostgreSQL had indexed. Built
    on first use (the marks of the BMP, ~10 ms), for text that is not ASCII."""
    ranges, start = [], None
    for code in range(0x0300, 0x10000):
        mark = unicodedata.category(chr(code)).startswith("M")
        if mark and start is None:
            start = code
        elif not mark and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    marks = "".join(ranges)
    return re.compile(
        rf"[^\W\d_]{{2,5}}\.[^\W\d_](?![\w{marks}])|(?:[^\W_]|[{marks}])+", re.UNICODE)
_UNSPACED_RUN = re.compile(f"([{UNSPACED_RANGES}]+)")
_HIRAGANA = re.compile("[\u3040-\u309f]+")


def query_terms(query: str | None, *, max_terms: int = MAX_TERMS) -> list[str]:
    """The content words of a query: lower-cased, de-duplicated, in order of appearance.

    Args:
        query: what the person asked, any text (``None`` and ``""`` give no terms).
        max_terms: how many words to keep at most.

    Returns:
        Words made of letters and digits only, a ticker with a class suffix such as
        ``brk.b``, or a phrase of single characters separated by spaces (``太 郎``: see
        ``_pieces``), each safe to quote in any search syntax; empty when the query has no
        content word.

    Example:
        >>> query_terms("What did I say about Nvidia's earnings?")
        ['nvidia', 'earnings']
    """
    if not query:
        return []
    text = unicodedata.normalize("NFKC", str(query)).lower()
    terms: list[str] = []
    seen: set[str] = set()
    for found in (_WORD if text.isascii() else _word_with_marks()).findall(text):
        for word in _pieces(found):
            if word in STOP_WORDS or word in seen:
                continue
            if len(word) == 1 and word.isascii() and not word.isdigit():
                continue  # stray letters ("s" of "Nvidia's" is already a stop word; "x", "q")
            seen.add(word)
            terms.append(word)
            if len(terms) >= max_terms:
                return terms
    return terms


def _pieces(word: str) -> list[str]:
    """A word as search terms: as it is, or, where it has characters of a script written
    without spaces (``memory_tables.UNSPACED_RANGES``, which the index takes one by one), those
    as phrases of single characters and the rest as words (``pythonで`` -> ``python``).

    A run of one or two characters is one phrase (``太郎`` -> ``太 郎``); a longer one, its
    overlapping pairs (``太郎は`` -> ``太 郎``, ``郎 は``), so that a word followed by a
    particle, or a question typed without spaces, still finds the word. Pairs of hiragana
    alone are left out when the run has others (``について`` is grammar, as "about" is: it
    ranked ``それについて`` above ``東京`` for ``東京について``), and so is a lone hiragana
    character, as stray Latin letters are.
    """
    if not _UNSPACED.search(word):
        return [word]
    out: list[str] = []
    for piece in _UNSPACED_RUN.split(word):
        if not piece:
            continue
        if not _UNSPACED.match(piece):
            out.append(piece)
        elif len(piece) == 1:
            if not _HIRAGANA.fullmatch(piece):
                out.append(piece)
        elif len(piece) == 2:
            out.append(" ".join(piece))
        else:
            pairs = [piece[i:i + 2] for i in range(len(piece) - 1)]
            content = [pair for pair in pairs if not _HIRAGANA.fullmatch(pair)]
            out.extend(" ".join(pair) for pair in (content or pairs))
    return out


def fts5_match(terms: list[str], *, scope_token: str | None = None) -> str:
    """An FTS5 ``MATCH`` expression that OR-s the terms, optionally within one scope token.

    Every term is a double-quoted FTS5 string, so none can act as an operator or column filter.
    With ``scope_token`` the expression is ``scope : "<token>" AND {text context} : (...)``:
    FTS5 itself intersects the scope's rows with the matches, so other users' rows are never
    ranked, and the terms are looked for in the message and its context only.

    Args:
        terms: output of :func:`query_terms` (must not be empty).
        scope_token: the app/user token indexed in the ``scope`` column, if any.

    Raises:
        ValueError: ``terms`` is empty.
    """
    if not terms:
        raise ValueError("A full-text query needs at least one term.")
    ored = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    if scope_token is None:
        return ored
    return f'scope : "{scope_token}" AND {{text context}} : ({ored})'


def tsquery_text(terms: list[str]) -> str:
    """Text for PostgreSQL ``websearch_to_tsquery`` that OR-s the terms.

    ``websearch_to_tsquery`` never raises on its input; the terms are plain words already, so
    ``or`` between them is the only operator in the text.

    Raises:
        ValueError: ``terms`` is empty.
    """
    if not terms:
        raise ValueError("A full-text query needs at least one term.")
    return " or ".join(f'"{term}"' if " " in term else term for term in terms)
