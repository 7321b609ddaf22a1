"""The fake Heymarket's messages endpoints, over real HTTP, with every reading the docs allow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from testbed.fake_heymarket import (
    INBOXES_PATH,
    LIST_PATH,
    MESSAGES_COUNT_PATH,
    MESSAGES_PATH,
    FakeHeymarket,
    format_go_time,
    make_jwt,
    parse_time,
)
from testbed.fake_heymarket.generator import INBOXES, USERS
from testbed.fake_heymarket.messages import MessageQuery
from testbed.fake_heymarket.wire import parse_ns

SID, SKEY = "fake-secret-id", "fake-secret-key"
GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")
MESSAGE_FIELDS = {
    "id", "text", "media", "phone", "type", "status", "date", "updated", "user", "author",
    "broadcast_id", "flagged", "target", "local_id", "link_url", "custom", "super", "support",
    "conversation",
}  # fmt: skip
CONVERSATION_FIELDS = {
    "assigned", "blocked", "channel", "created", "creator", "email_noti", "id", "inbox",
    "last_inbound", "local_id", "members", "muted", "name", "noreply", "op", "read", "replied",
    "snooze_till", "status", "super", "support", "target", "type", "updated",
}  # fmt: skip


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(SID, SKEY)}"}


def post(fake: FakeHeymarket, body: object = None, path: str = MESSAGES_PATH):
    data = body if isinstance(body, (str, bytes)) else json.dumps({} if body is None else body)
    return requests.post(fake.url + path, data=data, headers=auth(), timeout=10)


def page(fake: FakeHeymarket, **body) -> list[dict]:
    r = post(fake, body)
    assert r.status_code == 200, r.text
    return r.json()


def ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages]


def by_date(messages: list[dict], key: str = "date") -> list[dict]:
    return sorted(messages, key=lambda m: (parse_time(m[key]), m["id"]))


@pytest.fixture
def fake():
    with FakeHeymarket(messages=400, seed=7, broadcasts=2, broadcast_size=20) as server:
        yield server


@pytest.fixture
def five():
    """Five messages a fraction of a second apart, ids 1-5, around 10:00:05."""
    with FakeHeymarket() as server:
        for mid, stamp in enumerate(["04Z", "05.25Z", "05.5Z", "05.75Z", "06Z"], start=1):
            server.create_message(id=mid, date=f"2024-05-01T10:00:{stamp}")
        yield server


@pytest.mark.parametrize(
    ("cursor", "precision", "expected"),
    [
        ("exclusive", "full", [2, 1]),
        ("inclusive", "full", [3, 2, 1]),
        ("exclusive", "second", [1]),
        ("inclusive", "second", [4, 3, 2, 1]),
    ],
)
def test_cursor_exclusive_inclusive_and_second_precision(
    five: FakeHeymarket, cursor: str, precision: str, expected: list[int]
) -> None:
    five.messages_cursor, five.date_precision = cursor, precision
    body = {"created_at": "2024-05-01T10:00:05.5Z"}
    assert ids(page(five, **body)) == expected
    assert post(five, body, MESSAGES_COUNT_PATH).json() == str(len(expected))
    # the same instant written with an offset and nine fraction digits
    assert ids(page(five, created_at="2024-05-01T12:00:05.500000000+02:00")) == expected


def test_cursor_field_created_at_or_date(five: FakeHeymarket) -> None:
    assert ids(page(five, created_at="2024-05-01T10:00:05Z")) == [1]
    assert ids(page(five, date="2024-05-01T10:00:05Z")) == [5, 4, 3, 2, 1]  # date is ignored
    assert post(five, {"date": 5}).status_code == 200

    five.messages_cursor_field = "date"
    assert ids(page(five, date="2024-05-01T10:00:05Z")) == [1]
    assert ids(page(five, created_at="2024-05-01T10:00:05Z")) == [5, 4, 3, 2, 1]
    r = post(five, {"date": 5})
    assert (r.status_code, r.json()["message"].split()[0]) == (400, "date")
    assert post(five, {"date": "2024-05-01T10:00:05Z"}, MESSAGES_COUNT_PATH).json() == "1"


def test_newest_first_by_default_and_ascending(fake: FakeHeymarket) -> None:
    everything = fake.all_messages()
    assert everything == by_date(everything)
    assert page(fake) == everything[::-1][:30]
    assert page(fake, ascending=True, limit=50) == everything[:50]
    assert page(fake, limit=1000) == everything[::-1]

    cursor = everything[200]["date"]
    kept = [m for m in everything if parse_time(m["date"]) < parse_time(cursor)]
    assert page(fake, created_at=cursor, limit=40) == kept[::-1][:40]
    assert page(fake, created_at=cursor, limit=40, ascending=True) == kept[:40]

    fake.order = "newest-first"
    assert page(fake, ascending=True, limit=50) == everything[::-1][:50]
    fake.order = "shuffled"
    shuffled = page(fake, limit=100)
    assert shuffled != everything[::-1][:100] and by_date(shuffled) == everything[-100:]


def test_a_walk_by_created_at_with_an_exclusive_cursor_misses_only_ties(
    fake: FakeHeymarket,
) -> None:
    everything = fake.all_messages()
    seen: list[dict] = []
    body: dict = {"limit": 25}
    while batch := page(fake, **body):
        seen += batch
        body["created_at"] = batch[-1]["date"]
    dates = [m["date"] for m in everything]
    missed = [m for m in everything if m not in seen]
    assert missed and all(dates.count(m["date"]) > 1 for m in missed)
    assert len({m["id"] for m in seen}) == len(seen)


def test_order_updated_at_sorts_by_updated_under_the_created_cursor(fake: FakeHeymarket) -> None:
    everything = fake.all_messages()
    cursor = everything[250]["date"]
    cursor_dt = parse_time(cursor)
    old = [m for m in everything[:240] if m["broadcast_id"] == 0]

    def at(minutes: int) -> str:
        return format_go_time(cursor_dt + timedelta(minutes=minutes))

    fake.change_message(old[0]["id"])  # updated now, long after the cursor
    fake.change_message(old[-1]["id"], updated=at(10))  # sent days ago, updated just after
    fake.create_message(id=1, date=at(-5), updated=at(5))  # sent and updated around it
    fake.change_message(everything[-1]["id"])  # dated after the cursor: never kept
    everything = fake.all_messages()

    kept = [m for m in everything if parse_time(m["date"]) < cursor_dt]
    expected = by_date(kept, "updated")[::-1]
    assert expected[0]["id"] == old[0]["id"]
    assert expected[0]["updated"] > expected[0]["date"]
    fake.messages_page = "from-0"
    body = {"created_at": cursor, "order": "updated_at", "limit": 100}
    walked = [m for p in range(4) for m in page(fake, page=p, **body)]
    assert walked == expected
    assert {old[0]["id"], old[-1]["id"], 1} <= set(ids(walked[:5]))
    assert (
        page(fake, order="updated_at", created_at=cursor, ascending=True, limit=300)
        == (expected[::-1])
    )
    newest = page(fake, order="updated_at", limit=3)
    assert newest == by_date(everything, "updated")[::-1][:3]


@pytest.mark.parametrize(
    ("knob", "pages"),
    [
        ("ignored", {0: 0, 1: 0, 2: 0}),
        ("from-0", {0: 0, 1: 1, 2: 2}),
        ("from-1", {0: 0, 1: 0, 2: 1}),
    ],
)
def test_page_knob(fake: FakeHeymarket, knob: str, pages: dict[int, int]) -> None:
    newest_first = fake.all_messages()[::-1]
    fake.messages_page = knob
    for asked, served in pages.items():
        assert page(fake, limit=10, page=asked) == newest_first[served * 10 : served * 10 + 10]


def test_max_limit_caps_answers_and_offsets(fake: FakeHeymarket) -> None:
    newest_first = fake.all_messages()[::-1]
    fake.max_limit = 7
    assert page(fake, limit=100) == newest_first[:7]
    fake.messages_page = "from-0"
    assert page(fake, limit=100, page=2) == newest_first[14:21]


def test_a_broadcast_larger_than_a_page_shares_one_timestamp(fake: FakeHeymarket) -> None:
    sent = fake.broadcast(75, at="2030-01-01T00:00:00.5Z")
    assert len({(m["date"], m["broadcast_id"]) for m in sent}) == 1
    assert sent[0]["broadcast_id"] and sent[0]["date"] == "2030-01-01T00:00:00.5Z"
    assert all(m["user"] and m["status"] in ("sent", "delivered", "failed") for m in sent)
    assert page(fake, limit=100)[:75] == sorted(sent, key=lambda m: -m["id"])

    # An exclusive cursor at the broadcast's date skips the 45 it did not show.
    first = page(fake, limit=30)
    assert {m["id"] for m in first} < {m["id"] for m in sent}
    assert not {m["id"] for m in page(fake, created_at=first[-1]["date"])} & {m["id"] for m in sent}
    fake.messages_cursor = "inclusive"
    again = page(fake, created_at=first[-1]["date"], limit=30)
    assert again == first  # an inclusive cursor shows the same page again, for ever

    fake.tie_order = "id-desc"  # the ties' order is a knob, applied across pages
    fake.messages_page = "from-0"
    assert ids(page(fake, limit=75)) == sorted(ids(sent))
    walked = [m for p in range(3) for m in page(fake, limit=30, page=p)]
    assert ids(walked)[:75] == sorted(ids(sent))


def test_generated_broadcasts_share_one_microsecond_or_one_second(fake: FakeHeymarket) -> None:
    groups: dict[int, list[dict]] = {}
    for m in fake.all_messages():
        if m["broadcast_id"]:
            groups.setdefault(m["broadcast_id"], []).append(m)
    assert sorted(len(g) for g in groups.values()) == [20, 20]
    exact, spread = sorted(groups.values(), key=lambda g: len({m["date"] for m in g}))
    assert len({m["date"] for m in exact}) == 1
    assert len({m["date"] for m in spread}) == 20
    assert len({m["date"].partition(".")[0] for m in spread}) == 1


def test_creates_and_changes_per_request(fake: FakeHeymarket) -> None:
    before = {m["id"]: m for m in fake.all_messages()}
    fake.message_creates_per_request, fake.message_changes_per_request = 2, 3
    started = time.time()
    page(fake, limit=5)
    fake.message_creates_per_request = fake.message_changes_per_request = 0
    after = {m["id"]: m for m in fake.all_messages()}

    created = [m for i, m in after.items() if i not in before]
    assert len(created) == 2 and all(m["id"] > max(before) for m in created)
    for m in created:
        assert started - 1 < parse_time(m["date"]).timestamp() < time.time() + 1
        assert m["updated"] == m["date"]
    changed = [m for i, m in after.items() if i in before and m != before[i]]
    assert len(changed) == 3
    for m in changed:
        old = before[m["id"]]
        assert m["date"] == old["date"] and m["flagged"] != old["flagged"]
        assert m["status"] != old["status"]
        assert started - 1 < parse_time(m["updated"]).timestamp() < time.time() + 1
    assert page(fake, limit=1000) == fake.all_messages()[::-1]


def test_count_answers_a_string(fake: FakeHeymarket) -> None:
    r = post(fake, {}, MESSAGES_COUNT_PATH)
    assert (r.status_code, r.content) == (200, b'"400"')
    cursor = fake.all_messages()[100]["date"]
    kept = sum(parse_time(m["date"]) < parse_time(cursor) for m in fake.all_messages())
    assert post(fake, {"created_at": cursor}, MESSAGES_COUNT_PATH).json() == str(kept)
    assert post(fake, {"limit": 0}, MESSAGES_COUNT_PATH).status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": None}, "limit"),
        ({"page": -1}, "page"),
        ({"page": 1.0}, "page"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2024-01-01"}, "created_at"),
        ({"created_at": 1704067200}, "created_at"),
        ({"created_at": None}, "created_at"),
        ({"order": "date"}, "order"),
        ({"order": ["created_at"]}, "order"),
        ({"ascending": "false"}, "ascending"),
        ([], "body"),
        ("{", "body"),
        ("", "body"),
    ],
)
def test_bad_bodies_are_400_bad_data(fake: FakeHeymarket, body: object, field: str) -> None:
    r = post(fake, body)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_data" and r.json()["message"].startswith(field)
    assert fake.requests[-1]["status"] == 400 and fake.requests[-1]["body"] == body
    assert post(fake, {"limit": 1000}).status_code == 200


def test_the_rate_limit_counts_every_endpoint_in_one_window(fake: FakeHeymarket) -> None:
    fake.rate_limit, fake.rate_window = 4, 30.0
    answers = [
        post(fake, {}, LIST_PATH).status_code,
        post(fake, {}).status_code,
        requests.get(fake.url + INBOXES_PATH, headers=auth(), timeout=5).status_code,
        post(fake, {}, MESSAGES_COUNT_PATH).status_code,
    ]
    assert answers == [200, 200, 200, 200]
    assert post(fake, {}).status_code == 429
    assert post(fake, {}, LIST_PATH).status_code == 429
    assert requests.get(fake.url + INBOXES_PATH, headers=auth(), timeout=5).status_code == 429
    assert fake.rate_limited == 3


def test_faults_and_the_request_log_apply_to_messages(fake: FakeHeymarket) -> None:
    fake.queue_faults("502")
    assert post(fake, {"limit": 3}).status_code == 502
    assert post(fake, {}, MESSAGES_COUNT_PATH).status_code == 200  # a lookup: no fault, no log
    assert post(fake, {"limit": 3}).status_code == 200
    assert [(e["body"], e["status"], e["fault"]) for e in fake.requests] == [
        ({"limit": 3}, 502, "502"),
        ({"limit": 3}, 200, None),
    ]
    r = requests.post(fake.url + MESSAGES_PATH, json={}, timeout=5)
    assert r.status_code == 401


def test_generated_messages_are_realistic_and_tie_together() -> None:
    one = FakeHeymarket(messages=3000, seed=11, broadcasts=2, broadcast_size=50).all_messages()
    again = FakeHeymarket(messages=3000, seed=11, broadcasts=2, broadcast_size=50)
    assert one == again.all_messages()
    assert one != FakeHeymarket(messages=3000, seed=12).all_messages()
    assert one[0]["date"] == "2024-01-01T00:00:00Z"
    assert parse_time(one[-1]["updated"]).timestamp() < time.time()

    inboxes = {i["id"] for i in INBOXES}
    users = dict(USERS)
    assert all(set(m) == MESSAGE_FIELDS for m in one)
    assert all(set(m["conversation"]) == CONVERSATION_FIELDS for m in one)
    assert {m["conversation"]["inbox"] for m in one} == inboxes
    for m in one:
        c = m["conversation"]
        assert all(users[member["id"]] == member["name"] for member in c["members"])
        assert m["user"] == 0 or m["user"] in {member["id"] for member in c["members"]}
        assert c["assigned"] == 0 or c["assigned"] in users
        assert GO_TIME.fullmatch(m["date"]) and GO_TIME.fullmatch(m["updated"])
        assert parse_time(m["updated"]) >= parse_time(m["date"])
        assert isinstance(m["custom"]["data"], list) and isinstance(m["custom"]["type"], str)
        assert (m["media"] != "") == (m["type"] == "mms")
        if c["channel"] == "sms":
            assert m["phone"] == c["target"].split(",")[0]
    inbound = [m for m in one if m["user"] == 0]
    assert 0.15 < len(inbound) / len(one) < 0.5
    assert {m["status"] for m in inbound} == {"received", "read"}
    assert {m["status"] for m in one} == {"sent", "delivered", "failed", "received", "read"}
    assert {m["type"] for m in one} == {"sms", "mms", "email", "comment"}
    assert {len(m["date"].partition(".")[2]) for m in one} >= {0, 4, 7}
    assert any("<b>" in m["text"] for m in one) and any(m["flagged"] for m in one)
    conversations = {m["conversation"]["id"] for m in one}
    assert 100 < len(conversations) < len(one)


def test_pages_are_byte_for_byte_what_go_would_write(fake: FakeHeymarket) -> None:
    def go_encode(value: object) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    fake.change_message(fake.all_messages()[3]["id"])
    raw = post(fake, {"limit": 1000}).content.decode()
    assert raw == go_encode(json.loads(raw))
    assert "\\u003cb\\u003e" in raw


def test_raw_messages_and_lookups() -> None:
    with FakeHeymarket(messages=10, seed=1) as fake:
        poison = '{"id":"x","date":"not a date","text":"\\ud800","user":null}'
        fake.add_raw_message_json(poison)
        fake.add_raw_message_json('{"id":9,"date":"2023-06-01T00:00:00.5Z","updated":7}')
        fake.messages_page = "from-0"
        r = post(fake, {"ascending": True, "limit": 2})
        second = b'{"id":9,"date":"2023-06-01T00:00:00.5Z","updated":7}'
        assert r.content == b"[" + poison.encode() + b"," + second + b"]"
        assert page(fake, order="updated_at", ascending=True, limit=1)[0]["id"] == "x"
        assert fake.message_count() == 12 and len(fake.all_messages()) == 12
        assert fake.message(9)["updated"] == 7
        with pytest.raises(KeyError):
            fake.message(12345)
        with pytest.raises(KeyError):
            fake.change_message(12345)
        known = [m["id"] for m in fake.all_messages() if isinstance(m["id"], int)]
        made = fake.create_message(text="hello", flagged=True)
        assert fake.message(made["id"]) == made and made["text"] == "hello"
        assert made["id"] > max(known) and made["flagged"] is True
        with pytest.raises(ValueError, match="exists already"):
            fake.create_message(id=made["id"])
        changed = fake.change_message(made["id"], status="failed")
        assert changed["status"] == "failed" and changed["date"] == made["date"]
        assert parse_time(changed["updated"]) > parse_time(made["updated"])


def test_admin_endpoints_for_messages(fake: FakeHeymarket) -> None:
    base = fake.url + "/_admin"
    assert requests.get(base + "/stats", timeout=5).json()["messages"] == 400
    made = requests.post(base + "/messages/create", json={"text": "hi"}, timeout=5).json()
    sent = requests.post(base + "/messages/broadcast", json={"size": 3}, timeout=5).json()
    changed = requests.post(
        base + "/messages/change", json={"id": made["id"], "fields": {"flagged": True}}, timeout=5
    ).json()
    assert changed["flagged"] is True and len({m["date"] for m in sent}) == 1
    raw = requests.post(base + "/messages/raw", json={"text": '{"id":1}'}, timeout=5)
    assert raw.json() == {"messages": 405}
    assert requests.get(base + "/messages", timeout=5).json() == fake.all_messages()
    assert requests.post(base + "/messages/change", json={"id": 999}, timeout=5).status_code == 400
    assert requests.post(base + "/messages/raw", json={"text": 1}, timeout=5).status_code == 400
    config = requests.post(base + "/config", json={"messages_page": "from-1"}, timeout=5).json()
    assert config["messages_page"] == "from-1" and fake.messages_page == "from-1"
    with pytest.raises(ValueError):
        fake.messages_cursor = "open"
    with pytest.raises(ValueError):
        fake.message_creates_per_request = -1


def test_200k_messages_page_in_well_under_a_millisecond_or_two() -> None:
    started = time.monotonic()
    fake = FakeHeymarket(messages=200_000, seed=1, broadcasts=10, broadcast_size=300)
    assert time.monotonic() - started < 20
    store, knobs = fake.message_store, fake.knobs.changed(messages_page="from-0")
    oldest = json.loads(store.page(MessageQuery(50, 0, None, "created_at", True), knobs))
    for m in oldest:
        fake.change_message(m["id"])
    middle = json.loads(store.page(MessageQuery(50, 2000, None, "created_at", True), knobs))
    cursor = parse_ns(middle[0]["date"])
    queries = [
        MessageQuery(100, 0, None, "created_at", False),
        MessageQuery(100, 0, cursor, "created_at", False),
        MessageQuery(100, 0, cursor, "updated_at", False),
        MessageQuery(100, 0, cursor, "created_at", True),
    ]
    for query in queries:
        started = time.perf_counter()
        for _ in range(50):
            store.page(query, knobs.changed(tie_order="hash"))
        assert (time.perf_counter() - started) / 50 < 0.002, query


def test_cli_serves_messages() -> None:
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "testbed.fake_heymarket", "--port", "0", "--contacts", "0"]
    cmd += ["--messages", "60", "--broadcasts", "1", "--broadcast-size", "10"]
    cmd += ["--messages-cursor", "inclusive", "--messages-page", "from-1"]
    env = {**os.environ, "PYTHONPATH": "."}
    with subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
            assert "60 messages" in line
            r = requests.post(url + MESSAGES_PATH, json={"limit": 100}, headers=auth(), timeout=5)
            assert len(r.json()) == 60
            assert sorted(len(m) for m in _by_broadcast(r.json()).values()) == [10]
            config = requests.post(url + "/_admin/config", json={}, timeout=5).json()
            assert (config["messages_cursor"], config["messages_page"]) == ("inclusive", "from-1")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == 0


def _by_broadcast(messages: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for m in messages:
        if m["broadcast_id"]:
            out.setdefault(m["broadcast_id"], []).append(m)
    return out
