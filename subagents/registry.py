"""The team's sub-agents: one list, read by the manager, the state tools and the offline model.

Adding a sub-agent is one folder and one line:

1. ``subagents/<name>/definition.py`` with ``SPEC = SubAgentSpec(...)`` (``spec.py``: name,
   description, instruction, tools, the manager's delegation line, the words naming its
   area, the offline model's intents and plans), and ``__init__.py`` exposing ``root_agent``
   (``lazy_root_agent(SPEC.build, globals())``) as the other folders do;
2. its name in :data:`SUBAGENTS` below.

The manager builds its sub-agents and the "Delegate:" lines of its instruction from
:func:`specs`, the state tools accept the names of :func:`names`
(``track_agent_delegation``, ``set_favorite_agent``), and building an agent registers its
rule sets with the offline model (``multi_agent.models.rules``). A spec from elsewhere (a
plug-in, a test) joins through :func:`register` (and :func:`load_definition` for a
``definition.py`` outside this package).

The wheel takes every folder as it finds it (the root ``setup.py`` reads the package list
from the folders): a new sub-agent needs no packaging line.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

from .spec import SubAgentSpec

__all__ = ["SUBAGENTS", "SubAgentSpec", "load_definition", "names", "register", "specs",
           "unregister"]

SUBAGENTS: list[str] = ["funny_nerd", "stock_analyst", "historian"]
"""The sub-agents' folders under ``subagents/``, in the order the manager lists them."""

_added: dict[str, SubAgentSpec] = {}
_loaded: dict[str, SubAgentSpec] = {}


def _load(name: str) -> SubAgentSpec:
    spec = _loaded.get(name)
    if spec is None:
        module = importlib.import_module(f"{__package__}.{name}.definition")
        spec = module.SPEC
        if not isinstance(spec, SubAgentSpec) or spec.name != name:
            raise TypeError(f"subagents/{name}/definition.py must define SPEC, a SubAgentSpec "
                            f"named {name!r}")
        _loaded[name] = spec
    return spec


def specs() -> tuple[SubAgentSpec, ...]:
    """Every sub-agent: those of :data:`SUBAGENTS`, then those :func:`register` added."""
    listed = [_load(name) for name in SUBAGENTS]
    return (*listed, *(s for n, s in _added.items() if n not in SUBAGENTS))


def names() -> tuple[str, ...]:
    """The sub-agents' names, in order."""
    return tuple(spec.name for spec in specs())


def register(spec: SubAgentSpec) -> None:
    """Adds a sub-agent (again: replaces the one of that name) that is not in :data:`SUBAGENTS`:
    managers built from now on delegate to it, and the offline model routes to it."""
    from multi_agent.models import rules

    _added[spec.name] = spec
    rules.register(*spec.rule_sets())


def unregister(name: str) -> None:
    """Removes a sub-agent :func:`register` added, and its offline rules."""
    from multi_agent.models import rules

    if _added.pop(name, None) is not None:
        rules.unregister(name)


def load_definition(folder: str | Path) -> SubAgentSpec:
    """The ``SPEC`` of ``<folder>/definition.py``, for a sub-agent kept outside ``subagents/``.

    The folder is imported as a package named after it (its ``__init__.py`` is not run), so
    its ``definition.py`` may import its own modules relatively (``from .tools import ...``).

    Raises:
        TypeError: the file does not define a ``SubAgentSpec`` named ``SPEC``.
    """
    path = Path(folder).resolve()
    package = path.name
    if package not in sys.modules:
        made = importlib.machinery.ModuleSpec(package, None, is_package=True)
        made.submodule_search_locations = [str(path)]
        sys.modules[package] = importlib.util.module_from_spec(made)
    spec = getattr(importlib.import_module(f"{package}.definition"), "SPEC", None)
    if not isinstance(spec, SubAgentSpec):
        raise TypeError(f"{path / 'definition.py'} must define SPEC, a SubAgentSpec")
    return spec
