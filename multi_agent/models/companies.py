"""Ticker symbols and company names of common US large caps, so that each finds the other.

A small static table (no network, no data files): enough for "what did I say about Nvidia?" to
find a message that said "NVDA", for "price of Apple" to look up AAPL, and for a typo such as
"aple" or "nvdia" to be answered with a question ("did you mean Apple (AAPL)?") instead of a
lookup of the wrong ticker. Companies outside the table are still handled by their ticker; the
table only adds names.

Some tickers are ordinary words or one or two letters (``V``, ``KO``, ``MS``, ``COST``, ``NOW``):
those are *ambiguous*. They are recognised in a query only when written in capitals (``KO`` is
Coca-Cola, "ko" is not), and they are never added to a search on their own, since a search
for "cost" or "ms" would find ordinary messages.

Functions:

* :func:`lookup` — the company a ticker or a name stands for ("nvda", "Nvidia", "BRK-B");
* :func:`suggest` — companies a misspelt word was probably meant to be ("aple" → Apple);
* :func:`mentioned` — the companies a piece of text names or whose ticker it uses;
* :func:`search_aliases` — the other names and tickers to look for when searching for a text;
* :func:`alias_in` — which of those aliases a stored message contains (and so why it matched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

__all__ = [
    "AMBIGUOUS_TICKERS",
    "COMPANIES",
    "Alias",
    "Company",
    "alias_in",
    "lookup",
    "mentioned",
    "name_pattern",
    "search_aliases",
    "suggest",
]


@dataclass(frozen=True, slots=True)
class Company:
    """One company: its ticker symbols (the first is the main one) and names (the first is
    the usual one)."""

    tickers: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def ticker(self) -> str:
        return self.tickers[0]

    @property
    def name(self) -> str:
        return self.names[0]

    def label(self) -> str:
        """``Apple (AAPL)``; ``AMD`` when the name is the ticker."""
        return self.ticker if self.name.upper() == self.ticker else f"{self.name} ({self.ticker})"


def _c(tickers: str, *names: str) -> Company:
    return Company(tuple(tickers.split()), names)


COMPANIES: tuple[Company, ...] = (
    _c("AAPL", "Apple"),
    _c("MSFT", "Microsoft"),
    _c("NVDA", "Nvidia"),
    _c("GOOGL GOOG", "Alphabet", "Google"),
    _c("AMZN", "Amazon"),
    _c("META", "Meta", "Meta Platforms", "Facebook"),
    _c("TSLA", "Tesla"),
    _c("BRK.B BRK.A", "Berkshire Hathaway", "Berkshire"),
    _c("AVGO", "Broadcom"),
    _c("LLY", "Eli Lilly", "Lilly"),
    _c("JPM", "JPMorgan Chase", "JPMorgan", "JP Morgan"),
    _c("V", "Visa"),
    _c("MA", "Mastercard"),
    _c("UNH", "UnitedHealth", "UnitedHealth Group"),
    _c("XOM", "ExxonMobil", "Exxon Mobil", "Exxon"),
    _c("WMT", "Walmart"),
    _c("JNJ", "Johnson & Johnson", "J&J"),
    _c("PG", "Procter & Gamble", "P&G"),
    _c("HD", "Home Depot"),
    _c("COST", "Costco"),
    _c("ORCL", "Oracle"),
    _c("ABBV", "AbbVie"),
    _c("MRK", "Merck"),
    _c("CVX", "Chevron"),
    _c("KO", "Coca-Cola", "Coca Cola", "Coke"),
    _c("PEP", "PepsiCo", "Pepsi"),
    _c("BAC", "Bank of America"),
    _c("NFLX", "Netflix"),
    _c("AMD", "AMD", "Advanced Micro Devices"),
    _c("ADBE", "Adobe"),
    _c("CRM", "Salesforce"),
    _c("CSCO", "Cisco"),
    _c("TMO", "Thermo Fisher", "Thermo Fisher Scientific"),
    _c("MCD", "McDonald's", "McDonalds"),
    _c("ABT", "Abbott", "Abbott Laboratories"),
    _c("INTC", "Intel"),
    _c("INTU", "Intuit"),
    _c("QCOM", "Qualcomm"),
    _c("TXN", "Texas Instruments"),
    _c("IBM", "IBM"),
    _c("DIS", "Disney", "Walt Disney"),
    _c("NKE", "Nike"),
    _c("PFE", "Pfizer"),
    _c("WFC", "Wells Fargo"),
    _c("GS", "Goldman Sachs", "Goldman"),
    _c("MS", "Morgan Stanley"),
    _c("CAT", "Caterpillar"),
    _c("BA", "Boeing"),
    _c("GE", "GE Aerospace", "General Electric"),
    _c("UBER", "Uber"),
    _c("PYPL", "PayPal"),
    _c("T", "AT&T"),
    _c("VZ", "Verizon"),
    _c("TMUS", "T-Mobile"),
    _c("CMCSA", "Comcast"),
    _c("PLTR", "Palantir"),
    _c("SBUX", "Starbucks"),
    _c("AMGN", "Amgen"),
    _c("NOW", "ServiceNow"),
    _c("AMAT", "Applied Materials"),
    _c("MU", "Micron", "Micron Technology"),
)

AMBIGUOUS_TICKERS = frozenset(
    t for c in COMPANIES for t in c.tickers
    if len(t) <= 2 or t in {"COST", "CAT", "NOW", "DIS", "PEP"}
)
"""Tickers that are also ordinary words or too short to search for on their own."""


@dataclass(frozen=True, slots=True)
class Alias:
    """Another way a searched-for company is written, with the pattern that finds it."""

    text: str
    company: Company
    pattern: re.Pattern[str]


def _key(text: str) -> str:
    """A name or ticker as compared: lower case, curly quotes straight, ``-``/``/`` between
    ticker letters read as ``.``, a possessive ``'s`` dropped, spaces collapsed."""
    value = " ".join(text.replace("\u2019", "'").lower().split()).strip(" .,!?;:")
    value = re.sub(r"^\$", "", value)
    value = re.sub(r"^([a-z]{1,5})[-/]([a-z]{1,2})$", r"\1.\2", value)
    if value.endswith("'s") and value not in _BY_KEY:
        value = value[:-2]
    return value


_BY_KEY: dict[str, Company] = {}
for _company in COMPANIES:
    for _alias in (*_company.tickers, *_company.names):
        _BY_KEY.setdefault(" ".join(_alias.lower().split()), _company)
_TICKERS = {t.lower(): c for c in COMPANIES for t in c.tickers}


def lookup(text: str) -> Company | None:
    """The company ``text`` is the ticker or the name of (case does not matter), else None.

    Example:
        >>> lookup("nvda").name, lookup("Bank of America").ticker, lookup("brk-b").ticker
        ('Nvidia', 'BAC', 'BRK.B')
    """
    return _BY_KEY.get(_key(text)) if text else None


def is_ticker(text: str) -> bool:
    """Whether ``text`` is one of the table's ticker symbols (any case, ``$`` allowed)."""
    return _key(text) in _TICKERS


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours counts once), or limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        prev2, prev = prev, row
    return prev[-1]


def suggest(word: str) -> list[Company]:
    """The companies a misspelt name or ticker was probably meant to be, best first.

    Only for a word of 4 letters or more that is not itself in the table; it must start with
    the same letter as the name or ticker, and be one edit away (two for words of 7 letters or
    more; swapping two neighbouring letters is one edit). Ambiguous tickers are not suggested.

    Example:
        >>> [c.ticker for c in suggest("aple")], [c.ticker for c in suggest("nvdia")]
        (['AAPL'], ['NVDA'])
    """
    key = _key(word)
    if len(key) < 4 or key in _BY_KEY:
        return []
    limit = 1 if len(key) < 7 else 2
    scored: dict[Company, int] = {}
    for alias, company in _BY_KEY.items():
        if alias[0] != key[0] or alias.upper() in AMBIGUOUS_TICKERS:
            continue
        dist = _distance(key, alias, limit)
        if dist <= limit and dist < scored.get(company, limit + 1):
            scored[company] = dist
    return sorted(scored, key=lambda c: (scored[c], COMPANIES.index(c)))


def _alias_regex(alias: str) -> str:
    if re.fullmatch(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?", alias):  # a ticker: $NVDA, BRK.B, BRK-B
        body = re.escape(alias).replace(r"\.", r"[.\-/]")
        return rf"(?<![\w.&'-])\$?{body}(?![\w&]|[.\-/]\w)"
    words = [re.escape(w) for w in re.split(r"[\s\-]+", alias.replace("\u2019", "'"))]
    body = r"[\s\-]*".join(words) if len(words) > 1 else words[0]
    body = body.replace("'", "['\u2019]?")
    return rf"(?<![\w&'-]){body}(?:['\u2019]s)?(?![\w&]|-\w)"


@cache
def _pattern(alias: str) -> re.Pattern[str]:
    ambiguous = alias in AMBIGUOUS_TICKERS
    return re.compile(_alias_regex(alias), 0 if ambiguous else re.IGNORECASE)


def mentioned(text: str) -> list[Company]:
    """The companies ``text`` names or uses the ticker of, in table order.

    Names and unambiguous tickers match in any case ("nvidia", "nvda", "$NVDA"); ambiguous
    tickers only in capitals ("KO", "$KO", not "ko").
    """
    if not text:
        return []
    found: list[Company] = []
    for company in COMPANIES:
        if any(_pattern(a).search(text) for a in (*company.tickers, *company.names)):
            found.append(company)
    return found


def search_aliases(query: str) -> list[Alias]:
    """What else to look for when searching for ``query``: the other names and tickers of
    every company it mentions, except ambiguous tickers and what the query already says.

    Example:
        >>> [a.text for a in search_aliases("Nvidia")]
        ['NVDA']
        >>> [a.text for a in search_aliases("what did I say about GOOGL?")]
        ['GOOG', 'Google', 'Alphabet']
    """
    aliases: list[Alias] = []
    for company in mentioned(query):
        names = (*company.tickers, *company.names)
        covered = [_pattern(a) for a in names if _pattern(a).search(query)]
        for alias in sorted(names, key=len):  # shorter first: "Berkshire" covers the rest
            if alias in AMBIGUOUS_TICKERS or any(p.search(alias) for p in covered):
                continue  # "Berkshire Hathaway" is found by "Berkshire" already
            covered.append(_pattern(alias))
            aliases.append(Alias(alias, company, _pattern(alias)))
    return aliases


def alias_in(text: str, aliases: list[Alias]) -> Alias | None:
    """The first of ``aliases`` that ``text`` contains, else None."""
    if not text:
        return None
    return next((a for a in aliases if a.pattern.search(text)), None)


def name_pattern() -> str:
    """A regular expression (no groups) matching any company name of the table, longest
    first, for the intent table ("price of Bank of America", "Nvidia stock")."""
    names = sorted({n for c in COMPANIES for n in c.names}, key=len, reverse=True)
    parts = []
    for name in names:
        words = [re.escape(w) for w in re.split(r"[\s\-]+", name)]
        parts.append(r"[\s\-]*".join(words).replace("'", "'?"))
    return "(?:" + "|".join(parts) + ")"
