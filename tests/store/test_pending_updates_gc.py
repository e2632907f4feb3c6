"""The per-session record of atomic updates survives the garbage collector running anywhere.

The record's weak-reference callback used to take the module's lock; when the collector ran
while that lock was held (an allocation inside the locked section) and collected another
session, the callback waited for its own thread: ``multi-agent serve`` hung after a few dozen
runs. Now the callback only notes the dead entry.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import gc
    from google.adk.sessions.session import Session
    from multi_agent.store import updates

    def garbage_session(i):
        s = Session(id=f"s{i}", app_name="a", user_id="u")
        updates.restore_pending(s, "user:x", [], 1)  # registers s with its weak reference
        s.__dict__["cycle"] = s  # only the collector frees it
        return None

    gc.disable()
    for i in range(200):
        garbage_session(i)
    with updates._pending_lock:  # what _pending_for holds when an allocation triggers a GC
        gc.collect()
    keep = Session(id="keep", app_name="a", user_id="u")
    updates.restore_pending(keep, "user:x", ["op"], 2)
    assert updates.take_pending(keep, "user:x", 2) == ["op"]
    assert len(updates._pending) == 1, len(updates._pending)  # the dead entries are gone
    print("ok")
''')


def test_a_collection_under_the_lock_does_not_hang() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
