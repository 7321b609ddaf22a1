"""``/_admin/`` endpoints, so a harness in another process can drive the fake over HTTP.

Each is one handler in :data:`ADMIN_ROUTES`, given the JSON object the request sent; it returns
bytes to send as they are, or a value to send as JSON. Loopback clients only (the server checks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.fake_heymarket.fake import FakeHeymarket


def _contacts(fake: FakeHeymarket, body: dict[str, Any]) -> bytes:
    return fake.store.all_json().encode("utf-8", "surrogatepass")


def _stats(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return {"contacts": len(fake.store), "messages": fake.message_count(), **fake.traffic.stats()}


def _update(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return {"ids": fake.update_contacts(body.get("n"), body.get("ids"))}


def _create(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return {"ids": fake.create_contacts(int(body.get("n", 1)))}


def _delete(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    fake.delete_contacts(body["ids"])
    return {"deleted": len(body["ids"])}


def _faults(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return {"queued": fake.faults.queue(body["kinds"])}


def _config(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    fake.configure(**body)
    return dataclasses.asdict(fake.knobs)


def _messages(fake: FakeHeymarket, body: dict[str, Any]) -> bytes:
    return fake.message_store.all_json().encode("utf-8", "surrogatepass")


def _create_message(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return fake.create_message(**body)


def _broadcast(fake: FakeHeymarket, body: dict[str, Any]) -> list[dict[str, Any]]:
    return fake.broadcast(int(body["size"]), body.get("at"))


def _change_message(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return fake.change_message(body["id"], **body.get("fields", {}))


def _raw_message(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    text = body["text"]
    if not isinstance(text, str):
        raise TypeError("text must be a string holding the message's JSON")
    fake.add_raw_message_json(text)
    return {"messages": fake.message_count()}


def _account_list(name: str) -> Callable[[FakeHeymarket, dict[str, Any]], Any]:
    return lambda fake, body: getattr(fake, name)()


def _create_tag(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return fake.create_tag(**body.get("fields", {}))


def _delete_tag(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    fake.delete_tag(body["id"])
    return {"deleted": body["id"]}


def _change_conversation(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    return fake.change_conversation(body["id"], **body.get("fields", {}))


def _delete_inbox(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    fake.delete_inbox(body["id"])
    return {"deleted": body["id"]}


def _remove_member(fake: FakeHeymarket, body: dict[str, Any]) -> dict[str, Any]:
    fake.remove_member_from_inbox(body["user_id"], body["inbox_id"])
    return {"inbox_id": body["inbox_id"], "removed": body["user_id"]}


ADMIN_ROUTES: dict[tuple[str, str], Callable[[FakeHeymarket, dict[str, Any]], Any]] = {
    ("GET", "/_admin/contacts"): _contacts,
    ("GET", "/_admin/stats"): _stats,
    ("POST", "/_admin/update"): _update,
    ("POST", "/_admin/create"): _create,
    ("POST", "/_admin/delete"): _delete,
    ("POST", "/_admin/faults"): _faults,
    ("POST", "/_admin/config"): _config,
    ("GET", "/_admin/messages"): _messages,
    ("POST", "/_admin/messages/create"): _create_message,
    ("POST", "/_admin/messages/broadcast"): _broadcast,
    ("POST", "/_admin/messages/change"): _change_message,
    ("POST", "/_admin/messages/raw"): _raw_message,
    ("GET", "/_admin/inboxes"): _account_list("inboxes"),
    ("GET", "/_admin/team"): _account_list("team"),
    ("GET", "/_admin/tags"): _account_list("tags"),
    ("GET", "/_admin/templates"): _account_list("templates"),
    ("GET", "/_admin/surveys"): _account_list("surveys"),
    ("GET", "/_admin/custom-fields"): _account_list("custom_fields"),
    ("GET", "/_admin/conversations"): _account_list("conversations"),
    ("POST", "/_admin/tags/create"): _create_tag,
    ("POST", "/_admin/tags/delete"): _delete_tag,
    ("POST", "/_admin/conversations/change"): _change_conversation,
    ("POST", "/_admin/inboxes/delete"): _delete_inbox,
    ("POST", "/_admin/inboxes/remove-member"): _remove_member,
}
