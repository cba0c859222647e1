"""The session's events for every page that follows them, from one subscription to the session's channel.

A page's event stream costs no thread of its own: one feed thread per session process follows the channel's events
(:func:`~agent.operator.subscribe`) and hands each to every open stream's queue on the server's event loop.
The feed keeps the last :data:`~agent.operator.BACKLOG` events, so a stream that opens later is sent those it
has not seen (``since``) before the live ones. The feed starts with the first stream, ends when the session process
ends (every stream is then ended) or when no stream has been open for a moment, and a stream that opens after that
starts the next one: a page follows a session process that starts later.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from agent.operator import BACKLOG, subscribe
from closedloop.control import Event
from closedloop.errors import SessionError

QUEUED = 1000
"""Events a stream may have waiting to be sent; a page that falls further behind is ended (it reconnects)."""


class StreamsFullError(SessionError):
    """As many event streams are open as the server serves."""


class _Ended:
    """What a stream's queue receives last."""


_END = _Ended()


class Stream:
    """One page's event stream: the events after ``since``, then the end of the session process's events.

    Made by :meth:`EventHub.open` on the server's event loop; iterate it there, then :meth:`EventHub.close` it.
    """

    def __init__(self, since: int) -> None:
        self.since = since
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event | _Ended] = asyncio.Queue(QUEUED + 1)

    def put(self, item: Event | _Ended) -> None:
        """Queue an event, or the end (on the stream's loop only)."""
        if isinstance(item, Event) and item.seq <= self.since:
            return
        if self._queue.qsize() >= QUEUED:  # too far behind: end it (the last place is kept for this)
            item = _END
        if not self._queue.full():
            self._queue.put_nowait(item)

    def post(self, item: Event | _Ended) -> None:
        """:meth:`put`, from any thread."""
        with contextlib.suppress(RuntimeError):  # the server's loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self.put, item)

    async def events(self) -> AsyncIterator[Event]:
        """The events, as they come; ends when the session process's events end."""
        while not isinstance(item := await self._queue.get(), _Ended):
            yield item


class _Feed:
    """One subscription, to one session process, and the streams it serves."""

    def __init__(self) -> None:
        self.streams: set[Stream] = set()
        self.backlog: deque[Event] = deque(maxlen=BACKLOG)
        self.closed = False


class EventHub:
    """The event streams of one session folder's pages, fed by one subscription at a time.

    Args:
        folder: the session folder.
        keys_dir: where the CurveZMQ client key is (default ``folder/keys``).
        max_streams: the most event streams open at once.
    """

    def __init__(self, folder: Path, keys_dir: Path | None = None, max_streams: int = 50) -> None:
        self.folder = Path(folder)
        self.keys_dir = keys_dir
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._feed: _Feed | None = None
        self._open = 0
        self._stopping = False

    @property
    def open_streams(self) -> int:
        """How many event streams are open."""
        return self._open

    def open(self, since: int = 0) -> Stream:
        """A new stream of the events after ``since`` (call on the server's event loop).

        Raises:
            StreamsFullError: :attr:`max_streams` are open already.
        """
        if self._open >= self.max_streams:
            raise StreamsFullError(
                f"events: {self._open} event streams are open, the most this server serves (--max-streams); "
                "close a page and try again"
            )
        stream = Stream(since)
        self._open += 1
        with self._lock:
            if self._stopping:
                stream.put(_END)
                return stream
            if self._feed is None or self._feed.closed:
                self._feed = _Feed()
                threading.Thread(
                    target=self._follow, args=(self._feed,), name="closedloop-web-events", daemon=True
                ).start()
            for event in self._feed.backlog:
                stream.put(event)
            self._feed.streams.add(stream)
        return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream (its page left, or it ended)."""
        self._open -= 1
        with self._lock:
            if self._feed is not None:
                self._feed.streams.discard(stream)

    def stop(self) -> None:
        """End every stream, and the feed (the server is shutting down)."""
        with self._lock:
            self._stopping = True
            streams = set(self._feed.streams) if self._feed is not None else set()
        for stream in streams:
            stream.post(_END)

    def _follow(self, feed: _Feed) -> None:
        """The feed thread: pass the session process's events on until it ends, or no stream is left."""

        def watched() -> None:  # called when the channel is idle: no stream left, no need to follow
            with self._lock:
                if not feed.streams or self._stopping:
                    feed.closed = True
                    raise _Unwatched

        try:
            for event in subscribe(self.folder, 0, self.keys_dir, on_idle=watched):
                with self._lock:
                    feed.backlog.append(event)
                    streams = list(feed.streams)
                for stream in streams:
                    stream.post(event)
                watched()
        except (SessionError, _Unwatched):
            pass
        finally:
            with self._lock:
                feed.closed = True
                streams = list(feed.streams)
            for stream in streams:
                stream.post(_END)


class _Unwatched(Exception):
    """No stream follows the feed any more."""
