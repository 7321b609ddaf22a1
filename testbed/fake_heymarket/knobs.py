"""Every behaviour knob of the fake, in one dataclass: its type, default and allowed values.

Where the vendor's behaviour is unknown (an inclusive or exclusive ``date``, the comparison's
precision, the order inside a tie, a cap on ``limit``) it is a knob, and so are misbehaviours a
client must catch. ``configure()``, ``POST /_admin/config``, ``fake.<knob> = value`` and the
command line all go through :class:`Knobs`, whose checks run on every instance it makes.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testbed.fake_heymarket.faults import FAULT_KINDS

#: Orders the fake may give contacts that share one ``updated`` (the docs say nothing of it):
#: by id, by id descending, by id compared as text, by a stable hash of the id, or a new random
#: order on every request ("unstable").
TIE_ORDERS = ("id", "id-desc", "id-text", "hash", "unstable")
#: How the fake sorts an answer: as asked, always newest first (``ascending`` ignored), or as
#: asked and then each page shuffled.
ORDERS = ("as-asked", "newest-first", "shuffled")
#: What ``page`` does in a messages body (the docs say nothing of it): nothing, count from 0 as
#: contacts do, or count from 1 as surveys do (page 0 is then page 1).
MESSAGES_PAGES = ("ignored", "from-0", "from-1")


def _knob(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> Any:
    """A dataclass field with what the checks and the command line need to know of it."""
    limits = {"help": help, "choices": choices, "at_least": at_least, "at_most": at_most}
    return dataclasses.field(default=default, metadata=limits)


@dataclass(frozen=True)
class Knobs:
    """The fake's behaviour; frozen, so a request reads one consistent set of knobs."""

    latency: float = _knob(0.0, "seconds each API request waits before it is handled", at_least=0)
    rate_limit: int | None = _knob(
        None, "requests allowed per rate_window (none: no limit)", at_least=0
    )
    rate_window: float = _knob(60.0, "seconds of the sliding rate-limit window", at_least=0)
    retry_after: str | None = _knob(
        None,
        "Retry-After on a 429: none, seconds or an HTTP date",
        choices=(None, "seconds", "http-date"),
    )
    fail_rate: float = _knob(
        0.0, "chance that a sync request gets a fault drawn from fail_kinds", at_least=0, at_most=1
    )
    fail_kinds: tuple[str, ...] = _knob(
        ("500", "502", "503", "cut"), "the faults fail_rate draws from", choices=sorted(FAULT_KINDS)
    )
    date_exclusive: bool = _knob(False, "date keeps contacts updated after it, not at it")
    date_precision: str = _knob(
        "full",
        "compare a contacts date to updated, a messages cursor to date, or a tags, templates or"
        " conversations date to updated, in full or in whole seconds",
        choices=("full", "second"),
    )
    changes_per_request: int = _knob(0, "contacts updated after each page served", at_least=0)
    creates_per_request: int = _knob(0, "contacts created after each page served", at_least=0)
    hang_seconds: float = _knob(30.0, "how long a hang fault stalls its request", at_least=0)
    tie_order: str = _knob(
        "id",
        "order of contacts (or messages, tags, templates, conversations) sharing one timestamp;"
        " newest-first lists give the reverse",
        choices=TIE_ORDERS,
    )
    order: str = _knob("as-asked", "order of an answer", choices=ORDERS)
    max_limit: int | None = _knob(
        None,
        "most contacts, messages or surveys one answer holds whatever limit says (offsets use it)",
        at_least=1,
    )
    max_bytes: int | None = _knob(
        None,
        "most bytes of contacts or messages one answer holds (at least one record): the page is"
        " placed by the limit asked, then cut, so answers vary in length as a cap by size would",
        at_least=1,
    )
    messages_cursor: str = _knob(
        "exclusive",
        "the messages cursor keeps messages dated before it (exclusive) or at it too (inclusive)",
        choices=("exclusive", "inclusive"),
    )
    messages_cursor_field: str = _knob(
        "created_at",
        "the body field read as the messages cursor (the other one is ignored): created_at, as"
        " the narrative page says, or date, as the generated schema says",
        choices=("created_at", "date"),
    )
    messages_page: str = _knob(
        "ignored",
        "what page does for messages: nothing, skip page*limit (from-0), or skip"
        " (page-1)*limit with page 0 as 1 (from-1)",
        choices=MESSAGES_PAGES,
    )
    message_changes_per_request: int = _knob(
        0, "messages whose status and flag change (updated now) after each page", at_least=0
    )
    message_creates_per_request: int = _knob(
        0, "messages created (dated now) after each page of messages served", at_least=0
    )

    list_page_size: int = _knob(
        30,
        "tags, templates or conversations in one answer (the docs: up to 30 tags or templates;"
        " a conversations page size is undocumented; limit is ignored)",
        at_least=1,
    )
    before_cursor: str = _knob(
        "exclusive",
        "the tags, templates and conversations date cursor keeps those updated before it"
        " (exclusive) or at it too (inclusive)",
        choices=("exclusive", "inclusive"),
    )
    foreign_inbox: str = _knob(
        "403",
        "conversations of an inbox the asking member (id) is not in: a 403 for the request, or"
        " left out of the answer (empty)",
        choices=("403", "empty"),
    )
    unknown_inbox: str = _knob(
        "404",
        "conversations of an inbox that does not exist (or was removed): a 404 for the request,"
        " or left out of the answer (empty)",
        choices=("404", "empty"),
    )
    unread_filter: str = _knob(
        "only-true",
        "filters.unread in a conversations body: true keeps unread ones and false (or none)"
        " keeps all (only-true), or false (or none) keeps only read ones (selects)",
        choices=("only-true", "selects"),
    )
    inbox_invited: str = _knob(
        "boolean",
        "an inbox's invited: a boolean (narrative page) or an array of strings (generated schema)",
        choices=("boolean", "strings"),
    )
    archived_templates: str = _knob(
        "listed",
        "whether POST /v1/templates lists archived templates (listed) or leaves them out (hidden)",
        choices=("listed", "hidden"),
    )
    custom_field_name: str = _knob(
        "name",
        "the key holding a custom field's name in POST /v1/contact-fields (undocumented): name,"
        " or title as POST /v1/contacts/fields answers",
        choices=("name", "title"),
    )
    team_answer: str = _knob(
        "object",
        "what GET /v1/team answers: the team object, a 403 (a key that may not read the team),"
        " or the object without its id",
        choices=("object", "403", "no-id"),
    )
    conversation_changes_per_request: int = _knob(
        0,
        "conversations of the asked inboxes updated (now) after each page of conversations",
        at_least=0,
    )
    list_changes_per_request: int = _knob(
        0, "tags (or templates) updated (now) after each page of tags (or templates)", at_least=0
    )

    def __post_init__(self) -> None:
        """Check every knob (``fail_kinds`` may come as a JSON list: it is kept as a tuple)."""
        for name, spec in _SPECS.items():
            object.__setattr__(self, name, spec.check(getattr(self, name)))

    def changed(self, **changes: Any) -> Knobs:
        """A copy with ``changes``, all checked before any applies; unknown names are refused."""
        for name in changes:
            if name not in _SPECS:
                raise ValueError(f"unknown knob {name!r}")
        return dataclasses.replace(self, **changes)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add a ``--knob-name`` option per knob, with its type, default and allowed values."""
        for spec in _SPECS.values():
            spec.add_argument(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> Knobs:
        """The knobs given by the options :meth:`add_arguments` added."""
        return cls(**{name: getattr(args, name) for name in _SPECS})


@dataclass(frozen=True)
class _Spec:
    """One knob's checks, derived from its annotation and field metadata."""

    name: str
    default: Any
    help: str
    #: What ``isinstance`` accepts: an int is a fine float, but a bool is no int.
    types: tuple[type, ...]
    #: A tuple knob: each item is checked, a JSON list is accepted.
    sequence: bool
    choices: Sequence[Any] | None
    at_least: float | None
    at_most: float | None

    @classmethod
    def of(cls, field: dataclasses.Field[Any], hint: Any) -> _Spec:
        """The spec of a ``Knobs`` field whose type annotation is ``hint``."""
        sequence = typing.get_origin(hint) is tuple
        item = typing.get_args(hint)[0] if sequence else hint
        union = typing.get_origin(item) in (typing.Union, types.UnionType)
        options = typing.get_args(item) if union else (item,)
        accepted = tuple(
            t for option in options for t in ((int, float) if option is float else (option,))
        )
        return cls(field.name, field.default, sequence=sequence, types=accepted, **field.metadata)

    def check(self, value: Any) -> Any:
        """``value`` if it is allowed (a tuple for a sequence knob), else TypeError or ValueError."""
        if self.sequence and not isinstance(value, (list, tuple)):
            raise TypeError(f"{self.name} has the wrong type: {value!r}")
        for item in value if self.sequence else (value,):
            if not isinstance(item, self.types) or (
                isinstance(item, bool) and bool not in self.types
            ):
                raise TypeError(f"{self.name} has the wrong type: {value!r}")
            if self.choices is not None and item not in self.choices:
                allowed = ", ".join(repr(c) for c in self.choices)
                raise ValueError(f"{self.name} must be one of {allowed}, got {item!r}")
            if item is not None and self.at_least is not None and item < self.at_least:
                raise ValueError(f"{self.name} must be at least {self.at_least:g}, got {item!r}")
            if item is not None and self.at_most is not None and item > self.at_most:
                raise ValueError(f"{self.name} must be at most {self.at_most:g}, got {item!r}")
        return tuple(value) if self.sequence else value

    def add_argument(self, parser: argparse.ArgumentParser) -> None:
        """Add this knob's ``--knob-name`` option to ``parser``."""
        flag = "--" + self.name.replace("_", "-")
        if bool in self.types:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=self.default, help=self.help)
            return
        choices = None if self.choices is None else [c for c in self.choices if c is not None]
        kind = next(t for t in (float, int, str) if t in self.types)
        options: dict[str, Any] = {"type": kind, "choices": choices, "help": self.help}
        if self.sequence:  # its choices go in the help, as they would swamp the usage line
            options.update(nargs="+", metavar=self.name.upper())
            if choices:
                options["help"] = f"{self.help}, of: {', '.join(choices)}"
        parser.add_argument(flag, default=self.default, **options)


_SPECS = {
    field.name: _Spec.of(field, typing.get_type_hints(Knobs)[field.name])
    for field in dataclasses.fields(Knobs)
}
