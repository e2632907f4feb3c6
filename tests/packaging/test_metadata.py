"""The two distributions' metadata against the tree: packages, version, extras, install hints."""

from __future__ import annotations

import re
import runpy
import subprocess
import tomllib
from pathlib import Path

import pytest
import setuptools

import multi_agent

ROOT = Path(__file__).resolve().parents[2]
STORE = tomllib.loads((ROOT / "multi_agent" / "pyproject.toml").read_text())
TEAM = tomllib.loads((ROOT / "pyproject.toml").read_text())
DISTS = {STORE["project"]["name"]: STORE, TEAM["project"]["name"]: TEAM}
TEAM_FOLDERS = {"manager": "manager", "subagents": "subagents", "state_tools": "state_tools"}


def _packages_in(folder: Path, prefix: str) -> set[str]:
    """Dotted names of the folders under ``folder`` that hold Python files (namespace or not)."""
    found = set()
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and "__pycache__" not in path.parts and any(path.glob("*.py")):
            relative = path.relative_to(folder).parts
            found.add(".".join((prefix, *relative)))
    return found


def test_the_store_ships_every_package_but_the_team() -> None:
    everything = _packages_in(ROOT / "multi_agent", "multi_agent")
    store = {p for p in everything if not p.startswith("multi_agent.team")}
    assert set(STORE["tool"]["setuptools"]["packages"]) == store
    assert STORE["tool"]["setuptools"]["package-dir"] == {"multi_agent": "."}


def test_the_team_ships_its_folders_under_multi_agent_team() -> None:
    expected = _packages_in(ROOT / "multi_agent" / "team", "multi_agent.team")
    for folder in TEAM_FOLDERS:
        expected |= _packages_in(ROOT / folder, f"multi_agent.team.{folder}")
    # The list is setup.py's, read from the folders (a new sub-agent folder needs no line).
    assert "packages" not in TEAM["tool"]["setuptools"]
    captured: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
        runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
    packages = captured["packages"]
    assert set(packages) == expected
    assert all(p.startswith("multi_agent.team") for p in packages)  # no top-level names
    dirs = TEAM["tool"]["setuptools"]["package-dir"]
    assert dirs == {"multi_agent.team": "multi_agent/team",
                    **{f"multi_agent.team.{k}": v for k, v in TEAM_FOLDERS.items()}}


def test_adk_sees_one_app_in_the_repository() -> None:
    """``adk api_server .`` lists top-level folders holding ``__init__.py`` or ``agent.py``;
    ``adk web .`` every folder (5 deep) holding ``agent.py``: both only multi_agent."""
    top = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
                 and ((p / "__init__.py").is_file() or (p / "agent.py").is_file()))
    assert top == ["multi_agent"]
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "*agent.py", "*root_agent.yaml"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in tracked if Path(name).name in ("agent.py", "root_agent.yaml")
            and not name.startswith("tests/")] == ["multi_agent/agent.py"]


def test_one_version() -> None:
    for dist in DISTS.values():
        assert dist["project"]["dynamic"] == ["version"]
        assert dist["tool"]["setuptools"]["dynamic"]["version"] == {
            "attr": "multi_agent.__version__"}
    major, minor, _ = (int(x) for x in multi_agent.__version__.split("."))
    store_name = STORE["project"]["name"]
    for requirement in [*TEAM["project"]["dependencies"],
                        *sum(TEAM["project"]["optional-dependencies"].values(), [])]:
        if requirement.startswith(store_name):
            assert requirement.endswith(f">={major}.{minor},<{major}.{minor + 1}"), requirement


def test_metadata_a_package_index_shows() -> None:
    for name, dist in DISTS.items():
        project = dist["project"]
        assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
        assert "Typing :: Typed" in project["classifiers"], name
        assert {"Homepage", "Source", "Issues"} <= set(project["urls"]), name
        assert any(r.startswith("setuptools>=77") for r in dist["build-system"]["requires"])
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (
        ROOT / "LICENSE").read_text()
    assert (ROOT / "multi_agent" / "LICENSE").resolve() == (ROOT / "LICENSE").resolve()
    assert (ROOT / "multi_agent" / "py.typed").is_file()
    assert STORE["tool"]["setuptools"]["package-data"]["multi_agent"] == ["py.typed"]


HINT = re.compile(
    r"pip install (?:-U |--upgrade )?'?([a-z0-9][a-z0-9._-]*)(?:\[([a-z0-9,_-]+)\])?'?")


def _hints() -> list[tuple[str, str, str | None]]:
    """Every ``pip install NAME[EXTRAS]`` the code, the Makefile or the README prints."""
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "Makefile", "*.sh"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        if name.startswith("tests/"):
            continue
        for match in HINT.finditer((ROOT / name).read_text(encoding="utf-8")):
            found.append((name, match.group(1), match.group(2)))
    return found


def test_every_install_hint_names_one_of_our_distributions_and_a_real_extra() -> None:
    hints = _hints()
    assert len(hints) >= 6, hints  # the stocks, litellm, semantic, postgres, team, upgrade hints
    for where, name, extras in hints:
        assert name in DISTS, f"{where}: 'pip install {name}' is not one of {sorted(DISTS)}"
        declared = DISTS[name]["project"].get("optional-dependencies", {})
        for extra in (extras or "").split(",") if extras else []:
            assert extra in declared, f"{where}: {name} has no extra [{extra}]"
