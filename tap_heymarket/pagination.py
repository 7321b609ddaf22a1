"""Page through ``/v2/contacts/list`` without ever losing a contact.

The endpoint pages by number (``page`` = 0, 1, 2, ... of ``limit`` contacts) over the list of
contacts updated since ``date``, sorted by ``updated``. Plain offset paging over that list loses
contacts: when a contact on an earlier page is updated it moves to the end, every later contact
shifts one place forward, and the contact that slid onto the page already read is never seen,
and never will be, once the bookmark has moved past it.

So the offset is kept short-lived. After each page the paginator moves ``date`` up to just
below the newest ``updated`` it has read (one whole second below, so the next answer includes
every contact at or after it whether the API's ``date`` is inclusive or exclusive, at whatever
precision it compares) and starts again at page 0. A fresh query from ``date`` is correct by
construction: everything before it has been read, and everything at or after it is in the answer.

Only when a whole page falls within that second (bulk imports put hundreds of contacts on one
``updated``) can ``date`` not move. Then the paginator pages by offset, but with overlapping
windows: each request repeats the last tenth of what was just read (``limit`` and ``page`` are
chosen so that ``page * limit`` lands inside it). Contacts only ever leave this part of the
list (an update moves a contact to the end), so positions only shift towards the start; as long
as a contact already read reappears in the new window, the contacts after it are exactly the
next ones, and nothing was skipped. If none reappears, the window slides back until one does
(offset 0 always qualifies). Nothing here assumes an order among contacts that share one
``updated`` (by id, as text, by hash: the docs are silent), only that it is the same on every
request; output is in ascending ``updated`` order, in Heymarket's order inside a tie.

What the paging relies on is checked on every answer, and a failed check stops the sync with
``PagingError`` (the stream then writes no STATE past what it emitted before):

- each answer is sorted by ``updated``, oldest first. A server that ignores ``ascending`` shows
  it in the first answer that holds two different times (at least ``MIN_FIRST_LIMIT`` contacts
  are asked for); until one has (``order_shown``), ``date`` does not move (the paginator reads
  on in windows) and the stream moves no bookmark;
- every contact before the last one already read in an answer has been read too (in a window,
  before the contact it joins on; on a fresh ``date``, before the last re-read): otherwise the
  order inside a tie changed between requests, and offsets no longer mean anything;
- the contacts an answer repeats come in the order answers on its ``date`` first listed them
  (contacts only leave, so a stable order keeps the rest in place): a tie whose order changed
  shows here even when every contact a window repeats was read;
- a contact never read is never older than one already passed on.

Contacts dated from one second before the sync began (``next_run_reads_from``) are exempt from
the last two checks: they changed during the sync, or were created in a tie still being
written. The stream's bookmark never passes that point, so the next run, which re-reads from a
second before its bookmark, reads them whatever happens now. An answer to a request sent
together with others that fails a check is asked again, alone, before the check counts.

A sync ends only when a probe proves there is nothing more. No length does: a cap that varies
(by bytes, say) can cut any answer, even one Heymarket never cut before, and even just where
the list had been read to. So after an answer shorter than both the limit asked and the longest
answer Heymarket has given (a server may cap answers below ``limit``), the paginator asks for
that answer's last contact and the next, in a window of at least two placed on the last one
(its offset a multiple of the limit, chosen so). Found there again, that contact shows nothing
before it left the list since (positions only fall: contacts leave by an update, which moves
them to the end, or a deletion, and new ones join at the end, as anything dated before the
sync's start sorts before them); so nothing after it, or only contacts the next run reads,
is the end. Where no such window fits, the one contact after the answer at a limit of one,
and then, sent after that answer is in, its last contact again, which must still stand just
before. A contact before it gone: a fresh query reads on from that contact's second. Anything
else after it proves the answer was cut: with new contacts in it, answers are cut at lengths
that vary, and the paginator reads on from it as usual (and from then on reads on after short
answers with new contacts without probing); without, no later request asks for more than the
cut answer held. (A cap that varies is taken to cut a page placed by the limit asked, a server
cannot know how many contacts fit before placing it, and to let at least two through; where
the probe holds the last contact alone though a contact passed on stands after it, that is
taken for a cut to one, and the one-contact probe follows.) An answer whose last contact the
next run reads ends the sync with no probe.
Contacts dated from ``next_run_reads_from`` on are read as they come, but not chased forever:
windows among them that keep failing to join, or joining with nothing new (a server ignoring
``page`` there), none reading on in between (``MAX_TAIL_SLIDES``), end the sync instead of
going on, as the list is sorted and everything after them is the next run's too.
An answer as long as any before it but short of the limit may be the end or a cap: the
paginator reads on with windows no larger than that answer (a page 0 still asks for a whole
page: no reading of a cap moves its offset), and where no overlapping window of that size can
advance (offsets are multiples of the limit), it probes the end as above.

The same windows let several requests be in flight at once when the API's latency, not the
rate limit, is what a sync waits for. A window's place depends only on the one before it
coming back full, so ``upcoming()`` can name the next ones before any answer is in, and keeps
naming them as answers arrive: the pipeline never drains. ``date`` moves inside it too. A window
named ahead may be asked on a later ``date`` D' (a whole second the last answer taken reaches
into): the list for D' is the list for the old ``date`` without its contacts older than D', in
the same order, so the window's offset is the old one less the contacts the last answer showed
to be older than D', and it repeats, besides its usual overlap, every contact of D''s own second
(which D' includes or not, depending on the reading). Where D''s second holds none of that
answer's contacts (it falls in a gap between two of them), D''s list starts at the same place
under every reading, so how many contacts it leaves out is exact and kept: windows are placed
on such ``date``s from answers on other ``date``s too. As offsets are multiples of the limit, a
window that stays on its ``date`` repeats about as many contacts as its page number (or reads
fewer); of the ``date``s the last answer shows, the one chosen puts a window of the whole limit
where it must start, and a window takes the cheaper of the two places. What a moved window must
repeat is set by the join across ``date``s below (more contacts than end the window before it
in one second), at the cost a failed join has: the window and the requests named after it, at
the rate the answers taken end on such runs. No more windows are named than the contacts not
passed on yet fill, when the stream knows how many the list held (``listed``, a first sync's
count). Each answer is still taken in order and must join the one before it, whatever order the API
evaluated them in: the argument above never relied on that order, only on contacts leaving and
never entering the part of the list already read, which holds across the two ``date``s. As
the order inside a tie may differ from one ``date`` to another, a window on a new ``date`` joins
only where its answer holds the join contact's whole second (a contact of an earlier second
before it), so that a changed order there shows as a missed contact, not a skipped one. So
does a window on the same ``date`` where the last window shows where that second starts and
holds fewer of it than a tie window repeats (a window named ahead repeats as many contacts as
a moved one, so it rarely fails this): an order that changes on every request could otherwise
move a contact of that second before the window unseen. A
window that does not join makes the paginator look further back on its own, and the requests
named after it are simply not asked for (``upcoming()`` no longer names them). Out-of-order
answers have two consequences, both handled: an answer evaluated before one already taken can
hold an older version of a contact whose newer version is further on (it is skipped as a
re-read), and a short answer evaluated early can end before contacts updated meanwhile, so
a short answer with nothing new in it to a request named ahead is asked again first, as is one
that fails a check, before the check counts; no request is named ahead until an answer comes
back full and whole. The probe of the list's end proves it in any order of evaluation (its
first contact in its place shows that none before it left between the probe and the answer
it checks, whichever came first), so where Heymarket's count foretells which window ends the
list (``_end_foreseen``), its probe is named with it, and no more windows after it.

Contacts read twice are passed on once (targets upsert on ``id`` anyway), so the bookmark can be
saved at any point and a restart from it re-reads at most the contacts of the bookmark's second.
"""

from __future__ import annotations

import copy
import datetime
import math
import typing as t
from dataclasses import dataclass

from tap_heymarket.normalize import TIMESTAMP_FORMAT, query_date, widen

#: (updated, id) of a contact: what identifies one version of it.
Key = tuple[str, int]


@dataclass(frozen=True)
class PageRequest:
    """One request for a page of contacts."""

    date: str | None
    page: int
    limit: int

    def body(self) -> dict[str, t.Any]:
        """The JSON body ``/v2/contacts/list`` expects (``date`` omitted for all history)."""
        body: dict[str, t.Any] = {"limit": self.limit, "page": self.page, "ascending": True}
        if self.date is not None:
            body["date"] = self.date
        return body

    @property
    def offset(self) -> int:
        """Position of the first contact of this page in the list for ``date``."""
        return self.page * self.limit

    def __str__(self) -> str:
        return f"date={self.date or '(none)'} page={self.page} limit={self.limit}"


@dataclass
class PagingStats:
    """What paging cost, for the end-of-sync log line."""

    requests: int = 0
    contacts_read: int = 0
    #: Contacts passed on: each version once.
    passed_on: int = 0
    reread: int = 0
    slid_back: int = 0
    #: Contacts found out of place but dated after the sync began: the next run reads them.
    deferred: int = 0
    #: Requests that only checked whether a short answer was the end of the list.
    probes: int = 0
    #: Answers to requests sent together that failed a check, so were asked again alone.
    asked_again: int = 0


class PagingError(Exception):
    """Heymarket answered in a way that cannot be paged through without risking a lost record."""


#: Overlapping windows need room to both repeat and advance; below this many contacts a
#: window cannot always do both, so tie windows may be larger than a small ``page_size``.
MIN_WINDOW = 20
#: Contacts a window sent ahead repeats of the one before it at least (see ``_join_overlap``).
#: Requests sent together are evaluated within moments of each other, so few contacts can
#: leave in between; when more do, the window does not join and the paginator slides back
#: (correct, one request dearer).
AHEAD_OVERLAP = 2
#: Requests named after ``current`` at most (more than any number in flight).
MAX_AHEAD = 64
#: Contacts whose order of listing is kept on one ``date`` before older ones are dropped.
MAX_RANKED = 10_000
#: Contacts a window sent ahead repeats at most (see ``_join_overlap``).
MAX_AHEAD_OVERLAP = 12
#: Contacts asked for at least when ``date`` moves: one answer must be able to show its order.
MIN_FIRST_LIMIT = 2
#: Answers of the same short length that show Heymarket caps its answers (for the log).
CAP_EVIDENCE = 3
#: Answers to probes that found more than a one-contact answer let on, before giving up.
MAX_PROBE_HITS = 3
#: Probes of the list's end with no answer bringing new contacts in between, before giving up
#: (each found a cut, or a contact before its place gone: the list keeps changing there).
MAX_PROBES_WITHOUT_NEWS = 30
#: Windows in a row that do not join, or join with nothing new, among contacts the next run
#: reads (no window reading on in between), before the sync ends there.
MAX_TAIL_SLIDES = 10


def _overlapping_window(last_index: int, overlap: int, max_limit: int) -> tuple[int, int]:
    """(limit, page) whose window repeats at least ``overlap`` contacts up to ``last_index`` and reaches furthest."""
    latest_start = max(0, last_index + 1 - overlap)
    best_limit, best_page, best_end = max_limit, 0, -1
    for limit in range(max_limit, 0, -1):
        page = latest_start // limit
        end = page * limit + limit
        if end > best_end:
            best_limit, best_page, best_end = limit, page, end
    return best_limit, best_page


class ContactsPaginator:
    """Page-number paginator over contacts sorted by ``updated`` that never skips one.

    ``current`` is the request to send; ``advance()`` takes the page it returned (normalised
    contacts, as the API sorted them) and returns the contacts not passed on before, or raises
    ``PagingError`` when the answers break an assumption the paging relies on.
    """

    def __init__(self, *, page_size: int, since: str | None, signpost: str) -> None:
        """``since``: fixed-width timestamp of the bookmark (or start date); None for all history.

        ``signpost``: when the sync began. The bookmark never passes it, so the next run reads
        again every contact dated from one second before it.
        """
        self._page_size = page_size
        self._window = max(page_size, MIN_WINDOW)
        self._since = since
        #: The latest bookmark this sync may leave: the next run, which re-reads from a second
        #: before its bookmark under every reading of ``date``, reads every contact dated from
        #: here on, whatever this one did with it.
        self.next_run_reads_from = widen(query_date(signpost))
        #: Whether an answer has shown two different ``updated`` values (sorted, as checked):
        #: until one does, Heymarket may be ignoring ``ascending`` unseen.
        self.order_shown = False
        # The most contacts one answer has held: Heymarket caps its answers at no fewer.
        self._largest_answer = 0
        # Whether a short answer may have been cut by a cap rather than the end of the list.
        self._maybe_capped = False
        self._probe_hits = 0
        self._probing = False
        # The last contact of the answer a probe checks, and whether a probe that found nothing
        # after it waits for its recheck: is that contact still just before the probe's place?
        self._probe_join: dict[str, t.Any] | None = None
        self._rechecking = False
        # Answers as long as the largest one, while a cap is suspected: many say it is one.
        self._answers_at_cap = 0
        # Windows that did not join, or joined and brought nothing new, past the last contact
        # the next run would not read, since the last one that read on.
        self._tail_slides = 0
        # The shortest answer shown to be cut short of the list's end: no limit asks for more.
        self._cut: int | None = None
        # Whether answers were shown to be cut at lengths that vary (by bytes, say): then no
        # short answer proves the end by itself.
        self._cut_varies = False
        # The short answer a probe checks the end of, and whether it held new contacts (None:
        # the probe is for a window that could not advance).
        self._probed: tuple[PageRequest, list[dict[str, t.Any]], list[Key | None], bool] | None = (
            None
        )
        # Probes since an answer last brought new contacts.
        self._probes_without_news = 0
        # The contact passed on that stands furthest in the list (the last one of the newest
        # ``updated``), of those the next run would not read.
        self._furthest: Key | None = None
        self.current = PageRequest(
            date=query_date(since) if since else None, page=0, limit=self._first_limit()
        )
        self.finished = False
        self.stats = PagingStats()
        #: How many contacts the list held when the sync began, if the stream knows (a first
        #: sync asks Heymarket's count): it keeps windows from being named past the end.
        self.listed: int | None = None
        # Keys of the contacts read in the last window, to find where the next one joins it.
        self._last_window: list[Key] = []
        self._last_window_date: str | None = None
        # Keys passed on since the current ``date``: re-reads of them are dropped.
        self._passed_on: set[Key] = set()
        # Keys of every contact seen on the current ``date``'s list (see ``_out_of_reach``),
        # and whether a contact without one was seen (then no count holds).
        self._seen: set[Key] = set()
        self._seen_unkeyed = False
        # The order in which answers on ``_ranked_date`` listed each contact, first seen first:
        # a stable order lists the contacts it still holds in the same order every time.
        self._ranks: dict[Key, int] = {}
        self._next_rank = 0
        self._ranked_date: str | None = None
        self._newest: str | None = None
        # The requests after ``current``, in order, that ``upcoming()`` named: each is what
        # ``current`` becomes if the one before it comes back full.
        self._plan: list[PageRequest] = []
        # Requests named behind another one not yet taken: their answers may have been
        # evaluated before that one's (see the module's docstring).
        self._named_ahead: set[PageRequest] = set()
        # No request is named ahead until an answer comes back full and passes every check.
        self._hold = False
        # Whether the answer being taken was to a request named ahead.
        self._sent_ahead = False
        # The last answer taken: its request and the keys it placed, for moving ``date`` ahead.
        self._anchor: tuple[PageRequest, list[Key]] | None = None
        # The ``date`` of the requests ``_passed_on`` was last trimmed for.
        self._passed_date = self.current.date
        # Where the lists of ``date``s named ahead start in the list of one of them (the
        # reference): how many of its contacts each leaves out (see ``_moved_ahead``).
        self._bases: dict[str | None, int] = {}
        # How many contacts of the answers taken end a run of at least ``n`` in one second
        # (``_runs[n]``), out of ``_runs_counted``; the last answer counted.
        self._runs = [0] * (MAX_AHEAD_OVERLAP + 2)
        self._runs_counted = 0
        self._runs_anchor: tuple[PageRequest, list[Key]] | None = None
        # Requests ``upcoming()`` was last asked for.
        self._named_count = 1

    @property
    def capped_at(self) -> int | None:
        """The most contacts Heymarket answered with, if it seems to cap answers below the limit."""
        return self._largest_answer if self._answers_at_cap >= CAP_EVIDENCE else None

    @property
    def left_to_next_run(self) -> bool:
        """Whether the sync ended among contacts the next run reads, short of the list's end.

        Windows there kept failing to join or bringing nothing new (``MAX_TAIL_SLIDES``).
        """
        return self.finished and self._tail_slides >= MAX_TAIL_SLIDES

    @property
    def cut_short(self) -> bool:
        """Whether an answer may have been, or was, cut short of the limit by a cap."""
        return self._maybe_capped or self._cut is not None

    def ask_at_most(self, limit: int) -> None:
        """Ask for no more than ``limit`` contacts next, if the next request starts a fresh ``date``.

        For a reader that knows where it stops (a lane ends where the next one starts). A page
        0 may ask for fewer: no reading of a cap moves its offset, and whatever it holds is
        read on from as usual.
        """
        current = self.current
        if current.page or self._plan or current in self._named_ahead:
            return  # windows are placed after it, or it may be in flight already
        if self._probing or self._rechecking:
            return
        if limit < current.limit:
            self.current = PageRequest(current.date, 0, max(limit, MIN_FIRST_LIMIT))

    def _limit(self, wanted: int) -> int:
        """``wanted``, or no more than Heymarket has been seen to send while it may be capping."""
        if self._cut is not None:
            wanted = min(wanted, self._cut)
        return min(wanted, self._largest_answer) if self._maybe_capped else wanted

    def _first_limit(self) -> int:
        """A page 0 asks for a whole page even under a cap: no reading of one moves its offset."""
        return max(self._page_size, MIN_FIRST_LIMIT)

    def _ahead_window(self) -> int:
        """Largest window sent ahead; 0 (none sent ahead) while Heymarket caps answers below it."""
        window = self._limit(self._window)
        return window if window >= MIN_WINDOW else 0

    def _tie_window(self, date: str | None, last_index: int) -> PageRequest | None:
        """The window on the current ``date`` that repeats contacts up to ``last_index`` and reads on.

        None when answers are capped so small that no window of theirs can both repeat and
        advance from there (offsets are multiples of the limit).
        """
        window = self._limit(self._window)
        if window < 2:  # a window of one cannot overlap
            return None
        limit, page = _overlapping_window(last_index, _overlap(window), window)
        if (page + 1) * limit <= last_index + 1:
            return None
        return PageRequest(date=date, page=page, limit=limit)

    def upcoming(self, count: int) -> list[PageRequest]:
        """``current`` and the requests that follow it if every page comes back full: ``count`` at most.

        Each is exactly what ``current`` becomes in turn, unless an answer changes the plan
        (then the requests no longer named are not needed).
        """
        if self._probing or self._rechecking or self._hold or not self._ahead_window():
            return [self.current]
        count = min(count, 1 + self._pages_left())
        self._named_count = count
        self._count_runs()
        while len(self._plan) < count - 1:
            following = self._following(self._plan[-1] if self._plan else self.current)
            if following == self.current or following in self._plan:
                break
            self._plan.append(following)
        named = [self.current, *self._plan[: max(0, count - 1)]]
        for index, request in enumerate(named):
            probe = self._end_foreseen(request)
            if probe is not None:
                # Windows past the end would be wasted: the probe of the last one instead.
                named = [*named[: index + 1], probe]
                break
        # What is not named now is not asked for (its answer is dropped); what is, stays sent.
        self._named_ahead = {request for request in self._named_ahead if request in named}
        self._named_ahead.update(named[1:])
        return named

    def _pages_left(self) -> int:
        """Pages left to read after ``current``, as far as can be told: ``MAX_AHEAD`` at most.

        Windows named past the end of the list are wasted requests: this keeps their number
        small at the end of a sync. When the stream knows how many contacts the list held
        (``listed``: a first sync asks Heymarket's count), the pages left are the contacts not
        passed on yet, in windows of the new contacts one brings (it repeats some: counting
        whole windows left the last one unnamed until the answer before it was in, a round
        trip with nothing else in flight). Otherwise, or past that count (contacts
        were created during the sync): twice the pages left before the sync's start at the last
        answer's density, and one (the density varies, hence twice).
        """
        if self._anchor is None:
            return MAX_AHEAD
        unread = None if self.listed is None else self.listed - self.stats.passed_on
        if unread is not None and unread > 0:
            brings = max(1, self._ahead_window() - self._join_overlap()[0])
            return min(MAX_AHEAD, math.ceil(unread / brings) - 1)
        keys = self._anchor[1]
        span = _seconds(keys[-1][0]) - _seconds(keys[0][0])
        if span <= 0:
            return MAX_AHEAD  # a tie: the density says nothing
        left = max(0.0, _seconds(self.next_run_reads_from) - _seconds(keys[-1][0]))
        return min(MAX_AHEAD, math.ceil(2 * left / span) + 1)

    def _following(self, request: PageRequest) -> PageRequest:
        """The window after ``request`` if it comes back full: the cheaper of two places.

        On ``request``'s ``date``, where its offset must be a multiple of its limit (so it
        repeats at least what a join needs, and about as many contacts as its page number, or
        reads fewer), or on a later ``date`` placed so that it repeats only what it must
        (``_moved_ahead``).
        """
        window = self._ahead_window()
        end = request.offset + request.limit
        overlap, risk = self._join_overlap()
        limit, page = _overlapping_window(end - 1, overlap, window)
        stay = PageRequest(date=request.date, page=page, limit=limit)
        # Contacts it repeats, those it reads fewer than a whole window, and a failed join's.
        cost = end - stay.offset + window - limit + risk
        moved = self._moved_ahead(request, window)
        if moved is not None and moved[1] < cost:
            return moved[0]
        return stay

    def _moved_ahead(self, request: PageRequest, window: int) -> tuple[PageRequest, float] | None:
        """The window after ``request`` on a later ``date`` the last answer taken shows, and its cost.

        The last answer taken (the anchor) shows where the list for a later ``date`` D' starts
        in its own ``date``'s list: the contacts before that are older than D'. A ``date``
        whose second holds no contact of the anchor (it falls in a gap between two of them)
        starts at the same place under every reading of ``date``, so its offset from the
        sync's list (``_bases``) is exact, and windows named on it can be placed from later
        anchors too; a ``date`` whose second holds some (``either``) is used only from an
        anchor on ``request``'s own ``date``, and the window repeats those too. Of the
        ``date``s the anchor shows, the one whose window repeats fewest contacts is taken
        (offsets are multiples of the limit: the ``date`` is chosen so that one lands where
        the window must start). The cost counts the requests a window that does not join
        wastes (``_join_overlap``).

        None when no such ``date`` is later than ``request``'s and leaves it a page past the
        first (a window at offset 0 would not be checked as a window).
        """
        if self._anchor is None or not self.order_shown:
            return None
        anchor, keys = self._anchor
        if len(keys) != anchor.limit:
            return None  # a contact without (updated, id): indices are not positions
        bases = self._bases
        if anchor.date == request.date and request.date not in bases:
            # A ``date`` not placed from an earlier one: positions count from its list.
            bases.clear()
            bases[request.date] = 0
        same = anchor.date == request.date
        if not same and (anchor.date not in bases or request.date not in bases):
            return None
        overlap, risk = self._join_overlap()
        # Where ``request`` ends, and where the anchor starts, in the reference list.
        end = request.offset + request.limit + bases.get(request.date, 0)
        anchor_at = anchor.offset + bases.get(anchor.date, 0)
        best: tuple[int, int, int, str] | None = None  # (waste, -first, either, date)
        for first in range(1, len(keys)):
            second, previous = keys[first][0][:19], keys[first - 1][0][:19]
            if second == previous:
                continue
            new_date = query_date(keys[first][0])
            if request.date is not None and new_date <= request.date:
                continue
            # The anchor's contacts of the new date's own second: in its list or not.
            either = 0
            while first - either - 1 >= 0 and keys[first - either - 1][0][:19] == new_date[:19]:
                either += 1
            if either and not same:
                continue
            base = anchor_at + first - either
            start = end - overlap - either - base
            if start < window:
                continue
            waste = start % window
            if overlap + either + waste > window // 2:
                continue  # it would not read on far enough
            candidate = (waste + 2 * either, -first, either, new_date)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            return None
        waste, first, either, new_date = best
        base = anchor_at - first - either
        start = end - overlap - either - base
        if not either:
            bases[new_date] = base
            if len(bases) > 2 * MAX_AHEAD and anchor.date is not None:
                # Only ``date``s from the anchor's on can be asked again.
                self._bases = {at: n for at, n in bases.items() if at and at >= anchor.date}
        moved = PageRequest(date=new_date, page=start // window, limit=window)
        return moved, overlap + waste + risk

    def _join_overlap(self) -> tuple[int, float]:
        """Contacts a window named ahead repeats at least, and what a failed join costs.

        Such a window joins only where its answer holds the join contact's whole second (on a
        later ``date``, and mostly on its own), so it must repeat more contacts than the last
        ones of the window before it that share one second; when it does not, it and the
        requests named after it are wasted. The
        repetition chosen is the one costing least, counting those requests at the rate the
        answers taken so far end on as many contacts of one second (a prior of one in ten for
        two, and a tenth as many for each contact more).
        """
        runs, contacts = self._runs, self._runs_counted
        named = max(1, self._named_count)
        best: tuple[float, int] | None = None
        for overlap in range(AHEAD_OVERLAP, MAX_AHEAD_OVERLAP + 1):
            longer = runs[overlap] if overlap < len(runs) else 0
            # The prior: one contact in ten ends a run of two, one in ten of those a longer one.
            prior = 100 * 0.1 ** (overlap - 1)
            risk = (longer + prior) / (contacts + 100) * named * self._ahead_window()
            if best is None or overlap + risk < best[0]:
                best = (overlap + risk, overlap)
        assert best is not None
        return best[1], best[0] - best[1]

    def _count_runs(self) -> None:
        """Count, once per answer taken, how many of its contacts end a run of one second."""
        if self._anchor is None or self._anchor is self._runs_anchor:
            return
        self._runs_anchor = self._anchor
        keys = self._anchor[1]
        run = 0
        for index, key in enumerate(keys):
            run = run + 1 if index and key[0][:19] == keys[index - 1][0][:19] else 1
            for length in range(1, min(run, len(self._runs) - 1) + 1):
                self._runs[length] += 1
        self._runs_counted += len(keys)

    def advance(self, page: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Take the answer to ``current``; return the contacts to emit, and set the next request."""
        request = self.current
        self.stats.requests += 1
        self.stats.contacts_read += len(page)
        # Whether the answer may have been evaluated before one already taken.
        self._sent_ahead = request in self._named_ahead
        self._named_ahead.discard(request)  # taken: asked again, it is asked anew
        if self._probing:
            self._take_probe(page)
            return []
        if self._rechecking:
            self._take_recheck(page)
            return []
        check_sorted(request, page)
        if len({contact.get("updated") for contact in page} - {None}) > 1:
            self.order_shown = True
        keys = [contact_key(contact) for contact in page]
        floor = self._read_before(request)

        start = 0
        if request.offset > 0 and self._last_window:
            joined = self._window_join(request, keys)
            if joined is None:
                self._slide_back(request)
                return []
            start = joined + 1
        else:
            # A fresh ``date``: the contacts already read of its first seconds lead the answer.
            joined = self._join_point(keys, self._passed_on)
        problem = self._broken_assumption(request, len(page), keys, joined, start)
        if problem is not None:
            if not self._sent_ahead:
                raise PagingError(problem)
            # Maybe a stale answer to a request named ahead: ask again, first.
            self._replan()
            self.stats.asked_again += 1
            if request.offset > 0:
                self._slide_back(request)
            return []

        self._rank(keys)
        # Every contact of this ``date``'s list counts, re-read or not (not just those past ``since``).
        listed = widen(request.date) if request.date is not None else ""
        self._seen.update(key for key in keys if key is not None and key[0] >= listed)
        self._seen_unkeyed = self._seen_unkeyed or None in keys
        fresh: list[dict[str, t.Any]] = []
        for contact, key in zip(page[start:], keys[start:], strict=True):
            if key is None:
                fresh.append(contact)  # no usable (updated, id): the stream reports it
            elif key in self._passed_on or key[0] < floor:
                self.stats.reread += 1
            elif self._newest is not None and key[0] < self._newest:
                # Dated during this sync (the next run reads it), or answers to requests sent
                # together crossed: this one was evaluated before one already taken, and the
                # contact has since been updated (its new version is further on) or deleted.
                self.stats.deferred += 1
            else:
                fresh.append(contact)
                self._passed_on.add(key)
                self._newest = key[0]
                if key[0] < self.next_run_reads_from and (
                    self._furthest is None or key[0] >= self._furthest[0]
                ):
                    self._furthest = key

        if not self._stalled_in_tail(request, fresh):
            self._plan_next(request, page, keys, fresh)
        return self._pass_on(fresh)

    def _stalled_in_tail(self, request: PageRequest, fresh: list[dict[str, t.Any]]) -> bool:
        """Whether windows among contacts the next run reads keep bringing nothing new.

        Then the sync ends there, as when they keep failing to join: a server ignoring
        ``page`` there repeats itself without failing a check, as those contacts are exempt.
        """
        if request.offset > 0 and fresh:  # a window that joined, and read on
            self._tail_slides = 0
        if request.offset == 0 or fresh or not self._in_tail():
            return False
        self._tail_slides += 1
        self.finished = self._tail_slides >= MAX_TAIL_SLIDES
        return self.finished

    def _broken_assumption(
        self,
        request: PageRequest,
        length: int,
        keys: list[Key | None],
        joined: int | None,
        start: int,
    ) -> str | None:
        """What the answer shows the paging cannot rely on (see the module's docstring), if anything.

        ``joined``: where it joins what was read before; ``start``: its first contact past that
        in a window.
        """
        floor = self._read_before(request)
        missed = [] if joined is None else self._missed(keys[:joined], floor)
        if missed:
            return _unstable_order(request, missed)
        reordered = self._reordered(request, keys)
        if reordered:
            return _reordered_message(request, reordered[0])
        if start:
            joined_on = t.cast("Key", keys[start - 1])
            if self._out_of_reach(request, length, start - 1, joined_on):
                return _unstable_order(request, [joined_on])
        behind = self._behind(keys[start:], floor)
        if behind:
            return _behind_message(request, behind[0], t.cast("str", self._newest))
        return None

    def _pass_on(self, fresh: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """``fresh``, counted."""
        self.stats.passed_on += len(fresh)
        return fresh

    def _behind(self, keys: list[Key | None], floor: str) -> list[Key]:
        """Contacts never read that are older than ones passed on, and no later run reads."""
        newest = self._newest
        if newest is None:
            return []
        return [
            key
            for key in keys
            if key is not None
            and key not in self._passed_on
            and floor <= key[0] < newest
            and key[0] < self.next_run_reads_from
        ]

    def _any_due(self, fresh: list[dict[str, t.Any]]) -> bool:
        """Whether ``fresh`` holds a contact the next run would not read again."""
        return any(
            contact.get("updated") is not None and contact["updated"] < self.next_run_reads_from
            for contact in fresh
        )

    def _read_before(self, request: PageRequest) -> str:
        """Contacts dated before this were read before ``request`` (or before the bookmark)."""
        floor = widen(request.date) if request.date is not None else ""
        return max(floor, self._since or "")

    def _missed(self, keys: list[Key | None], floor: str) -> list[Key]:
        """Contacts before the join point never read, that no later run would read either.

        In a list whose order holds, everything before a contact already read was read too;
        contacts dated during this sync are exempt (they may be new, and the next run reads them).
        """
        return [
            key
            for key in keys
            if key is not None
            and key not in self._passed_on
            and floor <= key[0] < self.next_run_reads_from
        ]

    def _reordered(self, request: PageRequest, keys: list[Key | None]) -> list[Key]:
        """Contacts this answer lists before one that an earlier answer on its ``date`` listed first.

        Contacts only leave the part of the list already read, so a stable order lists those it
        still holds in the order first seen. Where the order inside a tie changes between
        requests, offsets no longer mean anything, even where every contact a window repeats
        was read: that is caught here, not only when a contact never read shows up early.
        (Contacts dated from a second before the sync began may be new anywhere in their tie:
        they are left out. Across ``date``s the order inside a tie may differ: ranks restart.)
        """
        if request.date != self._ranked_date:
            self._ranks = {}
            self._ranked_date = request.date
        ranks, highest = self._ranks, -1
        for key in keys:
            if key is None or key[0] >= self.next_run_reads_from:
                continue
            rank = ranks.get(key)
            if rank is None:
                continue
            if rank < highest:
                return [key]
            highest = rank
        return []

    def _rank(self, keys: list[Key | None]) -> None:
        """Rank the contacts of an answer that passed every check, after those ranked before.

        Contacts older than the answer's are dropped once many are ranked: only a window slid
        far back would list them again, and it is checked by its join all the same.
        """
        ranks = self._ranks
        if len(ranks) > MAX_RANKED:
            oldest = min((key[0] for key in keys if key is not None), default="")
            self._ranks = ranks = {key: rank for key, rank in ranks.items() if key[0] >= oldest}
        for key in keys:
            if key is not None and key not in ranks and key[0] < self.next_run_reads_from:
                ranks[key] = self._next_rank
                self._next_rank += 1

    def _out_of_reach(self, request: PageRequest, length: int, joined: int, key: Key) -> bool:
        """Whether the contact a window joins on stands further in than the contacts seen.

        In a stable order every contact up to it was seen (contacts only leave, so positions
        only fall): more places before it than contacts seen means the order inside a tie
        changed between requests, even when every contact the window repeats was read. The
        offset is the least of the readings a cap allows: by the limit asked, or by the one
        served, which a cap makes no smaller than the longest answer seen (an answer cut short
        by the list's end says nothing about the cap).
        Contacts dated from a second before the sync began may also enter the list anywhere in
        their tie: no count holds from there.
        """
        if self._seen_unkeyed or key[0] >= self.next_run_reads_from:
            return False
        position = request.page * min(request.limit, max(length, self._largest_answer)) + joined
        return position + 1 > len(self._seen)

    def _window_join(self, request: PageRequest, keys: list[Key | None]) -> int | None:
        """Where a window joins the last one (None: it does not).

        Across two ``date``s no order inside a second is trusted: the answer must hold the
        join contact's whole second (a contact of an earlier second before it), where
        ``_missed`` sees any contact of it not read.
        """
        joined = self._join_point(keys, set(self._last_window))
        if joined is None:
            return None
        joined_on = t.cast("Key", keys[joined])
        if request.date == self._last_window_date and not self._must_hold_second(joined_on):
            return joined
        second = joined_on[0][:19]
        if any(key is not None and key[0][:19] < second for key in keys[:joined]):
            return joined
        return None

    def _must_hold_second(self, joined_on: Key) -> bool:
        """Whether a window on the last one's ``date`` must hold ``joined_on``'s whole second.

        It must where the last window shows where that second starts and holds fewer of its
        contacts than a tie window repeats: then an order inside the second
        that changed between requests shows as a contact missed, not one skipped before the
        window. A window named before that answer came in may repeat fewer: it does not
        join, and the one the paginator slides back to repeats enough. A second that fills
        more of a window is a tie the windows page through by offset, trusting its order
        (as checked by ``_reordered`` and ``_out_of_reach``); contacts the next run reads
        are exempt, as everywhere.
        """
        if joined_on[0] >= self.next_run_reads_from:
            return False
        last, second = self._last_window, joined_on[0][:19]
        first = next(index for index, key in enumerate(last) if key[0][:19] == second)
        held = sum(1 for key in last[first:] if key[0][:19] == second)
        return first > 0 and held < _overlap(self._limit(self._window))

    def _in_tail(self) -> bool:
        """Whether the last window read reaches contacts the next run reads again."""
        return bool(self._last_window) and self._last_window[-1][0] >= self.next_run_reads_from

    @staticmethod
    def _join_point(keys: list[Key | None], read: set[Key]) -> int | None:
        """Index in the new page of the last contact of ``read`` (None if none is there)."""
        for index in range(len(keys) - 1, -1, -1):
            if keys[index] in read:
                return index
        return None

    def _slide_back(self, request: PageRequest) -> None:
        """The window no longer meets the last one: contacts left before it; look further back.

        Unless that keeps happening past the last contact the next run would not read.
        """
        if self._in_tail():
            self._tail_slides += 1
            if self._tail_slides >= MAX_TAIL_SLIDES:
                self.finished = True
                return
        self.stats.slid_back += 1
        self._replan()
        self.current = self._tie_window(request.date, request.offset - 1) or PageRequest(
            date=request.date, page=0, limit=self._first_limit()
        )

    def _start_probe(
        self,
        request: PageRequest,
        page: list[dict[str, t.Any]],
        keys: list[Key | None],
        *,
        news: bool | None,
    ) -> None:
        """Ask what comes after ``request``'s answer: its last contact and the next.

        A window of at least two placed on that last contact: found there again, nothing
        before it left since (positions only fall), so what follows it is what followed it
        then. Where no such window fits (offsets are multiples of the limit), the one contact
        after it at a limit of one, and then the last one again (``_take_recheck``).
        ``news``: whether the answer held new contacts (None: it was whole, and no window
        could read on from it).
        """
        last = page[-1].get("updated") if page else None
        if last is not None and last >= self.next_run_reads_from:
            self.finished = True  # what comes after it is the next run's (the list is sorted)
            return
        self._probes_without_news += 1
        if self._probes_without_news > MAX_PROBES_WITHOUT_NEWS:
            raise PagingError(
                f"Heymarket's answers at the end of the list kept changing ({request}): "
                f"{MAX_PROBES_WITHOUT_NEWS} checks of the end in a row found neither the end "
                "nor a new contact (contacts there kept changing, or the order of contacts that "
                "share one updated time did); the tap stopped without bookmarking past them (a "
                "later run, when the account is quieter, reads on from there)"
            )
        end = request.offset + len(page)
        self.stats.probes += 1
        self._probing = True
        # A copy: the stream may change the contacts it was given.
        self._probe_join = copy.deepcopy(page[-1]) if page else None
        self._probed = None if news is None else (request, page, keys, news)
        probe = self._joined_probe(request.date, end) if page else None
        self.current = probe or PageRequest(request.date, page=end, limit=1)

    def _joined_probe(self, date: str | None, end: int) -> PageRequest | None:
        """The window of at least two whose first contact is the one at ``end - 1`` (None: none fits)."""
        most = min(self._limit(self._window), self._largest_answer)
        limit = next((n for n in range(2, most + 1) if (end - 1) % n == 0), None)
        return None if limit is None else PageRequest(date, page=(end - 1) // limit, limit=limit)

    def _end_foreseen(self, request: PageRequest) -> PageRequest | None:
        """The probe of ``request``'s answer, if Heymarket's count says that answer ends the list.

        Named with the windows before it, the probe does not wait a round trip of its own at
        a sync's end. Windows named ahead are placed end to end, so if each comes back full
        the list ends where the last answer taken (the anchor, full) ends, plus the contacts
        not passed on yet (from ``listed``), which lies in ``request``'s list as many places
        on as their two ``date``s' lists differ. If the answer comes back as foreseen, the
        probe it needs is this one, and it proves the end in whichever order the two were
        evaluated (its first contact in its place shows none before it left in between,
        either way); if not, it is not needed.
        """
        if self.listed is None or self._anchor is None:
            return None
        anchor, keys = self._anchor
        unread = self.listed - self.stats.passed_on
        if len(keys) != anchor.limit or unread <= 0:
            return None
        if anchor.date == request.date:
            shift = 0
        elif anchor.date in self._bases and request.date in self._bases:
            shift = self._bases[anchor.date] - self._bases[request.date]
        else:
            return None
        end = anchor.offset + anchor.limit + shift + unread
        if not request.offset < end < request.offset + request.limit:
            return None
        return self._joined_probe(request.date, end)

    def _is_probe_join(self, contact: dict[str, t.Any]) -> bool:
        """Whether ``contact`` stands for the last one of the answer the probe checks.

        That contact unchanged, or one read before with the very same ``updated``: the order
        inside a tie may change from one request to the next, and in a stable order a contact
        read before cannot stand in its place (only contacts after it, never read, can).
        """
        join = self._probe_join
        if join is None:
            return False
        key, found = contact_key(join), contact_key(contact)
        if key is None:  # by its id, if it has one: a field may change from one answer to the next
            return (
                contact.get("id") == join["id"] if join.get("id") is not None else contact == join
            )
        return found == key or (
            found is not None and found[0] == key[0] and found in self._passed_on
        )

    def _take_probe(self, page: list[dict[str, t.Any]]) -> None:
        """Nothing after the answer it checked proves the list ended; a contact never read, a cut.

        After a cut, read on after that answer (or, when the probe was for a window that could
        not advance, ask the date's first page again). The answer's last contact out of its
        place with nothing never read shown proves neither (``_moved_meanwhile``).
        """
        self._probing = False
        probed, self._probed = self._probed, None
        probe = self.current
        joined = probe.limit == 1 or (bool(page) and self._is_probe_join(page[0]))
        after = page[1:] if probe.limit > 1 and joined else page
        due = [
            contact
            for contact in after
            if contact.get("updated") is None or contact["updated"] < self.next_run_reads_from
        ]
        if not joined and all(contact_key(contact) in self._passed_on for contact in due):
            # The last contact is not in its place, and nothing after it shows: one before it
            # left meanwhile (or the order there changed).
            self._moved_meanwhile(probe)
            return
        if not due and probe.limit > 1 and len(page) < 2 and self._read_past_join():
            # Its last contact alone, though a contact after it was read before: a cap that let
            # one through, maybe. Ask for the one contact after it (then recheck).
            self._probing = True
            self._probed = probed
            self.stats.probes += 1
            self.current = PageRequest(probe.date, page=probe.offset + 1, limit=1)
            return
        if not due:
            # Nothing after, or only contacts the next run reads (the list is sorted by updated).
            # After a probe of one contact, that is the end only if no contact before its place
            # left the list since the answer it checks: one never read would have slid back
            # before the place (and a contact updated meanwhile onto it). See ``_take_recheck``.
            if probe.limit > 1 or probe.offset == 0:
                self.finished = True
                return
            self._rechecking = True
            self.stats.probes += 1
            self.current = PageRequest(probe.date, probe.offset - 1, limit=1)
            return
        if probed is not None:
            request, answer, keys, news = probed
            if news:
                # A short answer with new contacts, and more after it: answers are cut at
                # lengths that vary. Read on from it as from any answer.
                self._cut_varies = True
                self._read_on(request, answer, keys)
                return
            # The short answer was cut, not the end: read on from it, in shorter windows.
            self._cut_short(len(answer))
            window = self._tie_window(request.date, request.offset + len(answer) - 1)
            if window is not None:
                self.current = window
                return
        self._probe_hits += 1
        if self._probe_hits >= MAX_PROBE_HITS:
            raise PagingError(
                f"Heymarket kept answering with at most {self._largest_answer} contacts whatever "
                "limit was asked, and listed more after them: too few to page through the "
                f"more than {self._largest_answer} contacts updated within one second without "
                "losing any"
            )
        # There was more than the answer showed: assume no cap until an answer says otherwise.
        self._maybe_capped = False
        self.current = PageRequest(self.current.date, page=0, limit=self._first_limit())

    def _read_past_join(self) -> bool:
        """Whether a contact passed on stands after the last one of the answer the probe checks."""
        key = contact_key(self._probe_join) if self._probe_join is not None else None
        furthest = self._furthest
        return (
            key is not None and furthest is not None and key != furthest and key[0] <= furthest[0]
        )

    def _take_recheck(self, page: list[dict[str, t.Any]]) -> None:
        """The end, if the contact before the probe's place is still the one the probed answer ended on.

        Positions only fall (contacts leave the list or move to its end; new ones join at the
        end), so that contact standing at the same place after the probe's answer came back
        means none before it left from the answer the probe checks to the probe: the probe
        saw what came after it then.
        """
        self._rechecking = False
        if len(page) == 1 and self._is_probe_join(page[0]):
            self.finished = True
            return
        self._moved_meanwhile(self.current)

    def _moved_meanwhile(self, probe: PageRequest) -> None:
        """A contact before the probe's place left (or the order there changed): read on afresh.

        From a first page on the second of the answer's last contact.
        """
        self._replan()
        # A fresh query from the second of the answer's last contact: what slid back is after
        # it in the list, and everything before it was read.
        date, updated = probe.date, (self._probe_join or {}).get("updated")
        if updated is not None and self.order_shown:
            moved = query_date(updated)
            date = moved if probe.date is None or moved > probe.date else probe.date
        if date == probe.date:
            # Read from its first page again: contacts first listed after ones further on.
            self._ranked_date = None
        self._last_window = []
        self.current = PageRequest(date, page=0, limit=self._first_limit())
        self._trim_passed_on()

    def _plan_next(
        self,
        request: PageRequest,
        page: list[dict[str, t.Any]],
        keys: list[Key | None],
        fresh: list[dict[str, t.Any]],
    ) -> None:
        news = self._any_due(fresh)
        if news:
            self._probes_without_news = 0  # the sync moves on
        if len(page) < request.limit and self._settled_by_short(request, page, keys, news):
            return
        self._read_on(request, page, keys)

    def _read_on(
        self, request: PageRequest, page: list[dict[str, t.Any]], keys: list[Key | None]
    ) -> None:
        """Set the request after an answer that does not end the run (nor was asked again)."""
        if len(page) > self._largest_answer:
            self._largest_answer = len(page)
            self._probe_hits = 0
            self._answers_at_cap = 0
        if self._maybe_capped and len(page) == self._largest_answer:
            self._answers_at_cap += 1
        placed = [key for key in keys if key is not None]
        if not placed:
            # A full page with nothing sortable in it: step over it by offset.
            self._last_window = []
            self._replan()
            self.current = PageRequest(request.date, request.page + 1, request.limit)
            return
        self._last_window = placed
        self._last_window_date = request.date
        self._anchor = (request, placed)
        if len(page) == request.limit:
            self._hold = False
        if self._plan:
            # The next of the windows ``upcoming()`` named (maybe on a later ``date``).
            self.current = self._plan.pop(0)
            self._trim_passed_on()
            return
        next_date = query_date(max(key[0] for key in placed))
        if self.order_shown and (request.date is None or next_date > request.date):
            self._last_window = []
            self.current = PageRequest(date=next_date, page=0, limit=self._first_limit())
            self._trim_passed_on()
            return
        window_request = self._tie_window(request.date, request.offset + len(page) - 1)
        if window_request is None:
            # No window fits: ask what comes after this answer, which proves the end if
            # nothing does.
            self._start_probe(request, page, keys, news=None)
            return
        self.current = window_request

    def _settled_by_short(
        self,
        request: PageRequest,
        page: list[dict[str, t.Any]],
        keys: list[Key | None],
        news: bool,
    ) -> bool:
        """Take an answer shorter than asked; whether that settled what comes next.

        (The end, a probe, or the same request again; else the next window, as usual.)
        """
        length = len(keys)
        # The windows named after this one assumed it would come back full.
        self._replan()
        if self._sent_ahead and not news:
            # The API may have answered this request before one already taken, so contacts
            # updated in between could be past its end: ask it again, first, to finish.
            # (With new contacts in it, the probe below is asked after every answer taken.)
            return True
        if length and length >= min(request.limit, self._largest_answer):
            # As long as anything Heymarket has sent: the end, or a cap on answers.
            self._maybe_capped = True
            return False
        if news and self._cut_varies:
            # Answers are cut at lengths that vary: read on (an answer that ends a run has
            # nothing new in it).
            return False
        if not length and request.offset == 0:
            self.finished = True  # nothing from ``date`` on (no cap cuts an answer to none)
            return True
        # Shorter than Heymarket has answered before: the end, or an answer cut by a cap that
        # varies, which can cut one anywhere, even just where the list was read to. Only what
        # comes after it tells. A window read on after it must join this answer.
        placed = [key for key in keys if key is not None]
        if placed:
            self._last_window = placed
            self._last_window_date = request.date
        self._start_probe(request, page, keys, news=news)
        return True

    def _cut_short(self, length: int) -> None:
        """An answer of ``length`` contacts was cut by a cap: ask for no more than that from now on."""
        self._cut_varies = True
        self._cut = length if self._cut is None else min(self._cut, length)

    def _replan(self) -> None:
        """Forget the requests named after ``current`` (they assumed answers that did not come).

        None is named ahead again until an answer comes back full and passes every check.
        """
        self._plan.clear()
        self._hold = True

    def _trim_passed_on(self) -> None:
        """Keep only the keys a request on ``current``'s ``date`` can show again."""
        date = self.current.date
        if date != self._passed_date and date is not None:
            floor = widen(date)
            self._passed_on = {key for key in self._passed_on if key[0] >= floor}
            self._seen = {key for key in self._seen if key[0] >= floor}
            self._passed_date = date


def _seconds(timestamp: str) -> float:
    """A fixed-width timestamp as seconds since the epoch."""
    instant = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT)
    return instant.replace(tzinfo=datetime.timezone.utc).timestamp()


def _overlap(window: int) -> int:
    """Contacts a tie window repeats of the one before: a tenth, and at least one."""
    return max(1, window // 10)


def contact_key(contact: dict[str, t.Any]) -> Key | None:
    """(updated, id) of a contact, or None if it lacks either: it cannot be placed."""
    updated, contact_id = contact.get("updated"), contact.get("id")
    if updated is None or contact_id is None:
        return None
    return updated, contact_id


def check_sorted(request: PageRequest, page: list[dict[str, t.Any]]) -> None:
    """Raise unless the page is sorted by ``updated``, oldest first, as the request asked."""
    before: dict[str, t.Any] | None = None
    for contact in page:
        if contact.get("updated") is None:
            continue
        if before is not None and contact["updated"] < before["updated"]:
            raise PagingError(
                f"Heymarket's answer to {request} was not sorted by updated, oldest first, as "
                f"asked (contact {contact.get('id')} updated {contact['updated']} came after "
                f"contact {before.get('id')} updated {before['updated']}); the tap relies on "
                "that order, so it stopped without bookmarking past it"
            )
        before = contact


def _unstable_order(request: PageRequest, missed: list[Key]) -> str:
    updated, contact_id = missed[0]
    return (
        f"Heymarket listed contacts that share one updated time in a different order on two "
        f"requests ({request}: contact {contact_id}, updated {updated}, and {len(missed) - 1} "
        "more appeared where contacts already read had been); paging through them by offset "
        "could skip some, so the tap stopped without bookmarking past them"
    )


def _reordered_message(request: PageRequest, key: Key) -> str:
    updated, contact_id = key
    return (
        f"Heymarket listed contacts that share one updated time in a different order on two "
        f"requests ({request}: contact {contact_id}, updated {updated}, came before a contact "
        "an earlier answer listed ahead of it); paging through them by offset could skip "
        "some, so the tap stopped without bookmarking past them"
    )


def _behind_message(request: PageRequest, key: Key, newest: str) -> str:
    updated, contact_id = key
    return (
        f"Heymarket listed contact {contact_id} (updated {updated}) after contacts "
        f"updated up to {newest} ({request}): the list is not in updated order, or the contact "
        "was written with an earlier time; the tap stopped without bookmarking past it (if an "
        "earlier run's bookmark is already later, sync once from a start_date before it)"
    )
