"""``multi-agent`` whose offline model stalls where a message says so: ``stall<N>-<word>``.

funny_nerd's model call (its request has the ``tell_joke`` tool) waits N seconds, once per
distinct marker, when the conversation holds a marker it has not stalled for yet; so "tell me a
joke about python stall30-x1" is a run with stored events (the manager's hand-over) that is
still running for 30 s: long enough to see a 409 or stop it. The wait is cancelled when the run
is stopped (ADK's abort).

Usage: python _slow_serve.py serve --db FILE --port 0 ...
"""

from __future__ import annotations

import asyncio
import faulthandler
import re
import signal
import sys

from multi_agent.models.offline import OfflineRulesModel

_original = OfflineRulesModel.generate_content_async
_seen: set[str] = set()
MARKER = re.compile(r"stall(\d+)-\w+")


async def _slow(self, llm_request, stream=False):  # type: ignore[no-untyped-def]
    if "tell_joke" in (llm_request.tools_dict or {}):
        for marker in MARKER.finditer(str(llm_request.contents)):
            if marker.group(0) not in _seen:
                _seen.add(marker.group(0))
                await asyncio.sleep(float(marker.group(1)))
    async for response in _original(self, llm_request, stream):
        yield response


OfflineRulesModel.generate_content_async = _slow  # type: ignore[method-assign]


def _dump_tasks(_signum: int, _frame: object) -> None:
    """SIGUSR2: every asyncio task's stack on stderr (the test harness asks before a kill)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return
    for task in asyncio.all_tasks(loop):
        task.print_stack(file=sys.stderr)


faulthandler.register(signal.SIGUSR1, all_threads=True)
signal.signal(signal.SIGUSR2, _dump_tasks)

if __name__ == "__main__":
    from multi_agent.cli import main

    sys.exit(main(sys.argv[1:]))
