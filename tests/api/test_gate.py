"""The admission gate's queue: turns in order, withdrawals, refusals (pure asyncio)."""

from __future__ import annotations

import asyncio

from tiler.api.gate import Gate


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
        while gate.queued < 3:
            await asyncio.sleep(0)
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
        never = asyncio.Event()
        gate = Gate(limit=2, timeout=60, queue_wait=1.0, min_queue=0, service=1.5)
        assert await gate.enter(never) and await gate.enter(never)
        assert gate.expected_wait() == 0.75
        waiting = asyncio.ensure_future(gate.enter(never))  # 0.75 s: queued
        while gate.queued < 1:
            await asyncio.sleep(0)
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
        never = asyncio.Event()
        gate = Gate(limit=1, timeout=60, queue_wait=10, min_queue=0)
        assert await gate.enter(never)
        waiting = asyncio.ensure_future(gate.enter(never))
        while gate.queued < 1:
            await asyncio.sleep(0)
        gate.release()  # handed over ...
        waiting.cancel()  # ... but its request is cancelled before it runs
        await asyncio.gather(waiting, return_exceptions=True)
        assert gate.in_flight == 0 and gate.queued == 0

    asyncio.run(scenario())


def test_the_minimum_queue_waits_however_slow_computations_are():
    async def scenario() -> None:
        never = asyncio.Event()
        gate = Gate(limit=1, timeout=60, queue_wait=0.1, min_queue=2, service=100.0)
        assert await gate.enter(never)
        waiting = [asyncio.ensure_future(gate.enter(never)) for _ in range(2)]
        while gate.queued < 2:
            await asyncio.sleep(0)
        assert not await gate.enter(never)  # beyond the minimum, 200 s expected: refused
        for w in waiting:
            gate.release()
            assert await w
        gate.release()
        assert gate.in_flight == 0

    asyncio.run(scenario())
