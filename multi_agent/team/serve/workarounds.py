"""Guards against a store bug that a long-running server meets, until the store is fixed.

``multi_agent.store.updates`` keeps pending atomic updates per session object in a dict under a
non-reentrant ``threading.Lock``, and removes an entry from a ``weakref`` callback that takes
the same lock. When the garbage collector runs while the lock is held (an allocation inside
``_pending_for``) and collects another session object, the callback waits for the lock its own
thread holds: the process hangs for good (seen in ``multi-agent serve`` after a few dozen runs;
``faulthandler`` shows the main thread "Garbage-collecting" in ``forget``). A re-entrant lock
makes the callback safe (it only deletes another key of the dict). Reported to the store's
maintainers; this is a no-op once the lock is re-entrant or gone.
"""

from __future__ import annotations

import threading

__all__ = ["guard_pending_lock"]


def guard_pending_lock() -> bool:
    """Makes the store's pending-updates lock re-entrant; True when it changed it."""
    from ...store import updates

    lock = getattr(updates, "_pending_lock", None)
    if lock is None or not isinstance(lock, type(threading.Lock())):
        return False
    updates._pending_lock = threading.RLock()  # type: ignore[attr-defined]
    return True
