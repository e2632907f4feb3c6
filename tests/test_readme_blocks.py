"""Every code block of the README is claimed: a test reads that section and runs its commands,
or the block is listed here with the reason it is not run as printed (a placeholder host, a
paid API key) and where what it shows is tested instead. A new block no test claims fails.

The Layout block is checked here: every path it names exists.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Section heading -> the tests that read that section of the README and run its block(s).
RUN_BY = {
    "Two commands": ["tests/chat/test_readme_transcript.py"],
    "Install": ["tests/packaging/test_wheels.py"],
    "The offline model in your own agents": ["tests/agents/test_offline_generic.py"],
    "Moving from ADK's own session service": ["tests/store/test_adk_import.py"],
    "Serving the team over HTTP": ["tests/serve/test_readme_serve.py"],
    "The web page": ["tests/web/_served.py"],
    "Forgetting a user": ["tests/lifecycle/test_forget_cli.py"],
    "Retention": ["tests/lifecycle/test_forget_cli.py"],
    "Trimming a session's history": ["tests/lifecycle/test_readme_trim_and_keys.py"],
    "Encryption at rest": ["tests/lifecycle/test_readme_trim_and_keys.py"],
}

# Blocks not run as printed, with the reason and the tests that cover what they show.
NOT_RUN_AS_PRINTED = {
    "Using a real LLM": "needs a paid API key or a local Ollama; the model selection is "
                        "tested in tests/agents/test_select.py without one",
    "Using PostgreSQL": "a placeholder host; `multi-agent chat --db postgresql+asyncpg://...` "
                        "runs against the real test server in tests/chat",
    "Using it from `adk web` / `adk api_server`": "placeholder host and a path of the reader's; "
                        "the same commands run with real URLs in "
                        "tests/packaging/test_adk_cli_repo.py and test_wheels.py",
    "The session store as a library": "a fragment (`my_agent` is the reader's); the service "
                        "under ADK's Runner is tests/store/test_runner.py",
    "Concurrency: what is refused, what is merged": "a tool body shown as an example; "
                        "StateUpdates is tested in tests/store/test_scopes.py and by the "
                        "team's state tools",
    "Layout": "checked here: every path it names exists",
}


def blocks() -> list[tuple[str, str]]:
    """(nearest heading, block text) of every fenced block."""
    found, heading, inside, lines = [], "", False, []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside:
                found.append((heading, "\n".join(lines)))
            inside, lines = not inside, []
            continue
        if inside:
            lines.append(line)
        elif m := re.match(r"^#{2,3} (.+)$", line):
            heading = m.group(1)
    return found


def test_every_block_is_run_by_a_test_or_explained() -> None:
    unclaimed = sorted({h for h, _ in blocks() if h not in RUN_BY and h not in NOT_RUN_AS_PRINTED})
    assert not unclaimed, f"README blocks no test claims: {unclaimed}"
    headings = {h for h, _ in blocks()}
    stale = sorted((set(RUN_BY) | set(NOT_RUN_AS_PRINTED)) - headings)
    assert not stale, f"claims of sections without a block: {stale}"


def test_the_claiming_tests_read_their_section() -> None:
    for heading, tests in RUN_BY.items():
        for test in tests:
            source = (ROOT / test).read_text(encoding="utf-8")
            assert "README" in source and heading in source, (heading, test)


def test_the_explained_blocks_name_tests_that_exist() -> None:
    for heading, reason in NOT_RUN_AS_PRINTED.items():
        for path in re.findall(r"tests/[\w/]+\.py", reason):
            assert (ROOT / path).exists(), (heading, path)


def test_the_layout_names_real_paths() -> None:
    (layout,) = [text for h, text in blocks() if h == "Layout"]
    names = []
    for line in layout.splitlines():
        names += [w.rstrip("/") for w in line.split("  ")[0].split() if w.endswith("/") or "." in w]
    assert "multi_agent" in names and "demo_flow.py" in names
    for name in names:
        matches = list(ROOT.glob(f"**/{name}")) if "/" not in name else [ROOT / name]
        assert any(m.exists() for m in matches), name
