"""The README's chat sample is exactly what the real ``multi-agent chat`` prints.

The sample under "Two commands" is a list of ``$ .venv/bin/multi-agent ...`` commands, each
followed by what it prints. The lines the person typed are the ones after the ``ann>``
prompt, which the chat echoes when stdin is a pipe; this test pipes those lines into the real
command, in a fresh directory (so on a fresh SQLite file, ./multi_agent_data.db), and compares
the output with the README line by line. Two things differ from run to run and are matched
instead of compared: the session id (a random UUID; the same id must appear where the README
repeats it) and the joke, which funny_nerd picks at random from its jokes on the topic.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.chat._util import ROOT, clean_env, ok, run_cli

pytestmark = pytest.mark.timeout(300)

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
PROGRAM = ".venv/bin/multi-agent"


def readme_sample() -> list[tuple[list[str], list[str]]]:
    """The sample's commands: (arguments after ``multi-agent``, the lines it prints)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    (block,) = [b for b in blocks if b.startswith(f"$ {PROGRAM} chat")]
    commands: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            program, *args = shlex.split(line[2:])
            assert program == PROGRAM, line
            commands.append((args, []))
        else:
            commands[-1][1].append(line)
    return commands


def python_jokes() -> list[str]:
    raw = json.loads((ROOT / "subagents" / "funny_nerd" / "jokes.json").read_text())
    return [j["text"] for j in raw["topics"]["python"]]


def normalise(lines: list[str], jokes: list[str]) -> list[str]:
    """UUIDs numbered in order of first appearance; a python joke replaced by a marker."""
    ids: dict[str, str] = {}
    out = []
    for line in lines:
        line = UUID.sub(lambda m: ids.setdefault(m.group(0), f"<session {len(ids) + 1}>"), line)
        for joke in jokes:
            if line.startswith("[funny_nerd] ") and joke in line:
                line = line.replace(joke, "<a python joke>")
        out.append(line)
    return out


def test_readme_chat_sample_is_what_the_chat_prints(tmp_path: Path) -> None:
    sample = readme_sample()
    assert len(sample) >= 2 and all(args[0] == "chat" for args, _ in sample)
    jokes = python_jokes()
    env = clean_env()
    env.pop("COLUMNS")  # a plain pipe, as in the README
    expected: list[str] = []
    printed: list[str] = []
    for args, lines in sample:
        typed = [line.split("> ", 1)[1] for line in lines if line.startswith("ann> ")]
        proc = run_cli(*args, cwd=tmp_path, stdin="".join(t + "\n" for t in typed), env=env)
        expected += lines
        printed += ok(proc).splitlines()
    assert (tmp_path / "multi_agent_data.db").exists()  # the default file, created fresh
    assert normalise(printed, jokes) == normalise(expected, jokes)
    # The README's joke is one of them, and the banner says the model is not an LLM.
    assert any("<a python joke>" in line for line in normalise(expected, jokes))
    assert any("not an LLM" in line for line in expected)
