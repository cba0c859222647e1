"""The page server's event streams share one subscription to a session's control channel (real ZeroMQ on
loopback, a real :class:`~agent.operator.ControlServer` standing in for the session process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.operator.server import ControlServer
from agent.web import EventHub, StreamsFullError
from closedloop.control import Event


def feeds() -> int:
    """The hub's feed threads running in this process."""
    return sum(thread.name == "closedloop-web-events" for thread in threading.enumerate())


async def take(events: AsyncIterator[Event], n: int) -> list[int]:
    """The seqs of the next ``n`` events."""
    return [(await asyncio.wait_for(anext(events), 10)).seq for _ in range(n)]


async def ends(events: AsyncIterator[Event]) -> bool:
    """Whether the stream ends (with no other event first)."""
    try:
        await asyncio.wait_for(anext(events), 10)
    except StopAsyncIteration:
        return True
    return False


def test_streams_share_one_feed_a_late_one_gets_what_it_missed_and_all_end_with_the_process(tmp_path: Path) -> None:
    server = ControlServer(tmp_path, lambda request: {})

    async def follow() -> None:
        for i in range(3):
            server.publish("observation", {"i": i})  # seq 1, 2, 3: before any page follows
        hub = EventHub(tmp_path, max_streams=2)
        first = hub.open(since=0)
        first_events = first.events()
        assert await take(first_events, 3) == [1, 2, 3]  # the session's recent events, through the feed
        late = hub.open(since=2)
        late_events = late.events()
        server.publish("paused", {})  # seq 4, live
        assert await take(first_events, 1) == [4]
        assert await take(late_events, 2) == [3, 4]  # what it had not seen, then the live one, each once
        assert feeds() == 1
        with pytest.raises(StreamsFullError, match="--max-streams"):
            hub.open()
        server.close()  # the session process ends: every stream ends
        assert await ends(first_events) and await ends(late_events)
        hub.close(first)
        hub.close(late)
        after = hub.open()  # no process runs: ended at once
        assert await ends(after.events())
        hub.close(after)

    try:
        asyncio.run(follow())
    finally:
        server.close()


def test_a_page_follows_the_next_session_process_and_the_feed_stops_when_no_page_follows(tmp_path: Path) -> None:
    async def follow() -> None:
        hub = EventHub(tmp_path)
        for process in range(2):
            server = ControlServer(tmp_path, lambda request: {})
            try:
                server.publish("resumed", {"process": process})
                stream = hub.open()
                events = stream.events()
                event = await asyncio.wait_for(anext(events), 10)
                assert (event.seq, event.data) == (1, {"process": process})  # each process numbers from 1
                hub.close(stream)  # the page leaves
                for _ in range(100):  # the feed notices at its next idle check
                    if feeds() == 0:
                        break
                    await asyncio.sleep(0.1)
                assert feeds() == 0
            finally:
                server.close()

    asyncio.run(follow())


def test_the_latency_benchmark_measures_the_page_round_trip(tmp_path: Path) -> None:
    from benchmarks.control_latency import web_round_trips

    assert len(web_round_trips(tmp_path, 5)) == 5
