"""(f) Head-path read (issue 5): reading a branched session's head costs no more than a linear one.

Hook: runs only when our service has ``branch``. It builds

* a linear session of ``n_head`` events, and
* a branched session: ``n_head`` events, a branch from the run that ends at event ``n_head/2``,
  then ``n_head/2`` more events, so its head path also has ``n_head`` events while
  ``1.5 * n_head`` are stored,

and compares the median ``get_session`` time of the two. Until issue 5 lands, or if ``branch``
has a signature this hook does not know, the phase reports why it was skipped.
"""

from __future__ import annotations

import inspect
import statistics
import time
from typing import Any

from . import workload
from .workload import APP, Sizes


async def _fill(svc: Any, session: Any, start: int, n: int, prefix: str) -> None:
    for i in range(start, start + n):
        await svc.append_event(session, workload.make_event(i, inv=workload.invocation_id(i, prefix=prefix)))
        if len(session.events) > 1000:
            del session.events[:-20]


async def _call_branch(svc: Any, session: Any, run_id: str) -> Any:
    branch = svc.branch
    params = inspect.signature(branch).parameters
    if "session" in params or next(iter(params), None) not in ("app_name", None):
        try:
            return await branch(session, run_id)
        except TypeError:
            pass
    return await branch(app_name=session.app_name, user_id=session.user_id, session_id=session.id,
                        from_run_id=run_id)


async def _get_ms(svc: Any, user: str, sid: str, expect: int) -> float:
    t0 = time.perf_counter()
    got = await svc.get_session(app_name=APP, user_id=user, session_id=sid)
    dt = (time.perf_counter() - t0) * 1000
    if len(got.events) != expect:
        raise AssertionError(f"path has {len(got.events)} events, expected {expect}")
    return dt


async def head_path(svc: Any, sz: Sizes) -> dict:
    if not callable(getattr(svc, "branch", None)):
        return {"skipped": "our service has no branch() yet (issue 5)"}
    n = sz.n_head
    half = (n // 2) // workload.EVENTS_PER_INVOCATION * workload.EVENTS_PER_INVOCATION
    lin = await svc.create_session(app_name=APP, user_id="head")
    await _fill(svc, lin, 0, n, "lin")
    br = await svc.create_session(app_name=APP, user_id="head")
    await _fill(svc, br, 0, n, "br")
    # The run that ends at event `half`: run ids are assumed to be invocation ids.
    run_id = workload.invocation_id(half - 1, prefix="br")
    try:
        await _call_branch(svc, br, run_id)
    except TypeError as exc:
        return {"skipped": f"branch() signature not understood by the hook: {exc}"}
    br = await svc.get_session(app_name=APP, user_id="head", session_id=br.id)
    if len(br.events) != half:
        return {"skipped": f"after branch the head has {len(br.events)} events, expected {half}"}
    await _fill(svc, br, half, n - half, "br2")
    # Interleaved (linear, head, linear, head, ...) so load drift hits both alike.
    lin_t, head_t = [], []
    for _ in range(max(5, sz.get_reps)):
        lin_t.append(await _get_ms(svc, "head", lin.id, n))
        head_t.append(await _get_ms(svc, "head", br.id, n))
    linear_ms, head_ms = statistics.median(lin_t), statistics.median(head_t)
    return {"events_on_path": n, "stored_events": n + (n - half), "linear_ms": linear_ms,
            "head_ms": head_ms, "head_over_linear": head_ms / linear_ms}
