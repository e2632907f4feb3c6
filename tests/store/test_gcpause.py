"""settle_heap (a server's start-up objects frozen) and gc_paused's promotion living together."""

from __future__ import annotations

import gc
import weakref

import pytest

from multi_agent.store.gcpause import gc_paused, settle_heap


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


class _Node:
    pass


def test_settle_heap_freezes_what_lives_and_later_garbage_is_still_collected(unfrozen) -> None:
    frozen = settle_heap()
    assert frozen == gc.get_freeze_count() and frozen > 10_000  # the imports' objects at least
    cycle = _Node()
    cycle.me = cycle  # reachable only from itself: only the cyclic collector frees it
    alive = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert alive() is None


def test_promoting_a_big_read_does_not_unfreeze_a_settled_heap(unfrozen) -> None:
    frozen = settle_heap()
    with gc_paused(promote=True):
        built = [{"n": i} for i in range(2_000)]
    assert gc.get_freeze_count() >= frozen  # unfreeze() would have put it back to 0
    assert gc.isenabled() and len(built) == 2_000


def test_promoting_a_big_read_files_it_with_the_old_generation_when_nothing_is_frozen() -> None:
    assert gc.get_freeze_count() == 0
    with gc_paused(promote=True):
        built = [{"n": i} for i in range(2_000)]
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    assert gc.get_count()[0] < 2_000 and len(built) == 2_000
