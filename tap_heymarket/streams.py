"""Heymarket streams."""

from __future__ import annotations

import datetime
import math
import time
import typing as t
from functools import cached_property

import msgspec
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_heymarket.client import TEAM_PATH, HeymarketAPIError, HeymarketStream
from tap_heymarket.fetching import Answer, MovingAverage, Page, PageSource
from tap_heymarket.fields import (
    CONTACTS,
    CONVERSATIONS,
    CUSTOM_FIELDS,
    INBOXES,
    MESSAGES,
    SURVEYS,
    TAGS,
    TEAM_MEMBERS,
    TEMPLATES,
)
from tap_heymarket.lanes import LanedPaginator
from tap_heymarket.normalize import (
    NormalizeReport,
    decode_contacts,
    normalize_record,
    normalize_timestamp,
)
from tap_heymarket.pagination import ContactsPaginator, PageRequest, PagingError
from tap_heymarket.sdk_internals import FullPass, SortedStreamFastPath, fixed_width, utc_now
from tap_heymarket.stream_bases import Findings, ListStream, WalkedStream, log_findings

if t.TYPE_CHECKING:
    from tap_heymarket.walking import WalkRequest

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Custom fields' keys with a column of their own; ``details`` holds the others.
_CUSTOM_FIELD_COLUMNS = frozenset(("id", "team_id", "name"))

#: Heymarket's count of contacts, asked on a first sync for the progress lines' share done.
COUNT_CONTACTS_PATH = "/v1/contacts/count"

#: Pages between STATE messages: what an interrupted run reads again, at most.
STATE_EVERY_PAGES = 5

#: How far ahead of this machine's clock Heymarket's may run before a contact counts as
#: dated in the future.
_CLOCK_SKEW = datetime.timedelta(minutes=1)


def _noting_changed(
    contacts: t.Iterable[dict[str, t.Any]], since: str, changed: set[tuple[t.Any, t.Any]]
) -> t.Iterator[dict[str, t.Any]]:
    """``contacts`` as they come, noting ``(id, updated)`` of those updated from ``since`` on."""
    for contact in contacts:
        updated = contact.get("updated")
        if updated is not None and updated >= since:
            changed.add((contact.get("id"), updated))
        yield contact


class ContactsStream(SortedStreamFastPath, FullPass, HeymarketStream):
    """Contacts, incrementally by ``updated``, from ``POST /v2/contacts/list``.

    With ``contacts_deletion_sweep``, a run reads every contact whatever the bookmark (which
    stays until passed) and then has the target mark the rows of contacts it did not read as
    deleted: Heymarket's list never shows deleted contacts.
    """

    name = "contacts"
    path = "/v2/contacts/list"
    primary_keys = CONTACTS.key
    replication_key = "updated"
    is_sorted = True
    #: The normaliser already makes every value match the schema, once per field.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: Declared once in ``fields`` (with the key), where the decoder and normaliser read it too.
    schema = CONTACTS.json_schema()
    expected_answer = "a JSON array of contact objects"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._paginator: LanedPaginator | None = None

    def bookmark_may_move(self) -> bool:
        """Not before Heymarket has shown it sorts as asked (or the sync ended without it).

        Until an answer holds two different times, a server ignoring ``ascending`` would look
        the same as one honouring it, and a bookmark could pass every older contact.
        """
        paginator = self._paginator
        return paginator is None or paginator.order_shown or paginator.finished

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """A bookmark wins over ``start_date``: it only applies to a first sync."""
        return value

    def sync_start(self, context: Context | None, *, ignore_bookmark: bool = False) -> str | None:
        """Fixed-width timestamp to sync from: the bookmark, else ``start_date``, else None.

        A deletion sweep (``ignore_bookmark``) reads from ``start_date``: every contact the
        warehouse holds was updated since then.

        A bookmark that is not a date-time, or is in the future, ends the sync before any
        request: every rerun would fail on it the same way, or skip without a word every contact
        changed until then. An hour's grace allows for Heymarket's clock, which wrote it,
        running ahead of this machine's.
        """
        bookmark = None if ignore_bookmark else self.get_starting_replication_key_value(context)
        if not bookmark:
            start_date = self.config.get("start_date")
            return normalize_timestamp(start_date) if start_date else None
        try:
            start = normalize_timestamp(bookmark)
        except ValueError as exc:  # the normaliser's InvalidTimestampError, quoting the value
            problem = str(exc)
        else:
            latest = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            if start is None or start <= t.cast(str, normalize_timestamp(latest)):
                return start
            problem = f"{bookmark!r} is in the future"
        msg = f"state: the {self.name} bookmark {problem}; fix or clear the state"
        raise HeymarketAPIError(msg)

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Contacts in ascending ``updated`` order, each new contact once.

        When Heymarket answers in a way the paging cannot get through without risking a lost
        contact (see ``pagination``), the sync fails without a STATE past what was emitted;
        when it fails to answer, after a STATE for what was emitted (all of it in order).
        """
        sweep = bool(self.config.get("contacts_deletion_sweep"))
        since = self.sync_start(context, ignore_bookmark=sweep)
        if sweep:
            self.logger.info(
                "Deletion sweep: reading every contact; those not read are marked deleted"
            )
            self.begin_full_pass()
        paginator = LanedPaginator(
            page_size=self.config["page_size"], since=since, signpost=self.signpost
        )
        self._paginator = paginator
        self.bookmark_limit = paginator.next_run_reads_from
        # A STATE message every few pages: an interrupted run resumes from there. (Set here,
        # where the settings are surely checked: ``--discover`` builds streams without them.)
        self.STATE_MSG_FREQUENCY = self.config["page_size"] * STATE_EVERY_PAGES
        found = Findings()
        self.logger.info("Syncing contacts updated since %s", since or "the beginning")
        if since is None:
            self.progress.total = self.count(COUNT_CONTACTS_PATH, {})
            # The whole list: its count places lanes, and bounds windows named ahead.
            paginator.listed = self.progress.total
        # Made here, once: the fetching threads share them.
        _ = self.authenticator, self.pacer, self._idle_sessions, self.latency
        interval = 60.0 / self.config["max_requests_per_minute"]
        pages = PageSource(paginator, self._fetch, self.latency, interval)
        # A sweep notes the contacts it writes that changed during it (see ``_sweep_changed``).
        changed: set[tuple[t.Any, t.Any]] = set()
        try:
            for page in pages:
                if sweep:
                    page.fresh = _noting_changed(page.fresh, paginator.next_run_reads_from, changed)
                yield from self._emit(page, found)
        except PagingError as exc:
            # No STATE: the answers so far may not be what they seemed. A rerun starts from
            # the last STATE written, which the records before it fully back.
            raise HeymarketAPIError(str(exc)) from None
        except HeymarketAPIError:
            # Everything emitted so far is in order, so its bookmark is safe to keep: a rerun
            # then resumes here instead of up to a few pages back.
            self._write_state_message()
            raise
        if sweep:
            yield from self._sweep_changed(paginator.next_run_reads_from, changed, found)
        self._log_summary(paginator, found, pages.unused)

    def _sweep_changed(
        self, since: str, written: set[tuple[t.Any, t.Any]], found: Findings
    ) -> t.Iterator[dict[str, t.Any]]:
        """Contacts updated while the sweep read, read again; then the version is activated.

        A contact updated during the pass moves to the end of the list, which a lane (or a
        window in flight) may have read before it moved, and the pass may end among such
        contacts without reading them all: it leaves them to the next run. A sweep must write
        every live contact before the target marks the others deleted, so it reads them again,
        one request at a time: the end comes last, after every place a contact updated during
        this read left. If even then contacts keep changing at the end faster than they are
        read, the sweep marks nothing deleted this time. (What this read leaves is what changed
        from a second before it began: a contact the pass left and changed again since.)
        """
        # Contacts changed in the second or two before a read are left to the next run; those
        # the pass left (a bulk edit just before it, say) must not be left again: this read
        # starts in the second after the next, and reads them with every check.
        time.sleep(max(0.0, math.floor(time.time()) + 2 - time.time()))
        paginator = ContactsPaginator(
            page_size=self.config["page_size"], since=since, signpost=fixed_width(utc_now())
        )
        interval = 60.0 / self.config["max_requests_per_minute"]
        # A latency never measured: one request at a time.
        pages = PageSource(paginator, self._fetch, MovingAverage(), interval)
        again = 0
        try:
            for page in pages:
                # Those the pass wrote, unchanged since, are not written again.
                page.fresh = (
                    c for c in page.fresh if (c.get("id"), c.get("updated")) not in written
                )
                for contact in self._emit(page, found):
                    again += 1
                    yield contact
        except PagingError as exc:
            raise HeymarketAPIError(str(exc)) from None
        self.logger.info(
            "Deletion sweep: contacts changed while it read (from %s on) read again: %d "
            "written, %d requests",
            since,
            again,
            paginator.stats.requests,
        )
        if paginator.left_to_next_run:
            self.logger.warning(
                "Deletion sweep: contacts kept changing at the end of the list faster than they "
                "could be read (from %s on); no contact was marked deleted this time",
                since,
            )
            return
        self.end_full_pass()

    def _fetch(self, request: PageRequest) -> Answer:
        """One page of contacts, decoded, and what decoding it had to change."""
        report = NormalizeReport()
        page = self.post_json(request.body(), lambda content: decode_contacts(content, report))
        return page, report

    def _emit(self, page: Page, found: Findings) -> t.Iterator[dict[str, t.Any]]:
        """The page's new contacts, noting what is wrong with any of the page's contacts."""
        self.extracted_at = page.received_at
        found.report.merge(page.report)
        request = page.request
        # Where in Heymarket's answer (request and index) a contact without an id stood.
        found.unkeyed.extend(
            f"{request} #{index}"
            for index, contact in enumerate(page.records)
            if contact.get("id") is None
        )
        # Later than the page's arrival (and a minute's clock skew): dated in the future.
        now = fixed_width(page.received_at + _CLOCK_SKEW)
        written = 0
        for contact in page.fresh:
            if contact.get("id") is None:
                continue  # listed in ``unkeyed`` above
            if contact.get("updated") is None:
                contact["updated"] = None  # the SDK's bookmarking needs the key present
                found.undated.append(contact["id"])
            elif contact["updated"] > now:
                found.future += 1
                found.latest_future = contact
            written += 1
            yield contact
        self.progress.records_written(written)

    def _log_summary(self, paginator: LanedPaginator, found: Findings, unused: int) -> None:
        if found.latest_future is not None:
            self.logger.warning(
                "%d contacts were dated in the future (latest: contact %s, updated %s); they were "
                "synced, and the bookmark stays at the sync's start (%s) so that no edit made "
                "before them is skipped: every run reads them again until that date passes",
                found.future,
                found.latest_future["id"],
                found.latest_future["updated"],
                self.signpost,
            )
        stats = paginator.stats
        self.logger.info(
            "Contacts sync done in %.0f s: %d contacts, %d requests in %d lanes, %d contacts "
            "read, %d re-reads skipped, %d window slides, %d end-of-list probes, %d requests "
            "sent ahead and not needed, %d answers asked again alone",
            self.progress.elapsed,
            self.progress.records,
            stats.requests,
            paginator.lanes_started,
            stats.contacts_read,
            stats.reread,
            stats.slid_back,
            stats.probes,
            unused,
            stats.asked_again,
        )
        if paginator.capped_at is not None:
            self.logger.warning(
                "Heymarket answered with at most %d contacts when asked for %d: paged with %d "
                "(more requests against the rate limit; lower page_size to match)",
                paginator.capped_at,
                self.config["page_size"],
                paginator.capped_at,
            )
        if stats.deferred:
            self.logger.info(
                "%d contacts dated during the sync, or stale answers to requests sent together, "
                "were listed out of order; the next run reads them (the bookmark stops a second "
                "before the sync's start)",
                stats.deferred,
            )
        log_findings(self.logger, "contacts", "updated", found)


class MessagesStream(WalkedStream):
    """Messages, by creation time, from ``POST /v1/messages/all``, walked back (``walking``).

    A run walks from its start back to its bookmark less ``messages_lookback_hours``, so it
    syncs every message created since the last run and every status or flag change made within
    the look-back after a message's creation.
    """

    name = "messages"
    path = "/v1/messages/all"
    replication_key = "date"
    walk_key = "date"
    cursor_param = "created_at"
    fixed_body: t.ClassVar[dict[str, t.Any]] = {"order": "created_at", "ascending": False}
    count_path = "/v1/messages/all/count"
    records_lack_team_id = True
    oldest_first_body: t.ClassVar[dict[str, t.Any] | None] = {
        "order": "created_at",
        "ascending": True,
    }
    spec = MESSAGES

    def lookback(self) -> datetime.timedelta:
        """``messages_lookback_hours``: status and flag changes within it are synced."""
        return datetime.timedelta(hours=self.config["messages_lookback_hours"])

    def finish_record(self, record: dict[str, t.Any], context: Context | None) -> dict[str, t.Any]:
        """``conversation_id`` and ``inbox_id`` from the embedded conversation, as columns."""
        conversation = record.get("conversation")
        if isinstance(conversation, dict):
            for column, key in (("conversation_id", "id"), ("inbox_id", "inbox")):
                record[column] = _whole_number(conversation.get(key))
        return record


class TagsStream(WalkedStream):
    """Tags, from ``POST /v1/tags``, walked back by ``updated`` to the end every run."""

    name = "tags"
    path = "/v1/tags"
    replication_key = None
    spec = TAGS


class TemplatesStream(WalkedStream):
    """Templates, from ``POST /v1/templates``, walked back by ``updated`` to the end every run."""

    name = "templates"
    path = "/v1/templates"
    replication_key = None
    spec = TEMPLATES


class InboxesStream(ListStream):
    """Inboxes, from ``GET /v1/inboxes`` (the whole list, no paging)."""

    name = "inboxes"
    path = "/v1/inboxes"
    http_method = "GET"
    spec = INBOXES

    def finish_record(self, record: dict[str, t.Any], context: Context | None) -> dict[str, t.Any]:
        """``team_id`` is the inbox's own ``team`` (the account's when it has none)."""
        if not record.get("team_id"):
            record["team_id"] = record.get("team")
        return record


class TeamMembersStream(ListStream):
    """The team's members, from ``GET /v1/team`` (one team object holding them).

    The team object is the one every stream's ``team_id`` comes from: asked once per run.
    """

    name = "team_members"
    path = TEAM_PATH
    http_method = "GET"
    spec = TEAM_MEMBERS
    expected_answer = "a team object with its members"

    def fetch(self, body: dict[str, t.Any], found: Findings) -> list[dict[str, t.Any]]:
        """The ``members`` of the run's team object, each with the team's id."""
        team = self.team
        report = NormalizeReport()
        records = [
            normalize_record(TEAM_MEMBERS, {**member, "team_id": team.id}, report)
            for member in team.members
            if isinstance(member, dict)
        ]
        self.extracted_at = team.received_at
        found.report.merge(report)
        return records


class SurveysStream(ListStream):
    """Surveys, from ``POST /v1/surveys``, page by page (pages counted from 1)."""

    name = "surveys"
    path = "/v1/surveys"
    paged = True
    spec = SURVEYS


class CustomFieldsStream(ListStream):
    """The team's contact custom fields, from ``POST /v1/contact-fields``.

    The answer's shape is undocumented: ``id``, ``team_id`` and ``name`` (or ``title``) are
    typed, the rest is kept whole in ``details``.
    """

    name = "custom_fields"
    path = "/v1/contact-fields"
    spec = CUSTOM_FIELDS

    def decode(self, content: bytes, report: NormalizeReport) -> list[dict[str, t.Any]] | None:
        """Each field as ``{id, team_id, name, details}``."""
        try:
            fields = msgspec.json.decode(content)
        except msgspec.DecodeError:
            return None
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            return None
        return [
            normalize_record(
                CUSTOM_FIELDS,
                {
                    "id": raw.get("id"),
                    "team_id": raw.get("team_id"),
                    "name": raw.get("name", raw.get("title")),
                    "details": {k: v for k, v in raw.items() if k not in _CUSTOM_FIELD_COLUMNS},
                },
                report,
            )
            for raw in fields
        ]


class ConversationsStream(WalkedStream):
    """Conversations, by ``updated``, from ``POST /v1/conversations``, per inbox and status.

    Each partition (an inbox's open, or closed, conversations) is walked back to its own
    bookmark.

    Heymarket lists an inbox's conversations to one of its members: the stream asks as the
    first member ``GET /v1/inboxes`` lists. An inbox that member cannot see (403), or one
    removed since (404), is reported and skipped; the others go on.
    """

    name = "conversations"
    path = "/v1/conversations"
    replication_key = "updated"
    state_partitioning_keys: t.ClassVar[list[str]] = ["inbox_id", "closed"]
    spec = CONVERSATIONS
    records_lack_team_id = True

    @cached_property
    def _inbox_members(self) -> dict[int, int | None]:
        """Each inbox's id and the member to ask as (None for an inbox without members)."""
        inboxes = InboxesStream(tap=self._tap)
        members: dict[int, int | None] = {}
        for inbox in inboxes.fetch({}, Findings()):
            ids = [m for m in inbox.get("members") or [] if isinstance(m, int)]
            if isinstance(inbox.get("id"), int):
                members[inbox["id"]] = ids[0] if ids else None
        return members

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per inbox and open or closed conversations."""
        return [
            {"inbox_id": inbox, "closed": closed}
            for inbox in sorted(self._inbox_members)
            for closed in (False, True)
        ]

    def request_body(self, request: WalkRequest, context: Context | None) -> dict[str, t.Any]:
        """As the inbox's member, that inbox's open or closed conversations."""
        context = context or {}
        inbox = context["inbox_id"]
        body = super().request_body(request, context)
        body.update(
            id=self._inbox_members.get(inbox),
            filters={"inboxes": [inbox], "closed": context["closed"]},
        )
        return body

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The partition's conversations; an inbox Heymarket will not list is skipped."""
        inbox = (context or {}).get("inbox_id")
        if not isinstance(inbox, int) or self._inbox_members.get(inbox) is None:
            self.logger.warning(
                "Inbox %s has no members to list its conversations as: skipped", inbox
            )
            return
        try:
            yield from super().get_records(context)
        except HeymarketAPIError as exc:
            if exc.status not in (403, 404):
                raise
            self.logger.warning(
                "Conversations of inbox %s skipped: %s (the inbox was removed, or its member "
                "cannot see it)",
                inbox,
                exc,
            )


def _whole_number(value: object) -> int | None:
    """An id as an integer: ints (64-bit) and digit strings; anything else is None."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None
