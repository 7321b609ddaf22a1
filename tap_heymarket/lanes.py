"""Read a first sync's contacts in lanes: stretches of the list paged side by side.

A slow API is read fastest with several requests in flight. ``pagination.ContactsPaginator``
can name windows ahead on its own, but a window named before the answer it follows is in must
repeat enough contacts to join it whatever second that answer ends on (6 or 7 of every 100 on
the benchmark's data). Paged one request at a time it repeats only the seconds it moves
``date`` back over (about 2 in 100). So when the list's length is known (a first sync asks
Heymarket's count) and latency calls for several requests in flight, the list is cut into
lanes, each read one request at a time by a paginator of its own, all at once.

**Seeds.** A lane after the first starts with a *seed*: a page of the sync's list (its own
``date``) at an offset ahead of what is read. It is one answer, sorted (checked), so it holds
every contact dated strictly between its first contact's second (the lane's ``low``) and its
last contact's second (``high``), whatever happened before or after it was evaluated: a
contact that left that stretch since was updated (dated after the sync's start: the next run
reads it) or deleted, and none joins it (new contacts are dated after the sync's start). The
lane passes those on and reads on with a paginator of its own from ``high`` (as from a
bookmark of ``high``: that second whole, and nothing before it). The lane before it reads up
to and including ``low``'s second, and ends at the first contact it passes on that is dated
after it; each lane's paginator makes every check it makes alone, over its own stretch. A seed
that cannot start a lane is dropped, and the lane before it reads on to the next lane's
``low``, or to the list's end, proven there as usual: an empty seed (past the list's end), one
of a single second, one with a contact without an id or ``updated``, and one that starts no
later than the lane before it, or before what that lane has passed on (contacts left the list
since that lane was placed, and positions fell). A lane whose paginator ends before the next
lane's ``low`` (what follows is the next run's: dated from a second before the sync's start)
ends the sync: the lanes after it are let go, as passing on their later contacts would leave
a gap behind them.

**Order.** Contacts are passed on in order: a lane's wait (encoded, ``_Held``) until every
lane before it has ended, and a lane's are held while the seed after it is in flight (where
it ends is not known yet). The answers are taken one lane after the other, in the order the
requests were named.

**Cost.** A lane's end costs a part of a request: its last answer ends where the next lane
starts. The request before it asks for what should be left to the next lane's start (from
where the seeds stood in the list) and a little more, so the lane does not read far into
the next one; it is still a request. So lanes are as long as what the lanes ahead may hold
allows (``LANES_PAGES`` pages in all: the first lane's read is passed on as it comes), and as
many as requests in flight are wanted. They are sized to end together at the list's end,
the last one a little shorter: the probe that proves the list's end is then asked while the
other lanes still read. In-flight room no lane uses goes to the last one, whose paginator
names windows ahead itself as it would alone; near the list's end, what is left to fewer
than half a lane's pages is read on by the last lane rather than by new, shorter lanes.

Without a known length (an incremental sync, or one from ``start_date``), with one request
in flight, or once Heymarket has shown it caps answers, no new lane starts, and one lane is
the paginator as it works alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing as t

import msgspec

from tap_heymarket.pagination import (
    ContactsPaginator,
    PageRequest,
    PagingStats,
    check_sorted,
    contact_key,
)

#: Pages all lanes together read at most at a time: the lanes ahead of the first hold what
#: they read until it ends. A lane's end costs a part of one request (its last answer ends
#: where the next lane starts): fewer, longer lanes cost less.
LANES_PAGES = 300
#: Pages a lane reads at least: a shorter lane costs more at its end than it saves.
MIN_LANE_PAGES = 3
#: Contacts a lane asks for past where the next one starts, besides one in fifty of those
#: left: contacts that leave the list meanwhile move that place.
AIM_SLACK = 2


@dataclasses.dataclass(frozen=True)
class LaneRequest(PageRequest):
    """A request of one lane: the same body as the page request, told apart by its lane."""

    lane: int = 0


class _Held:
    """Contacts a lane passed on that wait for the lanes before it to end.

    Kept encoded where they may wait long (a decoded contact takes about 3.3 KB, its JSON
    about 0.9), with each one's second (None: no ``updated`` or id), for cutting at a ``low``.
    """

    _encoder = msgspec.json.Encoder()
    _decoder = msgspec.json.Decoder(list[dict[str, t.Any]])

    def __init__(self) -> None:
        self._chunks: list[tuple[bytes | list[dict[str, t.Any]], int]] = []
        self.seconds: list[str | None] = []

    def add(self, contacts: list[dict[str, t.Any]], *, encode: bool) -> None:
        if not contacts:
            return
        chunk = self._encoder.encode(contacts) if encode else contacts
        self._chunks.append((chunk, len(contacts)))
        self.seconds.extend(
            c["updated"][:19] if contact_key(c) is not None else None for c in contacts
        )

    def cut(self, index: int) -> None:
        """Drop the contacts from ``index`` on."""
        kept: list[tuple[bytes | list[dict[str, t.Any]], int]] = []
        left = index
        for chunk, count in self._chunks:
            if left >= count:
                kept.append((chunk, count))
                left -= count
                continue
            if left:
                kept.append((self._decoded(chunk)[:left], left))
            break
        self._chunks = kept
        del self.seconds[index:]

    def take(self) -> t.Iterator[dict[str, t.Any]]:
        """Every contact held, in order, decoded as they are used; none is held after."""
        chunks = self._chunks
        self._chunks = []
        self.seconds = []
        return (contact for chunk, _ in chunks for contact in self._decoded(chunk))

    def _decoded(self, chunk: bytes | list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        return self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk


class _Lane:
    """One stretch of the list, read by a paginator of its own after its seed."""

    def __init__(
        self, ident: int, *, seed: PageRequest | None, paginator: ContactsPaginator | None
    ) -> None:
        self.ident = ident
        #: The seed request, until its answer is taken.
        self.seed = seed
        self.paginator = paginator
        #: The lanes before this one read contacts dated up to the end of this second (the
        #: first 19 characters of a timestamp); this lane reads those dated after it.
        self.low: str | None = None
        #: Contacts passed on by this lane and not yet by the whole.
        self.held = _Held()
        #: Read through its stretch (or its seed dropped): it names no more requests.
        self.done = False
        #: Where its first contact after ``low`` stood in the sync's list (0 for the first
        #: lane), and how many contacts it has passed on: where it has read to.
        self.start = 0
        self.passed = 0
        #: Contacts its seed passed on.
        self.seeded = 0
        #: ``updated`` of the last contacts it passed on: the next request reads some again.
        self.recent: list[str] = []
        #: The newest second of the contacts the whole has passed on from this lane.
        self.released = ""

    def request(self) -> PageRequest:
        """Its seed until answered, then its paginator's ``current`` (the last one, once done)."""
        if self.seed is not None:
            return self.seed
        assert self.paginator is not None
        return self.paginator.current


class LanedPaginator:
    """Contacts sorted by ``updated`` read in lanes that never skip one (see the module's docstring).

    The same interface as ``ContactsPaginator``: ``current`` is the request whose answer
    ``advance()`` takes next, and ``upcoming()`` names it with the others to have in flight.
    """

    def __init__(self, *, page_size: int, since: str | None, signpost: str) -> None:
        first = ContactsPaginator(page_size=page_size, since=since, signpost=signpost)
        self._page_size = page_size
        self._signpost = signpost
        self._base_date = first.current.date
        self.next_run_reads_from = first.next_run_reads_from
        #: How many contacts the list held when the sync began, if known (a first sync):
        #: lanes are placed by it, and the first lane's windows named ahead bounded by it.
        self.listed: int | None = None
        self._idents = itertools.count(1)
        self._lanes = [_Lane(0, seed=None, paginator=first)]
        # The lane whose request is ``current``.
        self._turn = self._lanes[0]
        # The list's page (of ``page_size``, for the sync's ``date``) the next lane starts at.
        self._next_start: int | None = None
        # Pages of the first lanes: near the list's end, what is left to fewer is read on by
        # the last lane rather than by new, shorter ones.
        self._first_lane_pages = 0
        # No more lanes: a seed found the list's end, or Heymarket caps answers.
        self._no_more_lanes = False
        # The paging costs of lanes already ended and of seeds.
        self._spent = PagingStats()
        self._order_shown = False
        self._capped_at: int | None = None
        #: Lanes that read a stretch of the list (the first one, and those seeds started).
        self.lanes_started = 1
        self.finished = False

    @property
    def order_shown(self) -> bool:
        """Whether an answer has shown Heymarket sorts as asked (see ``ContactsPaginator``)."""
        return self._order_shown or any(
            lane.paginator is not None and lane.paginator.order_shown for lane in self._lanes
        )

    @property
    def capped_at(self) -> int | None:
        """The most contacts Heymarket answered with, if it seems to cap answers below the limit."""
        for lane in self._lanes:
            if lane.paginator is not None and lane.paginator.capped_at is not None:
                return lane.paginator.capped_at
        return self._capped_at

    @property
    def stats(self) -> PagingStats:
        """What paging cost so far, over every lane and seed."""
        total = dataclasses.replace(self._spent)
        for lane in self._lanes:
            if lane.paginator is not None:
                _add(total, lane.paginator.stats)
        return total

    @property
    def current(self) -> LaneRequest:
        """The request whose answer ``advance()`` takes next."""
        return _tagged(self._turn.request(), self._turn)

    def upcoming(self, count: int) -> list[LaneRequest]:
        """``current`` and the requests to have in flight with it: ``count`` at most, or one per lane."""
        if count > 1:
            self._open_lanes(count)
        lanes = self._in_turn(self._turn, first=True)
        last = self._last_lane()
        # In-flight room no other lane uses goes to the last lane: its paginator names windows
        # ahead itself, and from the list's length the probe of its end with its last window.
        room = max(1, count - (len(lanes) - 1))
        named = []
        for lane in lanes:
            if lane.seed is not None:
                named.append(_tagged(lane.seed, lane))
                continue
            paginator = t.cast(ContactsPaginator, lane.paginator)
            # Only the last lane's list ends where the whole list does.
            paginator.listed = self._listed_for(lane) if lane is last else None
            requests = paginator.upcoming(room if lane is last else 1)
            named.extend(_tagged(request, lane) for request in requests)
        return named

    def _last_lane(self) -> _Lane | None:
        """The last lane that reads (or will): dropped seeds read nothing."""
        return next((lane for lane in reversed(self._lanes) if not _dropped(lane)), None)

    def _listed_for(self, lane: _Lane) -> int | None:
        """How many contacts ``lane``'s paginator's list held at the start, as far as can be told.

        The whole list's count, less the contacts before where the lane started and those its
        seed passed on (positions only fall as contacts leave: a bound more than an estimate).
        """
        if self.listed is None:
            return None
        return self.listed - lane.start - lane.seeded

    def advance(self, page: list[dict[str, t.Any]]) -> t.Iterator[dict[str, t.Any]]:
        """Take the answer to ``current``; return the contacts to pass on, and set the next request.

        They are decoded as they are used (a lane's may be thousands): use them before the
        next call.
        """
        lane = self._turn
        if lane.seed is not None:
            self._take_seed(lane, page)
        else:
            paginator = t.cast(ContactsPaginator, lane.paginator)
            # (Its bookmark is the seed's last second: it passes on nothing before that.)
            fresh = paginator.advance(page)
            lane.held.add(fresh, encode=lane is not self._lanes[0])
            lane.passed += len(fresh)
            dated = [c["updated"] for c in fresh if contact_key(c) is not None]
            lane.recent = (lane.recent + dated)[-self._page_size :]
            self._end_at_next_low(lane)
            if paginator.finished and not lane.done:
                # Its list ended before the next lane's start: the rest is the next run's
                # (dated from a second before the sync's start), or left the list.
                lane.done = True
                self._end_after(lane)
            elif not lane.done and fresh and len(self._lanes) > 1:
                self._aim(lane)
        passed = self._release()
        following = self._in_turn(lane, first=False)
        if following:
            self._turn = following[0]
        else:
            self.finished = True
        return passed

    def _end_after(self, lane: _Lane) -> None:
        """End the sync with ``lane``: the lanes after it are let go, and what they hold.

        A lane's paginator ends before the next lane's ``low`` only where what follows is
        the next run's (it reads from a second before the sync's start) or has left the list
        (nothing else follows it: its probe showed so). Passing on what later lanes read would
        leave a gap behind them; the next run reads from the bookmark, which stays at this
        lane's contacts.
        """
        for later in self._lanes[self._lanes.index(lane) + 1 :]:
            if later.paginator is not None:
                _add(self._spent, later.paginator.stats)
            self._spent.passed_on -= len(later.held.seconds)
            self._spent.reread += len(later.held.seconds)
            later.seed = later.paginator = None
            later.low = None
            later.held = _Held()
            later.done = True
        self._no_more_lanes = True

    def _aim(self, lane: _Lane) -> None:
        """Have ``lane``'s next request read little past the next lane's ``low``, where it is near.

        Where the next lane starts in the sync's list, less where this one has read to, is
        how many contacts are left to it (positions only fall as contacts leave, so a few
        more are asked for; too few, and the lane reads on as usual). The next request reads
        again the contacts of the second it moves ``date`` to, and the one before. Only after
        an answer that brought new contacts, and while the estimate says some are left: an
        answer of only contacts read before is followed by a whole page.
        """
        at = self._lanes.index(lane)
        following = next((other for other in self._lanes[at + 1 :] if not _dropped(other)), None)
        if following is None or following.low is None:
            return
        paginator = t.cast(ContactsPaginator, lane.paginator)
        left = following.start - (lane.start + lane.passed) + 1
        if left <= 0:
            return
        date = paginator.current.date
        again = len(lane.recent) if date is None else sum(u >= date[:19] for u in lane.recent)
        paginator.ask_at_most(left + again + AIM_SLACK + left // 50)

    def _in_turn(self, start: _Lane, *, first: bool) -> list[_Lane]:
        """The lanes with a request, in the order their answers are taken: from ``start`` on.

        ``first``: ``start`` leads (it is ``current``'s lane); else it comes last.
        """
        if start in self._lanes:
            at = self._lanes.index(start)
            after, before = self._lanes[at + 1 :], self._lanes[:at]
            order = [start, *after, *before] if first else [*after, *before, start]
        else:  # ended and let go: it stood before every lane
            order = self._lanes
        return [lane for lane in order if not lane.done]

    def _open_lanes(self, count: int) -> None:
        """Start lanes ahead of what is read until ``count`` are reading, where the list's length allows."""
        if self.listed is None or self._no_more_lanes:
            return
        if any(lane.paginator is not None and lane.paginator.cut_short for lane in self._lanes):
            self._no_more_lanes = True  # lanes are placed by page: a cap moves them
            return
        reading = [lane for lane in self._lanes if not lane.done]
        total_pages = math.ceil(self.listed / self._page_size)
        unread = math.ceil(max(0, self.listed - self.stats.passed_on) / self._page_size)
        # A page more each than an even share: the last lane is the shortest, so the round
        # trip of the probe that proves the list's end overlaps the other lanes' last pages.
        lane_pages = max(MIN_LANE_PAGES, min(LANES_PAGES // count, math.ceil(unread / count) + 1))
        if self._next_start is None:
            # The first lane reads on from where it is for a lane's length.
            self._next_start = self.stats.passed_on // self._page_size + lane_pages
            self._first_lane_pages = lane_pages
        while len(reading) < count and self._next_start < total_pages:
            if len(reading) == 1 and unread < 2 * MIN_LANE_PAGES:
                return  # too little left to share
            if total_pages - self._next_start < max(MIN_LANE_PAGES, self._first_lane_pages // 2):
                return  # the last lane reads that on (in windows of its own, if there is room)
            last = self._last_lane()
            if last is not None and last.seed is None and not last.done:
                # The last lane reads on past its pages while no lane follows it: the next
                # one starts a page past where it has read to (passed on, maybe, already).
                read_to = last.start + last.passed
                self._next_start = max(self._next_start, read_to // self._page_size + 1)
                if self._next_start >= total_pages:
                    return
            seed = PageRequest(date=self._base_date, page=self._next_start, limit=self._page_size)
            lane = _Lane(next(self._idents), seed=seed, paginator=None)
            self._lanes.append(lane)
            reading.append(lane)
            self._next_start += lane_pages

    def _take_seed(self, lane: _Lane, page: list[dict[str, t.Any]]) -> None:
        """Start ``lane`` from its seed's answer, or drop it (see the module's docstring)."""
        request = t.cast(PageRequest, lane.seed)
        lane.seed = None
        self._spent.requests += 1
        self._spent.contacts_read += len(page)
        check_sorted(request, page)
        keys = [contact_key(contact) for contact in page]
        if not page:
            self._no_more_lanes = True  # past the list's end
        if not page or None in keys or keys[0][0][:19] == keys[-1][0][:19]:  # type: ignore[index]
            lane.done = True
            self._spent.reread += len(page)
            self._end_lanes()
            return
        self._order_shown = True  # sorted, and two seconds
        low, high = keys[0][0][:19], keys[-1][0][:19]  # type: ignore[index]
        before = self._lanes[: self._lanes.index(lane)]
        previous = next((other for other in reversed(before) if not _dropped(other)), None)
        if previous is not None and (
            (previous.low is not None and low <= previous.low) or previous.released > low
        ):
            # Contacts left the list since the lane before was placed, so much that this seed
            # starts where that lane starts or has passed on already: it reads on instead.
            lane.done = True
            self._spent.reread += len(page)
            self._end_lanes()
            return
        lane.low = low
        interior = [c for c in page if low < c["updated"][:19] < high]
        lane.held.add(interior, encode=True)
        lane.start = request.offset + next(i for i, key in enumerate(keys) if key[0][:19] > low)  # type: ignore[index]
        lane.passed = lane.seeded = len(interior)
        self.lanes_started += 1
        self._spent.passed_on += len(interior)
        self._spent.reread += len(page) - len(interior)
        lane.paginator = ContactsPaginator(
            page_size=self._page_size, since=f"{high}.000000Z", signpost=self._signpost
        )
        lane.paginator.order_shown = True
        self._end_lanes()

    def _end_lanes(self) -> None:
        """End each lane at the next one's ``low``, now that a seed has shown where one starts."""
        for lane in self._lanes:
            self._end_at_next_low(lane)

    def _next_low(self, lane: _Lane) -> tuple[bool, str | None]:
        """(known, second): where the lane after ``lane`` starts; None: ``lane`` reads to the end."""
        at = self._lanes.index(lane)
        for following in self._lanes[at + 1 :]:
            if following.seed is not None:
                return False, None
            if following.low is not None:
                return True, following.low
        return True, None

    def _end_at_next_low(self, lane: _Lane) -> None:
        """End ``lane`` at its first contact dated after the next lane's ``low``, if it has passed one."""
        known, low = self._next_low(lane)
        if not known or low is None:
            return
        for index, second in enumerate(lane.held.seconds):
            if second is not None and second > low:
                # Read by the next lane: passed on there.
                beyond = len(lane.held.seconds) - index
                lane.held.cut(index)
                lane.passed -= beyond
                self._spent.passed_on -= beyond
                self._spent.reread += beyond
                lane.done = True
                return

    def _release(self) -> t.Iterator[dict[str, t.Any]]:
        """The contacts every lane before theirs has ended for, in order (decoded as used)."""
        passed: list[t.Iterator[dict[str, t.Any]]] = []
        while self._lanes:
            head = self._lanes[0]
            known, _ = self._next_low(head)
            if not known:
                break  # a seed in flight: where the head ends is not known yet
            dated = [second for second in head.held.seconds if second is not None]
            head.released = max([head.released, *dated[-1:]])
            passed.append(head.held.take())
            if not head.done:
                break
            self._lanes.pop(0)
            if head.paginator is not None:
                _add(self._spent, head.paginator.stats)
                self._order_shown = self._order_shown or head.paginator.order_shown
                self._capped_at = self._capped_at or head.paginator.capped_at
        return itertools.chain.from_iterable(passed)


def _dropped(lane: _Lane) -> bool:
    """Whether ``lane``'s seed could not start it: it reads nothing."""
    return lane.done and lane.seed is None and lane.low is None and lane.paginator is None


def _tagged(request: PageRequest, lane: _Lane) -> LaneRequest:
    return LaneRequest(date=request.date, page=request.page, limit=request.limit, lane=lane.ident)


def _add(total: PagingStats, more: PagingStats) -> None:
    for field in dataclasses.fields(PagingStats):
        setattr(total, field.name, getattr(total, field.name) + getattr(more, field.name))
