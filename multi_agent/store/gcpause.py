"""A process-wide switch: the cyclic garbage collector paused while thousands of objects are
built (a 10,000-event session decoded in one go)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PROMOTE_AT", "gc_paused"]

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = True

PROMOTE_AT = 1000
"""Batches of at least this many events are filed with the old generation (see gc_paused)."""


@contextmanager
def gc_paused(*, promote: bool = False) -> Iterator[None]:
    """Pauses the cyclic garbage collector while thousands of objects are built.

    Building 10,000 events triggers many generation-0 collections that find no garbage; pausing
    roughly halves decode time. Nested and concurrent users are counted.

    Args:
        promote: also file everything built with the old generation when done (below).
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:  # the first pauser remembers whether the collector was on
            _gc_was_enabled = gc.isenabled()
        _gc_pausers += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            was_enabled = _gc_was_enabled
            if _gc_pausers == 0 and was_enabled and promote:
                # The objects just built are the caller's long-lived session: file them with
                # the old generation directly (freeze + unfreeze moves every tracked object
                # there without a traversal), instead of having the next young collections
                # walk 150,000 fresh objects twice. Garbage among them is still found by the
                # next full collection.
                gc.freeze()
                gc.unfreeze()
            if _gc_pausers == 0 and was_enabled:
                gc.enable()
