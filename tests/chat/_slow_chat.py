"""``multi-agent`` with an offline model that stalls on messages containing "slowly".

The stall happens once, in funny_nerd after the manager handed over (so the run has stored
events), which lets a test press Ctrl-C in the middle of a run.

Usage: python _slow_chat.py chat --user ann ...
"""

from __future__ import annotations

import asyncio
import sys

from multi_agent.models.offline import OfflineRulesModel

_original = OfflineRulesModel.generate_content_async


_stalled = False


async def _slow(self, llm_request, stream=False):  # type: ignore[no-untyped-def]
    global _stalled
    # funny_nerd's request (it has the tell_joke tool) in a turn that asked "slowly": once.
    if not _stalled and "tell_joke" in (llm_request.tools_dict or {}) and "slowly" in str(
        llm_request.contents
    ):
        _stalled = True
        print("(stalling)", flush=True)
        await asyncio.sleep(120)
    async for response in _original(self, llm_request, stream):
        yield response


OfflineRulesModel.generate_content_async = _slow  # type: ignore[method-assign]

if __name__ == "__main__":
    from multi_agent.cli import main

    sys.exit(main(sys.argv[1:]))
