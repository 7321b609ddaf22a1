"""Walk a list back in time by a "created before" cursor without losing a record.

``POST /v1/messages/all`` (and, the same way, Heymarket's tag, template and conversation lists)
answers the newest records dated before a cursor, newest first; to go on, a client sends the
oldest date it got as the next cursor. The docs do not say whether "before" means ``<`` or
``<=``, at what precision it compares, how many records one answer may hold, or in what order
records that share one date come. A broadcast gives thousands of messages one date, more than an
answer holds. Sending the oldest date as the cursor then skips the rest of that date under the
``<`` reading, or returns the same answer forever under ``<=``.

So the walker keeps a *boundary*, always a whole second: every record dated from the boundary up
to the walk's top has been passed on. It asks for records before the boundary. The answer's
oldest second may be cut short, but every second after it is whole (the answer is sorted and
holds every record newer than its last), so the boundary moves to one second above the oldest
record and the records of that second are asked for again. Under every reading the next answer
then starts at or above the second cut short and nothing is skipped; records read twice are
passed on once.

Only when an answer lies within the one second below the boundary can the boundary not move
(a tie larger than what fits). Then, in turn:

1. the limit is raised to ``MAX_LIMIT`` and the same cursor asked again (a larger answer costs
   no more against the rate limit than another request);
2. if Heymarket gives fewer than asked (a cap, fixed or varying with the records' size; an answer
   shorter than ``MIN_CAP`` holds the whole second, as a cap is taken to let at least that many
   through), the second is read by place with ``page``: page 1 at a limit of what it gave, and page
   2 if page 1 repeats page 0 (pages counted from 1); then windows whose offset (a multiple of
   their limit) falls at or just before the place read to, no longer than the longest answer seen,
   and placed to read most past it at the length the last answer was cut to (a cap by size cuts the
   same window the same way; the same window is never asked twice in a row). A window must list the
   records it repeats in their places and bring no record already seen: that is the only way a
   changed order inside the tie could hide another; it fails the walk. A window reaching a record
   older than the second ends the tie. No length ends it: a cap by size cuts any answer, even just
   where the tie was read to, so a window that brings nothing new is followed by a request for the
   one record at the place after the last one read, and only nothing there ends the list;
3. otherwise (``page`` ignored) the first answer was either cut by a cap or the whole second. Pages
   1 and 2 repeating it at other lengths show a cap that varies: the rest of the second cannot be
   read (``PagingError``). Else only the list below can tell: if that answer was short of one
   before it, no fixed cap explains it and it is taken as whole; if not, the walk moves below the
   second, even past its floor, and if anything older comes, the answer was cut and the rest
   cannot be read (``PagingError``). If nothing does, the second was the last of the list and is taken as whole.
   The readings left that can lose records are a server that caps answers and ignores ``page`` and
   either holds more records in the very oldest second of the whole list than its cap, or cuts by
   size an answer within one second shorter than one before it (the README lists them).

A record dated at or after the cursor in an answer shows the server keeps records *at* the
cursor (``<=``, or it compares whole seconds and rounds up); from then on the walker sends the
boundary less a microsecond, which means "before the boundary" under those readings too.

The walk ends on an empty answer, the end of the list (the docs' rule for conversations), or on
an answer reaching below the floor (the records older than it were synced before). A short
answer does not end it: an answer's length may vary, and one more request costs less than a lost
record.

What the walk relies on is checked on every answer, and a failed check stops it with
``PagingError`` (the stream then writes no bookmark past what it emitted):

- no record is dated a second or more after the cursor (else Heymarket ignored the cursor: the
  ``date`` reading of the docs' generated schema);
- each answer is sorted newest first;
- windows of a tie repeat records in their places and bring none twice, and the same request
  never returns the same answer twice.

The boundary is the resume point (``resume_point``: above a second still to be proven whole): a
walk interrupted at any answer resumes from it, reading at most the records of one second again.
"""

from __future__ import annotations

import datetime
import itertools
import typing as t
from dataclasses import dataclass, field

from tap_heymarket.normalize import TIMESTAMP_FORMAT
from tap_heymarket.pagination import PagingError

if t.TYPE_CHECKING:
    from collections.abc import Hashable

Record = dict[str, t.Any]
__all__ = ["BackwardWalk", "PagingError", "WalkRequest", "WalkStats"]

#: The largest limit a tie raises the ask to: more records than this in one second are read with
#: ``page``, if Heymarket honours it.
MAX_LIMIT = 1000
#: An answer within one second shorter than this is taken as the whole second, even when no
#: answer before it was longer: no server caps answers this small.
MIN_CAP = 10
_SECOND = datetime.timedelta(seconds=1)
_UTC = datetime.timezone.utc


def _instant(timestamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=_UTC)


def _fixed(instant: datetime.datetime) -> str:
    return instant.strftime(TIMESTAMP_FORMAT)


def second_of(timestamp: str) -> str:
    """The whole second a fixed-width timestamp falls in, fixed-width."""
    return f"{timestamp[:19]}.000000Z"


def next_second(timestamp: str) -> str:
    """The whole second after the one ``timestamp`` falls in: the boundary above it."""
    return _fixed(_instant(second_of(timestamp)) + _SECOND)


@dataclass(frozen=True)
class WalkRequest:
    """One request of a walk: records dated before ``boundary``, ``limit`` of them, a ``page``."""

    boundary: str
    limit: int
    page: int | None = None
    #: The server keeps records dated at its cursor: send a microsecond less.
    inclusive: bool = False

    @property
    def cursor(self) -> str:
        """The RFC 3339 cursor to send: whole seconds, or a microsecond less when inclusive."""
        if not self.inclusive:
            return f"{self.boundary[:19]}Z"
        return _fixed(_instant(self.boundary) - datetime.timedelta(microseconds=1))

    def __str__(self) -> str:
        page = "" if self.page is None else f", page {self.page}"
        return f"(before {self.cursor}, limit {self.limit}{page})"


@dataclass
class WalkStats:
    """What a walk cost, for the sync's summary line."""

    requests: int = 0
    records_read: int = 0
    #: Records passed over as read already (the second asked again, re-reads at the cursor).
    reread: int = 0
    #: Times a tie raised the limit, and tie pages read with ``page``.
    limit_raised: int = 0
    tie_pages: int = 0


@dataclass
class _Tie:
    """A second read by position with ``page``: the ids of its records, in Heymarket's order."""

    order: list[Hashable]
    #: The most records a window asks for: the most one answer of the walk held.
    limit: int
    #: Whether the tie began with an answer short of one before it, which no fixed cap explains:
    #: if ``page`` turns out ignored, that answer is taken as the whole second.
    short: bool
    seen: set[Hashable] = field(default_factory=set)
    #: What ``page`` counts from (0 or 1), once an answer has shown that it works.
    base: int | None = None
    #: The ``page`` asked while that is unknown: 1, then 2 if page 1 repeated page 0.
    trying: int = 1
    #: Whether the next request asks for the one record just after ``order``.
    probing: bool = False
    #: The lengths of the answers to pages 1 and 2 that repeated page 0.
    lengths: set[int] = field(default_factory=set)
    #: How many records an answer is likely to hold: the last one's length if it was cut
    #: (a cap by size cuts the same window the same way), else the most seen.
    served: int = 0

    def window(self) -> tuple[int, int]:
        """``(limit, page)`` of the next request: the one likely to read most past ``order``.

        Its offset (``page`` less ``base``, times ``limit``) is at most ``len(order)``, so it may
        repeat a few records, never skip one.
        """
        known = len(self.order)
        if self.base is None:
            return known, self.trying  # at ``len(order)`` whichever ``page`` counts from
        if self.probing:
            return 1, known + self.base
        served = self.served or self.limit
        size = max(
            range(1, self.limit + 1), key=lambda size: (min(size, served) - known % size, size)
        )
        return size, known // size + self.base


class BackwardWalk:
    """Reads a newest-first, "before a cursor" list from ``top`` down to ``floor`` (see module).

    ``key`` is the field the cursor compares (a fixed-width timestamp), ``ident`` a record's id.
    ``start`` resumes an interrupted walk from its last boundary.
    """

    def __init__(
        self,
        *,
        top: str,
        floor: str | None,
        limit: int,
        key: str = "date",
        ident: str = "id",
        start: str | None = None,
    ) -> None:
        self.top = second_of(top) if second_of(top) == top else next_second(top)
        self.floor = floor
        self.page_size = limit
        self.key = key
        self.ident = ident
        #: Every record dated from here up to ``top`` has been passed on: the resume point.
        self.boundary = self.top if start is None else min(start, self.top)
        self.finished = floor is not None and self.boundary <= floor
        self.stats = WalkStats()
        self._limit = limit
        self._inclusive = False
        self._largest = 0
        self._tie: _Tie | None = None
        #: ``(id, key)`` of records passed on that a later answer may hold again.
        self._passed: dict[Hashable, str] = {}
        self._last: tuple[WalkRequest, list[Hashable]] | None = None
        #: A second whose answer may have been cut by a cap (``page`` ignored): the walk moved
        #: below it, and the list must end there.
        self._capped: tuple[str, int] | None = None

    def narrow(self, floor: str) -> None:
        """Stop at ``floor``, above the old one: another walk reads what is below it."""
        self.floor = floor
        if self.boundary <= floor:
            self.finished = True

    def split(self, hint: str | None = None) -> BackwardWalk | None:
        """Hand the older half of what is left to a new walk (None if too little is left).

        The halves meet at a whole second, so together they cover exactly what this walk had
        left, whatever its answers in flight hold (records below its new floor are not passed on).
        Without a floor, the halves meet half way down to ``hint`` (the oldest record there is,
        as far as the caller knows; the older half stays open-ended, so a wrong hint costs time,
        never a record); without either there is no telling where half way is.
        """
        low_text = self.floor if self.floor is not None else hint
        if low_text is None or low_text >= self.boundary:
            return None
        high = _instant(self.boundary)
        low = _instant(low_text)
        return self.split_at(_fixed((low + (high - low) / 2).replace(microsecond=0)))

    def split_at(self, second: str) -> BackwardWalk | None:
        """Hand what is left below the whole second ``second`` to a new walk (as ``split``).

        None if that second is not within what is left, at least a second below the boundary
        and above the floor.
        """
        if self.finished or self._tie is not None or self._capped is not None:
            return None
        middle = _instant(second_of(second))
        if middle >= _instant(self.boundary) - _SECOND or (
            self.floor is not None and _fixed(middle) <= self.floor
        ):
            return None
        older = BackwardWalk(
            top=_fixed(middle),
            floor=self.floor,
            limit=self.page_size,
            key=self.key,
            ident=self.ident,
        )
        self.narrow(older.top)
        return older

    @property
    def resume_point(self) -> str:
        """Where an interrupted walk resumes: the boundary, or above a second not yet proven whole."""
        if self._capped is not None:
            return next_second(self._capped[0])
        return self.boundary

    def request(self) -> WalkRequest:
        """The next request to send (only while not ``finished``)."""
        tie = self._tie
        if tie is not None:
            limit, page = tie.window()
            return WalkRequest(self.boundary, limit, page, self._inclusive)
        return WalkRequest(self.boundary, self._limit, None, self._inclusive)

    def advance(self, request: WalkRequest, answer: list[Record]) -> list[Record]:
        """Take the answer to ``request``; return its records not passed on before, newest first."""
        self.stats.requests += 1
        self.stats.records_read += len(answer)
        dated = [record for record in answer if record.get(self.key) is not None]
        self._check(request, answer, dated)
        self._largest = max(self._largest, len(answer))
        fresh = self._fresh(answer)
        if self._tie is not None:
            self._advance_tie(request, answer, dated)
        else:
            self._advance(request, answer, dated)
        self._forget_above(self.boundary)
        return fresh

    def _check(self, request: WalkRequest, answer: list[Record], dated: list[Record]) -> None:
        keys = [record[self.key] for record in dated]
        if keys and max(keys) >= next_second(request.boundary):
            newest = max(dated, key=lambda record: t.cast(str, record[self.key]))
            msg = (
                f"Heymarket answered a record dated {newest[self.key]} (id {newest.get(self.ident)})"
                f" to a request for those created before {request.cursor}: it ignored the cursor"
            )
            raise PagingError(msg)
        if any(later > earlier for earlier, later in itertools.pairwise(keys)):
            msg = f"Heymarket's answer to {request} was not sorted newest first"
            raise PagingError(msg)
        ids = [record.get(self.ident) for record in answer]
        if self._last == (request, ids) and answer:
            msg = f"Heymarket answered {request} twice with the same records: the walk cannot go on"
            raise PagingError(msg)
        self._last = (request, ids)

    def _fresh(self, answer: list[Record]) -> list[Record]:
        """The records not passed on yet (or changed since), from the floor up."""
        fresh = []
        passed = self._passed
        for record in answer:
            when = record.get(self.key)
            if when is not None and self.floor is not None and when < self.floor:
                continue
            ident = record.get(self.ident)
            version = f"{when}|{record.get('updated')}"
            if ident is not None and passed.get(ident) == version:
                self.stats.reread += 1
                continue
            if ident is not None and when is not None:
                passed[ident] = version
            fresh.append(record)
        return fresh

    def _forget_above(self, boundary: str) -> None:
        """Drop records no answer can hold again: dated a second or more above the boundary."""
        limit = next_second(boundary)
        passed = self._passed
        if len(passed) > 4 * self.page_size:
            for ident in [i for i, version in passed.items() if version[:27] >= limit]:
                del passed[ident]

    def _advance(self, request: WalkRequest, answer: list[Record], dated: list[Record]) -> None:
        below = [record for record in dated if record[self.key] < request.boundary]
        if len(below) < len(dated) and not request.inclusive:
            # Records at or after the cursor: Heymarket keeps those dated at it. Ask again a
            # microsecond lower, so that what fits in an answer is not taken by re-reads.
            self._inclusive = True
            return
        if not answer:
            self.finished = True
            return
        if self._capped is not None:
            second, cap = self._capped
            msg = (
                f"Heymarket gave at most {cap} records created within the second {second[:19]}Z "
                "while older ones exist, and ignores page: the rest of that second cannot be read"
            )
            raise PagingError(msg)
        if not below:
            msg = f"Heymarket answered {request} with {len(answer)} records without a usable date"
            raise PagingError(msg)
        oldest: str = below[-1][self.key]
        if self.floor is not None and oldest < self.floor:
            self.finished = True
            return
        second = second_of(oldest)
        if next_second(second) < request.boundary:
            self.boundary = next_second(second)
            self._limit = self.page_size
            return
        # The whole answer lies in the second below the boundary: a tie that does not fit.
        if len(answer) >= request.limit and request.limit < MAX_LIMIT:
            self._limit = MAX_LIMIT
            self.stats.limit_raised += 1
            return
        if len(answer) < MIN_CAP:
            self._below(second)
            return
        ids = [record.get(self.ident) for record in answer]
        self._tie = _Tie(
            order=ids,
            limit=min(MAX_LIMIT, self._largest),
            short=len(answer) < min(request.limit, self._largest),
            seen=set(ids),
        )

    def _below(self, second: str) -> None:
        """The second is whole: move the boundary below it."""
        self.boundary = second
        self._limit = self.page_size
        if self.floor is not None and self.boundary <= self.floor:
            self.finished = True

    def _page_repeats(self, tie: _Tie, ids: list[Hashable], second: str) -> bool:
        """While what ``page`` counts from is unknown: whether the answer was page 0 again.

        Page 1 may be page 0 (pages counted from 1); page 2 too means ``page`` is ignored, and
        then whether the first answer was cut or held the whole second, only its length (if
        short of one before it) or the list below it can tell: see ``_capped``.
        """
        if not ids or ids != tie.order[: len(ids)]:
            tie.base = tie.trying - 1
            return False
        tie.lengths.add(len(ids))
        if tie.trying == 1:
            tie.trying = 2
            return True
        if tie.lengths != {len(tie.order)}:
            # Page 0 again, cut to other lengths: answers are cut at lengths that vary, so
            # the first may be cut too, and ``page`` cannot read on.
            msg = (
                f"Heymarket cut answers within the second {second[:19]}Z at lengths that vary "
                f"({len(tie.order)}, then {sorted(tie.lengths)}) and ignores page: the rest of "
                "that second cannot be read"
            )
            raise PagingError(msg)
        self._tie = None
        if not tie.short:
            self._capped = (second, len(tie.order))
        self._below(second)
        if self._capped is not None:
            # Not even at the floor (a split's, or the bookmark's) is it whole until the list
            # below it shows nothing older, as it does when no floor stops the walk.
            self.finished = False
        return True

    def _advance_tie(self, request: WalkRequest, answer: list[Record], dated: list[Record]) -> None:
        """Take a window of the tie: it must repeat what it holds of ``order`` in place.

        No length proves the tie or the list at an end (a cap by size cuts any answer): only a
        record older than the second, or nothing at the place just after ``order``.
        """
        tie = t.cast(_Tie, self._tie)
        self.stats.tie_pages += 1
        second = second_of(_instant_text(request.boundary, -1))
        ids = [record.get(self.ident) for record in answer]
        if tie.base is None and self._page_repeats(tie, ids, second):
            return
        known = len(tie.order)
        offset = (t.cast(int, request.page) - t.cast(int, tie.base)) * request.limit
        if request.limit > 1:
            cut = len(answer) < request.limit
            tie.served = len(answer) if cut else max(tie.served, len(answer))
        repeated = ids[: max(0, known - offset)]
        if repeated != tie.order[offset : offset + len(repeated)]:
            msg = (
                f"Heymarket's answer to {request} did not list the records of the second "
                f"{second[:19]}Z it repeats where an earlier page did: they changed places "
                "between requests (a new order, or records that left), so one may have been "
                "skipped"
            )
            raise PagingError(msg)
        news = answer[len(repeated) :]
        if not news:
            if offset == known:  # nothing at the place just after ``order``: the list ends
                self._tie = None
                self.finished = True
                return
            tie.probing = True  # cut where the tie was read to, or the end: ask the place after
            return
        tie.probing = False
        within = next(
            (i for i, record in enumerate(news) if (record.get(self.key) or second) < second),
            len(news),
        )
        new_ids = ids[len(repeated) : len(repeated) + within]
        keyed = [ident for ident in new_ids if ident is not None]  # no id: nothing to match
        again = tie.seen.intersection(keyed)
        if again or len(set(keyed)) < len(keyed):
            msg = (
                f"Heymarket's answer to {request} repeated a record of an earlier page of the "
                f"second {second[:19]}Z (id {next(iter(again), keyed[0])}): the order inside "
                "that second changes between requests, so a record may have been skipped"
            )
            raise PagingError(msg)
        tie.order.extend(new_ids)
        tie.seen.update(new_ids)
        if within < len(news):
            self._tie = None
            oldest: str = dated[-1][self.key]
            if self.floor is not None and oldest < self.floor:
                self.finished = True
                return
            self.boundary = next_second(oldest)
            self._limit = self.page_size
            return
        if request.limit > 1:
            tie.limit = min(MAX_LIMIT, max(tie.limit, len(answer)))
        if tie.window() == (request.limit, request.page):
            tie.probing = True  # the same window would bring the same answer: read on past it


def _instant_text(boundary: str, seconds: int) -> str:
    return _fixed(_instant(boundary) + seconds * _SECOND)
