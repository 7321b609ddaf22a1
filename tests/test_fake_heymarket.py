"""The fake Heymarket server, exercised over real HTTP the way the tap and the benchmarks use it."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import jwt
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from jwt.warnings import InsecureKeyLengthWarning

from testbed.fake_heymarket import (
    LIST_PATH,
    FakeHeymarket,
    Knobs,
    format_go_time,
    make_jwt,
    parse_time,
)
from testbed.fake_heymarket.__main__ import main
from testbed.fake_heymarket.api import ROUTES, Endpoint
from testbed.fake_heymarket.reply import Reply, json_reply

SID, SKEY = "fake-secret-id", "fake-secret-key"
V2_FIELDS = {
    "avatar", "created", "creator_id", "custom", "display_name", "email", "external_id",
    "external_ref", "first", "id", "inbox_id", "last", "note", "op", "parent_id", "phone", "rev",
    "shared", "team_id", "type", "updated", "assigned_user_id", "tags",
}  # fmt: skip
GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")


def pyjwt_token(iss: str = SID, key: str = f"{SID}||{SKEY}", iat: float | None = None) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        claims = {"iss": iss, "iat": int(time.time()) if iat is None else iat}
        return jwt.encode(claims, key, algorithm="HS256")


def auth(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or make_jwt(SID, SKEY)}"}


def post(fake: FakeHeymarket, body: object = None, headers: dict | None = None, timeout=10):
    headers = auth() if headers is None else headers
    data = body if isinstance(body, (str, bytes)) else json.dumps({} if body is None else body)
    return requests.post(fake.url + LIST_PATH, data=data, headers=headers, timeout=timeout)


def all_pages(fake: FakeHeymarket, limit: int = 100, **body) -> list[dict]:
    out, page = [], 0
    while True:
        r = post(fake, {"limit": limit, "page": page, **body})
        assert r.status_code == 200, r.text
        out += r.json()
        if len(r.json()) < limit:
            return out
        page += 1


@pytest.fixture
def fake():
    with FakeHeymarket(contacts=250, seed=7) as server:
        yield server


def test_jwt_and_api_key_auth(fake: FakeHeymarket) -> None:
    now = int(time.time())
    good = [pyjwt_token(), make_jwt(SID, SKEY), pyjwt_token(iat=now - 290)]
    for token in good:
        assert post(fake, headers=auth(token)).status_code == 200
    assert {e["auth"] for e in fake.requests} == {"jwt"}

    refused = {
        "expired": pyjwt_token(iat=now - 301),
        "future": pyjwt_token(iat=now + 60),
        "bad signature": pyjwt_token(key=f"{SID}||wrong-key"),
        "issuer": pyjwt_token(iss="someone-else"),  # signed with the right key
        "integer": pyjwt_token(iat=now + 0.5),
        "alg": jwt.encode({"iss": SID, "iat": now}, None, algorithm="none"),
        "malformed": "not-a-jwt",
    }
    for why, token in refused.items():
        r = post(fake, headers=auth(token))
        assert r.status_code == 401, why
        assert r.json()["error"] == "unauthorized"
        assert why in r.json()["message"], (why, r.json())
    for headers, why in [({}, "missing"), ({"Authorization": "Basic Zm9vOmJhcg=="}, "Bearer")]:
        r = post(fake, headers=headers)
        assert (r.status_code, why in r.json()["message"]) == (401, True)
    assert post(fake, headers=auth("legacy-key")).status_code == 401  # no api_key configured
    assert fake.requests[-1]["auth"] is None

    fake.api_key = "legacy-key"
    assert post(fake, headers=auth("legacy-key")).status_code == 200
    assert fake.requests[-1]["auth"] == "api_key"
    inboxes = requests.get(fake.url + "/v1/inboxes", headers=auth(), timeout=5)
    assert inboxes.status_code == 200 and inboxes.json()[0]["id"]
    assert requests.get(fake.url + "/v1/inboxes", timeout=5).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": None}, "limit"),
        ({"page": -1}, "page"),
        ({"page": "1"}, "page"),
        ({"page": False}, "page"),
        ({"date": "yesterday"}, "date"),
        ({"date": "2024-01-01"}, "date"),
        ({"date": "2024-01-01T00:00:00"}, "date"),
        ({"date": "2024-13-01T00:00:00Z"}, "date"),
        ({"date": 1704067200}, "date"),
        ({"ascending": "true"}, "ascending"),
        ({"ascending": 1}, "ascending"),
        ([1, 2], "body"),
        ("{not json", "body"),
        ("", "body"),
    ],
)
def test_bad_body_is_400_bad_data_naming_the_field(fake: FakeHeymarket, body, field) -> None:
    r = post(fake, body)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_data"
    assert r.json()["message"].startswith(field)
    assert fake.requests[-1]["status"] == 400
    assert fake.requests[-1]["body"] == body


def test_sort_date_filter_and_paging(fake: FakeHeymarket) -> None:
    contacts = fake.contacts()
    keys = [(parse_time(c["updated"]), c["id"]) for c in contacts]
    assert keys == sorted(keys)
    assert all_pages(fake, ascending=True) == contacts
    assert all_pages(fake, limit=7) == contacts[::-1]
    default = post(fake, {}).json()  # limit 30, page 0, descending
    assert default == contacts[::-1][:30]
    assert post(fake, {"limit": 100, "page": 1, "ascending": True}).json() == contacts[100:200]
    assert post(fake, {"limit": 100, "page": 2}).json() == contacts[::-1][200:]
    assert post(fake, {"limit": 100, "page": 3}).json() == []

    # A date with a fraction, so second precision differs from full precision.
    pivot = next(c["updated"] for c in contacts[100:] if "." in c["updated"])
    pivot_dt = parse_time(pivot)

    def expected(exclusive: bool, second: bool) -> list[dict]:
        floor = pivot_dt.replace(microsecond=0) if second else pivot_dt

        def stamp(c: dict) -> datetime:
            updated = parse_time(c["updated"])
            return updated.replace(microsecond=0) if second else updated

        return [c for c in contacts if (stamp(c) > floor if exclusive else stamp(c) >= floor)]

    for exclusive in (False, True):
        for second in (False, True):
            fake.date_exclusive = exclusive
            fake.date_precision = "second" if second else "full"
            got = all_pages(fake, limit=50, ascending=True, date=pivot)
            assert got == expected(exclusive, second), (exclusive, second)

    # Offsets and long fractions name the same instant as their UTC form.
    fake.date_exclusive, fake.date_precision = False, "full"
    local = (pivot_dt + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000+02:00"
    assert all_pages(fake, ascending=True, date=local) == expected(False, False)


@pytest.mark.parametrize(
    ("exclusive", "precision", "ids"),
    [
        (False, "full", [3, 4, 5]),
        (True, "full", [4, 5]),
        (False, "second", [2, 3, 4, 5]),
        (True, "second", [5]),
    ],
)
def test_date_filter_modes_differ(exclusive: bool, precision: str, ids: list[int]) -> None:
    with FakeHeymarket() as fake:
        for cid, stamp in enumerate(["04Z", "05.25Z", "05.5Z", "05.75Z", "06Z"], start=1):
            fake.add_raw({"id": cid, "updated": f"2024-05-01T10:00:{stamp}"})
        fake.date_exclusive, fake.date_precision = exclusive, precision
        got = post(fake, {"date": "2024-05-01T10:00:05.5Z", "ascending": True}).json()
        assert [c["id"] for c in got] == ids


def test_ties_page_once_each_in_id_order() -> None:
    with FakeHeymarket(contacts=600, seed=3, tie_groups=1, tie_size=250) as fake:
        contacts = fake.contacts()
        by_time: dict[str, list[int]] = {}
        for c in contacts:
            by_time.setdefault(c["updated"], []).append(c["id"])
        sizes = sorted(len(ids) for ids in by_time.values())
        assert sizes[-1] == 250  # the bulk import
        assert any(2 <= s <= 5 for s in sizes)  # the everyday ties
        bulk_time = max(by_time, key=lambda t: len(by_time[t]))

        ascending = all_pages(fake, ascending=True)
        descending = all_pages(fake)
        assert [c["id"] for c in ascending] == [c["id"] for c in contacts]
        assert [c["id"] for c in descending] == [c["id"] for c in contacts][::-1]
        assert len({c["id"] for c in ascending}) == 600

        inclusive = all_pages(fake, ascending=True, date=bulk_time)
        assert [c["updated"] for c in inclusive[:250]] == [bulk_time] * 250
        fake.date_exclusive = True
        exclusive = all_pages(fake, ascending=True, date=bulk_time)
        assert exclusive == inclusive[250:]


def test_data_changes_between_requests() -> None:
    # Start in the future so the monotone clock must step past the newest `updated`.
    with FakeHeymarket(contacts=100, seed=5, start="2100-01-01T00:00:00Z") as fake:
        before = {c["id"]: c for c in fake.contacts()}
        newest = max(parse_time(c["updated"]) for c in before.values())
        fake.changes_per_request, fake.creates_per_request = 3, 2
        assert len(post(fake, {"limit": 100}).json()) == 100
        fake.changes_per_request = fake.creates_per_request = 0

        after = fake.contacts()
        assert len(after) == 102
        tail = after[-5:]  # everything written since sorts last, in write order
        changed = [c for c in tail if c["id"] in before]
        created = [c for c in tail if c["id"] not in before]
        assert len(changed) == 3 and len(created) == 2
        for c in changed:
            assert c["rev"] == before[c["id"]]["rev"] + 1
            assert c["op"] == "update"
        for c in created:
            assert c["id"] > max(before) and c["rev"] == 1 and c["created"] == c["updated"]
        stamps = [parse_time(c["updated"]) for c in tail]
        assert stamps == sorted(set(stamps)) and stamps[0] > newest
        assert all(GO_TIME.fullmatch(c["updated"]) for c in tail)

        ids = fake.update_contacts(ids=[changed[0]["id"], created[0]["id"]], same_time=True)
        assert len({fake.contact(i)["updated"] for i in ids}) == 1
        assert fake.contact(ids[0])["rev"] == changed[0]["rev"] + 1
        fake.delete_contacts([ids[0]])
        with pytest.raises(KeyError):
            fake.contact(ids[0])
        assert ids[0] not in {c["id"] for c in all_pages(fake)}

        fake.add_raw({"id": "abc", "updated": "garbage", "rev": "x"})
        fake.add_raw({"updated": "2100-01-01T00:00:00Z", "first": None})
        served = all_pages(fake, ascending=True)
        assert served[0] == {"id": "abc", "updated": "garbage", "rev": "x"}
        assert {"updated": "2100-01-01T00:00:00Z", "first": None} in served


def test_rate_limit_429_with_each_retry_after_form(fake: FakeHeymarket) -> None:
    fake.rate_limit, fake.rate_window = 3, 1.0
    statuses = [post(fake).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = post(fake)
    assert r.json()["error"] == "rate_limited"
    assert "Retry-After" not in r.headers

    fake.retry_after = "seconds"
    assert post(fake).headers["Retry-After"] == "1"
    fake.retry_after = "http-date"
    when = parsedate_to_datetime(post(fake).headers["Retry-After"])
    assert -1 <= (when - datetime.now(timezone.utc)).total_seconds() <= 2
    assert fake.rate_limited == 4 and fake.status_counts[429] == 4

    time.sleep(1.05)
    assert post(fake).status_code == 200  # the window slid: rejected requests took no slots

    fake.rate_limit = None
    fake.retry_after = "seconds"
    fake.queue_faults("429")
    r = post(fake)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "1")


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "check"),
    [
        ("429", 429, "application/json", lambda r: r.json()["error"] == "rate_limited"),
        ("500", 500, "application/json", lambda r: r.json()["error"] == "server_error"),
        ("500-html", 500, "text/html", lambda r: "<html" in r.text),
        ("502", 502, "text/html", lambda r: "Bad Gateway" in r.text),
        ("503", 503, "application/json", lambda r: "message" in r.json()),
        ("html-200", 200, "text/html", lambda r: "Sign in" in r.text),
        ("error-object-200", 200, "application/json", lambda r: "error" in r.json()),
        ("401", 401, "application/json", lambda r: r.json()["error"] == "unauthorized"),
        ("403", 403, "application/json", lambda r: r.json()["error"] == "denied"),
    ],
)
def test_fault_responses(fake: FakeHeymarket, kind, status, content_type, check) -> None:
    fake.queue_faults(kind)
    r = post(fake, {"limit": 5})
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith(content_type)
    assert check(r)
    assert fake.requests[-1]["fault"] == kind
    assert post(fake, {"limit": 5}).status_code == 200  # only the queued request failed


def test_broken_transport_faults(fake: FakeHeymarket) -> None:
    fake.queue_faults("cut", "json-truncated", "hang")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        post(fake, {"limit": 50})
    r = post(fake, {"limit": 50})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        r.json()
    fake.hang_seconds = 0.6
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(fake, timeout=0.2)
    assert [e["fault"] for e in fake.requests] == ["cut", "json-truncated", "hang"]

    fake.fail_rate, fake.fail_kinds = 1.0, ("503",)
    assert {post(fake).status_code for _ in range(5)} == {503}
    fake.fail_rate, fake.fail_kinds = 0.5, ("500", "502")
    assert {post(fake).status_code for _ in range(40)} == {200, 500, 502}


def test_a_client_gone_before_its_body_ended_is_not_answered_or_counted(
    fake: FakeHeymarket,
) -> None:
    """A tap stopped mid-request (``meltano config test`` stops it at its first record) leaves a
    body short of its Content-Length: that is no bad request of the tap's, so no 400 is counted."""
    host, port = fake.url.removeprefix("http://").split(":")
    for framing, body in [
        ("Content-Length: 40", b'{"lim'),
        ("Transfer-Encoding: chunked", b'28\r\n{"lim'),
    ]:
        with socket.create_connection((host, int(port)), timeout=5) as client:
            head = f"POST {LIST_PATH} HTTP/1.1\r\nHost: {host}\r\n{framing}\r\n"
            client.sendall(head.encode() + b"Authorization: x\r\n\r\n" + body)
            client.shutdown(socket.SHUT_WR)
            assert client.recv(1024) == b""  # closed, unanswered
    assert post(fake).status_code == 200
    assert fake.status_counts == {200: 1} and len(fake.requests) == 1


def test_every_response_has_a_unique_request_id(fake: FakeHeymarket) -> None:
    fake.queue_faults("502")
    responses = [
        post(fake),
        post(fake),
        post(fake, {"limit": 0}),
        post(fake, headers={}),
        requests.get(fake.url + "/nowhere", timeout=5),
        requests.get(fake.url + "/v1/inboxes", headers=auth(), timeout=5),
        requests.get(fake.url + "/_admin/stats", timeout=5),
    ]
    fake.rate_limit = 0
    responses.append(post(fake))
    assert [r.status_code for r in responses] == [502, 200, 400, 401, 404, 200, 200, 429]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    logged = [e["request_id"] for e in fake.requests]
    assert logged == [ids[0], ids[1], ids[2], ids[3], ids[5], ids[7]]  # inboxes is synced too


def test_keep_alive_and_concurrency(fake: FakeHeymarket) -> None:
    conn = http.client.HTTPConnection(fake.url.removeprefix("http://"), timeout=5)
    for page in range(3):  # one connection, three requests: Content-Length framing works
        conn.request("POST", LIST_PATH, json.dumps({"page": page}), auth())
        response = conn.getresponse()
        assert response.status == 200 and len(json.loads(response.read())) == 30
    conn.close()

    fake.latency = 0.3
    started = time.monotonic()
    threads = [threading.Thread(target=post, args=(fake,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.2
    assert fake.max_in_flight >= 3

    fake.latency, fake.hang_seconds = 0.0, 30.0
    fake.queue_faults("hang")
    outcome = []

    def hang() -> None:
        try:
            outcome.append(post(fake).status_code)
        except requests.ConnectionError as exc:
            outcome.append(type(exc))

    hanging = threading.Thread(target=hang)
    hanging.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.stop()  # must not wait out the 30 s hang; the hanging request fails, it is not answered
    hanging.join(5)
    assert time.monotonic() - started < 2 and not hanging.is_alive()
    assert outcome == [requests.ConnectionError]


def test_admin_endpoints(fake: FakeHeymarket) -> None:
    base = fake.url + "/_admin"
    assert requests.get(base + "/stats", timeout=5).json()["contacts"] == 250
    updated = requests.post(base + "/update", json={"n": 5}, timeout=5).json()["ids"]
    created = requests.post(base + "/create", json={"n": 2}, timeout=5).json()["ids"]
    contacts = requests.get(base + "/contacts", timeout=5).json()
    assert contacts == fake.contacts() and len(contacts) == 252
    assert {c["id"] for c in contacts[-7:]} == set(updated) | set(created)
    requests.post(base + "/delete", json={"ids": created}, timeout=5).raise_for_status()
    assert len(fake.contacts()) == 250

    config = {"latency": 0.01, "date_exclusive": True, "fail_kinds": ["cut"], "rate_limit": 99}
    echoed = requests.post(base + "/config", json=config, timeout=5).json()
    assert echoed["latency"] == 0.01 and echoed["fail_kinds"] == ["cut"]
    assert fake.date_exclusive is True and fake.fail_kinds == ("cut",) and fake.rate_limit == 99
    for bad in ({"nope": 1}, {"latency": "fast"}, {"rate_limit": True}, {"fail_kinds": ["x"]}):
        assert requests.post(base + "/config", json=bad, timeout=5).status_code == 400
    requests.post(base + "/faults", json={"kinds": ["503"]}, timeout=5).raise_for_status()
    assert post(fake).status_code == 503
    stats = requests.get(base + "/stats", timeout=5).json()
    assert stats["requests"] == 1 and stats["status_counts"] == {"503": 1}
    assert requests.post(base + "/update", json={}, timeout=5).status_code == 400
    assert requests.get(base + "/nothing", timeout=5).status_code == 404


def test_generated_contacts_are_deterministic_and_realistic() -> None:
    one = FakeHeymarket(contacts=3000, seed=11).contacts()
    assert one == FakeHeymarket(contacts=3000, seed=11).contacts()
    assert one != FakeHeymarket(contacts=3000, seed=12).contacts()
    assert one[0]["updated"] == "2024-01-01T00:00:00Z"

    assert all(set(c) == V2_FIELDS | {"is_opted_out"} for c in one)
    assert all(c["type"] == "contact" and c["rev"] >= 1 for c in one)
    assert all(re.fullmatch(r"[1-9]\d{10,12}", c["phone"]) for c in one)
    assert all(GO_TIME.fullmatch(c["updated"]) for c in one)
    fraction_digits = {len(c["updated"].partition(".")[2]) for c in one}
    assert {0, 2, 4, 7} <= fraction_digits  # "Z" only, ".dZ", ".dddZ", ".ddddddZ"
    notes = [n for c in one for n in c["note"]]
    assert any(n["date"] == "0001-01-01T00:00:00Z" for n in notes)
    assert any("\n" in n["text"] for n in notes) and any(len(n["text"]) > 1000 for n in notes)
    assert all(isinstance(n["id"], str) for n in notes)
    assert any(c["created"] == "0001-01-01T00:00:00Z" for c in one)
    names = {c["first"] for c in one} | {c["last"] for c in one}
    assert {"José", "Zoë", "Łukasz", "李"} <= names
    customs = [c["custom"] for c in one]
    assert {} in customs and all(k.isdigit() for cu in customs for k in cu)
    assert any(isinstance(v, dict) for cu in customs for v in cu.values())
    tags = [t for c in one for t in c["tags"]]
    assert any(isinstance(t, str) for t in tags)
    assert any(isinstance(t, dict) and set(t) >= {"id", "tag", "color", "rev"} for t in tags)
    assert max(len(c["tags"]) for c in one) == 5
    assert {c["op"] for c in one} >= {"update", "create", "import"}
    assert {c["is_opted_out"] for c in one} == {True, False}


def test_pages_are_byte_for_byte_what_go_would_write() -> None:
    def go_encode(value: object) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    with FakeHeymarket(contacts=1000, seed=2) as fake:
        fake.update_contacts(20)  # re-serialised contacts too
        pages = [post(fake, {"limit": 100, "page": p}).content.decode() for p in range(10)]
        assert all(raw == go_encode(json.loads(raw)) for raw in pages)
        assert "\\u003cb\\u003eVIP" in "".join(pages)


def test_100k_contacts_generate_and_serve_fast() -> None:
    started = time.monotonic()
    fake = FakeHeymarket(contacts=100_000, seed=1)
    assert time.monotonic() - started < 10
    with fake, requests.Session() as session:
        newest = fake.contact(fake.update_contacts(1)[0])["updated"]
        started = time.monotonic()
        for page in range(20):
            body = {"limit": 100, "page": page, "ascending": page % 2 == 0}
            r = session.post(fake.url + LIST_PATH, json=body, headers=auth(), timeout=5)
            assert len(r.json()) == 100
        assert time.monotonic() - started < 5
        r = session.post(fake.url + LIST_PATH, json={"date": newest}, headers=auth(), timeout=5)
        assert [c["updated"] for c in r.json()] == [newest]


def test_go_time_helpers() -> None:
    utc = timezone.utc
    assert format_go_time(datetime(2024, 3, 1, 10, 0, 5, tzinfo=utc)) == "2024-03-01T10:00:05Z"
    assert format_go_time(datetime(2024, 3, 1, 10, 0, 5, 500000, tzinfo=utc)).endswith("05.5Z")
    assert format_go_time(datetime(1, 1, 1, tzinfo=utc)) == "0001-01-01T00:00:00Z"
    plus2 = datetime(2024, 3, 1, 12, 0, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_go_time(plus2) == "2024-03-01T10:00:05.123456Z"
    assert parse_time("2024-03-01T12:00:05.1234569+02:00") == plus2
    for bad in ("2024-03-01 10:00:05Z", "2024-03-01T10:00:05", "2024-03-01T10:00:60Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_go_time_round_trips(dt: datetime) -> None:
    text = format_go_time(dt)
    assert GO_TIME.fullmatch(text)
    assert parse_time(text) == dt


def test_cli_serves_until_sigterm() -> None:
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "testbed.fake_heymarket", "--port", "0", "--contacts", "40"]
    cmd += ["--api-key", "k1", "--date-exclusive", "--fail-kinds", "503", "cut"]
    env = {**os.environ, "PYTHONPATH": "."}
    with subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
            assert "secret_id=fake-secret-id" in line and "api_key=k1" in line
            r = requests.post(url + LIST_PATH, json={"limit": 100}, headers=auth("k1"), timeout=5)
            assert len(r.json()) == 40
            config = requests.post(url + "/_admin/config", json={}, timeout=5).json()
            assert config["date_exclusive"] is True and config["fail_kinds"] == ["503", "cut"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == 0


def test_knobs_are_checked_alike_however_they_are_set() -> None:
    fake = FakeHeymarket()
    assert fake.knobs == Knobs() and fake.latency == 0.0 and fake.fail_kinds == Knobs().fail_kinds
    with pytest.raises(ValueError, match="unknown knob 'nope'"):
        fake.configure(nope=1)
    refused = [
        ({"latency": "fast"}, TypeError),
        ({"rate_limit": True}, TypeError),
        ({"date_exclusive": 1}, TypeError),
        ({"fail_kinds": "503"}, TypeError),
        ({"fail_kinds": ["503", "x"]}, ValueError),
        ({"tie_order": "random"}, ValueError),
        ({"retry_after": "minutes"}, ValueError),
        ({"latency": -1}, ValueError),
        ({"fail_rate": 1.5}, ValueError),
        ({"max_limit": 0}, ValueError),
    ]
    for knobs, error in refused:
        with pytest.raises(error):
            fake.configure(order="shuffled", **knobs)  # all or nothing: order stays as it was
        name, value = next(iter(knobs.items()))
        with pytest.raises(error):
            setattr(fake, name, value)
    assert fake.knobs == Knobs()

    fake.configure(fail_kinds=["503"], rate_limit=0, max_limit=1, retry_after=None, hang_seconds=2)
    fake.latency = 1
    assert fake.fail_kinds == ("503",) and fake.knobs.latency == 1 and fake.max_limit == 1
    assert FakeHeymarket(knobs=Knobs(order="newest-first")).order == "newest-first"


def test_cli_offers_and_checks_every_knob(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as shown:
        main(["--help"])
    assert shown.value.code == 0
    usage = capsys.readouterr().out
    assert all(f"--{name.replace('_', '-')}" in usage for name in Knobs.__dataclass_fields__)
    assert "--no-date-exclusive" in usage and "json-truncated" in usage
    for args, why in [
        (["--fail-rate", "2"], "fail_rate must be at most 1"),
        (["--order", "random"], "invalid choice: 'random'"),
        (["--fail-kinds", "x"], "invalid choice: 'x'"),
    ]:
        with pytest.raises(SystemExit) as refused:
            main(args)
        assert refused.value.code == 2 and why in capsys.readouterr().err


def test_an_endpoint_is_one_handler_in_the_routing_table(
    fake: FakeHeymarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo(fake: FakeHeymarket, body: object) -> Reply:
        return json_reply(200, {"echo": body, "contacts": len(fake.contacts())})

    monkeypatch.setitem(ROUTES, ("POST", "/v1/echo"), Endpoint(echo, sync=True))
    url = fake.url + "/v1/echo"
    r = requests.post(url, json={"a": "<b>"}, headers=auth(), timeout=5)
    assert r.content == b'{"echo":{"a":"\\u003cb\\u003e"},"contacts":250}'
    assert requests.post(url, json={}, timeout=5).status_code == 401  # auth is shared
    fake.queue_faults("502")  # so are faults, the request log and the rate limit
    assert requests.post(url, json={}, headers=auth(), timeout=5).status_code == 502
    assert [(e["body"], e["status"], e["fault"]) for e in fake.requests] == [
        ({"a": "<b>"}, 200, None),
        ({}, 401, None),
        ({}, 502, "502"),
    ]
    fake.rate_limit = 0
    assert requests.post(url, json={}, headers=auth(), timeout=5).status_code == 429
    assert requests.get(url, headers=auth(), timeout=5).status_code == 429  # limited, then routed
    fake.rate_limit = None
    assert requests.get(url, headers=auth(), timeout=5).status_code == 404


def test_traffic_is_taken_one_run_at_a_time(fake: FakeHeymarket) -> None:
    assert post(fake).status_code == 200 and post(fake, {"limit": 0}).status_code == 400
    seen = fake.traffic.take()
    assert [e["status"] for e in seen.requests] == [200, 400]
    assert seen.status_counts == {200: 1, 400: 1} and seen.max_in_flight >= 1
    assert fake.requests == [] and fake.status_counts == {} and fake.max_in_flight == 0
    post(fake, headers={})
    assert [e["status"] for e in fake.requests] == [401] and fake.status_counts == {401: 1}
