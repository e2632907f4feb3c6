"""The fast event decoder: compiled plans shared by worker threads, and its fallbacks."""

from __future__ import annotations

import json
import threading

from google.adk.events.event import Event

from multi_agent.store.codec import EventDecoder, encode_event
from tests.helpers import text_event


def test_concurrent_first_decodes_share_complete_plans() -> None:
    """Threads decoding at once while the plans compile all take the fast path, exactly."""
    raws = [encode_event(text_event(f"t{i}", state={"i": i, "big": 2**70})) for i in range(50)]
    expected = [Event.model_validate_json(r) for r in raws]
    decoder = EventDecoder(verify=True)
    start = threading.Barrier(4)
    results: list[list[Event]] = []
    errors: list[BaseException] = []

    def work() -> None:
        start.wait()
        try:
            results.append(decoder.decode_many(raws))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert decoder.fallbacks == 0
    assert len(results) == 4 and all(r == expected for r in results)


def test_unknown_keys_and_odd_shapes_go_through_pydantic() -> None:
    decoder = EventDecoder(verify=False)
    event = text_event("x")
    data = event.model_dump(mode="json", exclude_none=True)

    # A key the model does not have (here ADK's state= convenience kwarg, which its validator
    # routes into actions.state_delta): pydantic decides, not the plan.
    odd = json.dumps({**data, "state": {"z": 1}})
    got = decoder.decode_many([odd])
    assert got == [Event.model_validate_json(odd)] and got[0].actions.state_delta == {"z": 1}
    assert decoder.fallbacks == 1
    # Decoded events never share mutable parts.
    a, b = decoder.decode_many([encode_event(event)] * 2)
    a.actions.state_delta["k"] = 1
    a.content.parts.append(a.content.parts[0])
    assert b.actions.state_delta == {} and len(b.content.parts) == 1


# What the store's own ``loads`` and ``dumps`` (a scanner and an encoder made once) must give:
# exactly what the standard library's calls give, errors included.
_TEXTS = [
    '{"a":1}', ' {"a":1} ', '{"a":1}\n', '[1,2]x', "", "NaN", '"\\ud800"', '{"a":1e400}',
    "123456789012345678901234567890", b'{"b":2}', '{"a":', '{"a":1,"a":2}', "[]", '"é"',
]


def _outcome(fn, value):  # noqa: ANN001, ANN202 - a test helper
    try:
        return ("ok", repr(fn(value)))
    except Exception as exc:  # noqa: BLE001 - compared below
        return (type(exc).__name__, str(exc))


def test_loads_is_json_loads() -> None:
    from multi_agent.store.codec import loads

    for text in _TEXTS:
        assert _outcome(loads, text) == _outcome(json.loads, text), text


def test_dumps_is_compact_json_dumps() -> None:
    from multi_agent.store.codec import dumps

    circular: list[object] = []
    circular.append(circular)
    values = [{"a": [1, 2.5, None, True, "é"]}, "x", 2**70, {"k": float("nan")}, {1: 2},
              {"s": {1, 2}}, circular, {"inf": float("inf")}, "\ud800"]

    def std(v: object) -> str:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    for value in values:
        assert _outcome(dumps, value) == _outcome(std, value), value
    assert _outcome(dumps, circular)[0] == "ValueError"  # and the encoder is still usable
    assert dumps({"a": 1}) == '{"a":1}'
