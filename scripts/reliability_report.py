"""Run the tap through every fault, bad input and interruption on the fake API; print the table.

Usage, from the repository root: ``python scripts/reliability_report.py [--tables messages]
[--write-readme]`` (about three minutes for both tables; ``--write-readme`` replaces the README's
generated block with what it printed).

Each row counts the contacts (or messages) the fake account held ("in"), the distinct ones the tap
emitted across the run and any rerun ("out"), those it could not emit and reported ("reported": a
record without an id cannot be keyed) and those lost without a word ("lost": the goal is 0).
The contacts rows' requests are those to ``/v2/contacts/list`` (the tap syncs every stream).
For interruptions, only records before the last STATE of the interrupted run count as out, as if
the target had dropped everything after its last commit. The messages rows run the tap as users
do, every stream selected, against an account with no contacts; their requests are those to
``/v1/messages/all``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tap_heymarket.tap import DEFAULT_MAX_REQUESTS_PER_MINUTE
from testbed.fake_heymarket import FAULT_KINDS, FakeHeymarket
from testbed.runs import (
    TapRun,
    interrupt_tap,
    parse_messages,
    run_tap,
    send,
    tap_command,
    tap_config,
    write_json,
)

CONTACTS = 2000
PAGE_SIZE = 50
_RETRIED_FAULTS = sorted(FAULT_KINDS - {"401", "403", "429"})
MESSAGES = 2000
CONTACTS_PATH = "/v2/contacts/list"
MESSAGES_PATH = "/v1/messages/all"
README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK_START, BLOCK_END = "<!-- reliability:start -->", "<!-- reliability:end -->"


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    contacts_in: int
    contacts_out: int
    reported: int
    requests: int
    outcome: str
    #: The run is meant to stop (refused credentials): nothing is synced, nothing bookmarked.
    refused: bool = False

    @property
    def lost(self) -> str:
        """Contacts neither emitted nor reported."""
        if self.refused:
            return "n/a"
        return str(self.contacts_in - self.contacts_out - self.reported)


def _ids(fake: FakeHeymarket) -> set[int]:
    return {c["id"] for c in fake.contacts() if isinstance(c.get("id"), int)}


def _outcome(run: TapRun) -> str:
    return "completed" if run.returncode == 0 else f"failed (exit {run.returncode})"


def sync(
    name: str,
    setup: Callable[[FakeHeymarket], None],
    contacts: int = CONTACTS,
    **settings: object,
) -> Row:
    """One uninterrupted sync of a fake prepared by ``setup``."""
    with FakeHeymarket(contacts=contacts, seed=7) as fake:
        setup(fake)
        before = _ids(fake)
        run = run_tap(tap_config(fake, **{"page_size": PAGE_SIZE, **settings}))
        rate_limited = fake.rate_limited
        requests = _contact_requests(fake)
        in_flight = fake.max_in_flight
    outcome = _outcome(run)
    if rate_limited:
        outcome += f", {rate_limited} x 429"
    if in_flight > 1:
        outcome += f", up to {in_flight} requests in flight"
    return Row(name, len(before), len(before & run.ids), 0, requests, outcome)


def interrupted(
    name: str, interrupt: Callable[[FakeHeymarket], Callable], at: int, seed: int = 7
) -> Row:
    """A sync interrupted after ``at`` records, then rerun from its last STATE."""
    with FakeHeymarket(contacts=CONTACTS, seed=seed) as fake:
        config = tap_config(fake, page_size=PAGE_SIZE, max_retries=2)
        first, seconds = interrupt_tap(config, at, interrupt(fake))
        fake.configure(fail_rate=0.0)
        second = run_tap(config, state=first.states[-1])
        committed = {record["id"] for record in first.records_before_last_state()}
        everything = _ids(fake)
        requests = _contact_requests(fake)
    reread = len(committed & second.ids)
    outcome = (
        f"run 1 exit {first.returncode} after {seconds:.1f} s; rerun {_outcome(second)}, "
        f"{reread} re-read"
    )
    out = len(everything & (committed | second.ids))
    return Row(name, len(everything), out, 0, requests, outcome)


def misbehaving(
    name: str,
    setup: Callable[[FakeHeymarket], None],
    behave: Callable[[FakeHeymarket], None] | None = None,
    **settings: object,
) -> Row:
    """A sync against a fake that misbehaves; if it fails, a rerun once Heymarket ``behave``s.

    "Out" counts what the first run committed (records before its last STATE) and the rerun
    emitted: a bookmark past a contact not yet synced would show as lost.
    """
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake:
        setup(fake)
        before = _ids(fake)
        config = tap_config(fake, **{"page_size": PAGE_SIZE, **settings})
        first = run_tap(config)
        outcome = _outcome(first)
        out = first.ids
        if first.returncode != 0 and behave is not None:
            said = next(line for line in first.stderr.splitlines() if "Sync failed" in line)
            behave(fake)
            rerun = run_tap(config, state=first.states[-1] if first.states else None)
            out = {record["id"] for record in first.records_before_last_state()} | rerun.ids
            outcome += f" saying “{said.split('Sync failed: ')[1][:90]}…”; rerun {_outcome(rerun)}"
        elif "dated in the future" in first.stderr:
            outcome += ", bookmark stops at the sync's start, WARNING names them"
        elif "at most" in first.stderr:
            outcome += ", WARNING names the cap"
        requests = _contact_requests(fake)
    return Row(name, len(before), len(before & out), 0, requests, outcome)


def _tie_of(size: int) -> Callable[[FakeHeymarket], None]:
    """Put ``size`` contacts, a third of them with short ids, on one ``updated``."""

    def setup(fake: FakeHeymarket) -> None:
        contacts = fake.contacts()
        tie = contacts[len(contacts) // 2]["updated"]
        short = list(range(1, size // 3 + 1))
        long = list(range(90_000_001, 90_000_001 + size - len(short)))
        for cid in short + long:
            fake.add_raw({**contacts[0], "id": cid, "updated": tie})

    return setup


def _future_dated(fake: FakeHeymarket) -> None:
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)
    for cid, updated in ((1, "9999-12-31T23:59:59Z"), (2, soon.strftime("%Y-%m-%dT%H:%M:%SZ"))):
        fake.add_raw({**fake.contacts()[0], "id": cid, "updated": updated})


def poison_values() -> Row:
    """Values that once stopped every run: out of range in UTC, beyond 64 bits, not Unicode."""
    odd = [
        {"id": 921, "updated": "9999-12-31T23:59:59-01:00"},
        {"id": 922, "updated": "2024-01-01T00:00:02Z", "created": "0001-01-01T00:30:00+01:00"},
        {
            "id": 923,
            "updated": "2024-01-01T00:00:03Z",
            "note": [{"date": "9999-12-31T23:30:00-01:00"}],
        },
        {"id": 924, "updated": "2024-01-01T00:00:04Z", "creator_id": 2**63, "rev": -(2**64)},
        {"id": 2**63, "updated": "2024-01-01T00:00:05Z"},
    ]
    not_unicode = {
        925: '{"id":925,"updated":"2024-01-01T00:00:06Z","first":"Ann\ud800e"}',
        926: '{"id":926,"updated":"2024-01-01T00:00:07Z","last":"Lee\\ud800"}',
    }
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake:
        for record in odd:
            fake.add_raw(record)
        for contact_id, text in not_unicode.items():
            fake.add_raw_json(
                text, json.loads(text.encode("utf-8", "surrogatepass"))["updated"], contact_id
            )
        run = run_tap(tap_config(fake, page_size=PAGE_SIZE))
        requests = _contact_requests(fake)
    contacts_in = CONTACTS + len(odd) + len(not_unicode)
    emitted = len({record["id"] for record in run.records})
    reported = 1 if "1 contacts had no usable id" in run.stderr else 0
    warned = sum("replaced by" in line for line in run.stderr.splitlines())
    return Row(
        "Poison values: dates out of range in UTC, integers beyond 64 bits, text not Unicode",
        contacts_in,
        emitted,
        reported,
        requests,
        f"{_outcome(run)}, {warned} values replaced, a WARNING each",
    )


def refused_before_any_request(name: str, state: dict | None = None, **settings: object) -> Row:
    """A run whose settings or state cannot be used: one line, no request, nothing bookmarked."""
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake:
        run = run_tap(tap_config(fake, **{"page_size": PAGE_SIZE, **settings}), state=state)
        requests = _contact_requests(fake)
    said = [line.split("| ")[-1] for line in run.stderr.splitlines() if "ERROR" in line]
    outcome = f"{_outcome(run)} before any request: “{said[0][:80]}”" if said else _outcome(run)
    return Row(name, CONTACTS, len(run.ids), 0, requests, outcome, refused=True)


def _state(bookmark: str) -> dict:
    return {
        "bookmarks": {"contacts": {"replication_key": "updated", "replication_key_value": bookmark}}
    }


def catalog_and_flattening() -> list[Row]:
    """A catalog without ``custom`` drops it; flattening keeps every custom value as JSON."""
    rows = []
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake, tempfile.TemporaryDirectory() as tmp:
        config = tap_config(fake, page_size=PAGE_SIZE)
        catalog = json.loads(run_tap(config, "--discover").stdout)
        del catalog["streams"][0]["schema"]["properties"]["custom"]
        path = Path(tmp, "catalog.json")
        path.write_text(json.dumps(catalog))
        narrow = run_tap(config, "--catalog", str(path))
        customs = {c["id"]: c.get("custom") for c in fake.contacts() if c.get("custom")}
        flat = run_tap({**config, "flattening_enabled": True, "flattening_max_depth": 3})
        requests = _contact_requests(fake)
    leaks = sum("custom" in record for record in narrow.records)
    rows.append(
        Row(
            "Catalog with `custom` left out of its schema",
            CONTACTS,
            len(narrow.ids),
            0,
            requests // 2,
            f"{_outcome(narrow)}, {leaks} records with `custom`",
        )
    )
    kept = sum(
        json.loads(record.get("custom") or "null") == customs.get(record["id"])
        for record in flat.records
        if record["id"] in customs
    )
    declared = set(next(m for m in flat.messages if m["type"] == "SCHEMA")["schema"]["properties"])
    undeclared = {key for record in flat.records for key in record} - declared
    rows.append(
        Row(
            "`flattening_enabled` (depth 3)",
            CONTACTS,
            len(flat.ids),
            0,
            requests // 2,
            f"{_outcome(flat)}, custom fields of {kept} of {len(customs)} contacts kept as declared "
            f"JSON, {len(undeclared)} undeclared keys",
        )
    )
    return rows


def target_stops_reading(at: int) -> Row:
    """The target dies after ``at`` records: the tap says so and stops; the rerun resumes."""
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake, tempfile.TemporaryDirectory() as tmp:
        config = tap_config(fake, page_size=PAGE_SIZE)
        argv = [*tap_command(), "--config", str(write_json(Path(tmp), "config.json", config))]
        with Path(tmp, "stderr.txt").open("w+") as errors:
            tap = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors)
            lines = []
            while sum(line.startswith(b'{"type":"RECORD"') for line in lines) < at:
                lines.append(tap.stdout.readline())  # type: ignore[union-attr]
            tap.stdout.close()  # type: ignore[union-attr]
            returncode = tap.wait(60)
            errors.seek(0)
            said = "stopped reading" in errors.read()
        first = parse_messages(b"".join(lines).decode())
        states = [m["value"] for m in first if m["type"] == "STATE"]
        last = max((i for i, m in enumerate(first) if m["type"] == "STATE"), default=-1)
        committed = {m["record"]["id"] for m in first[:last] if m["type"] == "RECORD"}
        rerun = run_tap(config, state=states[-1] if states else None)
        everything = _ids(fake)
        requests = _contact_requests(fake)
    outcome = (
        f"run 1 exit {returncode}{', one line: the target stopped reading' if said else ''}; "
        f"rerun {_outcome(rerun)}"
    )
    return Row(
        f"Target stops reading at {at} records (broken pipe), rerun",
        len(everything),
        len(everything & (committed | rerun.ids)),
        0,
        requests,
        outcome,
    )


def bad_data() -> Row:
    """Odd contacts mixed into a normal account (the same kinds the bad-data tests use)."""
    odd = [
        {"id": "901", "updated": "2024-01-01T00:00:01Z", "shared": 1, "is_opted_out": 0},
        {"id": 902, "updated": "2024-01-01T00:00:02.123456789+02:00", "rev": "7"},
        {"id": 903, "updated": "2024-01-01T00:00:03Z", "created": "0001-01-01T00:00:00Z"},
        {"id": 904, "updated": "2024-01-01T00:00:04Z", "first": "Zoë 🦄\u2028\x01\x00"},
        {"id": 905, "updated": "2024-01-01T00:00:05Z", "note": [{"text": "x" * 1_000_000}]},
        {"id": 906, "updated": "2024-01-01T00:00:06Z", "new_field": 1, "custom": [1]},
        {"id": 907},
        {"id": 908, "updated": None},
        {"id": 909, "updated": "last tuesday"},
        {"first": "no id", "updated": "2024-01-01T00:00:10Z"},
    ]
    with FakeHeymarket(contacts=CONTACTS, seed=7) as fake:
        for record in odd:
            fake.add_raw(record)
        run = run_tap(tap_config(fake, page_size=PAGE_SIZE))
        requests = _contact_requests(fake)
    contacts_in = CONTACTS + len(odd)
    emitted = len({record["id"] for record in run.records})
    reported = 1 if "1 contacts had no usable id" in run.stderr else 0
    return Row("Bad data: 10 odd contacts", contacts_in, emitted, reported, requests, _outcome(run))


# ---- messages


def _message_ids(fake: FakeHeymarket) -> set[int]:
    return {m["id"] for m in fake.all_messages() if isinstance(m.get("id"), int)}


def _contact_requests(fake: FakeHeymarket) -> int:
    return sum(entry["path"] == CONTACTS_PATH for entry in fake.requests)


def _message_requests(fake: FakeHeymarket) -> int:
    return sum(entry["path"] == MESSAGES_PATH for entry in fake.requests)


def _error_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if "ERROR" in line or "Sync failed" in line]


def _said(run: TapRun) -> str:
    """The run's error line(s), as the table quotes them: how many, and the first, shortened."""
    lines = _error_lines(run)
    if not lines:
        return "no error line"
    first = lines[0].split("Sync failed: ")[-1].split("| ")[-1]
    count = "one line" if len(lines) == 1 else f"{len(lines)} lines"
    return f"{count}: “{first[:200]}{'…' if len(first) > 200 else ''}”"


def _stream_ids(run: TapRun, stream: str) -> set[object]:
    """The distinct ids of one stream's records in ``run``."""
    return {record.get("id") for record in run.stream_records(stream)}


def messages_sync(
    name: str,
    setup: Callable[[FakeHeymarket], object] = lambda fake: None,
    *,
    behave: Callable[[FakeHeymarket], object] | None = None,
    messages: int = MESSAGES,
    broadcasts: int = 0,
    broadcast_size: int = 0,
    seed: int = 7,
    **settings: object,
) -> Row:
    """A messages sync; if it fails, a rerun from its last STATE once Heymarket ``behave``s.

    "Out" counts what the first run committed (records before its last STATE) and what the
    rerun emitted: a bookmark or walk boundary past an unsynced message would show as lost.
    """
    with FakeHeymarket(
        messages=messages, broadcasts=broadcasts, broadcast_size=broadcast_size, seed=seed
    ) as fake:
        setup(fake)
        config = tap_config(fake, **{"page_size": PAGE_SIZE, **settings})
        first = run_tap(config)
        outcome = _outcome(first)
        out = _stream_ids(first, "messages")
        if first.returncode != 0:
            outcome += f", {_said(first)}"
            if behave is not None:
                behave(fake)
                rerun = run_tap(config, state=first.states[-1] if first.states else None)
                out = {
                    record["id"] for record in first.records_before_last_state("messages")
                } | _stream_ids(rerun, "messages")
                outcome += f"; rerun {_outcome(rerun)}"
        everything = _message_ids(fake)
        requests = _message_requests(fake)
        rate_limited, in_flight = fake.rate_limited, fake.max_in_flight
    if rate_limited:
        outcome += f", {rate_limited} x 429"
    if in_flight > 1:
        outcome += f", up to {in_flight} requests in flight"
    return Row(name, len(everything), len(everything & out), 0, requests, outcome)


def messages_churn(name: str, **knobs: object) -> Row:
    """Messages created and changed during a sync (``knobs``), then a second, incremental run.

    Besides the ids, the row checks statuses: the account's messages are dated over the 36 hours
    before the fake's data ends (an hour before today began, UTC; the fake needs a minute per
    message) and the look-back is 72 hours, so every message changed during the first run is
    within the second run's look-back and must end with its last status (the last record emitted
    for it, across both runs).
    """
    today = datetime.datetime.now(datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    start = (today - datetime.timedelta(hours=37)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with FakeHeymarket(
        messages=MESSAGES, broadcasts=2, broadcast_size=120, seed=9, start=start
    ) as fake:
        before = {m["id"]: m["updated"] for m in fake.all_messages()}
        fake.configure(**knobs)
        config = tap_config(
            fake, page_size=PAGE_SIZE, backoff_factor=0.1, messages_lookback_hours=72
        )
        first = run_tap(config)
        fake.configure(message_creates_per_request=0, message_changes_per_request=0, fail_rate=0.0)
        served = {m["id"]: m for m in fake.all_messages()}
        second = run_tap(config, state=first.states[-1])
        requests = _message_requests(fake)
        rate_limited = fake.rate_limited
    last = {}
    for record in first.stream_records("messages") + second.stream_records("messages"):
        last[record["id"]] = record
    created = served.keys() - before.keys()
    changed = [mid for mid, m in served.items() if mid in before and m["updated"] != before[mid]]
    stale = sum(last[mid]["status"] != m["status"] for mid, m in served.items() if mid in last)
    outcome = (
        f"run 1 {_outcome(first)}, {len(created)} messages created and {len(changed)} "
        f"statuses changed during it; rerun {_outcome(second)}; {stale} messages left with a "
        "status other than their last"
    )
    if rate_limited:
        outcome += f", {rate_limited} x 429"
    out = len(served.keys() & last.keys())
    return Row(name, len(served), out, 0, requests, outcome)


def messages_interrupted(
    name: str, interrupt: Callable[[FakeHeymarket], Callable], at: int, seed: int = 7
) -> Row:
    """A first sync interrupted after ``at`` messages, then rerun from its last STATE."""
    with FakeHeymarket(messages=4000, broadcasts=2, broadcast_size=300, seed=seed) as fake:
        config = tap_config(fake, page_size=PAGE_SIZE, max_retries=2)
        first, seconds = interrupt_tap(config, at, interrupt(fake))
        fake.configure(fail_rate=0.0)
        walks = first.states[-1]["bookmarks"].get("messages", {}).get("walks", [])
        walk = min(walks, key=lambda w: w["boundary"]) if walks else {}
        second = run_tap(config, state=first.states[-1])
        committed = {record["id"] for record in first.records_before_last_state("messages")}
        everything = _message_ids(fake)
        requests = _message_requests(fake)
    reread = len(committed & _stream_ids(second, "messages"))
    resumed = f"resumed from {walk['boundary'][:19]}Z" if walk else "no walk saved"
    outcome = (
        f"run 1 exit {first.returncode} after {seconds:.1f} s; rerun {resumed}, "
        f"{_outcome(second)}, {reread} re-read"
    )
    out = len(everything & (committed | _stream_ids(second, "messages")))
    return Row(name, len(everything), out, 0, requests, outcome)


def messages_scenarios() -> list[Row]:
    """Every messages scenario, in table order."""
    ties = {"broadcasts": 4, "broadcast_size": 300}
    rows = [messages_sync("Clean sync (2 broadcasts of 120, pages of 50)", broadcasts=2,
                          broadcast_size=120)]  # fmt: skip
    for retry_after in (None, "seconds", "http-date"):
        rows.append(
            messages_sync(
                f"429 rate limit, Retry-After: {retry_after or 'absent'}",
                lambda fake, ra=retry_after: fake.configure(
                    rate_limit=20, rate_window=2.0, retry_after=ra
                ),
                backoff_factor=0.1,
            )
        )
    rows.append(
        messages_sync(
            "Default pacing vs 500/min limit (time ÷ 10)",
            lambda fake: fake.configure(rate_limit=50, rate_window=6.0),
            max_requests_per_minute=DEFAULT_MAX_REQUESTS_PER_MINUTE,
            page_size=20,
            messages=1200,
        )
    )
    for kind in _RETRIED_FAULTS:
        rows.append(
            messages_sync(
                f"Fault `{kind}` x 3 in a row, then at random (5%)",
                lambda fake, k=kind: (
                    fake.queue_faults(k, k, k),
                    fake.configure(fail_rate=0.05, fail_kinds=[k], hang_seconds=2),
                ),
            )
        )
    rows.append(
        messages_churn(
            "Churn: 3 messages created and 3 statuses changed per request, then a second run",
            message_creates_per_request=3,
            message_changes_per_request=3,
        )
    )
    rows.append(
        messages_churn(
            "25% random faults + 10 req/s limit + churn, then a second run",
            fail_rate=0.25,
            fail_kinds=_RETRIED_FAULTS,
            rate_limit=10,
            rate_window=1.0,
            hang_seconds=2,
            message_creates_per_request=3,
            message_changes_per_request=3,
        )
    )
    for cursor in ("exclusive", "inclusive"):
        for precision in ("full", "second"):
            rows.append(
                messages_sync(
                    f"Cursor {cursor}, compared to the {'µs' if precision == 'full' else 'second'}"
                    ", 4 broadcasts of 300 on one date (6 pages' worth each)",
                    lambda fake, c=cursor, p=precision: fake.configure(
                        messages_cursor=c, date_precision=p
                    ),
                    **ties,
                )
            )
    for pages in ("from-0", "from-1"):
        rows.append(
            messages_sync(
                f"Answers capped at 30, `page` counted {pages.replace('-', ' ')}, "
                "2 broadcasts of 130",
                lambda fake, p=pages: fake.configure(max_limit=30, messages_page=p),
                broadcasts=2,
                broadcast_size=130,
            )
        )
    for order in ("id-desc", "id-text", "hash"):
        rows.append(
            messages_sync(
                f"Capped at 30, `page` from 0, broadcasts of 130 in `{order}` order, + churn",
                lambda fake, o=order: fake.configure(
                    max_limit=30, messages_page="from-0", tie_order=o, message_changes_per_request=2
                ),
                broadcasts=2,
                broadcast_size=130,
            )
        )
    rows.append(
        messages_sync(
            "Cursor read from `date` (the generated schema's reading), rerun once it reads "
            "`created_at`",
            lambda fake: fake.configure(messages_cursor_field="date"),
            behave=lambda fake: fake.configure(messages_cursor_field="created_at"),
        )
    )
    rows.append(
        messages_sync(
            "Answers capped at 30, `page` ignored, a broadcast of 130, rerun once uncapped",
            lambda fake: fake.configure(max_limit=30),
            behave=lambda fake: fake.configure(max_limit=None),
            broadcasts=1,
            broadcast_size=130,
        )
    )
    rows.append(
        messages_sync(
            "Answers capped at 30, `page` from 0, broadcasts of 130 in a new order on every "
            "request, rerun once stable",
            lambda fake: fake.configure(max_limit=30, messages_page="from-0", tie_order="unstable"),
            behave=lambda fake: fake.configure(tie_order="id"),
            broadcasts=2,
            broadcast_size=130,
        )
    )
    for seed in (1, 2, 3):
        at = random.Random(seed).randrange(100, 3900)
        rows.append(
            messages_interrupted(
                f"SIGKILL after {at} of 4,000 messages (2 broadcasts of 300), rerun",
                lambda _: send(signal.SIGKILL),
                at,
                seed,
            )
        )
    rows.append(
        messages_interrupted(
            "API down for good at 1,500 messages, rerun",
            lambda fake: lambda _: fake.configure(fail_rate=1.0, fail_kinds=["503"]),
            1500,
        )
    )
    rows.append(
        messages_interrupted(
            "SIGTERM at 1,500 messages, rerun", lambda _: send(signal.SIGTERM), 1500
        )
    )
    return rows


def scenarios() -> list[Row]:
    """Every scenario, in table order."""
    rows = [sync("Clean sync", lambda fake: None)]
    for retry_after in (None, "seconds", "http-date"):
        rows.append(
            sync(
                f"429 rate limit, Retry-After: {retry_after or 'absent'}",
                lambda fake, ra=retry_after: fake.configure(
                    rate_limit=20, rate_window=2.0, retry_after=ra
                ),
                backoff_factor=0.1,
            )
        )
    rows.append(
        sync(
            "Default pacing vs 500/min limit (time ÷ 10)",
            lambda fake: fake.configure(rate_limit=50, rate_window=6.0),
            max_requests_per_minute=DEFAULT_MAX_REQUESTS_PER_MINUTE,
            page_size=20,
            contacts=1200,
        )
    )
    for kind in _RETRIED_FAULTS:
        rows.append(
            sync(
                f"Fault `{kind}` x 3 in a row, then at random (5%)",
                lambda fake, k=kind: (
                    fake.queue_faults(k, k, k),
                    fake.configure(fail_rate=0.05, fail_kinds=[k], hang_seconds=2),
                ),
            )
        )
    rows.append(
        sync(
            "25% random faults + 10 req/s limit + churn",
            lambda fake: fake.configure(
                fail_rate=0.25,
                fail_kinds=_RETRIED_FAULTS,
                rate_limit=10,
                rate_window=1.0,
                hang_seconds=2,
                changes_per_request=3,
            ),
            backoff_factor=0.1,  # scaled to the 1 s window, as the default 1 s is to 60 s
        )
    )
    rows.append(
        sync(
            "Slow API (0.1 s) + 10% random faults + churn",
            lambda fake: fake.configure(
                latency=0.1,
                fail_rate=0.1,
                fail_kinds=_RETRIED_FAULTS,
                hang_seconds=2,
                changes_per_request=3,
            ),
        )
    )
    for kind in ("401", "403"):
        row = sync(f"Refused credentials ({kind})", lambda fake, k=kind: fake.queue_faults(k))
        row.refused = True
        row.outcome += ", no retry, no bookmark"
        rows.append(row)
    rows.append(bad_data())
    rows.append(poison_values())
    rows.append(
        refused_before_any_request(
            "`start_date` out of range once in UTC", start_date="9999-12-31T23:59:59-01:00"
        )
    )
    rows.append(refused_before_any_request("State bookmark `garbage`", _state("garbage")))
    rows.append(
        refused_before_any_request(
            "State bookmark in the future (2999)", _state("2999-01-01T00:00:00Z")
        )
    )
    rows.append(refused_before_any_request("Page size `fifty`", page_size="fifty"))
    rows.extend(catalog_and_flattening())
    rows.append(target_stops_reading(700))
    for order in ("id-desc", "id-text", "hash"):
        rows.append(
            misbehaving(
                f"Tie of 300 on one `updated`, served in `{order}` order, + churn",
                lambda fake, o=order: (
                    _tie_of(300)(fake),
                    fake.configure(tie_order=o, changes_per_request=2),
                ),
            )
        )
    rows.append(
        misbehaving(
            "Tie of 300, served in a new order on every request",
            lambda fake: (_tie_of(300)(fake), fake.configure(tie_order="unstable")),
            lambda fake: fake.configure(tie_order="id"),
        )
    )
    for order in ("newest-first", "shuffled"):
        rows.append(
            misbehaving(
                f"Answers `{order}` (`ascending` not honoured)",
                lambda fake, o=order: fake.configure(order=o),
                lambda fake: fake.configure(order="as-asked"),
            )
        )
    rows.append(misbehaving("2 contacts dated in the future (year 9999, now + 3 h)", _future_dated))
    rows.append(
        misbehaving(
            "Answers capped at 20 contacts whatever `limit` says",
            lambda fake: fake.configure(max_limit=20),
        )
    )
    rows.append(
        misbehaving(
            "Answers cut at 30,000 bytes, so their length varies (a cap by size)",
            lambda fake: fake.configure(max_bytes=30_000),
        )
    )
    for seed in (1, 2, 3):
        at = random.Random(seed).randrange(1, CONTACTS - 100)
        rows.append(
            interrupted(f"SIGKILL after {at} records, rerun", lambda _: send(signal.SIGKILL), at)
        )
    rows.append(
        interrupted(
            "API down for good at 900 records, rerun",
            lambda fake: lambda _: fake.configure(fail_rate=1.0, fail_kinds=["503"]),
            900,
        )
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        rows.append(interrupted(f"{sig.name} at 700 records, rerun", lambda _, s=sig: send(s), 700))
    return rows


def table(rows: list[Row], noun: str) -> list[str]:
    """The rows as a Markdown table."""
    lines = [
        f"| Scenario | {noun} in | Out | Reported | Lost | Requests | Outcome |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {row.scenario} | {row.contacts_in} | {row.contacts_out} | {row.reported} "
        f"| {row.lost} | {row.requests} | {row.outcome} |"
        for row in rows
    ]
    return lines


def write_readme(block: str) -> None:
    """Replace what stands between the README's reliability markers with ``block``."""
    text = README.read_text()
    head, rest = text.split(BLOCK_START + "\n", 1)
    _, tail = rest.split(BLOCK_END, 1)
    README.write_text(f"{head}{BLOCK_START}\n{block}\n{BLOCK_END}{tail}")


def main() -> None:
    """Print the tables as Markdown; with ``--write-readme``, put them in the README too."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", nargs="+", choices=("contacts", "messages"), default=["contacts", "messages"]
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="replace the README's reliability block (both tables only)",
    )
    args = parser.parse_args()
    if args.write_readme and len(args.tables) < 2:
        parser.error("--write-readme needs both tables")
    started = time.monotonic()
    lines: list[str] = []
    count = 0
    if "contacts" in args.tables:
        rows = scenarios()
        count += len(rows)
        lines += table(rows, "Contacts")
    if "messages" in args.tables:
        rows = messages_scenarios()
        count += len(rows)
        if lines:
            lines += ["", "Messages (`/v1/messages/all`, pages of 50):", ""]
        lines += table(rows, "Messages")
    lines += ["", f"{count} scenarios in {time.monotonic() - started:.0f} s."]
    block = "\n".join(lines)
    print(block)
    if args.write_readme:
        write_readme(block)


if __name__ == "__main__":
    main()
