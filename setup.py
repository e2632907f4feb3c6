"""The team's package list, read from the folders: a new ``subagents/<name>/`` folder is in the
wheel without a line here or in ``pyproject.toml`` (everything else is configured there)."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
# The repository's top-level agent folders, installed under multi_agent.team (pyproject.toml's
# [tool.setuptools.package-dir] maps each of them).
FOLDERS = {"multi_agent.team": ROOT / "multi_agent" / "team", "multi_agent.team.manager":
           ROOT / "manager", "multi_agent.team.subagents": ROOT / "subagents",
           "multi_agent.team.state_tools": ROOT / "state_tools"}


def packages_in(folder: Path, prefix: str) -> set[str]:
    """Dotted names of ``folder`` and the folders under it that hold Python files."""
    found = set()
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and "__pycache__" not in path.parts and any(path.glob("*.py")):
            found.add(".".join((prefix, *path.relative_to(folder).parts)))
    return found


setup(packages=sorted(set().union(*(packages_in(f, p) for p, f in FOLDERS.items()))))
