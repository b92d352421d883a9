"""The admission gate's queue: turns in order, withdrawals, refusals (pure asyncio)."""

from __future__ import annotations

import asyncio
from typing import Any

from tiler.api.gate import Gate


async def _queued(gate: Gate, n: int) -> None:
    """Until ``n`` requests wait in the gate's queue."""
    while gate.queued < n:
        await asyncio.sleep(0)


async def _full(limit: int, **settings: Any) -> tuple[Gate, asyncio.Event]:
    """A gate of ``limit`` slots (``timeout`` 60 s), all taken by clients that never leave
    (the event they would set; one per event loop)."""
    never = asyncio.Event()
    gate = Gate(limit=limit, timeout=60, **settings)
    for _ in range(limit):
        assert await gate.enter(never)
    return gate, never


async def _enter_and_queue(gate: Gate, left: asyncio.Event, n: int) -> list[asyncio.Future]:
    """``n`` more requests entering the gate, once they all wait in its queue."""
    waiting = [asyncio.ensure_future(gate.enter(left)) for _ in range(n)]
    await _queued(gate, gate.queued + n)
    return waiting


def test_turns_are_given_in_arrival_order_and_withdrawn_ones_are_skipped():
    async def scenario() -> None:
        gate = Gate(limit=1, timeout=60, queue_wait=10, min_queue=0, service=1.0)
        never, gone = asyncio.Event(), asyncio.Event()
        assert await gate.enter(never)  # the slot
        order: list[str] = []

        async def wait(name: str, left: asyncio.Event) -> None:
            if await gate.enter(left):
                order.append(name)

        a = asyncio.ensure_future(wait("a", gone))
        b = asyncio.ensure_future(wait("b", never))
        c = asyncio.ensure_future(wait("c", never))
        await _queued(gate, 3)
        gone.set()  # a's client leaves while it waits
        await a
        assert gate.queued == 2
        gate.release(1.0)  # the slot passes to b, not to a
        await b
        gate.release(1.0)
        await c
        gate.release(1.0)
        assert order == ["b", "c"]
        assert gate.in_flight == 0 and gate.queued == 0

    asyncio.run(scenario())


def test_a_long_expected_wait_is_refused_at_once_and_no_queue_means_none():
    async def scenario() -> None:
        gate, never = await _full(2, queue_wait=1.0, min_queue=0, service=1.5)
        assert gate.expected_wait() == 0.75
        [waiting] = await _enter_and_queue(gate, never, 1)  # 0.75 s: queued
        assert not await gate.enter(never)  # (1 + 1) x 1.5 / 2 = 1.5 s: refused at once
        gate.release()
        assert await waiting
        assert not await Gate(limit=1, timeout=60, queue_wait=0, min_queue=0, in_flight=1).enter(
            never
        )
        assert Gate(limit=3, timeout=60).min_queue == 6  # default: 2 x limit

    asyncio.run(scenario())


def test_a_cancelled_waiter_gives_back_a_slot_it_was_handed():
    async def scenario() -> None:
        gate, never = await _full(1, queue_wait=10, min_queue=0)
        [waiting] = await _enter_and_queue(gate, never, 1)
        gate.release()  # handed over ...
        waiting.cancel()  # ... but its request is cancelled before it runs
        await asyncio.gather(waiting, return_exceptions=True)
        assert gate.in_flight == 0 and gate.queued == 0

    asyncio.run(scenario())


def test_the_minimum_queue_waits_however_slow_computations_are():
    async def scenario() -> None:
        gate, never = await _full(1, queue_wait=0.1, min_queue=2, service=100.0)
        waiting = await _enter_and_queue(gate, never, 2)
        assert not await gate.enter(never)  # beyond the minimum, 200 s expected: refused
        for w in waiting:
            gate.release()
            assert await w
        gate.release()
        assert gate.in_flight == 0

    asyncio.run(scenario())
