"""Each stream's fields, declared once.

The stream's JSON schema is built here from its table; the typed page decoder and the normaliser
(``normalize``) are built from the same table, so a new field is one line in it.
"""

from __future__ import annotations

import enum
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th


class Kind(enum.Enum):
    """What a field holds, which decides its schema type and how its values are normalised."""

    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    #: A date-time, sent on in the fixed-width UTC form ``normalize.TIMESTAMP_FORMAT``.
    TIMESTAMP = "timestamp"
    #: Free-form JSON, loaded as one JSON value.
    JSON_OBJECT = "JSON object"
    #: Free-form JSON; a lone value is sent on as a list of one.
    JSON_ARRAY = "JSON array"
    #: A list of objects whose fields (``Field.items``) are typed: other keys are dropped.
    OBJECT_ARRAY = "array of typed objects"


#: The kinds an ``OBJECT_ARRAY`` item's fields may have.
SCALARS = frozenset((Kind.INTEGER, Kind.STRING, Kind.BOOLEAN, Kind.TIMESTAMP))

#: Without a ``properties`` key (``ObjectType`` adds an empty one), so that flattening keeps the
#: object whole as one JSON column: an empty ``properties`` makes the SDK spread it into
#: ``<field>__<key>`` keys that no schema declares, and targets drop them.
_JSON_OBJECT = th.CustomType({"type": ["object", "null"], "additionalProperties": True})
#: Item schemas are left out on purpose: warehouse loaders (target-postgres among them) then store
#: the list as one JSON value (``jsonb``), which JSON operators can query, instead of a SQL array
#: of JSON values. The normaliser still types an ``OBJECT_ARRAY``'s items.
_JSON_ARRAY = th.CustomType({"type": ["array", "null"]})

_SCHEMA_TYPES: dict[Kind, t.Any] = {
    Kind.INTEGER: th.IntegerType,
    Kind.STRING: th.StringType,
    Kind.BOOLEAN: th.BooleanType,
    Kind.TIMESTAMP: th.DateTimeType,
    Kind.JSON_OBJECT: _JSON_OBJECT,
    Kind.JSON_ARRAY: _JSON_ARRAY,
    Kind.OBJECT_ARRAY: _JSON_ARRAY,
}


@dataclass(frozen=True)
class Field:
    """One field of a record.

    ``nullable`` only matters for a required field: an optional one may always be null (the
    normaliser nulls what it cannot use). ``items`` are an ``OBJECT_ARRAY``'s item fields.
    """

    name: str
    kind: Kind
    description: str | None = None
    required: bool = False
    nullable: bool = True
    items: tuple[Field, ...] = ()


class RecordSpec:
    """One stream's record: its fields, in the order its schema lists them, and its key.

    ``noun`` names a record in warnings ("Contact 5: rev is not an integer"). ``key`` is the
    stream's primary key: integer fields, required and never null.
    """

    def __init__(self, noun: str, *fields: Field, key: tuple[str, ...] = ()) -> None:
        self.noun = noun
        self.fields = fields
        self.key = key
        self.names = frozenset(field.name for field in fields)
        if len(self.names) < len(fields):
            msg = f"{noun}: a field is declared twice"
            raise ValueError(msg)
        by_name = {field.name: field for field in fields}
        for name in key:
            field = by_name.get(name)
            if field is None or field.kind is not Kind.INTEGER:
                msg = f"{noun}: key {name}: not a declared integer field"
                raise ValueError(msg)
            if not field.required or field.nullable:
                msg = f"{noun}: key {name}: must be required and never null"
                raise ValueError(msg)
        for field in fields:
            if field.name == "id" and field.kind is not Kind.INTEGER:
                # The normaliser reads integers first, id first: the others' warnings name it.
                msg = f"{noun}: id must be an integer"
                raise ValueError(msg)
            if (field.kind is Kind.OBJECT_ARRAY) != bool(field.items):
                msg = f"{noun}: {field.name}: an OBJECT_ARRAY, and only one, has items"
                raise ValueError(msg)
            if any(item.kind not in SCALARS for item in field.items):
                msg = f"{noun}: {field.name}: items are integers, text, booleans or timestamps"
                raise ValueError(msg)

    def json_schema(self) -> dict[str, t.Any]:
        """The stream's schema: a new dict each time, as the SDK and tests may change it."""
        return th.PropertiesList(
            *(
                th.Property(
                    field.name,
                    _SCHEMA_TYPES[field.kind],
                    required=field.required,
                    nullable=field.nullable,
                    description=field.description,
                )
                for field in self.fields
            )
        ).to_dict()


#: The Heymarket team (account) a record came from. Heymarket does not say that ids are unique
#: across accounts, so every stream's key is the account's id and the object's: rows of several
#: accounts can share one table. Heymarket's own value where the object carries one (contacts,
#: tags, templates, custom fields; inboxes' ``team``), else the account's (``GET /v1/team``).
TEAM_ID = Field(
    "team_id",
    Kind.INTEGER,
    "The Heymarket team (account) it belongs to (GET /v1/team's id); with id, the key",
    required=True,
    nullable=False,
)
#: Every stream's primary key.
ACCOUNT_KEY = ("team_id", "id")

CONTACTS = RecordSpec(
    "contact",
    Field("id", Kind.INTEGER, "Contact ID", required=True, nullable=False),
    # Nullable, so that a target loads the rare contact without a usable time.
    Field("updated", Kind.TIMESTAMP, "Last change (UTC)", required=True),
    Field("created", Kind.TIMESTAMP, "Creation time (UTC)"),
    Field("first", Kind.STRING),
    Field("last", Kind.STRING),
    Field("display_name", Kind.STRING),
    Field("phone", Kind.STRING, "E.164 digits without the plus"),
    Field("email", Kind.STRING),
    Field("avatar", Kind.STRING),
    Field("external_id", Kind.STRING),
    Field("external_ref", Kind.STRING),
    Field("type", Kind.STRING),
    Field("op", Kind.STRING, "Last operation performed"),
    Field("rev", Kind.INTEGER, "Incremented on every write"),
    Field("shared", Kind.BOOLEAN),
    Field("is_opted_out", Kind.BOOLEAN),
    Field("creator_id", Kind.INTEGER),
    Field("inbox_id", Kind.INTEGER),
    Field("parent_id", Kind.INTEGER),
    TEAM_ID,
    Field("assigned_user_id", Kind.INTEGER),
    Field("custom", Kind.JSON_OBJECT, "Custom fields keyed by custom-field id"),
    Field(
        "note",
        Kind.OBJECT_ARRAY,
        "Notes: objects {date (UTC date-time), id, name, text, user_id}",
        items=(
            Field("date", Kind.TIMESTAMP),
            Field("id", Kind.STRING),
            Field("name", Kind.STRING),
            Field("text", Kind.STRING),
            Field("user_id", Kind.INTEGER),
        ),
    ),
    Field(
        "tags",
        Kind.JSON_ARRAY,
        "Tags: objects {id, tag, color, team_id, created, updated, rev} or plain values",
    ),
    key=ACCOUNT_KEY,
)

MESSAGES = RecordSpec(
    "message",
    Field("id", Kind.INTEGER, "Message ID", required=True, nullable=False),
    TEAM_ID,
    # Nullable, so that a target loads the rare message without a usable time.
    Field("date", Kind.TIMESTAMP, "When the message was sent or received (UTC)", required=True),
    Field("updated", Kind.TIMESTAMP, "Last change, e.g. of status or flag (UTC)"),
    Field("conversation_id", Kind.INTEGER, "The conversation's id (conversation.id)"),
    Field("inbox_id", Kind.INTEGER, "The conversation's inbox (conversation.inbox)"),
    Field("text", Kind.STRING),
    Field("media", Kind.STRING, "Media URL of an MMS"),
    Field("phone", Kind.STRING, "E.164 digits without the plus"),
    Field("type", Kind.STRING),
    Field("status", Kind.STRING, "Delivery status"),
    Field("user", Kind.INTEGER, "The member who sent it (team_members.id); null when inbound"),
    Field("author", Kind.STRING),
    Field("broadcast_id", Kind.INTEGER, "The broadcast it was part of, if any"),
    Field("flagged", Kind.BOOLEAN, "Flagged for review"),
    Field("target", Kind.STRING),
    Field("local_id", Kind.STRING),
    Field("link_url", Kind.STRING),
    Field("super", Kind.INTEGER),
    Field("support", Kind.BOOLEAN),
    Field("custom", Kind.JSON_OBJECT, "Custom data: {data, type}"),
    Field("conversation", Kind.JSON_OBJECT, "The conversation, as Heymarket embeds it"),
    key=ACCOUNT_KEY,
)

INBOXES = RecordSpec(
    "inbox",
    Field("id", Kind.INTEGER, "Inbox ID", required=True, nullable=False),
    TEAM_ID,
    Field("name", Kind.STRING),
    Field("team", Kind.INTEGER, "The team it belongs to"),
    Field("members", Kind.JSON_ARRAY, "User ids of its members (team_members.id)"),
    Field("phones", Kind.JSON_ARRAY, "All its phone numbers"),
    Field("phone", Kind.STRING, "Its primary phone number"),
    Field("auto_assignable", Kind.BOOLEAN),
    Field("forward_number", Kind.STRING),
    Field("widget_code", Kind.STRING),
    Field("widget_settings", Kind.JSON_OBJECT),
    Field("allowed_domains", Kind.JSON_ARRAY),
    Field("invited", Kind.JSON_ARRAY, "A boolean (narrative docs) or strings (schema), as a list"),
    Field("bco_chats", Kind.JSON_ARRAY),
    Field("op", Kind.STRING),
    Field("rev", Kind.INTEGER),
    key=ACCOUNT_KEY,
)

TEAM_MEMBERS = RecordSpec(
    "team member",
    Field(
        "id",
        Kind.INTEGER,
        "User ID (messages.user, inboxes.members)",
        required=True,
        nullable=False,
    ),
    TEAM_ID,
    Field("name", Kind.STRING),
    Field("role", Kind.STRING),
    key=ACCOUNT_KEY,
)

TAGS = RecordSpec(
    "tag",
    Field("id", Kind.INTEGER, "Tag ID", required=True, nullable=False),
    Field("updated", Kind.TIMESTAMP, "Last change (UTC)"),
    Field("created", Kind.TIMESTAMP, "Creation time (UTC)"),
    Field("tag", Kind.STRING, "The label"),
    Field("color", Kind.STRING),
    TEAM_ID,
    Field("rev", Kind.INTEGER, "Incremented on every write"),
    Field("uuid", Kind.STRING),
    key=ACCOUNT_KEY,
)

TEMPLATES = RecordSpec(
    "template",
    Field("id", Kind.INTEGER, "Template ID", required=True, nullable=False),
    Field("updated", Kind.TIMESTAMP, "Last change (UTC)"),
    Field("created", Kind.TIMESTAMP, "Creation time (UTC)"),
    Field("name", Kind.STRING),
    Field("content", Kind.JSON_OBJECT, "GalleryContent: {text, gallery}"),
    Field("local_id", Kind.STRING),
    Field("uuid", Kind.STRING),
    TEAM_ID,
    Field("creator_id", Kind.INTEGER),
    Field("shared", Kind.BOOLEAN),
    Field("archived", Kind.BOOLEAN),
    Field("rev", Kind.INTEGER, "Incremented on every write"),
    key=ACCOUNT_KEY,
)

SURVEYS = RecordSpec(
    "survey",
    Field("id", Kind.INTEGER, "Survey ID", required=True, nullable=False),
    TEAM_ID,
    Field("name", Kind.STRING),
    Field("type", Kind.STRING, "e.g. nps, csat"),
    Field("question", Kind.STRING, "The opening question"),
    Field("created", Kind.TIMESTAMP, "Creation time (UTC)"),
    Field("updated", Kind.TIMESTAMP, "Last change (UTC)"),
    key=ACCOUNT_KEY,
)

CUSTOM_FIELDS = RecordSpec(
    "custom field",
    Field(
        "id",
        Kind.INTEGER,
        "Custom field ID: the key in contacts.custom",
        required=True,
        nullable=False,
    ),
    TEAM_ID,
    Field("name", Kind.STRING, "Its name (or title)"),
    Field("details", Kind.JSON_OBJECT, "Everything else Heymarket says of it (shape undocumented)"),
    key=ACCOUNT_KEY,
)

CONVERSATIONS = RecordSpec(
    "conversation",
    Field(
        "id",
        Kind.INTEGER,
        "Conversation ID (messages.conversation_id)",
        required=True,
        nullable=False,
    ),
    TEAM_ID,
    Field("updated", Kind.TIMESTAMP, "Last change (UTC)", required=True),
    Field("inbox", Kind.INTEGER, "Its inbox (inboxes.id)"),
    # The partition a conversation was listed in, which the SDK adds to each record.
    Field("inbox_id", Kind.INTEGER, "The inbox it was listed in (inboxes.id)"),
    Field("closed", Kind.BOOLEAN, "Listed among the inbox's closed conversations"),
    Field("created", Kind.TIMESTAMP, "Creation time (UTC)"),
    Field("status", Kind.STRING),
    Field("name", Kind.STRING),
    Field("target", Kind.STRING),
    Field("channel", Kind.STRING),
    Field("type", Kind.STRING),
    Field("assigned", Kind.INTEGER, "The member assigned (team_members.id)"),
    Field("creator", Kind.INTEGER),
    Field("members", Kind.JSON_ARRAY, "Members: objects {id, name}"),
    Field("blocked", Kind.BOOLEAN),
    Field("muted", Kind.BOOLEAN),
    Field("replied", Kind.BOOLEAN),
    Field("support", Kind.BOOLEAN),
    Field("email_noti", Kind.BOOLEAN),
    Field("read", Kind.INTEGER),
    Field("last_inbound", Kind.INTEGER, "Unix time of the last inbound message"),
    Field("snooze_till", Kind.TIMESTAMP),
    Field("local_id", Kind.STRING),
    Field("noreply", Kind.STRING),
    Field("op", Kind.STRING),
    Field("super", Kind.INTEGER),
    key=ACCOUNT_KEY,
)
