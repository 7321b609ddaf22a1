"""Rows of objects deleted in Heymarket are marked deleted: ACTIVATE_VERSION after a full pass."""

from __future__ import annotations

from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config


def contacts_messages(run: TapRun) -> list[dict]:
    return [m for m in run.messages if m.get("stream") == "contacts"]


def test_a_deletion_sweep_resends_every_contact_then_activates_its_version_keeping_the_bookmark():
    with FakeHeymarket(contacts=300, seed=4) as fake:
        first = run_tap(tap_config(fake))
        assert first.returncode == 0, first.stderr
        # An incremental run cannot tell deletions: no ACTIVATE_VERSION for contacts.
        assert "ACTIVATE_VERSION" not in {m["type"] for m in contacts_messages(first)}
        bookmark = first.bookmark
        gone = [c["id"] for c in fake.contacts()[:20]]
        fake.delete_contacts(gone)

        sweep = run_tap(tap_config(fake, contacts_deletion_sweep=True), state=first.states[-1])

    assert sweep.returncode == 0, sweep.stderr
    messages = contacts_messages(sweep)
    kinds = [m["type"] for m in messages]
    # One ACTIVATE_VERSION, after every record: a sweep that failed midway marks nothing.
    assert kinds.count("ACTIVATE_VERSION") == 1
    assert "RECORD" not in kinds[kinds.index("ACTIVATE_VERSION") :]
    version = next(m["version"] for m in messages if m["type"] == "ACTIVATE_VERSION")
    records = [m for m in messages if m["type"] == "RECORD"]
    assert {m["record"]["id"] for m in records} == {c["id"] for c in fake.contacts()}
    assert {m.get("version") for m in records} == {version}
    # The incremental bookmark never went back while the sweep read older contacts.
    states = [s["bookmarks"]["contacts"]["replication_key_value"] for s in sweep.states]
    assert all(value >= bookmark for value in states)


def test_a_sweep_that_fails_midway_sends_no_activate_version():
    with FakeHeymarket(contacts=300, seed=4) as fake:
        fake.configure(fail_rate=0.3, fail_kinds=("500",))
        run = run_tap(tap_config(fake, contacts_deletion_sweep=True, max_retries=0, page_size=20))
    assert run.returncode == 1
    assert any(m["type"] == "RECORD" for m in contacts_messages(run)), "failed before a record"
    assert "ACTIVATE_VERSION" not in {m["type"] for m in contacts_messages(run)}
