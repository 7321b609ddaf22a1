"""The paginator against an in-memory model of the list endpoint (no HTTP): nothing is ever lost.

The model changes contacts between every two requests, the way a live account does during a
sync; hypothesis varies the seed, the page size, the churn, ties and every reading of the API
the docs allow: ``date`` inclusive or exclusive at full or second precision, any order inside a
tie (stable or not), a server that caps ``limit`` (offsets by the limit asked or the one served)
or cuts answers at lengths that vary (at random, or by bytes), and one that ignores ``ascending``
or shuffles its pages.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import typing as t

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_heymarket.lanes import LANES_PAGES, LanedPaginator
from tap_heymarket.normalize import TIMESTAMP_FORMAT
from tap_heymarket.pagination import (
    MAX_TAIL_SLIDES,
    ContactsPaginator,
    PageRequest,
    PagingError,
    _overlapping_window,
)

BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
#: The sync's start: contacts changed during the sync are dated after it (see ``sync``).
SIGNPOST = "2030-01-01T00:00:00.500000Z"
_SIGNPOST = datetime.datetime(2030, 1, 1, 0, 0, 0, 500_000, tzinfo=datetime.timezone.utc)
#: A second run's start, after everything the first run's churn did.
LATER = "2031-01-01T00:00:00.000000Z"
#: Stable orders a server may give contacts that share one ``updated``.
STABLE_TIE_ORDERS = ("id", "id-desc", "id-text", "hash")


def _tie_key(order: str, contact_id: int, rng: random.Random) -> object:
    if order == "id":
        return contact_id
    if order == "id-desc":
        return -contact_id
    if order == "id-text":
        return str(contact_id)
    if order == "hash":
        return hashlib.sha256(str(contact_id).encode()).digest()
    return rng.random()  # "unstable": a new order on every request


#: What an answer capped by bytes may hold: 40 to 60 contacts of 2 or 3 units each.
BYTE_BUDGET = 120


def _fits(contact_ids: t.Iterable[int]) -> int:
    """How many of these contacts, in order, fit in ``BYTE_BUDGET`` (sizes fixed by id)."""
    used = fitted = 0
    for contact_id in contact_ids:
        used += 2 + hashlib.sha256(str(contact_id).encode()).digest()[0] % 2
        if used > BYTE_BUDGET:
            break
        fitted += 1
    return fitted


class ListModel:
    """Contacts sorted by ``updated``, answered the way one reading of the docs would."""

    def __init__(
        self,
        rng: random.Random,
        size: int,
        tie: int,
        *,
        exclusive: bool,
        by_second: bool,
        tie_order: str = "id",
        order: str = "asked",
        cap: int | tuple[int, int] | str | None = None,
        offset_by_cap: bool = False,
        recent: bool = False,
        whole_seconds: bool = False,
        tie_last: bool = False,
        steps: t.Sequence[int] = (1, 250_000, 700_000, 3_000_000),
    ):
        """``recent``: the data ends a moment before the sync's start instead of years before.

        ``cap``: the most contacts an answer holds whatever the limit, a range it varies in
        from answer to answer, or ``"bytes"``: as many as fit in a budget, each contact's size
        fixed by its id (the same page is always cut at the same place). A cap that varies is
        applied after the offset (by the limit asked): a server cannot know how many contacts
        fit before it has placed the page.

        ``whole_seconds``: every ``updated`` is stored at whole seconds, so what the sync's
        churn writes in its first second joins the newest tie.

        ``steps``: the microseconds from one contact's ``updated`` to the next, drawn at random.
        """
        self.rng = rng
        self.exclusive = exclusive
        self.by_second = by_second
        self.tie_order = tie_order
        self.order = order
        self.cap = cap
        self.offset_by_cap = offset_by_cap
        self.whole_seconds = whole_seconds
        clock = BASE
        stamps: dict[int, datetime.datetime] = {}
        for contact_id in range(1, size + 1):
            # The first (or last) `tie` contacts share one updated (a bulk import).
            if (contact_id <= size - tie) if tie_last else (contact_id > tie):
                clock += datetime.timedelta(microseconds=rng.choice(steps))
            stamps[contact_id] = clock
        shift = (
            _SIGNPOST - datetime.timedelta(milliseconds=100) - clock
            if recent
            else datetime.timedelta(0)
        )
        self.contacts = {cid: self._format(stamp + shift) for cid, stamp in stamps.items()}
        # What changes during the sync is dated after its start, as on a live account.
        self.clock = _SIGNPOST
        self.next_id = size + 1
        self.changed: set[int] = set()

    def answer(self, request: PageRequest) -> list[dict]:
        rows = sorted(
            (updated, _tie_key(self.tie_order, cid, self.rng), cid)
            for cid, updated in self.contacts.items()
        )
        if request.date is not None:
            rows = [row for row in rows if self._after(row[0], request.date)]
        if self.order == "newest-first":
            rows.reverse()
        if isinstance(self.cap, int):  # a fixed cap: the page may be placed by it
            limit = min(request.limit, self.cap)
            offset = request.page * (limit if self.offset_by_cap else request.limit)
            chosen = rows[offset : offset + limit]
        else:  # none, or one that varies: it cuts a page placed by the limit asked
            offset = request.page * request.limit
            chosen = rows[offset : offset + request.limit]
            if self.cap == "bytes":
                chosen = chosen[: _fits(cid for _, _, cid in chosen)]
            elif self.cap is not None:
                chosen = chosen[: self.rng.randint(*self.cap)]
        page = [{"id": cid, "updated": updated} for updated, _, cid in chosen]
        if self.order == "shuffled":
            self.rng.shuffle(page)
        return page

    def _format(self, instant: datetime.datetime) -> str:
        if self.whole_seconds:
            instant = instant.replace(microsecond=0)
        return instant.strftime(TIMESTAMP_FORMAT)

    def _after(self, updated: str, date: str) -> bool:
        left = updated[:19] if self.by_second else updated
        right = date[:19] if self.by_second else f"{date[:19]}.000000Z"
        return left > right if self.exclusive else left >= right

    def churn(self, updates: int, creates: int) -> None:
        for contact_id in self.rng.sample(sorted(self.contacts), min(updates, len(self.contacts))):
            self.clock += datetime.timedelta(microseconds=self.rng.choice([1, 400_000]))
            self.contacts[contact_id] = self._format(self.clock)
            self.changed.add(contact_id)
        for _ in range(creates):
            self.clock += datetime.timedelta(microseconds=1)
            self.contacts[self.next_id] = self._format(self.clock)
            self.next_id += 1


def assert_no_gap_behind(emitted: list[dict], at_start: dict[int, str], changed: set[int]) -> None:
    """Every prefix of the output could be bookmarked: nothing unchanged before it is missing.

    A bookmark at the prefix's newest ``updated`` makes the next run re-read from there, so a
    contact present at the start, never changed, dated before that and not emitted is lost.
    """
    seen: set[int] = set()
    newest = ""
    expected = sorted((updated, cid) for cid, updated in at_start.items() if cid not in changed)
    waiting = 0  # index into ``expected`` of the first contact not yet known to be emitted
    for contact in emitted:
        seen.add(contact["id"])
        newest = max(newest, contact["updated"])
        while waiting < len(expected) and expected[waiting][0] < newest:
            assert expected[waiting][1] in seen, (
                f"contact {expected[waiting][1]} ({expected[waiting][0]}) is missing behind "
                f"a bookmark of {newest}"
            )
            waiting += 1


def sync(
    model: ListModel,
    page_size: int,
    since: str | None,
    updates: int,
    creates: int,
    in_flight: int = 1,
    signpost: str = SIGNPOST,
    listed: int | None = None,
):
    """Page to the end; the account changes between requests for the first 300 of them.

    With ``in_flight`` above one, the requests ``upcoming()`` names are sent together and the
    model answers them in a random order, changing between any two answers; answers to
    requests the paginator stops naming are thrown away, as the stream does.

    ``listed``: the list's count at the start, as a first sync knows it (None: not known).

    (Churn has to stop at some point: a sync with one contact per page never outruns an
    account that gains two contacts per request.)

    The paginator is the stream's: in lanes where the list's count is known and several
    requests are in flight, one paginator otherwise.

    Returns what was emitted, the paginator and the error that stopped it, if one did. After
    an error, what was emitted is cut where the last STATE could have been written: the stream
    moves no bookmark before Heymarket has shown its order (``bookmark_may_move``).
    """
    paginator = LanedPaginator(page_size=page_size, since=since, signpost=signpost)
    paginator.listed = listed
    sent: dict[PageRequest, list[dict] | None] = {}  # None: not answered yet
    emitted: list[dict] = []
    answers = 0
    error = None
    bookmarkable = 0
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        sent = {request: sent.get(request) for request in wanted}
        while sent[paginator.current] is None:
            request = model.rng.choice([r for r, answer in sent.items() if answer is None])
            sent[request] = model.answer(request)
            answers += 1
            if answers < 300:
                model.churn(updates, creates)
        try:
            emitted.extend(paginator.advance(sent.pop(paginator.current)))
        except PagingError as exc:
            error = exc
            emitted = emitted[:bookmarkable]
            break
        if paginator.order_shown:
            bookmarkable = len(emitted)
        assert paginator.stats.requests < 50_000, "paging does not terminate"
    return emitted, paginator, error


def bookmark(emitted: list[dict], paginator: LanedPaginator) -> str | None:
    """The bookmark the stream leaves after a run that emitted ``emitted`` and ended well."""
    dated = [contact["updated"] for contact in emitted if contact["updated"] is not None]
    if not dated:
        return None
    return min(max(dated), paginator.next_run_reads_from)


def assert_whole_in_order_and_once(
    model: ListModel,
    page_size: int,
    at_start: dict[int, str],
    emitted: list[dict],
    paginator: LanedPaginator,
) -> None:
    """In ``updated`` order, each version once, no gap behind any prefix, nothing due lost.

    Contacts dated from a second before the sync's start, and those changed during it (dated
    after it), may be left to the next run, which must then find them.
    """
    updated = [c["updated"] for c in emitted]
    assert updated == sorted(updated), "contacts must leave in updated order"
    keys = [(c["updated"], c["id"]) for c in emitted]
    assert len(keys) == len(set(keys)), "a contact version is emitted once"
    assert_no_gap_behind(emitted, at_start, model.changed)
    due = {
        cid
        for cid, updated in at_start.items()
        if updated < paginator.next_run_reads_from and cid not in model.changed
    }
    assert due <= {c["id"] for c in emitted}, "a contact present at the start was lost"
    assert_the_next_run_finds_the_rest(model, page_size, emitted, paginator)


def assert_the_next_run_finds_the_rest(
    model: ListModel, page_size: int, first: list[dict], paginator: LanedPaginator
) -> None:
    """A run from the bookmark the first one left emits every version the first one missed."""
    second, _, error = sync(model, page_size, bookmark(first, paginator), 0, 0, signpost=LATER)
    assert error is None
    emitted = {(c["updated"], c["id"]) for c in first + second}
    current = {(updated, cid) for cid, updated in model.contacts.items()}
    assert current <= emitted, f"never emitted: {sorted(current - emitted)[:5]}"


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(0, 700),
    tie=st.sampled_from([0, 3, 250]),
    page_size=st.sampled_from([1, 7, 30, 100]),
    updates=st.integers(0, 6),
    creates=st.integers(0, 2),
    exclusive=st.booleans(),
    by_second=st.booleans(),
    tie_order=st.sampled_from(STABLE_TIE_ORDERS),
    cap=st.sampled_from([None, None, 30, 50, (40, 60), "bytes"]),
    offset_by_cap=st.booleans(),
    in_flight=st.sampled_from([1, 2, 4, 12]),
    recent=st.booleans(),
    listed=st.booleans(),
)
def test_every_contact_present_at_the_start_is_emitted_in_order_under_churn(
    seed,
    size,
    tie,
    page_size,
    updates,
    creates,
    exclusive,
    by_second,
    tie_order,
    cap,
    offset_by_cap,
    in_flight,
    recent,
    listed,
):
    """``listed``: a first sync, which knows the list's count (then read in lanes)."""
    model = ListModel(
        random.Random(seed),
        size,
        min(tie, size),
        exclusive=exclusive,
        by_second=by_second,
        tie_order=tie_order,
        cap=cap,
        offset_by_cap=offset_by_cap,
        recent=recent,
        whole_seconds=recent,
    )
    at_start = dict(model.contacts)

    emitted, paginator, error = sync(
        model, page_size, None, updates, creates, in_flight, listed=size if listed else None
    )

    assert error is None
    assert_whole_in_order_and_once(model, page_size, at_start, emitted, paginator)


@pytest.mark.parametrize("tie_order", STABLE_TIE_ORDERS)
def test_a_300_contact_tie_in_any_stable_order_is_read_whole_while_its_members_change(tie_order):
    model = ListModel(
        random.Random(7), 450, 300, exclusive=True, by_second=True, tie_order=tie_order
    )
    at_start = dict(model.contacts)

    emitted, paginator, error = sync(model, 100, None, updates=5, creates=1)

    assert error is None
    assert set(at_start) <= {c["id"] for c in emitted}
    assert paginator.stats.requests <= 50


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    page_size=st.sampled_from([7, 30, 100]),
    tie=st.sampled_from([120, 300]),
    tie_last=st.booleans(),
    updates=st.integers(0, 3),
    in_flight=st.sampled_from([1, 2, 4, 12]),
)
def test_a_tie_order_that_changes_between_requests_stops_the_sync_before_any_gap(
    seed, page_size, tie, tie_last, updates, in_flight
):
    model = ListModel(
        random.Random(seed),
        450,
        tie,
        exclusive=False,
        by_second=False,
        tie_order="unstable",
        tie_last=tie_last,
    )
    at_start = dict(model.contacts)

    emitted, _, error = sync(model, page_size, None, updates, 0, in_flight)

    assert_no_gap_behind(emitted, at_start, model.changed)
    if error is None:
        assert set(at_start) - model.changed <= {c["id"] for c in emitted}
    else:
        assert "order" in str(error)


def test_a_tie_order_that_changes_is_caught_even_when_a_window_repeats_only_contacts_read():
    """A window whose repeated part holds only contacts read can still stand too far in.

    Here the tie's 20 contacts not read all moved before the window's offset on the second
    request (a shuffle hypothesis found): only counting the places before the contact the
    window joins on shows it, as there are more of them than contacts seen.
    """
    model = ListModel(
        random.Random(170), 450, 120, exclusive=False, by_second=False, tie_order="unstable"
    )
    at_start = dict(model.contacts)

    emitted, _, error = sync(model, 100, None, 2, 0, in_flight=12)

    assert_no_gap_behind(emitted, at_start, model.changed)
    assert error is not None and "order" in str(error)


#: Syncs a randomised search found losing contacts under a tie order that changes between
#: requests, with churn: (seed, contacts, tie, page_size, in flight, and the model's knobs).
REORDERED_TIES = {
    "one request at a time, a tie past a cap by bytes": (
        561575,
        50,
        50,
        100,
        1,
        dict(by_second=True, cap="bytes", tie_last=True),
        (4, 1),
    ),
    "two in flight, a second of three at a window's edge": (
        132729,
        150,
        3,
        30,
        2,
        dict(exclusive=True, recent=True, whole_seconds=True),
        (1, 0),
    ),
    "four in flight, seconds shared by a few": (
        90373,
        150,
        25,
        100,
        4,
        dict(recent=True, whole_seconds=True),
        (1, 0),
    ),
    "twelve in flight, a tie at the end": (
        435674,
        150,
        120,
        100,
        12,
        dict(by_second=True, tie_last=True),
        (10, 1),
    ),
}


@pytest.mark.parametrize("case", REORDERED_TIES.values(), ids=REORDERED_TIES.keys())
def test_a_tie_order_that_changes_is_caught_where_every_contact_repeated_was_read(case):
    """Windows that repeat only contacts read, in the order read, can still hide one moved before.

    Two checks catch what counting places cannot when contacts leave during the sync: an
    answer must list the contacts it repeats in the order first seen (the sync one request
    at a time), and a window on the last one's ``date`` must hold the join contact's whole
    second where the last window shows where it starts (those in flight). Each of these
    syncs lost contacts before them.
    """
    seed, size, tie, page_size, in_flight, knobs, (updates, creates) = case
    model = ListModel(
        random.Random(seed),
        size,
        tie,
        **{"exclusive": False, "by_second": False, **knobs},
        tie_order="unstable",
    )
    at_start = dict(model.contacts)

    emitted, _, error = sync(model, page_size, None, updates, creates, in_flight)

    assert_no_gap_behind(emitted, at_start, model.changed)
    assert error is not None and "order" in str(error)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    page_size=st.sampled_from([1, 7, 100]),
    order=st.sampled_from(["newest-first", "shuffled"]),
    tie=st.sampled_from([0, 2, 250]),
    tie_last=st.booleans(),
)
def test_answers_not_sorted_as_asked_stop_the_sync_before_any_gap(
    seed, page_size, order, tie, tie_last
):
    model = ListModel(
        random.Random(seed),
        600,
        tie,
        exclusive=False,
        by_second=False,
        order=order,
        tie_last=tie_last,
    )
    at_start = dict(model.contacts)

    emitted, _, error = sync(model, page_size, None, 0, 0)

    assert_no_gap_behind(emitted, at_start, model.changed)
    if order == "newest-first":
        assert error is not None and "sorted" in str(error)
    elif error is None:
        assert set(at_start) <= {c["id"] for c in emitted}


@pytest.mark.parametrize("offset_by_cap", [False, True], ids=["offset-asked", "offset-served"])
def test_a_server_that_caps_the_limit_is_read_whole_in_one_sync(offset_by_cap):
    model = ListModel(
        random.Random(2),
        600,
        0,
        exclusive=False,
        by_second=False,
        cap=50,
        offset_by_cap=offset_by_cap,
    )

    emitted, paginator, error = sync(model, 100, None, 0, 0)

    assert error is None
    assert {c["id"] for c in emitted} == set(model.contacts)
    # 12 pages of 50, the one request that found out 50 was a cap, not the end, the
    # one-contact request that proves the end where a cap may cut any answer short, and the
    # one before it that shows nothing before it left meanwhile.
    assert paginator.stats.requests <= 16


@pytest.mark.parametrize("cap", [(40, 60), "bytes"], ids=["random", "bytes"])
@pytest.mark.parametrize("tie", [0, 250])
@pytest.mark.parametrize("seed", [0, 1, 36, 37, 62])
def test_answers_capped_at_a_length_that_varies_are_read_whole_in_one_sync(seed, tie, cap):
    """A short answer is no proof of the end when the cap varies, least of all inside a tie.

    Seed 36 with a tie of 250 used to end the sync on a short answer of re-reads (and lose the
    450 contacts after the tie).
    """
    model = ListModel(random.Random(seed), 700, tie, exclusive=False, by_second=False, cap=cap)

    emitted, _, error = sync(model, 100, None, 0, 0)

    assert error is None
    assert {c["id"] for c in emitted} == set(model.contacts)


@pytest.mark.parametrize(("seed", "in_flight"), [(17, 1), (142, 1), (341, 1), (388, 12)])
def test_a_cap_that_varies_cannot_end_a_sync_where_it_cut_an_answer_at_the_contacts_read(
    seed, in_flight
):
    """A list that never changes, seconds holding several contacts, answers cut at 20 to 30.

    An answer cut just where the list had been read to looked like its end: shorter than the
    longest answer, nothing new in it. While Heymarket may be capping answers, only the one
    contact after such an answer proves the end. These seeds lost 94 to 117 contacts before.
    """
    model = ListModel(
        random.Random(seed),
        150,
        0,
        exclusive=False,
        by_second=True,
        tie_order="id-text",
        cap=(20, 30),
        whole_seconds=True,
        steps=(0, 0, 0, 0, 0, 0, 1_000_000, 2_000_000),
    )

    emitted, _, error = sync(model, 30, None, 0, 0, in_flight)

    assert error is None
    assert sorted(c["id"] for c in emitted) == sorted(model.contacts)


def _page_of(contacts: dict[int, str], request: PageRequest, cut: int | None = None) -> list[dict]:
    """The answer to ``request`` from ``contacts`` (id: updated), by ``date``'s second, inclusive.

    Sorted by ``updated`` (ties by id), placed by the limit asked, cut to ``cut`` contacts.
    """
    rows = sorted((updated, cid) for cid, updated in contacts.items())
    if request.date is not None:
        rows = [row for row in rows if row[0] >= request.date[:19]]
    chosen = rows[request.offset : request.offset + request.limit][:cut]
    return [{"id": cid, "updated": updated} for updated, cid in chosen]


def test_a_window_after_a_probe_must_join_the_answer_the_probe_checked():
    """A tie of 60 (stable order) after five contacts; the second answer is cut at 24.

    The probe shows there is more, and the window after it starts inside the tie. Five tie
    contacts already read are updated just before it: the rest slide towards the start. Taken
    as a fresh ``date`` (the window before it was forgotten when ``date`` moved), nothing
    checked where it joined, and the contacts that slid before it were never read.
    """
    contacts = {cid: f"2024-01-01T00:00:0{cid - 1}.000000Z" for cid in range(1, 6)}
    contacts |= dict.fromkeys(range(6, 66), "2024-01-01T00:00:09.000000Z")
    at_start = dict(contacts)
    paginator = ContactsPaginator(page_size=30, since=None, signpost=SIGNPOST)
    emitted: list[dict] = []
    for answered in range(200):
        if paginator.finished:
            break
        cut = 24 if answered == 1 else None
        emitted += paginator.advance(_page_of(contacts, paginator.current, cut))
        if answered == 2:  # the probe's answer is in: five contacts read are updated
            for cid in range(6, 11):
                contacts[cid] = f"2030-01-01T00:00:01.{cid:06d}Z"

    assert paginator.finished
    assert set(at_start) - set(range(6, 11)) <= {c["id"] for c in emitted}


def test_a_short_answer_cut_where_the_list_was_read_to_does_not_end_the_sync():
    """30 contacts a second apart; a cap that varies cuts the second answer to its two re-reads.

    Shorter than the first answer, nothing new, ending on the furthest contact read: taken as
    the end before Heymarket had shown any cut, it lost 23 of 30 contacts.
    """
    contacts = {cid: f"2024-01-01T00:00:{cid:02d}.000000Z" for cid in range(1, 31)}
    cuts = iter([None, 2])
    paginator = ContactsPaginator(page_size=7, since=None, signpost=SIGNPOST)
    emitted: list[dict] = []
    for _ in range(100):
        if paginator.finished:
            break
        emitted += paginator.advance(_page_of(contacts, paginator.current, next(cuts, None)))

    assert paginator.finished
    assert sorted(c["id"] for c in emitted) == list(range(1, 31))


def test_a_probe_cut_to_the_last_contact_alone_is_no_end_where_one_after_it_was_read():
    """A tie of 12 listed by id from the top; a cap that varies cuts answers 2 and 3 to one.

    The second answer repeats contact 12 alone, and so does the probe of its end: as if the
    list ended there, though the first answer listed 11 after it (a cap below two is outside
    what the paging assumes, but this much it can tell). The probe as first written took that
    for the end and lost 10 of 12 contacts; now the sync stops in one line, a cap of one being
    too small to page the tie.
    """
    contacts = dict.fromkeys(range(1, 13), "2024-01-01T00:00:00.000000Z")
    cuts = iter([None, 1, 1])
    paginator = ContactsPaginator(page_size=2, since=None, signpost=SIGNPOST)
    emitted: list[dict] = []
    try:
        while not paginator.finished:
            request = paginator.current
            rows = sorted((stamp, -cid) for cid, stamp in contacts.items())
            rows = rows[request.offset : request.offset + request.limit][: next(cuts, None)]
            emitted += paginator.advance([{"id": -neg, "updated": stamp} for stamp, neg in rows])
    except PagingError as error:  # answers this small cannot page a tie: said in one line
        assert "at most 2 contacts" in str(error)
    else:
        assert sorted(c["id"] for c in emitted) == list(range(1, 13))


def test_an_end_that_never_holds_still_stops_the_sync_in_one_error_not_a_loop():
    """Every check of the end finds a contact read before where the last answer's last one stood.

    The tap reads on afresh each time (a contact before the probe's place left, as far as it
    can tell); it gives up in one clear line once that keeps happening with nothing new read.
    """
    contacts = {cid: f"2024-01-01T00:00:{cid:02d}.000000Z" for cid in range(1, 31)}
    paginator = ContactsPaginator(page_size=10, since=None, signpost=SIGNPOST)

    with pytest.raises(PagingError, match="kept changing"):
        for _ in range(1_000):
            request = paginator.current
            if paginator._probing or paginator._rechecking:
                # Nothing after the place a one-contact probe looks at; elsewhere the list's
                # first contact, where the answer's last one should stand.
                first = _page_of(contacts, PageRequest(request.date, page=0, limit=1))
                paginator.advance([] if request.limit == 1 and paginator._probing else first)
            else:
                paginator.advance(_page_of(contacts, request))
    assert paginator.stats.requests < 100


@pytest.mark.parametrize("updated", [27, 28], ids=["first-of-date", "last-read"])
def test_a_probe_proves_the_end_only_if_nothing_before_it_left_meanwhile(updated):
    """29 contacts a second apart, answers cut at lengths that vary, the last one never read.

    An answer on the last ``date`` is cut to 27 and 28, both read before: the probe asks for
    the one contact after them. Contact ``updated`` changes just before the probe, so 29
    slides onto the probe's place minus one and the changed contact lands on it: "only
    contacts the next run reads" looked like the end, and 29, never changed, was lost.
    """
    contacts = {cid: f"2024-01-01T00:00:{cid:02d}.000000Z" for cid in range(1, 30)}
    cuts = iter([10, 5, 7, 10, 4, 2])  # what each answer is cut to, in turn; then no cut
    paginator = ContactsPaginator(page_size=10, since=None, signpost=SIGNPOST)
    emitted: list[dict] = []
    for _ in range(100):
        if paginator.finished:
            break
        page = _page_of(contacts, paginator.current, next(cuts, None))
        emitted += paginator.advance(page)
        if [contact["id"] for contact in page] == [27, 28]:
            contacts[updated] = "2030-01-01T00:00:01.000000Z"

    assert paginator.finished
    assert set(range(1, 30)) - {updated} <= {c["id"] for c in emitted}


@pytest.mark.parametrize("seed", range(12))
def test_a_tie_in_a_new_order_on_each_request_is_not_taken_whole_from_a_short_last_window(seed):
    """A window cut short by the list's end still stands where its page and limit put it.

    Counting its offset by the answer's length instead (as if the answer's length were a cap)
    let 211 of 300 seeds end the sync with contacts of the tie never read.
    """
    model = ListModel(
        random.Random(seed), 50, 50, exclusive=False, by_second=False, tie_order="unstable", cap=47
    )
    at_start = set(model.contacts)

    emitted, _, error = sync(model, 100, None, 0, 1)

    assert error is not None or at_start <= {c["id"] for c in emitted}


def test_a_sync_ends_where_the_rest_of_the_list_is_the_next_runs():
    """Contacts written during the sync, past its signpost, need not be paged through.

    Here every contact is created during the sync, all in its first whole second, listed in a
    new order on every request: windows over them never join, and paging used to go on forever.
    """
    model = ListModel(
        random.Random(952121),
        0,
        0,
        exclusive=True,
        by_second=True,
        tie_order="unstable",
        recent=True,
        whole_seconds=True,
    )

    _, paginator, error = sync(model, 30, None, 0, 2, in_flight=4)

    assert error is None
    assert paginator.stats.requests <= 50


def test_a_resumed_sync_starts_at_the_bookmark_and_re_emits_only_its_ties():
    model = ListModel(random.Random(3), 500, 0, exclusive=False, by_second=False)
    first, _, _ = sync(model, 100, None, 0, 0)
    bookmark = first[-1]["updated"]

    again, paginator, _ = sync(model, 100, bookmark, 0, 0)

    assert [c["updated"] for c in again] == [bookmark] * len(again)
    assert paginator.current.date is not None
    model.churn(10, 0)
    changed, _, _ = sync(model, 100, bookmark, 0, 0)
    assert len({c["id"] for c in changed} - {first[-1]["id"]}) == 10


def test_first_request_asks_a_whole_second_before_the_bookmark_in_ascending_order():
    paginator = ContactsPaginator(
        page_size=100, since="2024-05-06T07:08:09.500000Z", signpost=SIGNPOST
    )
    assert paginator.current.body() == {
        "limit": 100,
        "page": 0,
        "ascending": True,
        "date": "2024-05-06T07:08:08Z",
    }
    assert ContactsPaginator(page_size=25, since=None, signpost=SIGNPOST).current.body() == {
        "limit": 25,
        "page": 0,
        "ascending": True,
    }


def test_overlapping_windows_repeat_what_they_must_and_advance_when_twenty_or_more_wide():
    # Offsets are multiples of the limit, so a window of at most 7 cannot both repeat and
    # advance past index 419 (420 is a multiple of 1..7): the paginator then probes instead.
    for max_limit, overlap in ((100, 10), (20, 2)):
        for last_index in range(0, 50_000, 7):
            limit, page = _overlapping_window(last_index, overlap, max_limit)
            start, end = page * limit, page * limit + limit
            assert limit <= max_limit
            assert start <= max(0, last_index + 1 - overlap)
            assert end > last_index + 1


def test_requests_sent_together_are_each_the_next_one_the_paginator_asks_for():
    model = ListModel(random.Random(5), 2000, 0, exclusive=False, by_second=False)
    paginator = ContactsPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.advance(model.answer(paginator.current))  # the order is shown: dates may move

    together = paginator.upcoming(4)
    assert len(together) == 4
    answers = [model.answer(request) for request in reversed(together)][::-1]
    for request, answer in zip(together, answers, strict=True):
        assert paginator.current == request
        # Mostly new contacts: each window repeats the last window's final second and one more
        # (a few contacts here, where seconds hold several), besides what its offset rounds.
        assert len(paginator.advance(answer)) >= 75, "each window brings mostly new contacts"

    emitted, sequential, _ = sync(model, 100, None, 0, 0)
    emitted_together, in_rounds, _ = sync(model, 100, None, 0, 0, in_flight=4)
    assert emitted_together == emitted
    # At most the requests in flight past the end, and asking the short answer again.
    assert in_rounds.stats.requests <= sequential.stats.requests + 4


@pytest.mark.parametrize("exclusive", [False, True], ids=["inclusive", "exclusive"])
@pytest.mark.parametrize("by_second", [False, True], ids=["microseconds", "seconds"])
def test_the_pipeline_stays_full_as_date_moves_within_it(exclusive, by_second):
    """Twelve requests stay named from the first answer to the last; ``date`` moves within.

    Windows named ahead cost about an eighth more requests than pages asked one at a time
    (their offsets must be multiples of their limits, so they repeat more than they need).
    """
    model = ListModel(
        random.Random(9), 12_000, 0, exclusive=exclusive, by_second=by_second, tie_order="hash"
    )
    paginator = ContactsPaginator(page_size=100, since=None, signpost=SIGNPOST)
    named: list[int] = []
    dates: set[str | None] = set()
    sent: dict[PageRequest, list[dict]] = {}
    emitted: list[dict] = []
    while not paginator.finished:
        wanted = paginator.upcoming(12)
        named.append(len(wanted))
        dates.update(request.date for request in wanted)
        sent = {request: sent.get(request) or model.answer(request) for request in wanted}
        emitted.extend(paginator.advance(sent.pop(paginator.current)))

    assert sorted(c["id"] for c in emitted) == sorted(model.contacts)
    assert len(dates) > 10, "date moves on, so offsets stay small"
    # Full but for the first answer (the order is not shown yet) and the end of the list.
    assert named.count(12) >= len(named) - 3, named
    assert paginator.stats.requests <= 120 * 1.15 + 12, "overlaps and the overshoot at the end"


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cap=st.sampled_from([1, 2, 3, 7]),
    tie=st.sampled_from([0, 40]),
    creates=st.integers(0, 1),
)
def test_answers_capped_too_small_to_page_ties_end_in_an_error_or_a_whole_sync(
    seed, cap, tie, creates
):
    model = ListModel(random.Random(seed), 120, tie, exclusive=False, by_second=True, cap=cap)
    at_start = dict(model.contacts)

    emitted, _, error = sync(model, 100, None, 0, creates)

    assert_no_gap_behind(emitted, at_start, model.changed)
    if error is None:
        assert set(at_start) <= {c["id"] for c in emitted}
    else:
        assert f"at most {cap} contacts" in str(error)


def test_an_incremental_sync_with_few_changes_proves_its_end_in_at_most_two_more_requests():
    model = ListModel(random.Random(4), 300, 0, exclusive=False, by_second=False)
    first, _, _ = sync(model, 100, None, 0, 0)
    model.churn(3, 0)

    again, paginator, error = sync(model, 100, first[-1]["updated"], 0, 0)

    assert error is None
    assert len({c["id"] for c in again}) >= 3
    assert paginator.stats.requests <= 3


#: Steps between contacts like the fake's and many a live account's: a few within a second of
#: the one before, most seconds to minutes on.
SPARSE_STEPS = (1, 500_000, 2_000_000, 5_000_000, 20_000_000, 45_000_000, 60_000_000,
                90_000_000, 300_000_000, 900_000_000)  # fmt: skip


def _requests_sent(
    model: ListModel, in_flight: int, paginator: ContactsPaginator | LanedPaginator | None = None
) -> int:
    """Every request sent to read the whole list (those whose answers were dropped too).

    The stream's way: the requests ``upcoming()`` names are in flight, answered in order; an
    answer no longer named is dropped. A first sync: the list's count is known. The paginator
    is one ``ContactsPaginator`` unless given.
    """
    if paginator is None:
        paginator = ContactsPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = len(model.contacts)
    sent: dict[PageRequest, list[dict]] = {}
    asked = 0
    emitted: list[dict] = []
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        for request in wanted:
            if request not in sent:
                sent[request] = model.answer(request)
                asked += 1
        sent = {request: sent[request] for request in wanted}
        emitted.extend(paginator.advance(sent.pop(paginator.current)))
    assert sorted(c["id"] for c in emitted) == sorted(model.contacts)
    return asked


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("in_flight", [4, 12])
def test_a_first_sync_keeps_its_pipeline_full_to_the_probe_of_its_end(seed, in_flight):
    """Every request after the first is named while the one before it is still in flight.

    Heymarket's count foretells the last answer, so the probe of the list's end goes out
    with the last windows: named only once the last answer was in, it waited a whole round
    trip alone (a second at a slow API's latency, 3% of the benchmark's first sync).
    """
    model = ListModel(
        random.Random(seed), 12_000, 0, exclusive=True, by_second=True, steps=SPARSE_STEPS
    )
    paginator = ContactsPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = len(model.contacts)
    sent: dict[PageRequest, list[dict]] = {}
    named_before: set[PageRequest] = set()
    named_late: list[PageRequest] = []
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        sent = {request: sent.get(request) or model.answer(request) for request in wanted}
        if paginator.stats.requests and paginator.current not in named_before:
            named_late.append(paginator.current)
        named_before.update(wanted[1:])
        paginator.advance(sent.pop(paginator.current))

    assert paginator.stats.probes == 1
    assert named_late == []


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("in_flight", [4, 12])
def test_requests_in_flight_cost_few_more_requests_than_one_at_a_time(seed, in_flight):
    """Windows named ahead, across ``date`` moves, cost under 8% more requests than sequential.

    (Windows on one ``date`` used to repeat about as many contacts as their page number, and
    windows were named past the list's end: 18% to 24% more.)
    """
    model = ListModel(
        random.Random(seed), 12_000, 0, exclusive=True, by_second=True, steps=SPARSE_STEPS
    )

    sequential = _requests_sent(model, 1)
    together = _requests_sent(model, in_flight)

    assert together <= sequential * 1.08, (together, sequential)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(300, 2500),
    updates=st.integers(0, 6),
    creates=st.integers(0, 2),
    exclusive=st.booleans(),
    by_second=st.booleans(),
    tie_order=st.sampled_from(STABLE_TIE_ORDERS),
    in_flight=st.sampled_from([2, 4, 12]),
    listed=st.booleans(),
)
def test_windows_moved_across_gaps_lose_nothing_under_churn(
    seed, size, updates, creates, exclusive, by_second, tie_order, in_flight, listed
):
    """Sparse contacts (gaps of whole seconds): windows named ahead move ``date`` at every turn.

    Answers in flight come back in any order and the account changes between any two; the
    list's count, when known, is the count at the start.
    """
    model = ListModel(
        random.Random(seed),
        size,
        0,
        exclusive=exclusive,
        by_second=by_second,
        tie_order=tie_order,
        steps=SPARSE_STEPS,
    )
    at_start = dict(model.contacts)

    emitted, paginator, error = sync(
        model, 100, None, updates, creates, in_flight, listed=size if listed else None
    )

    assert error is None
    assert_whole_in_order_and_once(model, 100, at_start, emitted, paginator)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("in_flight", [4, 12])
def test_lanes_cost_at_most_a_request_a_lane_more_than_one_at_a_time(seed, in_flight):
    """A first sync read in lanes costs what one paginator at a time does, and a part of a
    request where each lane ends; where contacts often share a second, that is less than
    windows named ahead cost (each must repeat enough to join whatever second the one before
    ends on).
    """
    model = ListModel(random.Random(seed), 12_000, 0, exclusive=True, by_second=True)
    lanes = LanedPaginator(page_size=100, since=None, signpost=SIGNPOST)

    sequential = _requests_sent(model, 1)
    in_lanes = _requests_sent(model, in_flight, lanes)
    ahead = _requests_sent(model, in_flight)

    assert 1 < lanes.lanes_started <= in_flight
    assert in_lanes <= sequential + lanes.lanes_started, (in_lanes, sequential)
    assert in_lanes < ahead


@pytest.mark.parametrize("in_flight", [4, 12])
def test_lanes_keep_the_requests_asked_for_in_flight_until_the_last_lanes_end(in_flight):
    """Every answer but the last ones is taken with ``in_flight`` requests named, or one fewer
    once the last lane has ended: it is the shortest, so that the probe of the list's end goes
    out while the others still read (``in_flight_target`` counts one more than the latency needs).
    """
    model = ListModel(random.Random(5), 24_000, 0, exclusive=False, by_second=False)
    paginator = LanedPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = len(model.contacts)
    sent: dict[PageRequest, list[dict]] = {}
    named: list[int] = []
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        sent = {request: sent.get(request) or model.answer(request) for request in wanted}
        named.append(len(wanted))
        paginator.advance(sent.pop(paginator.current))

    short = [index for index, count in enumerate(named) if count < in_flight - 1]
    assert all(index >= len(named) - in_flight for index in short), (short, len(named))
    assert paginator.stats.probes == 1


def test_what_lanes_ahead_hold_is_bounded_and_passed_on_as_it_was_read():
    """Lanes after the first hold what they read until it ends: LANES_PAGES pages at most,
    encoded, and passed on decoded to the same values (strings, numbers, nested objects).
    """
    model = ListModel(random.Random(8), 60_000, 0, exclusive=True, by_second=False)
    extra = {"note": "naïve 🚀 \u0000", "score": 0.1 + 0.2, "big": 2**62, "tags": [{"id": 1}]}
    paginator = LanedPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = len(model.contacts)
    sent: dict[PageRequest, list[dict]] = {}
    emitted: list[dict] = []
    most_held = 0
    while not paginator.finished:
        wanted = paginator.upcoming(12)
        sent = {
            request: sent.get(request) or [c | extra for c in model.answer(request)]
            for request in wanted
        }
        emitted.extend(paginator.advance(sent.pop(paginator.current)))
        most_held = max(most_held, sum(len(lane.held.seconds) for lane in paginator._lanes))

    assert paginator.lanes_started > 12, "lanes start as others end"
    assert most_held <= LANES_PAGES * 100
    assert sorted(c["id"] for c in emitted) == sorted(model.contacts)
    assert all(c | extra == c for c in emitted)
    assert [c["updated"] for c in emitted] == sorted(c["updated"] for c in emitted)


def test_a_seed_asked_before_churn_that_lands_behind_the_seed_before_it_starts_no_lane():
    """Answers in flight are evaluated in any order. A seed evaluated before many contacts
    left the front of the list can start behind the seed of the lane before it, evaluated
    after: that lane would end at the later seed's start while the earlier one ends at its
    own, and the contacts between would be passed on twice. Such a seed is dropped.
    """
    model = ListModel(
        random.Random(1), 4000, 0, exclusive=False, by_second=True, steps=(1_000_000,)
    )
    at_start = dict(model.contacts)
    paginator = LanedPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = 4000
    first, *seeds = paginator.upcoming(4)
    assert [seed.page for seed in seeds] == [11, 22, 33]
    answers = {seeds[1]: model.answer(seeds[1])}  # evaluated before the churn
    for contact_id, _ in sorted(model.contacts.items(), key=lambda item: item[1])[:1200]:
        model.clock += datetime.timedelta(seconds=1)
        model.contacts[contact_id] = model._format(model.clock)  # updated: to the list's end
        model.changed.add(contact_id)
    answers.update({r: model.answer(r) for r in (first, seeds[0], seeds[2])})
    assert answers[seeds[0]][0]["updated"] > answers[seeds[1]][0]["updated"]

    emitted: list[dict] = []
    while not paginator.finished:
        for request in paginator.upcoming(4):
            if request not in answers:
                answers[request] = model.answer(request)
        emitted.extend(paginator.advance(answers.pop(paginator.current)))

    assert_whole_in_order_and_once(model, 100, at_start, emitted, paginator)
    assert paginator.lanes_started == 3, "the seed behind the one before it starts no lane"


@pytest.mark.parametrize("seed", [7, 38, 49, 60, 88])
def test_a_lane_whose_list_ends_in_the_next_runs_second_ends_the_sync_with_no_gap_behind(seed):
    """A lane starts in the second before the sync's start; answers are cut at lengths that
    vary. The lane before it may end on a contact of that second (what follows is the next
    run's, as its paginator alone would): the lanes after it are let go too, instead of
    passing on later contacts with unchanged ones behind them unread. (Found by a review:
    contacts 43 to 65 were skipped while 66 to 68 were passed on.)
    """
    model = ListModel(random.Random(seed), 100, 0, exclusive=False, by_second=False, cap=(3, 10))
    earlier = datetime.datetime(2029, 12, 31, 23, 50, tzinfo=datetime.timezone.utc)
    next_runs = datetime.datetime(2029, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    for contact_id in range(1, 101):
        if contact_id <= 40:
            at = earlier + datetime.timedelta(seconds=contact_id)
        elif contact_id <= 65:  # the second the next run reads again
            at = next_runs + datetime.timedelta(milliseconds=10 * (contact_id - 41))
        else:  # before the sync's start, half a second after 00:00:00
            at = _SIGNPOST.replace(microsecond=0) + datetime.timedelta(
                milliseconds=10 * (contact_id - 66)
            )
        model.contacts[contact_id] = model._format(at)
    at_start = dict(model.contacts)

    emitted, paginator, error = sync(model, 10, None, 0, 0, in_flight=2, listed=100)

    assert error is None
    assert paginator.lanes_started > 1
    updated = [contact["updated"] for contact in emitted]
    assert updated == sorted(updated)
    assert_no_gap_behind(emitted, at_start, model.changed)
    assert {contact["id"] for contact in emitted} >= set(range(1, 41)), "all before that second"
    # (The next run reads the rest, as after the paginator alone; under a cap this small it
    # stops at that second's 25 contacts, loudly: not what this test is about.)


def _round_trips(model: ListModel, in_flight: int) -> int:
    """How many round trips a first sync takes if each answer comes one after it is named."""
    paginator = LanedPaginator(page_size=100, since=None, signpost=SIGNPOST)
    paginator.listed = len(model.contacts)
    now, sent = 0, {}
    while not paginator.finished:
        wanted = paginator.upcoming(in_flight)
        sent = {request: sent.get(request) or (now, model.answer(request)) for request in wanted}
        named_at, answer = sent.pop(paginator.current)
        now = max(now, named_at + 1)
        paginator.advance(answer)
    return now


def test_where_the_last_seed_lands_in_a_tie_the_lane_reading_to_the_end_gets_the_room():
    """A bulk import at the list's end (1,300 contacts in one second): the last seed, all in
    the tie, is dropped, and the lane before it reads to the end. It gets the in-flight room
    (windows named ahead), not one request at a time. (Found by a review: 27 round trips
    against 35 one at a time; now 22.)
    """
    model = ListModel(random.Random(3), 3000, 1300, exclusive=True, by_second=True, tie_last=True)

    assert _round_trips(model, 4) < 0.7 * _round_trips(model, 1)


class _PageIgnoringModel(ListModel):
    """A server that answers page 0 whatever ``page`` is asked."""

    def answer(self, request: PageRequest) -> list[dict]:
        return super().answer(PageRequest(request.date, 0, request.limit))


@pytest.mark.parametrize(("in_flight", "listed"), [(1, None), (2, 60)])
def test_a_tie_the_next_run_reads_under_a_server_ignoring_page_ends_the_sync(in_flight, listed):
    """Sixty contacts in the second before the sync's start, and a server that ignores
    ``page``: every window repeats contacts already read, and the checks a changed order
    would fail are waived for contacts the next run reads. Windows that bring nothing new
    there end the sync after ``MAX_TAIL_SLIDES``, as windows that do not join do. (Found by a
    review: the sync requested forever, the paginator alone and in lanes.)
    """
    model = _PageIgnoringModel(
        random.Random(1), 60, 60, exclusive=False, by_second=True, recent=True, whole_seconds=True
    )

    emitted, paginator, error = sync(model, 100, None, 0, 0, in_flight, listed=listed)

    assert error is None
    assert paginator.stats.requests <= 2 * MAX_TAIL_SLIDES
    assert sorted(c["id"] for c in emitted) == list(range(1, 61))


@pytest.mark.parametrize(
    "reading",
    [{}, {"cap": (40, 60)}, {"cap": "bytes"}, {"tie_order": "unstable"}, {"whole_seconds": True}],
    ids=["plain", "cap-varies", "cap-bytes", "unstable-ties", "whole-seconds"],
)
def test_a_deletion_sweep_emits_every_live_contact_or_says_it_could_not(reading):
    """The pass (in lanes or with requests in flight) may leave contacts updated during it to
    the next run; the sweep reads those again, one request at a time, before it marks the
    others deleted. Every contact present at the start and still listed must then have been
    emitted, unless that read says it ended short of the list's end (no version activated).
    (Found by a review: with two requests in flight on a well-behaved server, and with one
    over a tie updated just before the sweep, the pass alone missed some; and a read again
    at once left contacts of the pass's last second to a next run again, without checks.)
    """
    rng = random.Random(2026)
    for case in range(200):
        model = ListModel(
            random.Random(case),
            rng.randrange(50, 400),
            rng.choice([0, 0, 120, 250]),
            exclusive=rng.random() < 0.5,
            by_second=rng.random() < 0.5,
            recent=rng.random() < 0.5,
            tie_last=rng.random() < 0.5,
            **{"tie_order": rng.choice(["id", "id-desc", "hash"]), **reading},
        )
        at_start = set(model.contacts)
        updates, creates = rng.randrange(0, 4), rng.randrange(0, 3)
        in_flight = rng.choice([1, 2, 4])
        listed = len(model.contacts) if rng.random() < 0.5 else None
        page_size = rng.choice([1, 30, 100]) if len(model.contacts) < 120 else 100
        emitted, paginator, error = sync(
            model, page_size, None, updates, creates, in_flight, listed=listed
        )
        if error is not None:
            continue  # a failed pass marks nothing deleted
        # The sweep waits for the second after the next before it reads again.
        model.clock += datetime.timedelta(seconds=2)
        again = ContactsPaginator(
            page_size=page_size,
            since=paginator.next_run_reads_from,
            signpost=model.clock.strftime(TIMESTAMP_FORMAT),
        )
        try:
            while not again.finished:
                answer = model.answer(again.current)
                model.churn(updates, creates)
                emitted.extend(again.advance(answer))
        except PagingError:
            continue
        if again.left_to_next_run:
            continue
        missing = (at_start & set(model.contacts)) - {contact["id"] for contact in emitted}
        assert not missing, (case, sorted(missing)[:10])


def test_a_paginator_that_ends_among_the_next_runs_contacts_unread_says_so():
    # A deletion sweep marks contacts deleted only after reading to the end of the list: it
    # must tell that end from windows that gave up among contacts changed during the sync.
    def read(model: ListModel) -> ContactsPaginator:
        paginator = ContactsPaginator(page_size=100, since=None, signpost=SIGNPOST)
        while not paginator.finished:
            paginator.advance(model.answer(paginator.current))
        return paginator

    gave_up = read(
        _PageIgnoringModel(
            random.Random(1), 60, 60, exclusive=False, by_second=True, recent=True,
            whole_seconds=True,
        )
    )  # fmt: skip
    assert gave_up.left_to_next_run
    whole = read(
        ListModel(
            random.Random(1), 60, 60, exclusive=False, by_second=True, recent=True,
            whole_seconds=True,
        )
    )  # fmt: skip
    assert whole.finished and not whole.left_to_next_run
