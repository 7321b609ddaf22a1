"""Run the tap through every fault, bad input and interruption on the fake API; print the table.

Usage, from the repository root: ``python scripts/reliability_report.py`` (about a minute).

Each row counts the contacts the fake account held ("in"), the distinct contacts the tap emitted
across the run and any rerun ("out"), those it could not emit and reported ("reported": a
contact without an id cannot be keyed) and those lost without a word ("lost": the goal is 0).
For interruptions, only records before the last STATE of the interrupted run count as out, as if
the target had dropped everything after its last commit.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tap_heymarket.tap import DEFAULT_MAX_REQUESTS_PER_MINUTE
from testbed.fake_heymarket import FAULT_KINDS, FakeHeymarket
from testbed.runs import TapRun, interrupt_tap, run_tap, send, tap_config

CONTACTS = 2000
PAGE_SIZE = 50
_RETRIED_FAULTS = sorted(FAULT_KINDS - {"401", "403", "429"})


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
        requests = len(fake.requests)
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
        requests = len(fake.requests)
    reread = len(committed & second.ids)
    outcome = (
        f"run 1 exit {first.returncode} after {seconds:.1f} s; rerun {_outcome(second)}, "
        f"{reread} re-read"
    )
    out = len(everything & (committed | second.ids))
    return Row(name, len(everything), out, 0, requests, outcome)


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
        requests = len(fake.requests)
    contacts_in = CONTACTS + len(odd)
    emitted = len({record["id"] for record in run.records})
    reported = 1 if "1 contacts had no usable id" in run.stderr else 0
    return Row("Bad data: 10 odd contacts", contacts_in, emitted, reported, requests, _outcome(run))


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


def main() -> None:
    """Print the table as Markdown."""
    started = time.monotonic()
    rows = scenarios()
    print("| Scenario | Contacts in | Out | Reported | Lost | Requests | Outcome |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row.scenario} | {row.contacts_in} | {row.contacts_out} | {row.reported} "
            f"| {row.lost} | {row.requests} | {row.outcome} |"
        )
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
