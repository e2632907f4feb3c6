"""The sub-agents, one ADK agent package each; ``build_*`` make fresh agent instances."""

from __future__ import annotations

from .funny_nerd.definition import build_agent as build_funny_nerd
from .historian.definition import build_agent as build_historian
from .stock_analyst.definition import build_agent as build_stock_analyst

__all__ = ["build_funny_nerd", "build_historian", "build_stock_analyst"]
