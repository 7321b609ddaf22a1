"""Pages fetched ahead, on threads, while the ones before are written out; and how many at once.

A stream hands ``PageSource`` its paginator and a way to fetch one request; iterating the
source gives each answer in the paginator's order, already taken by the paginator, with the
next requests sent before the stream writes the page out. One request ahead hides the wait for
an answer behind that writing; when Heymarket's latency, not the pacing or the writing, is what
a sync waits for, the paginator names the requests that follow the current one and several go
out together (``in_flight_target``), up to ``MAX_IN_FLIGHT``.

Each request runs on a daemon thread (one waiting for work, or a new one when all are busy), so
that a tap told to stop is not held up by a request in flight; answers the paginator no longer
asks for are simply dropped.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
import typing as t
from dataclasses import dataclass

from tap_heymarket.sdk_internals import utc_now

if t.TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Hashable, Iterator

    from tap_heymarket.normalize import NormalizeReport

#: Requests in flight at most: enough to hide a second of latency behind Heymarket's limit
#: (500 a minute is one request every 0.12 s).
MAX_IN_FLIGHT = 12
#: Shortest time between pages assumed when sizing the requests in flight; below it an API is
#: fast enough that one request ahead hides its latency.
MIN_PAGE_PERIOD = 0.02

Record = dict[str, t.Any]
#: What fetching one request gives: its records, as the stream's decoder made them, and what
#: the decoder had to change.
Answer = tuple[list[Record], "NormalizeReport"]


class MovingAverage:
    """An exponentially weighted average of recent observations (None before the first)."""

    def __init__(self, weight: float = 0.3) -> None:
        self._weight = weight
        self.value: float | None = None

    def observe(self, sample: float) -> None:
        """Count one observation."""
        self.value = (
            sample if self.value is None else self.value + self._weight * (sample - self.value)
        )


def in_flight_target(
    latency: float | None, interval: float, busy: float | None, most: int = MAX_IN_FLIGHT
) -> int:
    """How many requests to keep in flight so that answers arrive about as fast as they are used.

    A page can be used every ``max(interval, busy)`` seconds at best: the pacing, or the time
    writing one page out takes. One request at a time (with the next sent as soon as a page
    is in) keeps up unless an answer takes half as long again as that; then as many as cover
    the latency and one more (a request waits its turn at the pacer before it is sent, and
    answers vary), up to ``most``.
    """
    if latency is None:
        return 1
    period = max(interval, busy or 0.0, MIN_PAGE_PERIOD)
    if latency <= 1.5 * period:
        return 1
    return min(most, math.ceil(latency / period) + 1)


class Paginator(t.Protocol):
    """What ``PageSource`` needs of a paginator (``pagination.ContactsPaginator`` is one)."""

    finished: bool

    @property
    def current(self) -> Hashable:
        """The request to send next."""

    def upcoming(self, count: int) -> list[t.Any]:
        """``current`` and up to ``count - 1`` requests that follow it if pages come back full."""

    def advance(self, page: list[Record]) -> t.Iterable[Record]:
        """Take the answer to ``current``; the records not passed on before."""


class _Workers:
    """Daemon threads that each run one call at a time, as many as calls are run at once.

    A thread waits for its next call rather than one starting per request: starting a thread
    took the interpreter lock away from both the stream and the requests in flight (about 5%
    of a CPU-bound sync's time under the lock). Daemon threads, so that a tap told to stop is
    not held up by a request in flight.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a call, or about to

    def run(self, call: Callable[[], None]) -> None:
        """Run ``call`` on an idle thread, or a new one if none is; it must not raise."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                threading.Thread(target=self._work, daemon=True).start()
        self._calls.put(call)

    def _work(self) -> None:
        while True:
            self._calls.get()()
            with self._lock:
                self._idle += 1


#: The threads requests are sent on, shared by the tap's streams.
_WORKERS = _Workers()


class _Pending:
    """One request, answered on a worker thread."""

    def __init__(self, fetch: Callable[[t.Any], Answer], request: t.Any) -> None:
        self._done = threading.Event()
        self._answer: Answer | None = None
        self._error: BaseException | None = None
        #: When the answer arrived: the ``time_extracted`` of its records.
        self.received_at = utc_now()
        _WORKERS.run(functools.partial(self._run, fetch, request))

    def _run(self, fetch: Callable[[t.Any], Answer], request: t.Any) -> None:
        try:
            self._answer = fetch(request)
            self.received_at = utc_now()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Answer:
        """The answer, or the exception fetching it raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return t.cast("Answer", self._answer)


@dataclass
class Page:
    """One answer, taken by the paginator."""

    request: t.Any
    records: list[Record]
    report: NormalizeReport
    received_at: datetime.datetime
    #: The records the paginator passes on (not read before), in order; used once.
    fresh: t.Iterable[Record]


class PageSource:
    """The answers to a paginator's requests, in its order, with the next ones already sent."""

    def __init__(
        self,
        paginator: Paginator,
        fetch: Callable[[t.Any], Answer],
        latency: MovingAverage,
        interval: float,
    ) -> None:
        """``latency``: kept up to date by ``fetch``; ``interval``: the pacing between requests."""
        self._paginator = paginator
        self._fetch = fetch
        self._latency = latency
        self._interval = interval
        self._busy = MovingAverage()  # seconds the stream spends writing out one page
        self._sent: dict[t.Any, _Pending] = {}
        self._dropped = 0

    @property
    def unused(self) -> int:
        """Requests sent whose answers were, or will be, never taken."""
        return self._dropped + len(self._sent)

    def __iter__(self) -> Iterator[Page]:
        """Each page once the paginator has taken it; raises what fetching or paging raised."""
        paginator = self._paginator
        self._send_ahead()
        while not paginator.finished:
            request = paginator.current
            pending = self._sent.pop(request)
            records, report = pending.result()
            fresh = paginator.advance(records)
            if not paginator.finished:
                self._send_ahead()
            started = time.monotonic()
            yield Page(request, records, report, pending.received_at, fresh)
            self._busy.observe(time.monotonic() - started)

    def _send_ahead(self) -> None:
        """Have exactly the requests the paginator names next in flight; drop the others."""
        target = in_flight_target(self._latency.value, self._interval, self._busy.value)
        wanted = self._paginator.upcoming(target)
        for request in [request for request in self._sent if request not in wanted]:
            del self._sent[request]  # its answer is no longer needed; its thread ends alone
            self._dropped += 1
        for request in wanted:
            if request not in self._sent:
                self._sent[request] = _Pending(self._fetch, request)


class AnyOrder:
    """Requests answered on daemon threads, taken in the order their answers arrive.

    For requests that do not depend on each other's answers: walks of disjoint ranges (and
    whatever ``fetch`` gives for other requests beside them).
    """

    def __init__(self, fetch: Callable[[t.Any], t.Any]) -> None:
        self._fetch = fetch
        self._done: queue.SimpleQueue[tuple[t.Any, t.Any, BaseException | None]] = (
            queue.SimpleQueue()
        )
        #: Requests sent whose answers were not taken yet.
        self.in_flight = 0

    def send(self, request: t.Any) -> None:
        """Send ``request`` on a worker thread."""
        self.in_flight += 1
        _WORKERS.run(functools.partial(self._run, request))

    def _run(self, request: t.Any) -> None:
        try:
            self._done.put((request, self._fetch(request), None))
        except BaseException as exc:
            self._done.put((request, None, exc))

    @t.overload
    def take(self) -> tuple[t.Any, t.Any]: ...
    @t.overload
    def take(self, timeout: float | None) -> tuple[t.Any, t.Any] | None: ...
    def take(self, timeout: float | None = None) -> tuple[t.Any, t.Any] | None:
        """The next answer to arrive and its request; raises what fetching it raised.

        None if none arrives within ``timeout`` seconds (if given).
        """
        try:
            request, answer, error = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        self.in_flight -= 1
        if error is not None:
            raise error
        return request, answer
