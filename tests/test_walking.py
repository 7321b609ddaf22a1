"""The backward walker against an in-memory model of ``/v1/messages/all`` (no HTTP).

Hypothesis varies the data (broadcasts larger than a page, seconds shared by records with
different fractions), the page size and every reading of the cursor the docs allow: exclusive
or inclusive, compared in full or in whole seconds, any order inside a tie (stable or not), a
cap on ``limit``, ``page`` ignored or counted from 0 or 1, and churn between every two answers
(new records above the walk's top, statuses changing). A walk either passes on every record
dated from its floor up to its top, or fails with ``PagingError``, and then only where the
reading truly leaves no way through. Never a silent loss.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_heymarket.normalize import TIMESTAMP_FORMAT
from tap_heymarket.stream_bases import _split_one, _split_unseen
from tap_heymarket.walking import MIN_CAP, BackwardWalk, PagingError, WalkRequest

BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
TOP = "2030-01-01T00:00:00.000000Z"
_UTC = datetime.timezone.utc


def _fixed(instant: datetime.datetime) -> str:
    return instant.strftime(TIMESTAMP_FORMAT)


def _parse(text: str) -> datetime.datetime:
    if "." not in text:
        text = text[:-1] + ".000000Z"
    return datetime.datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=_UTC)


class MessagesModel:
    """Messages sorted newest first by ``date``, answered as one reading of the docs would."""

    def __init__(
        self,
        rng: random.Random,
        size: int,
        *,
        broadcast: int = 0,
        inclusive: bool = False,
        by_second: bool = False,
        tie_order: str = "id",
        cap: int | None = None,
        pages: str = "ignored",
        changes: int = 0,
        creates: int = 0,
        cut_to: int | None = None,
    ) -> None:
        self.rng = rng
        # A cap that varies (by bytes, say): an answer placed by the limit asked is cut, one in
        # two, to a random length of at least ``cut_to``.
        self.cut_to = cut_to
        self.inclusive = inclusive
        self.by_second = by_second
        self.tie_order = tie_order
        self.cap = cap
        self.pages = pages
        self.changes = changes
        self.creates = creates
        self.messages: dict[int, dict] = {}
        clock = BASE
        broadcast_at = rng.randrange(size) if broadcast and size else -1
        next_id = 1
        for index in range(size):
            clock += datetime.timedelta(
                microseconds=rng.choice([0, 1, 300_000, 700_000, 2_000_000])
            )
            for _ in range(broadcast if index == broadcast_at else 1):
                stamp = _fixed(clock)
                self.messages[next_id] = {"id": next_id, "date": stamp, "updated": stamp}
                next_id += 1
        # The account's first message, seconds before the rest: the oldest second of the list
        # is never a tie (see ``test_a_capped_tie_that_ends_the_list_...``).
        if size:
            first = _fixed(BASE - datetime.timedelta(seconds=10))
            self.messages[next_id] = {"id": next_id, "date": first, "updated": first}
            next_id += 1
        self.next_id = next_id
        self.now = _parse(TOP) + datetime.timedelta(seconds=1)

    def _tie_key(self, message_id: int) -> object:
        order = self.tie_order
        if order == "id":
            return -message_id
        if order == "id-asc":
            return message_id
        if order == "hash":
            return hashlib.sha256(str(message_id).encode()).digest()
        return self.rng.random()  # "unstable"

    def _kept(self, date: str, cursor: datetime.datetime) -> bool:
        when = _parse(date)
        if self.by_second:
            when, cursor = when.replace(microsecond=0), cursor.replace(microsecond=0)
        return when <= cursor if self.inclusive else when < cursor

    def answer(self, request: WalkRequest) -> list[dict]:
        cursor = _parse(request.cursor)
        rows = sorted(
            (
                (m["date"], self._tie_key(m["id"]), m["id"])
                for m in self.messages.values()
                if self._kept(m["date"], cursor)
            ),
            key=lambda row: (row[0], row[1]),
            reverse=True,
        )
        limit = request.limit if self.cap is None else min(request.limit, self.cap)
        page = request.page or 0
        if self.pages == "ignored":
            page = 0
        elif self.pages == "from-1":
            page = max(0, page - 1)
        answer = [dict(self.messages[mid]) for _, _, mid in rows[page * limit : (page + 1) * limit]]
        if self.cut_to is not None and len(answer) > self.cut_to and self.rng.random() < 0.5:
            answer = answer[: self.rng.randrange(self.cut_to, len(answer))]
        self._churn()
        return answer

    def _churn(self) -> None:
        self.now += datetime.timedelta(milliseconds=10)
        stamp = _fixed(self.now)
        for _ in range(self.creates):
            self.messages[self.next_id] = {"id": self.next_id, "date": stamp, "updated": stamp}
            self.next_id += 1
        ids = list(self.messages)
        for _ in range(self.changes if ids else 0):
            self.messages[self.rng.choice(ids)]["updated"] = stamp

    def largest_second(self) -> int:
        """The most records that share one whole second."""
        seconds = collections.Counter(m["date"][:19] for m in self.messages.values())
        return max(seconds.values(), default=0)

    def between(self, floor: str | None, top: str) -> set[int]:
        return {
            m["id"]
            for m in self.messages.values()
            if m["date"] < top and (floor is None or m["date"] >= floor)
        }


def walk(model: MessagesModel, walker: BackwardWalk, stop_after: int | None = None) -> list[dict]:
    passed: list[dict] = []
    answered = 0
    while not walker.finished:
        if stop_after is not None and answered == stop_after:
            break
        request = walker.request()
        passed.extend(walker.advance(request, model.answer(request)))
        answered += 1
        assert answered < 5000, "the walk does not end"
    return passed


readings = st.fixed_dictionaries(
    {
        "inclusive": st.booleans(),
        "by_second": st.booleans(),
        "tie_order": st.sampled_from(["id", "id-asc", "hash"]),
        "changes": st.integers(0, 3),
        "creates": st.integers(0, 3),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 300),
    broadcast=st.sampled_from([0, 0, 40, 260]),
    page_size=st.sampled_from([7, 30, 100]),
    reading=readings,
    use_floor=st.booleans(),
)
def test_a_walk_passes_on_every_record_from_floor_to_top_once(
    seed, size, broadcast, page_size, reading, use_floor
):
    model = MessagesModel(random.Random(seed), size, broadcast=broadcast, **reading)
    dates = sorted(m["date"] for m in model.messages.values())
    floor = dates[len(dates) // 3] if use_floor and dates else None
    walker = BackwardWalk(top=TOP, floor=floor, limit=page_size)
    passed = walk(model, walker)
    ids = [m["id"] for m in passed]
    assert set(ids) >= model.between(floor, TOP)
    # Each version once: a record comes again only with a changed status.
    versions = [(m["id"], m["updated"]) for m in passed]
    assert len(versions) == len(set(versions))
    assert all(floor is None or m["date"] >= floor for m in passed)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 200),
    broadcast=st.sampled_from([0, 60, 250]),
    cap=st.sampled_from([MIN_CAP, 25, 50]),
    pages=st.sampled_from(["ignored", "from-0", "from-1"]),
    tie_order=st.sampled_from(["id", "hash", "unstable"]),
    inclusive=st.booleans(),
    by_second=st.booleans(),
)
def test_a_capped_answer_is_read_whole_or_the_walk_fails_saying_so(
    seed, size, broadcast, cap, pages, tie_order, inclusive, by_second
):
    model = MessagesModel(
        random.Random(seed),
        size,
        broadcast=broadcast,
        cap=cap,
        pages=pages,
        tie_order=tie_order,
        inclusive=inclusive,
        by_second=by_second,
    )
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    try:
        passed = walk(model, walker)
    except PagingError as exc:
        # Only a second holding more than the cap, with no working page or a changing order,
        # stops it.
        assert model.largest_second() >= cap
        assert pages == "ignored" or tie_order == "unstable", exc
        return
    assert {m["id"] for m in passed} >= model.between(None, TOP)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 200),
    broadcast=st.sampled_from([0, 150, 1_500, 2_600]),
    pages=st.sampled_from(["from-0", "from-1"]),
    cut_to=st.sampled_from([MIN_CAP, 60]),
    reading=readings,
)
def test_answers_cut_at_lengths_that_vary_lose_nothing_where_page_works(
    seed, size, broadcast, pages, cut_to, reading
):
    """No answer's length proves a tie whole or the list ended: a cap by size cuts any answer
    anywhere, a tie's first, its pages, and the one that looks like the list's last."""
    model = MessagesModel(
        random.Random(seed), size, broadcast=broadcast, pages=pages, cut_to=cut_to, **reading
    )
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed = walk(model, walker)
    assert {m["id"] for m in passed} >= model.between(None, TOP)


class SizedModel(MessagesModel):
    """A cap by size that cuts the same window the same way every time: each message has a
    size, and an answer is the longest prefix of its page within ``budget`` (at least
    ``MIN_CAP``)."""

    def __init__(self, budget: int, seconds: list[tuple[int, int, int]], pages: str) -> None:
        """``seconds``: (second after BASE, messages, bytes each), newest first."""
        super().__init__(random.Random(0), 0, pages=pages)
        self.budget = budget
        self.size: dict[int, int] = {}
        for at, count, size in seconds:
            stamp = _fixed(BASE + datetime.timedelta(seconds=at))
            for _ in range(count):
                message_id = len(self.messages) + 1
                self.messages[message_id] = {"id": message_id, "date": stamp, "updated": stamp}
                self.size[message_id] = size

    def answer(self, request: WalkRequest) -> list[dict]:
        kept, used = [], 0
        for message in super().answer(request):
            used += self.size[message["id"]]
            if used > self.budget and len(kept) >= MIN_CAP:
                break
            kept.append(message)
        return kept


@pytest.mark.parametrize("pages", ["from-0", "from-1"])
@pytest.mark.parametrize(
    ("budget", "seconds", "most_requests"),
    [
        # Small messages, then a broadcast of large ones: a window as long as the small answers
        # is cut to the same dozen every time (asking it twice failed the walk).
        (25_000, [(200 + i, 1, 100) for i in range(100)] + [(100, 300, 2_000), (0, 1, 100)], 40),
        # A broadcast of small messages read at 1,000 a page, then one of large ones below it:
        # windows as long as the first broadcast's answers made two requests a message.
        (120_000, [(100, 1_200, 100), (50, 800, 2_500), (0, 1, 100)], 30),
    ],
)
def test_a_tie_cut_by_size_the_same_way_every_time_is_read_in_windows_that_fit(
    pages, budget, seconds, most_requests
):
    model = SizedModel(budget, seconds, pages)
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed = walk(model, walker)
    assert {m["id"] for m in passed} == set(model.messages)
    assert walker.stats.requests <= most_requests


def test_a_tie_cut_at_lengths_that_vary_where_page_is_ignored_fails_the_walk_saying_so():
    """Page 0 again at another length: a cap that varies, so the first answer may be cut too."""
    model = MessagesModel(random.Random(7), 0)  # ``page`` ignored
    tied = _fixed(BASE + datetime.timedelta(seconds=5))
    for message_id in range(1, 61):
        model.messages[message_id] = {"id": message_id, "date": tied, "updated": ""}
    model.messages[99] = {"id": 99, "date": _fixed(BASE), "updated": ""}
    walker = BackwardWalk(top=TOP, floor=None, limit=30)
    # Whole at 30 (twice: the boundary comes down to the tie first), then cut to 40 at limit
    # 1,000, then pages 1 and 2 (page 0 again) cut to 35 and 38.
    cuts = iter([30, 30, 40, 35, 38])
    with pytest.raises(PagingError, match=r"at lengths that vary \(40, then \[35, 38\]\)"):
        while not walker.finished:
            request = walker.request()
            walker.advance(request, model.answer(request)[: next(cuts)])


def test_a_capped_tie_on_the_floor_fails_when_page_is_ignored_as_it_does_above_it():
    """A floor (the bookmark's, or a split's) at the tie's second does not make it whole."""
    model = MessagesModel(random.Random(1), 0, cap=50)  # ``page`` ignored
    tied = BASE + datetime.timedelta(seconds=100)
    for message_id in range(1, 81):
        at = _fixed(tied + datetime.timedelta(microseconds=message_id))
        model.messages[message_id] = {"id": message_id, "date": at, "updated": ""}
    for message_id in range(81, 91):
        at = _fixed(BASE + datetime.timedelta(seconds=message_id))
        model.messages[message_id] = {"id": message_id, "date": at, "updated": ""}
    walker = BackwardWalk(top=TOP, floor=_fixed(tied), limit=100)
    with pytest.raises(PagingError, match="at most 50 records created within the second"):
        walk(model, walker)


def test_records_without_an_id_in_a_tie_are_read_past_not_matched():
    """No id is no identity: two records without one are not one record read twice."""

    def answer(request: WalkRequest) -> list[dict]:
        kept = [row for row in rows if row["date"] < request.boundary]
        limit = min(request.limit, 20)  # a cap of 20, offsets by the limit served
        page = request.page or 0
        return [dict(row) for row in kept[page * limit : (page + 1) * limit]]

    tied = _fixed(BASE + datetime.timedelta(seconds=100))
    rows = [{"id": None if at in (0, 20, 40) else 100 - at, "date": tied} for at in range(80)]
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed: list[dict] = []
    while not walker.finished:
        request = walker.request()
        passed += walker.advance(request, answer(request))
    assert {m["id"] for m in passed} == {m["id"] for m in rows}


def test_an_undated_record_in_a_tie_window_is_passed_on_as_part_of_that_second():
    model = MessagesModel(random.Random(5), 0, pages="from-0", cap=20)
    tied = _fixed(BASE + datetime.timedelta(seconds=5))
    for message_id in range(1, 41):
        model.messages[message_id] = {"id": message_id, "date": tied, "updated": ""}
    model.messages[99] = {"id": 99, "date": _fixed(BASE), "updated": ""}
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    for _ in range(2):  # the tie's first answer, then the limit raised: page 1 is next
        request = walker.request()
        walker.advance(request, model.answer(request))
    request = walker.request()
    assert request.page == 1
    answer = model.answer(request)
    answer[-1] = {**answer[-1], "date": None}
    assert walker.advance(request, answer)[-1]["date"] is None
    assert not walker.finished and walker.request().page == 2


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(1, 250),
    broadcast=st.sampled_from([0, 150]),
    reading=readings,
    capped=st.sampled_from([(None, "ignored"), (40, "ignored"), (40, "from-0")]),
    stops=st.lists(st.integers(1, 15), min_size=1, max_size=4),
)
def test_a_walk_interrupted_anywhere_resumes_from_its_resume_point(
    seed, size, broadcast, reading, capped, stops
):
    cap, pages = capped
    model = MessagesModel(
        random.Random(seed), size, broadcast=broadcast, cap=cap, pages=pages, **reading
    )
    passed: list[dict] = []
    start = None
    try:
        for stop in stops:
            walker = BackwardWalk(top=TOP, floor=None, limit=30, start=start)
            passed += walk(model, walker, stop_after=stop)
            if walker.finished:
                break
            start = walker.resume_point
        else:
            walker = BackwardWalk(top=TOP, floor=None, limit=30, start=start)
            passed += walk(model, walker)
    except PagingError:
        assert cap is not None and model.largest_second() >= cap and pages == "ignored"
        # What was passed on before the failure is still all there is from the last resume
        # point up: checked by resuming from it in the passing cases.
        return
    assert {m["id"] for m in passed} >= model.between(None, TOP)


def test_a_server_that_ignores_the_cursor_fails_the_walk():
    model = MessagesModel(random.Random(1), 200)
    walker = BackwardWalk(top=TOP, floor=None, limit=30)
    request = walker.request()
    walker.advance(request, model.answer(request))
    newest = sorted(model.messages.values(), key=lambda m: m["date"], reverse=True)[:30]
    with pytest.raises(PagingError, match="ignored the cursor"):
        walker.advance(walker.request(), newest)


def test_an_answer_oldest_first_fails_the_walk():
    model = MessagesModel(random.Random(2), 50)
    walker = BackwardWalk(top=TOP, floor=None, limit=30)
    request = walker.request()
    with pytest.raises(PagingError, match="not sorted newest first"):
        walker.advance(request, list(reversed(model.answer(request))))


def test_a_broadcast_larger_than_a_page_raises_the_limit_then_moves_below_it():
    model = MessagesModel(random.Random(3), 20, broadcast=700)
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed = walk(model, walker)
    assert {m["id"] for m in passed} == set(model.messages)
    assert walker.stats.limit_raised == 1  # 100 -> 1000
    assert walker.page_size == walker.request().limit == 100


def test_a_tie_past_a_cap_is_paged_with_page_counted_from_one():
    model = MessagesModel(random.Random(4), 30, broadcast=130, cap=50, pages="from-1")
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed = walk(model, walker)
    assert {m["id"] for m in passed} == set(model.messages)
    assert walker.stats.tie_pages >= 3


def test_the_cursor_is_whole_seconds_until_the_server_shows_it_keeps_records_at_it():
    request = WalkRequest("2024-05-06T07:08:09.000000Z", 30)
    assert request.cursor == "2024-05-06T07:08:09Z"
    inclusive = WalkRequest("2024-05-06T07:08:09.000000Z", 30, inclusive=True)
    assert inclusive.cursor == "2024-05-06T07:08:08.999999Z"


def test_a_walk_starts_at_the_whole_second_above_its_top_and_stops_at_its_floor():
    walker = BackwardWalk(top="2024-01-01T00:00:00.250000Z", floor=None, limit=10)
    assert walker.request().cursor == "2024-01-01T00:00:01Z"
    done = BackwardWalk(top=TOP, floor=TOP, limit=10)
    assert done.finished


def test_a_capped_tie_that_ends_the_list_is_taken_as_whole_when_page_is_ignored():
    """The one reading that loses records, documented: nothing can tell this tie from a cap."""
    model = MessagesModel(random.Random(5), 0, broadcast=0, cap=50)
    model.messages[1] = {
        "id": 1,
        "date": _fixed(BASE + datetime.timedelta(seconds=5)),
        "updated": "",
    }
    for message_id in range(2, 82):  # 80 records in the very oldest second
        model.messages[message_id] = {"id": message_id, "date": _fixed(BASE), "updated": ""}
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    passed = walk(model, walker)
    assert len({m["id"] for m in passed}) == 1 + 50


def test_a_capped_tie_with_older_records_below_fails_when_page_is_ignored():
    model = MessagesModel(random.Random(6), 40, broadcast=120, cap=50)
    walker = BackwardWalk(top=TOP, floor=None, limit=100)
    with pytest.raises(PagingError, match="at most 50 records created within the second"):
        walk(model, walker)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 300),
    broadcast=st.sampled_from([0, 0, 120]),
    reading=readings,
    use_floor=st.booleans(),
    use_hint=st.booleans(),
    choices=st.lists(st.integers(0, 2**16), min_size=1, max_size=400),
)
def test_walks_split_at_any_point_and_answered_in_any_order_pass_on_every_record(
    seed, size, broadcast, reading, use_floor, use_hint, choices
):
    """Several walks at once, as a slow API's requests in flight: each split, each answer late."""
    model = MessagesModel(random.Random(seed), size, broadcast=broadcast, **reading)
    dates = sorted(m["date"] for m in model.messages.values())
    floor = dates[len(dates) // 4] if use_floor and dates else None
    hint = dates[0] if use_hint and dates else None
    # A top just above the newest record, so that splits fall among the records.
    top = _fixed(_parse(dates[-1]) + datetime.timedelta(seconds=3)) if dates else TOP
    walks = [BackwardWalk(top=top, floor=floor, limit=30)]
    in_flight: dict[int, tuple[WalkRequest, list[dict]]] = {}
    passed: list[dict] = []
    picks = iter(choices)
    for _ in range(5000):
        active = [w for w in walks if not w.finished]
        if not active and not in_flight:
            break
        pick = next(picks, 1)
        idle = [w for w in active if id(w) not in in_flight]
        if pick % 3 == 0 and active and len(walks) < 12:
            older = active[pick % len(active)].split(hint)
            if older is not None:
                walks.append(older)
                continue
        if (pick % 3 == 1 or not in_flight) and idle:
            walk = idle[pick % len(idle)]
            request = walk.request()
            in_flight[id(walk)] = (request, model.answer(request))  # evaluated now, taken later
            continue
        if in_flight:
            key = sorted(in_flight)[pick % len(in_flight)]
            request, answer = in_flight.pop(key)
            owner = next(w for w in walks if id(w) == key)
            passed += owner.advance(request, answer)
    else:
        raise AssertionError("the walks do not end")
    assert {m["id"] for m in passed} >= model.between(floor, top)
    assert all(floor is None or m["date"] >= floor for m in passed)


def test_a_split_hands_the_older_half_to_a_new_walk_meeting_at_a_whole_second():
    walk = BackwardWalk(top=TOP, floor="2029-12-31T00:00:00.000000Z", limit=30)
    older = walk.split()
    assert older is not None
    assert older.top == walk.floor == "2029-12-31T12:00:00.000000Z"
    assert older.floor == "2029-12-31T00:00:00.000000Z"
    assert BackwardWalk(top=TOP, floor=None, limit=30).split() is None
    open_ended = BackwardWalk(top=TOP, floor=None, limit=30).split("2029-12-30T00:00:00.000000Z")
    assert open_ended is not None and open_ended.top == "2029-12-31T00:00:00.000000Z"
    assert open_ended.floor is None


def test_split_at_hands_what_is_below_a_whole_second_to_a_new_walk():
    walk = BackwardWalk(top="2024-03-01T00:00:00.000000Z", floor=None, limit=10)
    older = walk.split_at("2024-02-01T12:00:00.500000Z")
    assert older is not None
    assert (older.top, older.floor) == ("2024-02-01T12:00:00.000000Z", None)
    assert walk.floor == older.top
    assert walk.split_at("2024-02-29T23:59:59.000000Z") is None, "not a second below the top"
    assert walk.split_at("2024-01-01T00:00:00.000000Z") is None, "below its floor now"


def test_a_floor_below_the_oldest_record_neither_counts_nor_places_a_split():
    # Split before the oldest record was known, a walk's floor may lie years below it: its
    # records left, and its half way, count from the oldest record up.
    walk = BackwardWalk(
        top="2024-02-06T00:00:00.000000Z", floor="2015-09-09T00:00:00.000000Z", limit=100
    )
    other = BackwardWalk(
        top="2024-12-01T00:00:00.000000Z", floor="2024-06-01T00:00:00.000000Z", limit=100
    )
    density = 10_000 / (183 * 86_400)  # 10,000 records in the other walk's half year
    older = _split_one([walk, other], "2024-01-01T00:00:00.000000Z", 100, density={}, prior=density)
    assert older is not None and older.floor == "2024-06-01T00:00:00.000000Z", "the fuller walk"
    older = _split_one([walk], "2024-01-01T00:00:00.000000Z", 100, density={}, prior=density)
    assert older is not None
    assert older.top == "2024-01-19T00:00:00.000000Z", "half way down to the oldest record"


def test_a_walk_split_before_any_answer_is_split_four_times_further_back_each_time_down_to_2000():
    top = "2026-11-26T12:00:00.000000Z"
    walks = [BackwardWalk(top=top, floor=None, limit=100)]
    while older := _split_unseen(walks, top):
        walks.append(older)
    assert [walk.top[:10] for walk in walks] == [
        "2026-11-26", "2026-11-25", "2026-11-22", "2026-11-10", "2026-09-23", "2026-03-15",
        "2024-02-06", "2015-09-09",
    ]  # fmt: skip
    assert [walk.floor for walk in walks[:-1]] == [walk.top for walk in walks[1:]]
    assert walks[-1].floor is None


def test_a_walk_with_its_request_in_flight_is_split_below_where_that_answer_will_reach():
    # The answer in flight reads about a page below the boundary whatever a split leaves the
    # walk: halving from the boundary left the walk that answer and a sliver, a request more
    # for a few records (at 1 s a request, about one walk end in three).
    walk = BackwardWalk(
        top="2024-03-01T00:00:00.000000Z", floor="2024-02-25T00:00:00.000000Z", limit=100
    )
    density = 100 / 86_400  # a page a day: five pages left, one of them in flight
    older = _split_one([walk], None, 100, density={}, prior=density, asking={id(walk)})
    assert older is not None and older.top == "2024-02-27T00:00:00.000000Z", (
        "half way down from a page below the boundary"
    )
    narrow = BackwardWalk(
        top="2024-03-01T00:00:00.000000Z", floor="2024-02-27T12:00:00.000000Z", limit=100
    )
    assert _split_one([narrow], None, 100, density={}, prior=density) is not None
    assert (
        _split_one([narrow], None, 100, density={}, prior=density, asking={id(narrow)}) is None
    ), "two and a half pages left, one in flight: halves of the rest would hold under a page"


def test_a_walk_with_three_pages_left_is_split_when_a_request_slot_would_stand_idle():
    # Near a sync's end at 1 s a request, walks of three pages left finished one page a
    # second while the other request slots stood idle.
    walk = BackwardWalk(
        top="2024-03-01T00:00:00.000000Z", floor="2024-02-28T00:00:00.000000Z", limit=100
    )
    density = 300 / (2 * 86_400)  # three pages left
    older = _split_one([walk], None, 100, density={}, prior=density)
    assert older is not None and older.top == "2024-02-29T00:00:00.000000Z"
    assert _split_one([walk, older], None, 100, density={}, prior=density) is None, (
        "halves of less than a page are not worth a walk each"
    )
