"""How the CLI shows things to a person: rich tables and trees, compact summaries, progress.

Every view here has a ``--json`` counterpart in its command for programs; these are for people.
Nothing here reads the database: each function takes plain values and returns a renderable.

Piped output: :func:`console` (and every rich ``Console`` made while a command runs, see
``multi_agent.cli.main``) is wide when stdout is not a terminal, so a table row or a tree
line stays on one line and an id is never wrapped in the middle.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..defaults import TRANSFER_TOOL
from ..store.facts import content_texts
from . import is_terminal

__all__ = [
    "PIPE_WIDTH",
    "CliConsole",
    "ProgressBar",
    "console",
    "details_tree",
    "event_text",
    "history_table",
    "prefs_table",
    "progress",
    "sessions_table",
    "short",
    "show",
    "state_tree",
    "stats_table",
    "tool_results",
    "transfer_target",
    "value_tree",
]

PIPE_WIDTH = 1000
"""The width rich renders at when stdout is not a terminal (and $COLUMNS is not set)."""

SUMMARY_CHARS = 100
"""The longest one-line summary of a value in the state view."""

BOX = box.SIMPLE_HEAD


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its control characters shown (``\\x1b``) instead of sent to the terminal:
    what people, agents and tools wrote is stored exactly, and may hold escape sequences that
    would clear the screen, retitle the window or fake output. Newlines and tabs stay."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class CliConsole(Console):
    """rich's Console, except that

    * the text of everything printed goes through :func:`printable` (rich's own styling and
      cursor codes are added after, so they still work): stored content never reaches the
      terminal as control sequences, whichever table, tree or line shows it;
    * a closed pipe raises ``BrokenPipeError`` (which ``multi_agent.cli.main`` turns into a
      quiet exit 141) instead of rich's ``SystemExit(1)``, which would read as a failure, and
      skip the clean-up of the code between."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            Segment(printable(seg.text), seg.style, seg.control)
            if seg.control is None and _CONTROLS.search(seg.text) else seg
            for seg in buffer)

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def console(*, stderr: bool = False, **options: Any) -> Console:
    """A Console for the CLI: no syntax highlighting; wide (never wrapping) when piped."""
    stream = sys.stderr if stderr else sys.stdout
    if not is_terminal(stream) and not os.environ.get("COLUMNS", "").isdigit():
        options.setdefault("width", PIPE_WIDTH)
    return CliConsole(file=stream, **{"highlight": False, **options})


def show(out: Console, renderable: Any) -> None:
    """Prints ``renderable``; when ``out`` is not a terminal, without the spaces rich pads table
    cells with at the ends of lines (piped output that ``diff`` and ``grep`` read cleanly)."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    out.file.write("".join(line + "\n" for line in lines))
    out.file.flush()


def short(value: Any, limit: int = 160) -> str:
    """``value`` on one line, at most ``limit`` characters (JSON for non-strings)."""
    text = value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, sort_keys=True, default=str
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transfer_target(call: Any) -> str | None:
    """The agent a ``transfer_to_agent`` call hands the conversation to; None for any other
    function call."""
    return str((call.args or {}).get("agent_name")) if call.name == TRANSFER_TOOL else None


def tool_results(event: Any) -> list[Any]:
    """The event's function responses, the transfers' (which say nothing) left out."""
    return [r for r in event.get_function_responses() if r.name != TRANSFER_TOOL]


def event_text(event: Any) -> str:
    """What an event says: its text parts joined by newlines, thoughts left out ("" if none)."""
    return "\n".join(content_texts(event.content))


def _when(value: Any) -> str:
    """An ISO time or epoch seconds as local ``YYYY-MM-DD HH:MM``; anything else as given."""
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value).astimezone()
        else:
            moment = datetime.fromisoformat(str(value)).astimezone()
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value) if value not in (None, "") else "-"
    return moment.strftime("%Y-%m-%d %H:%M")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def summary(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """One line that says what ``value`` holds without printing all of it."""
    if isinstance(value, str):
        return short(value, limit) if value else '""'
    if _scalar(value):
        return json.dumps(value)
    if isinstance(value, list):
        if not value:
            return "(empty)"
        if all(_scalar(v) for v in value):
            return short(", ".join(str(v) for v in value), limit)
        return f"{len(value)} entries" if len(value) != 1 else "1 entry"
    if isinstance(value, dict):
        if not value:
            return "(empty)"
        return short("; ".join(f"{k}: {summary(v, limit)}" for k, v in value.items()), limit)
    return short(value, limit)


def _add_value(node: Tree, key: str, value: Any, depth: int) -> None:
    """Adds ``key: summary`` under ``node``; a dict of dicts opens one more level."""
    label = Text(str(key), style="bold")
    nested = isinstance(value, dict) and (
        any(not _scalar(v) for v in value.values()) or len(summary(value, 10_000)) > SUMMARY_CHARS
    )
    if nested and depth > 0 and len(value) <= 20:
        child = node.add(label)
        for k, v in value.items():
            _add_value(child, k, v, depth - 1)
        return
    label.append("  ")
    label.append(summary(value), style="dim" if value in ({}, [], None, "") else "")
    node.add(label)


SCOPES = (
    ("session", "this session only"),
    ("user", "shared by all your sessions"),
    ("app", "shared by every user"),
)


def state_tree(state: Mapping[str, Any], *, title: str) -> Tree:
    """The state grouped by scope (session, user:, app:), one summarised line per key.

    ``/state KEY`` (or ``multi-agent state --key KEY``) shows one key in full.
    """
    groups: dict[str, list[tuple[str, Any]]] = {name: [] for name, _ in SCOPES}
    for key in sorted(state):
        scope, _, rest = key.partition(":")
        if rest and scope in ("user", "app"):
            groups[scope].append((rest, state[key]))
        elif not key.startswith("temp:"):
            groups["session"].append((key, state[key]))
    tree = Tree(Text(title, style="bold"))
    for name, meaning in SCOPES:
        prefix = "" if name == "session" else f"{name}:"
        branch = tree.add(Text.assemble((f"{name}", "bold cyan"), (f"  {meaning}", "dim")))
        if not groups[name]:
            branch.add(Text("(nothing stored)", style="dim"))
        for key, value in groups[name]:
            _add_value(branch, f"{prefix}{key}", value, depth=1)
    return tree


def value_tree(key: str, value: Any) -> Tree:
    """One value in full, as a tree (dicts and lists open, scalars on their line)."""

    def add(node: Tree, label: str, item: Any) -> None:
        if isinstance(item, dict) and item:
            child = node.add(Text(label, style="bold"))
            for k, v in item.items():
                add(child, str(k), v)
        elif isinstance(item, list) and item and not all(_scalar(v) for v in item):
            child = node.add(Text.assemble((label, "bold"), (f"  {len(item)} items", "dim")))
            for i, v in enumerate(item, 1):
                add(child, f"[{i}]", v)
        else:
            shown = summary(item, limit=10_000) if not isinstance(item, str) else item or '""'
            node.add(Text.assemble((label, "bold"), "  ", shown))

    root = Tree(Text(key, style="bold"))
    if isinstance(value, dict) and value:
        for k, v in value.items():
            add(root, str(k), v)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value, 1):
            add(root, f"[{i}]", v)
    else:
        root.add(summary(value, limit=10_000) if not isinstance(value, str) else value)
    return root


def _table(title: str | None, *columns: tuple[str, dict[str, Any]]) -> Table:
    table = Table(title=title, box=BOX, title_justify="left", title_style="bold",
                  show_edge=False, pad_edge=False)
    for name, options in columns:
        table.add_column(name, **options)
    return table


ID = {"no_wrap": True, "overflow": "ignore"}


def history_table(history: Sequence[Any], *, title: str | None = None) -> Table:
    """The session's exchanges: when, what you said, who answered, the answer (shortened)."""
    table = _table(
        title, ("#", {"justify": "right"}), ("time", {"no_wrap": True}), ("you said", {}),
        ("answered by", {"no_wrap": True, "style": "magenta"}), ("answer", {}),
    )
    for number, item in enumerate(history, 1):
        item = item if isinstance(item, dict) else {"user_input": item}
        table.add_row(
            str(number), _when(item.get("timestamp")), short(item.get("user_input") or "", 80),
            str(item.get("agent") or "-"), short(item.get("agent_response") or "-", 120),
        )
    return table


PREF_LABELS = {
    "joke_preferences": "joke topics",
    "stock_watchlist": "watch list",
    "favorite_agent": "favourite agent",
    "nerd_topics": "nerd topics",
}


def prefs_table(prefs: Mapping[str, Any], *, title: str | None = None) -> Table:
    """Your preferences, one per row (known ones by a readable name)."""
    table = _table(title, ("preference", {"no_wrap": True, "style": "bold"}), ("value", {}))
    keys = [k for k in PREF_LABELS if k in prefs] + sorted(k for k in prefs if k not in PREF_LABELS)
    for key in keys:
        value = prefs[key]
        shown = summary(value) if value not in (None, "", [], {}) else "-"
        table.add_row(PREF_LABELS.get(key, key), shown)
    return table


def stats_table(stats: Mapping[str, Any], *, title: str | None = None) -> Table:
    """How often each agent helped, most used first."""
    table = _table(title, ("agent", {"no_wrap": True, "style": "magenta"}),
                   ("times", {"justify": "right"}), ("last time", {"no_wrap": True}))

    def count(item: Any) -> int:
        value = item.get("delegations", 0) if isinstance(item, dict) else 0
        return value if isinstance(value, int) else 0

    for name, info in sorted(stats.items(), key=lambda kv: (-count(kv[1]), kv[0])):
        last = info.get("last_used") if isinstance(info, dict) else None
        table.add_row(str(name), str(count(info)), _when(last))
    return table


def sessions_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None,
                   current: str | None = None) -> Table:
    """Sessions, oldest update first; ``current`` is marked with ``*``."""
    columns: list[tuple[str, dict[str, Any]]] = []
    if current is not None:
        columns.append(("", {"no_wrap": True}))
    columns += [("session id", ID), ("last update", {"no_wrap": True}),
                ("interactions", {"justify": "right"})]
    table = _table(title, *columns)
    for row in rows:
        cells = [str(row["id"]), str(row["last_update"]), str(row["interactions"])]
        if current is not None:
            cells.insert(0, "*" if row["id"] == current else "")
        table.add_row(*cells)
    return table


def details_tree(events: Sequence[Any], *, title: str) -> Tree:
    """What one run did, event by event: delegations, tool calls and results, state changes,
    answers."""
    tree = Tree(Text(title, style="bold"))
    for event in events:
        author = event.author or "?"
        for call in event.get_function_calls():
            target = transfer_target(call)
            if target is not None:
                tree.add(Text(f"↪ {author} → {target}", style="magenta"))
            else:
                tree.add(Text(f"→ {author} calls {call.name}({short(call.args or {})})"))
        for response in tool_results(event):
            tree.add(Text(f"← {response.name}: {short(response.response)}", style="dim"))
        delta = event.actions.state_delta if event.actions else {}
        if delta:
            node = tree.add(Text("state: " + ", ".join(sorted(delta)), style="yellow"))
            for key in sorted(delta):
                node.add(Text.assemble((key, "bold"), "  ", summary(delta[key])))
        said = event_text(event)
        if said:
            who = "you" if author == "user" else author
            tree.add(Text.assemble((f"[{who}] ", "bold cyan"), short(said, 300)))
    if not events:
        tree.add(Text("(no events)", style="dim"))
    return tree


# -- progress ------------------------------------------------------------------------------------


class ProgressBar:
    """What :func:`progress` yields: report how far the work is.

    ``update(done, total)`` (or calling the bar: it is a ``(done, total)`` callback) sets the
    position, and the total once it is known; ``advance(n)`` moves it on by ``n``. Both are
    cheap enough to call per item, and only count when the bar is not shown.
    """

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task
        self.done = 0.0
        self.total: float | None = None

    def update(self, done: float, total: float | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=done,
                             **({"total": total} if total is not None else {}))

    def advance(self, amount: float = 1) -> None:
        self.update(self.done + amount)

    def __call__(self, done: float, total: float | None = None) -> None:
        self.update(done, total)


@contextmanager
def progress(description: str, *, total: float | None = None, unit: str = "",
             show: bool | None = None) -> Iterator[ProgressBar]:
    """A progress bar on stderr for long work (an import, the embedding backfill).

    Shown only when stderr is a terminal (``show`` overrides), so piped or redirected output
    gets no control characters; stdout is never touched. ``unit="bytes"`` shows sizes and a
    transfer rate. The bar is left on the screen, complete, when the work ends.

    Example:
        >>> with progress("Embedding memories", total=len(rows)) as bar:
        ...     for row in rows:
        ...         embed(row)
        ...         bar.advance()
    """
    if show is None:
        show = is_terminal(sys.stderr)
    if not show:
        bar = ProgressBar()
        bar.update(0, total)
        yield bar
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns.append(MofNCompleteColumn())
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as rich_bar:
        task = rich_bar.add_task(description, total=total)
        yield ProgressBar(rich_bar, task)
