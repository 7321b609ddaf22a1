"""What Heymarket's streams share beyond HTTP: reading a list whole, or walking one back in time.

``streams`` declares each stream in a few lines on one of these bases:

- ``WalkedStream``: a newest-first list with a "before" cursor (messages by creation; tags,
  templates and conversations by update), walked back with ``walking.BackwardWalk``. Incremental
  ones keep a bookmark (everything dated before it was synced) and, while a walk is under way,
  the walk itself, so an interrupted run resumes where it stopped; full-table ones walk to the
  end of the list every run.
- ``ListStream``: a list read whole every run (inboxes, team members, surveys, custom fields).

Full-table streams send ACTIVATE_VERSION after a complete pass (``sdk_internals.FullPass``), so
a target that supports it (target-postgres) marks the rows of objects deleted in Heymarket as
deleted.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
import typing as t
from dataclasses import dataclass, field

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_heymarket.client import HeymarketAPIError, HeymarketStream
from tap_heymarket.fetching import Answer, AnyOrder, in_flight_target
from tap_heymarket.normalize import (
    TIMESTAMP_FORMAT,
    NormalizeReport,
    decode_records,
    normalize_timestamp,
)
from tap_heymarket.pagination import PagingError
from tap_heymarket.sdk_internals import FullPass, OwnBookmark, fixed_width, utc_now
from tap_heymarket.walking import BackwardWalk, WalkRequest, WalkStats, second_of

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_heymarket.fields import RecordSpec
    from tap_heymarket.progress import Progress

Record = dict[str, t.Any]
#: Walks of one stream in flight at most, each with one request: enough for the pacing's 8
#: requests a second at a second's latency.
MAX_WALKS = 12
#: Not asked yet, and asked but not answered yet.
_UNKNOWN, _ASKED = object(), object()
#: In place of a walk: a request for Heymarket's count.
_COUNT = object()
#: How far below its bookmark a run reads again, at least. The bookmark is the whole second
#: after the one the last run began in, so a record changed after that run's walk passed its
#: place, but dated before the bookmark (in that second, or by a clock running a little
#: behind this machine's), is read by the next run.
REREAD_BELOW_BOOKMARK = datetime.timedelta(seconds=2)
#: Pages each half of a split walk must be expected to hold (see ``_split_one``): a walk
#: costs about a request more than its pages, cheaper than the pipeline standing idle. At the
#: end of a sync at 1 s a request, halves of two pages left walks of three finishing alone,
#: a page a second.
SPLIT_PAGES = 1
#: How far below the top a first sync's walk is first split before any answer is in (then four
#: times as far each time: ``_split_unseen``).
UNSEEN_FIRST_SPLIT = datetime.timedelta(days=1)
#: Nor is it split below this date (a few splits more would reach below the year 1).
UNSEEN_EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
#: Walks again over what changed since a full pass began, at most, before the pass gives up
#: marking anything deleted (``WalkedStream._changed_while_walking``).
MAX_REWALKS = 5


@dataclass
class Findings:
    """What a sync found wrong with the data, for the log lines at its end."""

    report: NormalizeReport = field(default_factory=NormalizeReport)
    #: Where in Heymarket's answers (request and index) each record without an id stood.
    unkeyed: list[str] = field(default_factory=list)
    #: Ids of records without a usable replication key.
    undated: list[int] = field(default_factory=list)
    #: How many records were dated in the future, and the latest of them.
    future: int = 0
    latest_future: dict[str, t.Any] | None = None


def log_findings(logger: logging.Logger, nouns: str, key: str | None, found: Findings) -> None:
    """What was wrong with the data: fields unknown, values nulled, records without id or key."""
    report = found.report
    if report.unknown_fields:
        logger.info(
            "Heymarket sent %s fields the schema does not have (not synced): %s",
            nouns,
            ", ".join(sorted(report.unknown_fields)),
        )
    if report.nulled:
        logger.warning(
            "Values that could not be read as their schema type were synced as null: %s",
            ", ".join(f"{name}: {count}" for name, count in sorted(report.nulled.items())),
        )
    if found.unkeyed:
        logger.error(
            "%d %s had no usable id and could not be synced (positions: %s)",
            len(found.unkeyed),
            nouns,
            "; ".join(found.unkeyed[:20]),
        )
    if found.undated:
        logger.warning(
            "%d %s had no usable %s time; synced without one (ids: %s)",
            len(found.undated),
            nouns,
            key,
            ", ".join(map(str, found.undated[:20])),
        )


class _Decoded(HeymarketStream):
    """A stream whose records are declared in a ``RecordSpec`` and decoded by it."""

    #: The stream's fields and key, declared once in ``fields``; schema and key come from it.
    spec: RecordSpec
    primary_keys: t.ClassVar[tuple[str, ...]]
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        """A stream's schema and key are its ``spec``'s: one source for both."""
        super().__init_subclass__(**kwargs)
        if "spec" in vars(cls):
            setattr(cls, "schema", cls.spec.json_schema())  # noqa: B010 - the SDK types it a property
            cls.primary_keys = cls.spec.key

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if "expected_answer" not in vars(type(self)):
            self.expected_answer = f"a JSON array of {self.spec.noun} objects"

    def fetch(self, body: dict[str, t.Any], found: Findings) -> list[Record]:
        """One answer's records, decoded and normalised; what decoding changed goes in ``found``."""
        report = NormalizeReport()
        records = self.post_json(body, functools.partial(self.decode, report=report))
        self.extracted_at = utc_now()
        found.report.merge(report)
        return records

    def decode(self, content: bytes, report: NormalizeReport) -> list[Record] | None:
        """The records in an answer's bytes, or None if they are not what was expected."""
        return decode_records(self.spec, content, report)

    def finish_record(self, record: Record, context: Context | None) -> Record:
        """Columns derived from the record, added before it is written (none by default)."""
        return record

    def keyed(
        self, records: t.Iterable[Record], where: str, found: Findings, context: Context | None
    ) -> t.Iterator[Record]:
        """The records that have an id (the others are counted, to be reported), finished."""
        for index, record in enumerate(records):
            if record.get("id") is None:
                found.unkeyed.append(f"{where} #{index}")
                continue
            yield self.finish_record(record, context)


class ListStream(_Decoded, FullPass, OwnBookmark):
    """A list Heymarket gives whole (or page by page, ``paged``), synced in full every run.

    Rows of objects deleted in Heymarket are marked deleted (``FullPass``).
    """

    replication_key = None
    #: Pages numbered from 1 with ``limit`` (surveys); else one request gives the whole list.
    paged = False

    @property
    def body(self) -> dict[str, t.Any]:
        """The request body (a GET sends none)."""
        return {}

    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        """Every record of the list; paged lists end on an empty page."""
        found = Findings()
        self.begin_full_pass()
        if not self.paged:
            records = list(self.keyed(self.fetch(self.body, found), self.path, found, context))
            yield from records
            self.progress.records_written(len(records))
        else:
            limit = self.config["page_size"]
            page = 1
            seen: set[t.Any] = set()
            while True:
                body = {**self.body, "page": page, "limit": limit}
                records = self.fetch(body, found)
                fresh = [r for r in records if r.get("id") is None or r.get("id") not in seen]
                if records and not fresh:
                    msg = (
                        f"Heymarket answered page {page} of {self.path} with the records of an "
                        "earlier page: it ignores page, so the list cannot be read past its first"
                    )
                    raise HeymarketAPIError(msg)
                if not records:
                    break
                seen.update(r.get("id") for r in records)
                keyed = list(self.keyed(fresh, f"page {page}", found, context))
                yield from keyed
                self.progress.records_written(len(keyed))
                page += 1
        self.end_full_pass()
        self.logger.info(
            "%s sync done in %.0f s: %d %s, %d requests",
            self.name.replace("_", " ").capitalize(),
            self.progress.elapsed,
            self.progress.records,
            self.name,
            self.progress.requests,
        )
        log_findings(self.logger, self.name, None, found)


class WalkedStream(_Decoded, FullPass, OwnBookmark):
    """A newest-first list walked back by a "before" cursor (``walking``).

    Incremental (``replication_key`` set): a run walks from its start down to its bookmark less
    ``lookback``, with a STATE after each answer; the state holds the bookmark and, while a
    walk is under way, the walk (top, floor, boundary), which the next run resumes first.
    Full-table (``replication_key`` None): every run walks to the end of the list.
    """

    #: The body's cursor field, and other fields every request sends.
    cursor_param = "date"
    fixed_body: t.ClassVar[dict[str, t.Any]] = {}
    #: The field the cursor compares, a timestamp in every record.
    walk_key = "updated"
    #: Heymarket's count of the records before a cursor, for the progress lines' share done.
    count_path: str | None = None
    #: The body (less cursor and limit) that lists the oldest records first, where Heymarket
    #: documents one: it places the splits of a walk without a floor.
    oldest_first_body: t.ClassVar[dict[str, t.Any] | None] = None
    own_state_keys = ("walks",)
    is_sorted = False
    #: Heymarket's records carry no ``team_id``: every one takes the account's (``GET /v1/team``),
    #: asked as the sync starts, beside its first requests.
    records_lack_team_id = False

    def lookback(self) -> datetime.timedelta:
        """How far below its bookmark a run reads again (changes to records dated before it)."""
        return datetime.timedelta(0)

    def request_body(self, request: WalkRequest, context: Context | None) -> dict[str, t.Any]:
        """The body asking for ``request``."""
        body = {**self.fixed_body, self.cursor_param: request.cursor, "limit": request.limit}
        if request.page is not None:
            body["page"] = request.page
        return body

    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        """The records of this run's walks, newest first in each."""
        state = self.get_context_state(context)
        bookmark, walks = self.planned_walks(state)
        found = Findings()
        full = self.replication_key is None
        if full:
            self.begin_full_pass()
        first = walks[-1]
        # A first sync also asks for Heymarket's count, for the progress lines.
        counted = bool(self.count_path) and first.floor is None and len(walks) == 1
        self.logger.info(
            "Syncing %s%s from %s to %s",
            self.name,
            self.describe(context),
            min((w.floor or "the beginning" for w in walks), key=str),
            first.top,
        )
        try:
            yield from self._run(walks, bookmark, found, context, counted=counted)
            if full:
                yield from self._changed_while_walking(walks, found, context)
        except PagingError as exc:
            # Every STATE so far is backed by answers that passed their checks.
            raise HeymarketAPIError(str(exc)) from None
        if not full:
            bookmark = max(walk.top for walk in walks)
            self.save_state(
                {"replication_key": self.replication_key, "replication_key_value": bookmark},
                context,
            )
        stats = WalkStats()
        for walk in walks:
            _add_stats(stats, walk.stats)
        self.logger.info(
            "%s sync done%s in %.0f s: %d %s, %d requests, %d read, %d re-reads skipped, "
            "%d ties read with a raised limit, %d tie pages, %d walks in all",
            self.name.replace("_", " ").capitalize(),
            self.describe(context),
            self.progress.elapsed,
            self.progress.records,
            self.name,
            stats.requests,
            stats.records_read,
            stats.reread,
            stats.limit_raised,
            stats.tie_pages,
            len(walks),
        )
        log_findings(self.logger, self.name, self.walk_key, found)

    def _changed_while_walking(
        self, walks: list[BackwardWalk], found: Findings, context: Context | None
    ) -> t.Iterator[Record]:
        """A full pass's records updated while it walked, then its version activated.

        Updated before the walk reached it, a record moves to where the walk has been (dated
        from when it began), and the walk never reads it; a pass must write every live record
        before the target marks the others deleted. So what was updated since the walk began
        is walked again, from now down, until such a walk takes a single answer (one answer
        holds whatever was there as it was made; between two, a record may move again). After
        ``MAX_REWALKS`` the pass marks nothing deleted this time. The walks join ``walks``,
        for the summary line.
        """
        since = self.signpost  # when the first walk began
        for _ in range(MAX_REWALKS):
            started = fixed_width(utc_now())
            walk = BackwardWalk(
                top=started,
                floor=second_of(since),
                limit=self.config["page_size"],
                key=self.walk_key,
            )
            rewalk = [walk]  # with the walks a slow API's latency splits it into
            yield from self._run(rewalk, None, found, context)
            walks.extend(rewalk)
            if sum(part.stats.requests for part in rewalk) <= 1:
                self.end_full_pass()
                return
            since = started
        self.logger.warning(
            "%s kept changing while they were read (%d walks again over what changed since "
            "the pass began); none was marked deleted this time",
            self.name.replace("_", " ").capitalize(),
            MAX_REWALKS,
        )

    def describe(self, context: Context | None) -> str:
        """The partition, for log lines ("" without one)."""
        if not context:
            return ""
        return " (" + ", ".join(f"{key} {value}" for key, value in context.items()) + ")"

    def planned_walks(self, state: dict[str, t.Any]) -> tuple[str | None, list[BackwardWalk]]:
        """The bookmark, and the walks this run makes: those interrupted first, if any.

        A bookmark or walk in the state that is not what this stream wrote ends the sync
        before any request: every rerun would fail on it the same way.
        """
        limit = self.config["page_size"]
        key = self.walk_key
        if self.replication_key is None:
            return None, [BackwardWalk(top=self.signpost, floor=None, limit=limit, key=key)]
        bookmark = self._state_timestamp(state.get("replication_key_value"), "bookmark")
        start_date = self.config.get("start_date")
        since = normalize_timestamp(start_date) if start_date else None
        walks = []
        reached = bookmark
        saved = state.get("walks", [])
        if not isinstance(saved, list) or not all(isinstance(w, dict) for w in saved):
            self._bad_state("walks", "is not a list of walks")
        for index, walk in enumerate(saved):
            what = f"walk {index + 1}"
            top = self._state_timestamp(walk.get("top"), f"{what} top")
            boundary = self._state_timestamp(walk.get("boundary"), f"{what} boundary")
            floor = self._state_timestamp(walk.get("floor"), f"{what} floor")
            if top is None or boundary is None:
                self._bad_state(what, "lacks its top or boundary")
            walks.append(BackwardWalk(top=top, floor=floor, limit=limit, key=key, start=boundary))
            reached = max(reached or top, top)
        floor = _earlier(reached, max(self.lookback(), REREAD_BELOW_BOOKMARK)) if reached else None
        if since and (floor is None or since > floor):
            floor = since
        walks.append(BackwardWalk(top=self.signpost, floor=floor, limit=limit, key=key))
        return bookmark, walks

    def _state_timestamp(self, value: t.Any, what: str) -> str | None:
        """A fixed-width timestamp from the state, or the sync fails naming what is wrong."""
        if value is None:
            return None
        try:
            stamp = normalize_timestamp(value)
        except ValueError as exc:
            self._bad_state(what, str(exc))
        latest = fixed_width(utc_now() + datetime.timedelta(hours=1))
        if stamp is not None and stamp > latest:
            self._bad_state(what, f"{value!r} is in the future")
        return stamp

    def _bad_state(self, what: str, problem: str) -> t.NoReturn:
        msg = f"state: the {self.name} {what} {problem}; fix or clear the state"
        raise HeymarketAPIError(msg)

    def _run(
        self,
        walks: list[BackwardWalk],
        bookmark: str | None,
        found: Findings,
        context: Context | None,
        *,
        counted: bool = False,
    ) -> t.Iterator[Record]:
        """The walks' new records; for an incremental stream, a STATE after each answer.

        One request at a time while Heymarket answers faster than the pacing lets requests go;
        when its latency is what the sync waits for, the walks left are split (``split``) into
        as many as the latency needs (``in_flight_target``, up to ``MAX_WALKS``), each with one
        request in flight, their answers taken as they arrive.

        ``counted``: a first sync, which asks for Heymarket's count (for the progress lines) and
        the oldest record beside the first walk's first request, so that a slow API's first
        walks are split as soon as both are in, at the density they give.
        """
        interval = 60.0 / self.config["max_requests_per_minute"]
        plan = _Plan(walks, AnyOrder(functools.partial(self._fetch_item, context=context)))
        if counted:
            plan.probe(
                self.oldest_first_body is not None,
                {**self.fixed_body, self.cursor_param: walks[-1].request().cursor},
            )
        if self.records_lack_team_id:
            self.ask_team_ahead()  # before the first answer's records need it
        while plan.active or plan.requests.in_flight:
            latency = self.latency.value
            # Nothing measured yet: the first request's wait so far is the least the latency
            # is (less an interval it may have waited for the pacer), and a first sync need
            # not wait out a slow API's first answer to send more (``_Plan.fill``).
            guess = counted and latency is None
            if guess:
                latency = time.monotonic() - plan.started - interval
            target = in_flight_target(latency, interval, None, MAX_WALKS)
            if self.oldest_first_body is not None:
                plan.ask_oldest_if_needed(target)
            plan.fill(target, self.config["page_size"], guess=guess)
            taken = plan.requests.take(interval if guess else None)
            if taken is None:
                continue
            (asked, request), answer = taken
            if not isinstance(asked, BackwardWalk):
                plan.probed(asked, answer, self.progress)
                continue
            walk = asked
            plan.asking.discard(id(walk))
            answer, report = answer
            before = walk.boundary
            self.extracted_at = utc_now()
            found.report.merge(report)
            written = 0
            for record in self.keyed(walk.advance(request, answer), str(request), found, context):
                if record.get(self.walk_key) is None:
                    found.undated.append(record["id"])
                written += 1
                yield record
            self.progress.records_written(written)
            plan.answered(walk, before, answer)
            if self.replication_key is not None:
                self._save_walks(walks, bookmark, context)

    def _fetch_item(self, item: tuple[t.Any, t.Any], context: Context | None) -> t.Any:
        """A walk's answer, or for no walk the oldest record's date before ``item[1]``.

        For ``_COUNT``, Heymarket's count of the records ``item[1]`` (a body) asks for.
        """
        walk, request = item
        if walk is _COUNT:
            return self.count(t.cast(str, self.count_path), request)
        return self._ask(request, context) if walk is not None else self._oldest(request)

    def _oldest(self, top: str) -> str | None:
        """The date of the oldest record before ``top``, if Heymarket lists oldest first.

        Only where ``oldest_first_body`` says how to ask; None if it cannot tell. Only where a
        walk without a floor is split does it count, and only for where it is split.
        """
        if self.oldest_first_body is None:
            return None
        request = WalkRequest(top, 1)
        body = {**self.oldest_first_body, self.cursor_param: request.cursor, "limit": 1}
        try:
            records = self.post_json(body, functools.partial(self.decode, report=NormalizeReport()))
        except HeymarketAPIError:
            return None
        dates: list[str] = [r[self.walk_key] for r in records if r.get(self.walk_key)]
        return min(dates, default=None)

    def _ask(self, request: WalkRequest, context: Context | None) -> Answer:
        """One answer, decoded (on a fetching thread), and what decoding it had to change."""
        report = NormalizeReport()
        body = self.request_body(request, context)
        return self.post_json(body, functools.partial(self.decode, report=report)), report

    def _save_walks(
        self, walks: list[BackwardWalk], bookmark: str | None, context: Context | None
    ) -> None:
        """A STATE holding the bookmark and every walk not yet finished."""
        values: dict[str, t.Any] = {
            "walks": [
                {"top": walk.top, "floor": walk.floor, "boundary": walk.resume_point}
                for walk in walks
                if not walk.finished
            ]
        }
        if bookmark is not None:
            values.update(replication_key=self.replication_key, replication_key_value=bookmark)
        self.save_state(values, context)


class _Plan:
    """The walks of one run, the requests in flight for them, and what places their splits."""

    def __init__(self, walks: list[BackwardWalk], requests: AnyOrder) -> None:
        self.walks = walks
        self.requests = requests
        #: Walks with a request in flight.
        self.asking: set[int] = set()
        self.top = walks[-1].top
        self.started = time.monotonic()
        #: The oldest record's date: ``_UNKNOWN``, ``_ASKED``, or what Heymarket answered.
        self.oldest: t.Any = _UNKNOWN
        #: Records a second if Heymarket's count were spread from the oldest record to the top.
        self.prior: float | None = None
        #: Records a second in each walk's last answer: where a walk is, not where it was.
        self.density: dict[int, float] = {}

    @property
    def active(self) -> list[BackwardWalk]:
        """The walks not finished."""
        return [walk for walk in self.walks if not walk.finished]

    def probe(self, oldest: bool, count_body: dict[str, t.Any]) -> None:
        """A first sync: ask for the oldest record (if ``oldest``) and Heymarket's count."""
        if oldest:
            self.oldest = _ASKED
            self.requests.send((None, self.top))
        self.requests.send((_COUNT, count_body))

    def probed(self, asked: t.Any, answer: t.Any, progress: Progress) -> None:
        """Take the oldest record's date (``asked`` None) or the count (``_COUNT``)."""
        if asked is None:
            self.oldest = answer
        else:
            progress.total = answer
        # With Heymarket's count, the oldest record gives the density to split at before any
        # walk's answer is in.
        self.prior = _density(progress.total, self.top, self.oldest)

    def ask_oldest_if_needed(self, target: int) -> None:
        """Ask for the oldest record once a walk without a floor could be split, if not asked."""
        active = self.active
        if (
            target > len(active)
            and self.oldest is _UNKNOWN
            and any(walk.floor is None for walk in active)  # only such a walk needs it
        ):
            # Asked beside the walks' requests: the pipeline does not wait for it.
            self.oldest = _ASKED
            self.requests.send((None, self.top))

    def fill(self, target: int, page_size: int, *, guess: bool = False) -> None:
        """Split walks up to ``target`` (where worth it) and send each a request if it has none.

        ``guess``: a first sync before anything tells where its records are; the walk without a
        floor is split where ``_split_unseen`` guesses.
        """
        active = self.active
        known = None if self.oldest in (_UNKNOWN, _ASKED) else self.oldest
        while len(active) < target and (
            older := _split_one(
                active,
                known,
                page_size,
                density=self.density,
                prior=self.prior,
                asking=self.asking,
            )
            or (
                guess
                and self.prior is None
                and not self.density
                and _split_unseen(active, self.top)
            )
        ):
            self.walks.append(older)
            active.append(older)
        for walk in active:
            if len(self.asking) >= target:  # the count and the oldest record go beside
                break
            if id(walk) not in self.asking:
                self.asking.add(id(walk))
                self.requests.send((walk, walk.request()))

    def answered(self, walk: BackwardWalk, before: str, answer: list[Record]) -> None:
        """Note the density of the answer the walk took (``before``: its boundary before it)."""
        span = (_instant(before) - _instant(walk.boundary)).total_seconds()
        if span > 0 and answer:
            self.density[id(walk)] = len(answer) / span


def _split_one(
    walks: list[BackwardWalk],
    oldest: str | None,
    page_size: int,
    *,
    density: dict[int, float],
    prior: float | None = None,
    asking: t.Container[int] = (),
) -> BackwardWalk | None:
    """Split the walk with the most records left to walk, if each half is worth its own walk.

    The caller asks while fewer walks than it wants are in flight. A walk costs about one request more
    than its records need (its last answer reaches below its floor), so a half must hold
    ``SPLIT_PAGES`` pages at the density of the walk's last answer (``density``; all the walks'
    on average before it has one, and ``prior`` before any answer is in): a request more is
    cheaper than a request slot standing idle for a second. ``oldest``, the oldest record there
    is as far as known, places the half way of an open-ended walk, or of one whose floor lies
    below it (split before it was known). A walk in ``asking`` (a request in flight) is counted
    from a page below its boundary, where that answer will reach whatever the split leaves it.
    """

    def walked(walk: BackwardWalk) -> float:
        return (_instant(walk.top) - _instant(walk.boundary)).total_seconds()

    total = sum(walked(walk) for walk in walks)
    read = sum(walk.stats.records_read for walk in walks)
    average = read / total if total > 0 and read else prior
    if not average:
        return None  # no density yet to tell what a half would hold

    def low_end(walk: BackwardWalk) -> str | None:
        # No record is older than the oldest there is: a floor below it bounds nothing.
        return max((low for low in (walk.floor, oldest) if low is not None), default=None)

    def seconds_left(walk: BackwardWalk) -> float:
        # Counted from where the walk is expected to be once its answer in flight is in: that
        # answer reads about a page below the boundary, whatever a split leaves the walk.
        low = low_end(walk)
        if low is None:
            return 0.0
        ahead = page_size / here(walk) if id(walk) in asking else 0.0
        return max(0.0, (_instant(walk.boundary) - _instant(low)).total_seconds() - ahead)

    def here(walk: BackwardWalk) -> float:
        # Records are rarely spread evenly: where the walk is now counts.
        return density.get(id(walk), average)

    fullest = max(walks, key=lambda walk: seconds_left(walk) * here(walk))
    if seconds_left(fullest) * here(fullest) / 2 < SPLIT_PAGES * page_size:
        return None
    low = _instant(t.cast(str, low_end(fullest)))
    return fullest.split_at(_fixed(low + datetime.timedelta(seconds=seconds_left(fullest) / 2)))


def _split_unseen(walks: list[BackwardWalk], top: str) -> BackwardWalk | None:
    """Split the walk without a floor before any answer tells where records are, or None.

    A slow API's first answers take a while; until then the request slots would stand idle.
    With no telling how far back the records go, each split cuts the open-ended walk four
    times as far below the top as it began (a day below the top the first time): a walk over
    a stretch without records costs one request, and the open-ended walk below still reads
    whatever there is. Once the count and the oldest record are in, ``_split_one`` splits by
    records left.
    """
    open_ended = [walk for walk in walks if walk.floor is None]
    if len(open_ended) != 1:
        return None
    walk = open_ended[0]
    reach = max(4 * (_instant(top) - _instant(walk.top)), UNSEEN_FIRST_SPLIT)
    if reach > _instant(top) - UNSEEN_EARLIEST:
        return None
    return walk.split_at(_fixed(_instant(top) - reach))


def _density(total: int | None, top: str, oldest: t.Any) -> float | None:
    """Records a second between ``oldest`` and ``top`` if ``total`` were spread evenly."""
    if not total or not isinstance(oldest, str) or oldest >= top:
        return None
    return total / (_instant(top) - _instant(oldest)).total_seconds()


def _instant(timestamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc
    )


def _earlier(timestamp: str, delta: datetime.timedelta) -> str:
    return _fixed(_instant(timestamp) - delta)


def _fixed(instant: datetime.datetime) -> str:
    return instant.strftime(TIMESTAMP_FORMAT)


def _add_stats(total: WalkStats, more: WalkStats) -> None:
    for name, value in vars(more).items():
        setattr(total, name, getattr(total, name) + value)
