"""The store owns its tables and its dialects (issue 14): outside ``multi_agent/store/`` no code
names a store table or branches on the kind of database.

Read from the source (Python's ``ast``, so comments and docstrings do not count), over every
tracked ``.py`` file but the store's, the tests' and the benchmarks' (which compare with ADK's
own tables):

* a **table name**: a string constant with a word ``ma_...`` (``"ma_events"``, SQL text such as
  ``"SELECT ... FROM ma_runs"``, a prefix test ``startswith("ma_")``);
* a **dialect branch**: a comparison (``==``, ``!=``, ``in``) or a ``startswith``/``endswith``
  with a string constant that begins with ``sqlite`` or ``postgres`` (also after a ``+``, as
  in ``"multi-agent+postgresql"``).

What is legitimate is in :data:`ALLOWED`, each with its reason; an entry that no longer matches
anything fails too (so the list shrinks with the code). For example, writing
``if db_url.startswith("sqlite"):`` in ``multi_agent/team/serve/tokens.py`` (what it did
before the token file moved to ``multi_agent/store/api_tokens.py``) fails
``test_no_dialect_branch_outside_the_store``.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = ("multi_agent/store/", "tests/", "bench/")
TABLE = re.compile(r"\bma_[a-z_]*")
DIALECT = re.compile(r"(?:^|\+)(?:sqlite|postgres)", re.IGNORECASE)

ALLOWED: dict[tuple[str, str], str] = {
    ("demo_flow.py", "table"):
        "the tour shows the reader the database it made: each table with its row count, and "
        "which table holds which scope of state",
    ("demo_flow.py", "dialect"):
        "the tour says which database it writes to (a SQLite file, or PostgreSQL on a host)",
    ("multi_agent/services.py", "dialect"):
        "URI scheme parsing: multi-agent+postgresql:// and multi-agent+sqlite:// pick the "
        "database URL handed to the store, and which URI options apply",
    ("multi_agent/cli/inspect.py", "dialect"):
        "missing_database: the inspection commands refuse a SQLite file that does not exist "
        "rather than create an empty one (a store helper naming the file of a URL would do)",
    ("multi_agent/cli/inspect.py", "table"):
        "remove_if_empty: a refused import into a new path removes the database file it made, "
        "only if no session is in it (ma_sessions) and no other program's table is (ma_*); "
        "a store helper would do",
}


def _sources() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split()
            if not name.startswith(SKIPPED) and (ROOT / name).is_file()]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _strings(node: ast.AST) -> list[str]:
    """The string constants ``node`` is or holds (a tuple of them, an f-string's parts)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    items = node.values if isinstance(node, ast.JoinedStr) else (
        node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [])
    return [s for item in items for s in _strings(item)]


def _dialect_branches(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        operands: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith")):
            operands = list(node.args)
        if any(DIALECT.search(s) for operand in operands for s in _strings(operand)):
            lines.append(node.lineno)
    return lines


def _table_names(tree: ast.AST) -> list[int]:
    skip = _docstrings(tree)
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip and TABLE.search(node.value)]


def _findings(kind: str) -> dict[str, list[int]]:
    check = _table_names if kind == "table" else _dialect_branches
    out = {}
    for path in _sources():
        lines = check(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if lines:
            out[str(path.relative_to(ROOT))] = sorted(set(lines))
    return out


def _check(kind: str) -> None:
    found = _findings(kind)
    unexpected = {p: lines for p, lines in found.items() if (p, kind) not in ALLOWED}
    assert not unexpected, (
        f"store {kind} names/branches outside multi_agent/store/ (file: lines); move them into "
        f"the store, or add a reasoned entry to ALLOWED: {unexpected}")
    stale = [p for (p, k) in ALLOWED if k == kind and p not in found]
    assert not stale, f"ALLOWED entries that match nothing any more (remove them): {stale}"


def test_no_store_table_name_outside_the_store() -> None:
    _check("table")


def test_no_dialect_branch_outside_the_store() -> None:
    _check("dialect")


def test_the_checks_find_what_they_look_for() -> None:
    """The two checks on code that has what they look for (and on code that has not)."""
    branch = ast.parse('if url.startswith("sqlite"):\n    pass\nok = kind == "postgresql"\n'
                       'x = scheme in ("multi-agent+postgresql",)\n')
    assert _dialect_branches(branch) == [1, 3, 4]
    tables = ast.parse('"""About ma_events."""\nq = "SELECT * FROM ma_runs"\n'
                       'name = f"ma_{x}"\n')
    assert _table_names(tables) == [2, 3]
    clean = ast.parse('url = f"sqlite+aiosqlite:///{path}"\nsay("The tables are rows.")\n')
    assert (_dialect_branches(clean), _table_names(clean)) == ([], [])
