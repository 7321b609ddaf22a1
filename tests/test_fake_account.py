"""The fake Heymarket's account endpoints (inboxes, team, tags, templates, surveys, custom fields,
conversations), over real HTTP, with every reading the docs allow and data that ties together."""

from __future__ import annotations

import json
import re

import pytest
import requests

from testbed.fake_heymarket import (
    CONVERSATIONS_PATH,
    CUSTOM_FIELDS_PATH,
    INBOXES_PATH,
    LIST_PATH,
    MESSAGES_PATH,
    SURVEYS_PATH,
    TAGS_PATH,
    TEAM_PATH,
    TEMPLATES_PATH,
    FakeHeymarket,
    make_jwt,
    parse_time,
)
from testbed.fake_heymarket.account import is_unread
from testbed.fake_heymarket.generator import INBOXES, USERS

SID, SKEY = "fake-secret-id", "fake-secret-key"
GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")
INBOX_FIELDS = {
    "allowed_domains", "auto_assignable", "bco_chats", "forward_number", "id", "invited",
    "members", "name", "op", "phone", "phones", "rev", "team", "widget_code", "widget_settings",
}  # fmt: skip
WIDGET_FIELDS = {
    "background_color", "button_color", "fab_background_color", "fab_text_color", "message",
    "name", "phone", "position", "preview_enabled", "title_background_color", "title_text_color",
    "tos",
}  # fmt: skip
TAG_FIELDS = {"id", "tag", "color", "team_id", "created", "updated", "rev"}
TEMPLATE_FIELDS = {
    "id", "name", "local_id", "content", "team_id", "creator_id", "shared", "created", "updated",
    "rev", "archived",
}  # fmt: skip
SURVEY_FIELDS = {"id", "name", "type", "question", "created", "updated"}
CONVERSATION_FIELDS = {
    "assigned", "blocked", "channel", "created", "creator", "email_noti", "id", "inbox",
    "last_inbound", "local_id", "members", "muted", "name", "noreply", "op", "read", "replied",
    "snooze_till", "status", "super", "support", "target", "type", "updated",
}  # fmt: skip
#: Every account endpoint, with a body it answers 200 to.
ENDPOINTS = [
    ("GET", INBOXES_PATH, None),
    ("GET", TEAM_PATH, None),
    ("POST", TAGS_PATH, {}),
    ("POST", TEMPLATES_PATH, {}),
    ("POST", SURVEYS_PATH, {"limit": 5, "page": 1}),
    ("POST", CUSTOM_FIELDS_PATH, {}),
    ("POST", CONVERSATIONS_PATH, {"id": 3101, "filters": {"inboxes": [1201], "closed": True}}),
]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(SID, SKEY)}"}


def call(fake: FakeHeymarket, method: str, path: str, body: object = None, headers=None):
    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    headers = auth() if headers is None else headers
    return requests.request(method, fake.url + path, data=data, headers=headers, timeout=10)


def answer(fake: FakeHeymarket, path: str, body: object = None, method: str = "POST"):
    r = call(fake, method, path, {} if body is None and method == "POST" else body)
    assert r.status_code == 200, r.text
    return r.json()


def conversations(fake: FakeHeymarket, user: int, inboxes: list[int], **filters) -> list[dict]:
    date = filters.pop("date", None)
    body: dict = {"id": user, "filters": {"inboxes": inboxes, **filters}}
    if date is not None:
        body["date"] = date
    return answer(fake, CONVERSATIONS_PATH, body)


def walk(fake: FakeHeymarket, path: str, body: dict | None = None, cap: int = 200) -> list[dict]:
    """Walk a newest-first list back by its ``date`` cursor until an empty page."""
    body, seen = dict(body or {}), []
    for _ in range(cap):
        batch = answer(fake, path, body)
        if not batch:
            return seen
        seen += batch
        body["date"] = batch[-1]["updated"]
    raise AssertionError(f"{path} did not end within {cap} pages")


def ids(records: list[dict]) -> list[int]:
    return [r["id"] for r in records]


def newest_first(records: list[dict]) -> list[dict]:
    """The reverse of (updated, id) ascending: the fake's order with the default tie order."""
    return sorted(records, key=lambda r: (parse_time(r["updated"]), r["id"]), reverse=True)


def member_of(fake: FakeHeymarket, inbox: int) -> int:
    return next(i["members"][0] for i in fake.inboxes() if i["id"] == inbox)


@pytest.fixture
def fake():
    with FakeHeymarket(contacts=300, messages=600, seed=5, conversations=90) as server:
        yield server


# ---- inboxes and the team


def test_inboxes_carry_every_documented_field(fake: FakeHeymarket) -> None:
    inboxes = answer(fake, INBOXES_PATH, method="GET")
    assert inboxes == fake.inboxes() and [i["id"] for i in inboxes] == [1201, 1202, 1305]
    team = answer(fake, TEAM_PATH, method="GET")
    members = {m["id"] for m in team["members"]}
    for inbox in inboxes:
        assert set(inbox) == INBOX_FIELDS
        assert set(inbox["widget_settings"]) == WIDGET_FIELDS
        assert inbox["team"] == team["id"]
        assert inbox["members"] and set(inbox["members"]) <= members
        assert inbox["phone"] in inbox["phones"]
        assert isinstance(inbox["invited"], bool)
    assert None in {i["forward_number"] for i in inboxes}  # as the docs' example has it

    fake.inbox_invited = "strings"
    invited = [i["invited"] for i in answer(fake, INBOXES_PATH, method="GET")]
    assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in invited)
    assert [bool(v) for v in invited] == [i["invited"] for i in inboxes]


def test_team_is_one_object_holding_its_members(fake: FakeHeymarket) -> None:
    team = answer(fake, TEAM_PATH, method="GET")
    assert set(team) == {"id", "name", "list_size", "members"}
    assert isinstance(team["id"], int) and isinstance(team["list_size"], int)
    assert [(m["id"], m["name"]) for m in team["members"]] == list(USERS)
    assert all(set(m) == {"id", "name", "role"} for m in team["members"])
    assert {m["role"] for m in team["members"]} == {"admin", "member"}
    assert team == fake.team()

    fake.team_answer = "no-id"
    assert set(answer(fake, TEAM_PATH, method="GET")) == {"name", "list_size", "members"}
    fake.team_answer = "403"
    assert call(fake, "GET", TEAM_PATH).status_code == 403


def test_two_fakes_of_one_seed_are_two_teams_whose_objects_share_ids() -> None:
    with (
        FakeHeymarket(contacts=40, messages=60, seed=8) as first,
        FakeHeymarket(contacts=40, messages=60, seed=8, team_id=777) as second,
    ):
        teams = [answer(fake, TEAM_PATH, method="GET")["id"] for fake in (first, second)]
        assert teams == [4242, 777]
        for fake, team in zip((first, second), teams, strict=True):
            contacts = answer(fake, LIST_PATH, {"limit": 100})
            assert {c["team_id"] for c in contacts} == {team}
            assert {t["team_id"] for c in contacts for t in c["tags"] if isinstance(t, dict)} == {
                team
            }
            assert {i["team"] for i in answer(fake, INBOXES_PATH, method="GET")} == {team}
            for path in (TAGS_PATH, TEMPLATES_PATH, CUSTOM_FIELDS_PATH):
                assert {o["team_id"] for o in answer(fake, path)} == {team}, path
        # The same ids in both accounts: what the tap's keys must tell apart.
        assert ids(first.contacts()) == ids(second.contacts())
        assert ids(first.all_messages()) == ids(second.all_messages())
        assert ids(first.tags()) == ids(second.tags())
        assert ids(first.conversations()) == ids(second.conversations())


# ---- tags and templates


def test_tags_are_thirty_newest_first_and_limit_is_ignored(fake: FakeHeymarket) -> None:
    tags = fake.tags()
    assert len(tags) == 40
    assert all(set(t) == TAG_FIELDS for t in tags)
    assert all(GO_TIME.fullmatch(t["created"]) and GO_TIME.fullmatch(t["updated"]) for t in tags)
    first = answer(fake, TAGS_PATH, {})
    assert first == newest_first(tags)[:30]
    assert answer(fake, TAGS_PATH, {"limit": 100}) == first
    assert answer(fake, TAGS_PATH, {"limit": 2, "page": 3}) == first

    cursor = first[-1]["updated"]
    rest = [t for t in tags if parse_time(t["updated"]) < parse_time(cursor)]
    assert answer(fake, TAGS_PATH, {"date": cursor}) == newest_first(rest)[:30]

    fake.list_page_size = 7
    assert answer(fake, TAGS_PATH, {}) == newest_first(tags)[:7]

    # the default data: a tie of 4 across the first page's end, which a naive walk loses
    fake.list_page_size = 30
    last = first[-1]["updated"]
    assert [t["updated"] for t in tags].count(last) == 4
    assert {t["id"] for t in tags} - set(ids(walk(fake, TAGS_PATH))) == {
        t["id"] for t in tags if t["updated"] == last and t not in first
    }


def test_a_tags_walk_misses_only_ties_exclusive_and_repeats_them_inclusive(
    fake: FakeHeymarket,
) -> None:
    tags = fake.tags()
    stamps = [t["updated"] for t in tags]
    fake.list_page_size = 5  # the contacts' 12 tags hold ties of 8 and 4
    seen = walk(fake, TAGS_PATH)
    missed = [t for t in tags if t not in seen]
    assert missed and all(stamps.count(t["updated"]) > 1 for t in missed)
    assert len(set(ids(seen))) == len(seen)

    fake.list_page_size, fake.before_cursor = 10, "inclusive"  # pages larger than any tie
    seen = []
    body: dict = {}
    for _ in range(40):
        batch = answer(fake, TAGS_PATH, body)
        new = [t for t in batch if t not in seen]
        if not new:
            break
        seen += new
        body["date"] = batch[-1]["updated"]
    assert sorted(ids(seen)) == sorted(ids(tags))


@pytest.fixture
def five():
    """Five tags a fraction of a second apart, ids 1-5, around 10:00:05 (and no others)."""
    with FakeHeymarket(tags=0) as server:
        for tid, stamp in enumerate(["04Z", "05.25Z", "05.5Z", "05.75Z", "06Z"], start=1):
            server.create_tag(id=tid, tag=f"t{tid}", updated=f"2024-05-01T10:00:{stamp}")
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
def test_before_cursor_and_date_precision(
    five: FakeHeymarket, cursor: str, precision: str, expected: list[int]
) -> None:
    five.before_cursor, five.date_precision = cursor, precision
    assert ids(answer(five, TAGS_PATH, {"date": "2024-05-01T10:00:05.5Z"})) == expected
    # the same instant with an offset and nine fraction digits
    assert ids(answer(five, TAGS_PATH, {"date": "2024-05-01T12:00:05.500000000+02:00"})) == expected
    assert ids(answer(five, TAGS_PATH, {})) == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("tie_order", "within_tie"),
    [("id", "descending"), ("id-desc", "ascending"), ("unstable", None)],
)
def test_a_tie_larger_than_a_page(tie_order: str, within_tie: str | None) -> None:
    with FakeHeymarket(list_tie_size=12, conversations=40, seed=3) as fake:
        fake.list_page_size, fake.tie_order = 5, tie_order
        for path, records in ((TAGS_PATH, fake.tags()), (TEMPLATES_PATH, fake.templates())):
            stamps = [r["updated"] for r in records]
            tied = max(set(stamps), key=stamps.count)
            assert stamps.count(tied) == 12
            tie = [r["id"] for r in records if r["updated"] == tied]
            after = [r for r in records if parse_time(r["updated"]) > parse_time(tied)]
            # the page right after the newer ones holds 5 of the tie ...
            cursor = min(after, key=lambda r: parse_time(r["updated"]))["updated"]
            got = ids(answer(fake, path, {"date": cursor}))
            assert len(got) == 5 and set(got) <= set(tie)
            if within_tie == "descending":
                assert got == sorted(tie, reverse=True)[:5]
            elif within_tie == "ascending":
                assert got == sorted(tie)[:5]
            else:
                orders = {tuple(ids(answer(fake, path, {"date": cursor}))) for _ in range(20)}
                assert len(orders) > 1
            # ... and the tie's own date skips the rest (exclusive) or repeats it (inclusive)
            fake.before_cursor = "inclusive"
            again = ids(answer(fake, path, {"date": tied}))
            assert len(again) == 5 and set(again) <= set(tie)
            fake.before_cursor = "exclusive"
            assert not set(ids(answer(fake, path, {"date": tied}))) & set(tie)

        # conversations: the tie is closed ones of inbox 1201
        everything = fake.conversations()
        stamps = [c["updated"] for c in everything]
        tie = [c for c in everything if stamps.count(c["updated"]) == 12]
        assert len(tie) == 12
        assert {(c["inbox"], c["status"]) for c in tie} == {(1201, "closed")}
        member, tied = member_of(fake, 1201), tie[0]["updated"]
        fake.before_cursor = "inclusive"
        page = conversations(fake, member, [1201], closed=True, date=tied)
        assert len(page) == 5 and set(ids(page)) <= set(ids(tie))
        fake.before_cursor = "exclusive"
        page = conversations(fake, member, [1201], closed=True, date=tied)
        assert not set(ids(page)) & set(ids(tie))


def test_templates_fields_paging_and_archived(fake: FakeHeymarket) -> None:
    templates = fake.templates()
    assert len(templates) == 35
    for t in templates:
        assert set(t) == TEMPLATE_FIELDS
        assert set(t["content"]) == {"text", "gallery"} and isinstance(
            t["content"]["gallery"], list
        )
        assert t["creator_id"] in dict(USERS)
    archived = {t["id"] for t in templates if t["archived"]}
    assert archived and len(archived) < len(templates)
    walked = walk(fake, TEMPLATES_PATH)
    assert walked == newest_first(templates)  # no ties: one walk sees each once
    assert answer(fake, TEMPLATES_PATH, {"limit": 50}) == walked[:30]

    fake.archived_templates = "hidden"
    hidden = walk(fake, TEMPLATES_PATH)
    assert hidden == [t for t in walked if t["id"] not in archived]


@pytest.mark.parametrize("path", [TAGS_PATH, TEMPLATES_PATH])
@pytest.mark.parametrize(
    "body", ['{"date": 5}', '{"date": "yesterday"}', "[]", "not json", '{"date": null}']
)
def test_tags_and_templates_refuse_bad_bodies(fake: FakeHeymarket, path: str, body: str) -> None:
    r = call(fake, "POST", path, body)
    assert r.status_code == 400 and r.json()["error"] == "bad_data", r.text


def test_create_and_delete_tags(fake: FakeHeymarket) -> None:
    made = fake.create_tag(tag="brand new", color="#123456")
    assert made["id"] == max(ids(fake.tags())) and made["rev"] == 1
    assert made["created"] == made["updated"] and set(made) == TAG_FIELDS
    assert answer(fake, TAGS_PATH, {})[0] == made
    fake.delete_tag(made["id"])
    fake.delete_tag(501)
    listed = walk(fake, TAGS_PATH)
    assert made["id"] not in ids(listed) and 501 not in ids(listed) and len(fake.tags()) == 39
    with pytest.raises(KeyError):
        fake.delete_tag(501)
    with pytest.raises(ValueError, match="exists"):
        fake.create_tag(id=502)


# ---- surveys and custom fields


def test_surveys_page_from_one(fake: FakeHeymarket) -> None:
    surveys = fake.surveys()
    assert len(surveys) == 12 and ids(surveys) == sorted(ids(surveys))
    assert all(set(s) == SURVEY_FIELDS for s in surveys)
    assert surveys[0]["id"] == 10 and surveys[0]["type"] == "nps"
    assert answer(fake, SURVEYS_PATH, {}) == surveys  # limit 30, page 1
    pages = [answer(fake, SURVEYS_PATH, {"limit": 5, "page": p}) for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert [s for p in pages for s in p] == surveys
    assert answer(fake, SURVEYS_PATH, {"limit": 5, "page": 0}) == pages[0]
    fake.max_limit = 3
    assert answer(fake, SURVEYS_PATH, {"limit": 5, "page": 2}) == surveys[3:6]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"limit": 0}, "limit"), ({"limit": "5"}, "limit"), ({"page": -1}, "page"),
     ({"page": 1.5}, "page"), ([], "body")],
)  # fmt: skip
def test_surveys_refuse_bad_bodies(fake: FakeHeymarket, body: object, field: str) -> None:
    r = call(fake, "POST", SURVEYS_PATH, body)
    assert r.status_code == 400 and r.json()["message"].startswith(field), r.text


def test_custom_fields_are_the_keys_of_contacts_custom(fake: FakeHeymarket) -> None:
    fields = answer(fake, CUSTOM_FIELDS_PATH, {})
    assert fields == fake.custom_fields() and len(fields) == 6
    assert all(isinstance(f["id"], int) and isinstance(f["name"], str) for f in fields)
    assert all({"type", "options", "created", "updated"} <= set(f) for f in fields)
    keys = {k for c in fake.contacts() for k in c["custom"]}
    assert keys and keys <= {str(f["id"]) for f in fields}

    fake.custom_field_name = "title"
    titled = answer(fake, CUSTOM_FIELDS_PATH, {})
    assert [f["title"] for f in titled] == [f["name"] for f in fields]
    assert not any("name" in f for f in titled)
    with FakeHeymarket(custom_fields=9) as more:
        assert ids(answer(more, CUSTOM_FIELDS_PATH, {}))[5:] == [102, 103, 104, 105]


# ---- conversations


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filters": {"inboxes": [1201]}}, "id"),
        ({"id": "3101", "filters": {"inboxes": [1201]}}, "id"),
        ({"id": 3101}, "filters"),
        ({"id": 3101, "filters": [1201]}, "filters"),
        ({"id": 3101, "filters": {"closed": True}}, "filters.inboxes"),
        ({"id": 3101, "filters": {"inboxes": []}}, "filters.inboxes"),
        ({"id": 3101, "filters": {"inboxes": ["1201"]}}, "filters.inboxes"),
        ({"id": 3101, "filters": {"inboxes": [1201], "closed": "yes"}}, "filters.closed"),
        ({"id": 3101, "filters": {"inboxes": [1201], "unread": 1}}, "filters.unread"),
        ({"id": 3101, "filters": {"inboxes": [1201]}, "date": "2024-13-01T00:00:00Z"}, "date"),
        ("not json", "body"),
    ],
)
def test_conversations_require_id_and_filters(
    fake: FakeHeymarket, body: object, field: str
) -> None:
    r = call(fake, "POST", CONVERSATIONS_PATH, body if isinstance(body, str) else json.dumps(body))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_data" and r.json()["message"].startswith(field)
    assert fake.requests[-1]["status"] == 400


def test_each_inbox_open_and_closed_walk_to_every_conversation_once(fake: FakeHeymarket) -> None:
    everything = fake.conversations()
    assert len(everything) == 90 and all(set(c) == CONVERSATION_FIELDS for c in everything)
    assert {c["status"] for c in everything} == {"open", "closed"}
    seen: list[dict] = []
    for inbox in (1201, 1202, 1305):
        member = member_of(fake, inbox)
        for closed in (False, True):
            body = {"id": member, "filters": {"inboxes": [inbox], "closed": closed}}
            part = walk(fake, CONVERSATIONS_PATH, body)
            assert part == newest_first(
                [
                    c
                    for c in everything
                    if c["inbox"] == inbox and (c["status"] == "closed") == closed
                ]
            )
            seen += part
    assert sorted(ids(seen)) == sorted(ids(everything))

    # several inboxes at once, and limit is ignored
    first = conversations(fake, 3101, [1201, 1202], closed=True)
    both = [c for c in everything if c["inbox"] in (1201, 1202) and c["status"] == "closed"]
    assert first == newest_first(both)[:30]
    body = {"id": 3101, "limit": 3, "filters": {"inboxes": [1201], "closed": True}}
    assert len(answer(fake, CONVERSATIONS_PATH, body)) == min(
        30, len([c for c in both if c["inbox"] == 1201])
    )


def test_unread_filter(fake: FakeHeymarket) -> None:
    member = member_of(fake, 1202)
    mine = [c for c in fake.conversations() if c["inbox"] == 1202 and c["status"] == "closed"]
    unread = [c for c in mine if is_unread(c)]
    assert unread and len(unread) < len(mine)
    fake.list_page_size = 100
    assert conversations(fake, member, [1202], closed=True, unread=True) == newest_first(unread)
    assert conversations(fake, member, [1202], closed=True, unread=False) == newest_first(mine)
    assert conversations(fake, member, [1202], closed=True) == newest_first(mine)
    fake.unread_filter = "selects"
    read = newest_first([c for c in mine if not is_unread(c)])
    assert conversations(fake, member, [1202], closed=True, unread=False) == read
    assert conversations(fake, member, [1202], closed=True) == read
    assert conversations(fake, member, [1202], closed=True, unread=True) == newest_first(unread)


def test_a_member_sees_only_their_inboxes(fake: FakeHeymarket) -> None:
    outsider = next(uid for uid, _ in USERS if uid not in member_of_all(fake, 1201))
    body = {"id": outsider, "filters": {"inboxes": [1201], "closed": True}}
    r = call(fake, "POST", CONVERSATIONS_PATH, body)
    assert (r.status_code, r.json()["error"]) == (403, "denied")
    assert fake.requests[-1]["status"] == 403
    own = next(i["id"] for i in fake.inboxes() if outsider in i["members"])
    body["filters"]["inboxes"] = [own, 1201]
    assert call(fake, "POST", CONVERSATIONS_PATH, body).status_code == 403
    r = call(fake, "POST", CONVERSATIONS_PATH, {"id": 999, "filters": {"inboxes": [own]}})
    assert r.status_code == 403  # not a team member at all

    fake.foreign_inbox = "empty"
    assert conversations(fake, outsider, [1201], closed=True) == []
    mixed = conversations(fake, outsider, [own, 1201], closed=True)
    assert mixed and {c["inbox"] for c in mixed} == {own}

    # a member taken out of an inbox loses it
    fake.foreign_inbox = "403"
    member = member_of(fake, 1201)
    assert conversations(fake, member, [1201], closed=True)
    fake.remove_member_from_inbox(member, 1201)
    assert member not in member_of_all(fake, 1201)
    assert member not in answer(fake, INBOXES_PATH, method="GET")[0]["members"]
    assert (
        call(
            fake,
            "POST",
            CONVERSATIONS_PATH,
            {"id": member, "filters": {"inboxes": [1201], "closed": True}},
        ).status_code
        == 403
    )
    with pytest.raises(KeyError):
        fake.remove_member_from_inbox(member, 1201)


def member_of_all(fake: FakeHeymarket, inbox: int) -> list[int]:
    return next(i["members"] for i in fake.inboxes() if i["id"] == inbox)


def test_an_unknown_or_removed_inbox(fake: FakeHeymarket) -> None:
    r = call(fake, "POST", CONVERSATIONS_PATH, {"id": 3101, "filters": {"inboxes": [4]}})
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    member = member_of(fake, 1305)
    assert conversations(fake, member, [1305], closed=True)
    fake.delete_inbox(1305)
    assert [i["id"] for i in answer(fake, INBOXES_PATH, method="GET")] == [1201, 1202]
    body = {"id": member, "filters": {"inboxes": [1305], "closed": True}}
    assert call(fake, "POST", CONVERSATIONS_PATH, body).status_code == 404
    assert any(c["inbox"] == 1305 for c in fake.conversations())  # kept, no longer served

    fake.unknown_inbox = "empty"
    assert conversations(fake, member, [1305], closed=True) == []
    other = next(i["id"] for i in fake.inboxes() if member in i["members"])
    mixed = conversations(fake, member, [1305, other], closed=True)
    assert mixed and {c["inbox"] for c in mixed} == {other}
    with pytest.raises(KeyError):
        fake.delete_inbox(1305)


def test_changed_conversations_move_to_the_top_and_new_messages_embed_them() -> None:
    with FakeHeymarket(messages=20, conversations=1, seed=2) as fake:
        (only,) = fake.conversations()
        changed = fake.change_conversation(only["id"], name="Renamed 🦄", status="open")
        assert changed["name"] == "Renamed 🦄" and changed["updated"] > only["updated"]
        assert parse_time(changed["updated"]) > parse_time(
            max(m["updated"] for m in fake.all_messages())
        )
        message = fake.create_message()
        assert message["conversation"] == changed
        assert fake.all_messages()[0]["conversation"] == only  # sent before: the old copy
        member = member_of(fake, only["inbox"])
        assert conversations(fake, member, [only["inbox"]]) == [changed]
        assert conversations(fake, member, [only["inbox"]], closed=True) == []
        toggled = fake.change_conversation(only["id"])
        assert toggled["replied"] != changed["replied"] and toggled["updated"] > changed["updated"]
        with pytest.raises(KeyError):
            fake.change_conversation(1)


def test_churn_updates_conversations_of_the_asked_inbox_after_each_page(
    fake: FakeHeymarket,
) -> None:
    member = member_of(fake, 1202)
    before = {c["id"]: c for c in fake.conversations()}
    fake.conversation_changes_per_request = 3
    first = conversations(fake, member, [1202], closed=True)
    changed = [c for c in fake.conversations() if c != before[c["id"]]]
    assert len(changed) == 3 and {c["inbox"] for c in changed} == {1202}
    assert all(parse_time(c["updated"]) > parse_time(first[0]["updated"]) for c in changed)
    # the changed closed ones now lead the list
    fake.conversation_changes_per_request = 0
    top = conversations(fake, member, [1202], closed=True)
    closed_changed = [c for c in changed if c["status"] == "closed"]
    assert top[: len(closed_changed)] == newest_first(closed_changed)

    # a walk from a fixed start still ends, and sees each conversation at most once
    fake.conversation_changes_per_request = 2
    start = top[0]["updated"]
    body = {"id": member, "filters": {"inboxes": [1202], "closed": True}, "date": start}
    walked = walk(fake, CONVERSATIONS_PATH, body)
    assert len(set(ids(walked))) == len(walked)


def test_list_churn_updates_tags_or_templates_after_each_page_of_them(
    fake: FakeHeymarket,
) -> None:
    for path, kind in ((TAGS_PATH, "tags"), (TEMPLATES_PATH, "templates")):
        before = {o["id"]: o for o in fake.objects()[kind]}
        fake.list_changes_per_request = 2
        page = answer(fake, path, {})
        fake.list_changes_per_request = 0
        after = fake.objects()[kind]
        changed = [o for o in after if o != before[o["id"]]]
        assert len(changed) == 2
        assert all(o["updated"] > page[0]["updated"] for o in changed), "updated now"
        assert all(o["rev"] == before[o["id"]]["rev"] + 1 for o in changed)
        assert answer(fake, path, {})[:2] == sorted(changed, key=lambda o: o["updated"])[::-1]


# ---- data that ties together


def test_ids_tie_together(fake: FakeHeymarket) -> None:
    inboxes = {i["id"]: i for i in answer(fake, INBOXES_PATH, method="GET")}
    team = {m["id"] for m in answer(fake, TEAM_PATH, method="GET")["members"]}
    tags = {t["id"]: t for t in fake.tags()}
    convs = {c["id"]: c for c in fake.conversations()}

    contacts = fake.contacts()
    assert {c["inbox_id"] for c in contacts} == set(inboxes)
    carried = [t for c in contacts for t in c["tags"] if isinstance(t, dict)]
    assert carried and all(tags[t["id"]] == t for t in carried)
    assert {c["creator_id"] for c in contacts} <= team | {0}

    messages = fake.all_messages()
    for m in messages:
        c = m["conversation"]
        assert c["id"] in convs and convs[c["id"]]["inbox"] == c["inbox"]
        assert m["user"] == 0 or m["user"] in team
    assert {m["conversation"]["id"] for m in messages} == set(convs)
    for c in convs.values():
        members = set(inboxes[c["inbox"]]["members"])
        assert {m["id"] for m in c["members"]} <= members
        assert c["assigned"] == 0 or c["assigned"] in members
        assert c["creator"] == 0 or c["creator"] in members
        assert GO_TIME.fullmatch(c["updated"]) and GO_TIME.fullmatch(c["created"])
    assert {c["inbox"] for c in convs.values()} == set(inboxes)


# ---- what every endpoint shares


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_has_auth_faults_and_the_request_log(
    fake: FakeHeymarket, method: str, path: str, body: object
) -> None:
    data = None if body is None else json.dumps(body)
    assert call(fake, method, path, data, headers={}).status_code == 401
    fake.queue_faults("502", "json-truncated")
    assert call(fake, method, path, data).status_code == 502
    truncated = call(fake, method, path, data)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    assert call(fake, method, path, data).status_code == 200
    log = [(e["path"], e["status"], e["fault"]) for e in fake.requests]
    assert log == [
        (path, 401, None),
        (path, 502, "502"),
        (path, 200, "json-truncated"),
        (path, 200, None),
    ]


def test_one_rate_limit_window_for_every_endpoint(fake: FakeHeymarket) -> None:
    fake.rate_limit, fake.rate_window = len(ENDPOINTS) + 1, 30.0
    statuses = [
        call(fake, m, p, None if b is None else json.dumps(b)).status_code for m, p, b in ENDPOINTS
    ]
    assert statuses == [200] * len(ENDPOINTS)
    assert call(fake, "POST", LIST_PATH, "{}").status_code == 200
    for method, path, body in [*ENDPOINTS, ("POST", MESSAGES_PATH, {})]:
        assert (
            call(fake, method, path, None if body is None else json.dumps(body)).status_code == 429
        )
    fake.rate_limit = None
    fake.latency = 0.2
    r = call(fake, "POST", TAGS_PATH, "{}")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.2


def test_admin_endpoints(fake: FakeHeymarket) -> None:
    base = fake.url + "/_admin"
    for name in (
        "inboxes",
        "team",
        "tags",
        "templates",
        "surveys",
        "custom-fields",
        "conversations",
    ):
        got = requests.get(f"{base}/{name}", timeout=5).json()
        assert got == getattr(fake, name.replace("-", "_"))(), name
    made = requests.post(f"{base}/tags/create", json={"fields": {"tag": "x"}}, timeout=5).json()
    assert made in fake.tags()
    assert requests.post(f"{base}/tags/delete", json={"id": made["id"]}, timeout=5).ok
    assert made not in fake.tags()
    cid = fake.conversations()[0]["id"]
    body = {"id": cid, "fields": {"muted": True}}
    changed = requests.post(f"{base}/conversations/change", json=body, timeout=5).json()
    assert changed["muted"] is True and fake.conversations()[-1] == changed
    body = {"user_id": 3101, "inbox_id": 1202}
    assert requests.post(f"{base}/inboxes/remove-member", json=body, timeout=5).ok
    assert 3101 not in member_of_all(fake, 1202)
    assert requests.post(f"{base}/inboxes/delete", json={"id": 1202}, timeout=5).ok
    assert [i["id"] for i in fake.inboxes()] == [1201, 1305]
    r = requests.post(f"{base}/inboxes/delete", json={"id": 1202}, timeout=5)
    assert r.status_code == 400


def test_the_account_is_the_same_for_one_seed_and_constructor_checks() -> None:
    one, two = FakeHeymarket(messages=100, seed=4), FakeHeymarket(messages=100, seed=4)
    for name in ("tags", "templates", "surveys", "custom_fields", "conversations"):
        assert getattr(one, name)() == getattr(two, name)(), name
    assert one.tags() != FakeHeymarket(seed=5).tags()
    assert len(FakeHeymarket(messages=100).conversations()) == 10
    assert len(FakeHeymarket(tags=5).tags()) == 5
    with pytest.raises(ValueError):
        FakeHeymarket(list_tie_size=50)
    with pytest.raises(ValueError):
        FakeHeymarket(conversations=0)
    inbox_ids = {i["id"] for i in INBOXES}
    assert all(c["inbox"] in inbox_ids for c in FakeHeymarket(conversations=30).conversations())
