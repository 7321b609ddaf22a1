"""Deterministic (per seed), realistic contacts, written straight to Go's JSON for speed.

Names in many scripts, emoji, empty strings, zero dates, long notes, nested custom fields, tags
as strings or objects: what a real account holds and a client must carry through unchanged.
"""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Any

from testbed.fake_heymarket.wire import format_us, go_json, is_int

#: Go's zero ``time.Time``, which the API writes for a date never set.
UNSET_TIME = "0001-01-01T00:00:00Z"
_FIRST = (
    "James", "Mary", "José", "Zoë", "Łukasz", "Nguyễn", "李", "محمد", "Aoife", "Søren",
    "François", "Priya", "Dmitri", "Ana", "Björn", "Chloé", "Kwame", "Yuki", "Olga", "Mateo",
    "Siobhán", "Ngozi", "Amélie", "Jürgen", "Émile", "Ines", "Oleksandr", "Mei", "Tomás", "Sam",
)  # fmt: skip
_LAST = (
    "Smith", "García", "Müller", "Nguyễn", "李", "O'Brien", "Kowalski", "Ødegaard", "Абрамов",
    "الحسن", "Papadopoulos", "Dubois", "Tanaka", "Okafor", "Rossi", "Fernández", "Novák",
    "Hernández", "Kim", "Johansson", "", "Çelik", "Đorđević", "Wright-Phillips",
)  # fmt: skip
_EMOJI = ("🦄", "🌮", "⭐", "🚀", "👩🏽‍💻", "🇫🇷")
_DOMAINS = ("gmail.com", "example.com", "acme.io", "yahoo.co.uk", "outlook.com", "empresa.mx")
#: The account's team id (``GET /v1/team``), which contacts, tags, templates, custom fields and
#: inboxes carry: the default of ``FakeHeymarket(team_id=...)``. Two fakes with different team ids
#: and the same seed are two accounts whose objects share their ids.
TEAM_ID = 4242
#: The account's users ``(id, name)``: the team's members (``GET /v1/team``), contacts' creators
#: and assignees, messages' senders, conversations' members.
USERS = ((3101, "Ana Ops"), (3102, "Ben Sales"), (3117, "Chloé Support"), (3150, "李 Wei"))
#: Each team member's ``role`` in ``GET /v1/team``.
ROLES = {3101: "admin", 3102: "member", 3117: "member", 3150: "member"}


def _widget(name: str, phone: str, position: int) -> dict[str, Any]:
    return {
        "background_color": "#ffffff",
        "button_color": "#2f80ed",
        "fab_background_color": "#2f80ed",
        "fab_text_color": "#ffffff",
        "message": f"Text {name} — we usually reply within minutes.",
        "name": name,
        "phone": phone,
        "position": position,
        "preview_enabled": position == 1,
        "title_background_color": "#1b1f3b",
        "title_text_color": "#ffffff",
        "tos": "Msg & data rates may apply. Reply STOP to opt out.",
    }


#: The account's inboxes, with every field either inbox page documents (``invited`` as the
#: narrative page's boolean; the fake can serve it as the generated schema's strings): what
#: ``GET /v1/inboxes`` lists, contacts' ``inbox_id`` and conversations' ``inbox`` point at.
#: ``members`` are user ids from :data:`USERS`; a conversation's members are its inbox's.
INBOXES = (
    {
        "allowed_domains": ["acme-dental.example", "www.acme-dental.example"],
        "auto_assignable": True,
        "bco_chats": False,
        "forward_number": "15105550999",
        "id": 1201,
        "invited": True,
        "members": [3102, 3101],
        "name": "Sales",
        "op": "update",
        "phone": "15105550100",
        "phones": ["15105550100", "15105550110"],
        "rev": 7,
        "team": TEAM_ID,
        "widget_code": "hm-w-1201-3f9a",
        "widget_settings": _widget("Sales", "15105550100", 1),
    },
    {
        "allowed_domains": [],
        "auto_assignable": False,
        "bco_chats": True,
        "forward_number": None,
        "id": 1202,
        "invited": False,
        "members": [3117, 3101, 3150],
        "name": "Support ☎",
        "op": "update",
        "phone": "15105550101",
        "phones": ["15105550101"],
        "rev": 12,
        "team": TEAM_ID,
        "widget_code": "",
        "widget_settings": _widget("Support ☎", "15105550101", 2),
    },
    {
        "allowed_domains": ["acme-dental.example"],
        "auto_assignable": True,
        "bco_chats": False,
        "forward_number": "",
        "id": 1305,
        "invited": True,
        "members": [3150, 3102],
        "name": "Marketing",
        "op": "create",
        "phone": "14155550199",
        "phones": ["14155550199"],
        "rev": 1,
        "team": TEAM_ID,
        "widget_code": "hm-w-1305-a07c",
        "widget_settings": _widget("Marketing", "14155550199", 1),
    },
)
_USERS = USERS
_NOTE_TEXTS = (
    "Called, left voicemail.",
    "Prefers SMS after 5pm 📱",
    "Line one\nLine two\n\nLine four",
    "<b>VIP</b> & partner -- handle with care",
    'He said "ok" \\ then hung up',
    "Rendez-vous à 15h — confirmé ✅",
    "Renewal due; send quote.\r\nCC finance.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40,
)
_TAG_NAMES = (
    "vip", "lead", "customer", "churn-risk", "newsletter", "Événement 2024", "🔥 hot",
    "wholesale", "partner", "do-not-call", "support", "beta",
)  # fmt: skip
_OPS = ("update", "update", "update", "import", "create", "merge")
_TIERS = ("Enterprise", "SMB", "Mid-Market")


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


class ContactGenerator:
    """Contacts as JSON text, built from pre-encoded fragments: several times faster than a dict.

    The text is byte-identical to ``go_json`` of the parsed result (a test checks this), so a
    stored contact is only ever parsed when it is changed.
    """

    def __init__(self, rng: random.Random, team_id: int = TEAM_ID) -> None:
        self.rng = rng
        self.random = rng.random
        self.team_id = team_id
        self.first = [go_json(name) for name in _FIRST]
        self.last = [go_json(name) for name in _LAST]
        self.display = [[go_json(f"{first} {last}".strip()) for last in _LAST] for first in _FIRST]
        self.local = [
            [".".join(p for p in (_ascii(first), _ascii(last)) if p) or "user" for last in _LAST]
            for first in _FIRST
        ]
        self.users = [(uid, go_json(name)) for uid, name in _USERS]
        self.texts = [go_json(text) for text in _NOTE_TEXTS]
        self.emoji = [go_json(emoji) for emoji in _EMOJI]
        self.tag_names = [go_json(name) for name in _TAG_NAMES]
        tag_time = format_us(1_600_000_000_000_000)
        self.tags = [
            go_json(
                {
                    "id": 500 + i,
                    "tag": name,
                    "color": f"#{(i * 2654435761) % 0xFFFFFF:06x}",
                    "team_id": team_id,
                    "created": tag_time,
                    "updated": tag_time if i % 3 else format_us(1_650_000_000_500_000),
                    "rev": 1 + i % 3,
                }
            )
            for i, name in enumerate(_TAG_NAMES)
        ]

    def pick(self, n: int) -> int:
        """Return a uniform index below ``n``, far cheaper than ``randrange``."""
        return int(self.random() * n)

    def custom(self) -> str:
        """The ``custom`` object: often empty, else a tier and now and then dates, nesting, lists."""
        r, pick = self.random, self.pick
        if r() < 0.4:
            return "{}"
        pairs = [f'"12":"{_TIERS[pick(3)]}"']
        if r() < 0.5:
            pairs.append(f'"47":"2024-{1 + pick(12):02d}-{1 + pick(28):02d}"')
        if r() < 0.3:
            pairs.append(f'"53":"{pick(1000)}"')
        if r() < 0.1:
            pairs.append(f'"88":{{"source":"web","utm":{{"campaign":"spring","n":{pick(9)}}}}}')
        if r() < 0.05:
            pairs.append(f'"91":["a","b",{self.emoji[pick(len(_EMOJI))]}]')
        if r() < 0.05:
            pairs.append('"102":""')
        return "{" + ",".join(pairs) + "}"

    def notes(self, updated_us: int) -> str:
        """The ``note`` list: mostly empty, else up to 3, some multi-line, long or zero-dated."""
        r, pick = self.random, self.pick
        roll = r()
        count = 0 if roll < 0.6 else 1 if roll < 0.85 else 2 if roll < 0.95 else 3
        notes = []
        for _ in range(count):
            user_id, name = self.users[pick(len(_USERS))]
            when = UNSET_TIME if r() < 0.1 else format_us(updated_us - pick(10**12))
            notes.append(
                f'{{"date":"{when}","id":"{self.rng.getrandbits(48):012x}","name":{name},'
                f'"text":{self.texts[pick(len(_NOTE_TEXTS))]},"user_id":{user_id}}}'
            )
        return "[" + ",".join(notes) + "]"

    def tag_list(self) -> str:
        """The ``tags`` list: half empty, rarely bare names, else tag objects."""
        roll = self.random()
        if roll < 0.5:
            return "[]"
        pool = self.tag_names if roll < 0.53 else self.tags
        first, count = self.pick(len(pool)), 1 + self.pick(5)
        return "[" + ",".join(pool[(first + i) % len(pool)] for i in range(count)) + "]"

    def contact(self, cid: int, updated_us: int, op: str, rev: int) -> str:
        """One contact as JSON: every field of the vendor's v2 page, plus ``is_opted_out``."""
        r, pick = self.random, self.pick
        fi, li = pick(len(_FIRST)), pick(len(_LAST))
        roll = r()
        if roll < 0.05:
            display = go_json(f"{_FIRST[fi]} {_LAST[li]}".strip() + " " + _EMOJI[pick(6)])
        else:
            display = '""' if roll < 0.1 else self.display[fi][li]
        email = "" if r() < 0.2 else f"{self.local[fi][li]}{cid % 97}@{_DOMAINS[pick(6)]}"
        updated = format_us(updated_us)
        if op == "create":
            created = updated
        elif r() < 0.03:
            created = UNSET_TIME
        else:
            created = format_us(updated_us - pick(400 * 86_400_000_000))
        avatar = "" if r() < 0.7 else f"https://cdn.heymarket.com/a/{cid}.jpg"
        creator = 0 if r() < 0.2 else _USERS[pick(len(_USERS))][0]
        external_id = "" if r() < 0.6 else f"crm-{pick(10**6):06d}"
        external_ref = "" if r() < 0.8 else f"sf:003{self.rng.getrandbits(40):010X}"
        parent = 0 if r() < 0.92 else max(1, cid - 1 - pick(5000))
        roll = r()
        if roll < 0.85:
            phone = f"1{201 + pick(789)}{pick(10_000_000):07d}"
        elif roll < 0.95:
            phone = f"447{pick(1_000_000_000):09d}"
        else:
            phone = f"52{pick(10_000_000_000):010d}"
        assigned = 0 if r() < 0.5 else _USERS[pick(len(_USERS))][0]
        return (
            f'{{"avatar":"{avatar}","created":"{created}","creator_id":{creator},'
            f'"custom":{self.custom()},"display_name":{display},"email":"{email}",'
            f'"external_id":"{external_id}","external_ref":"{external_ref}",'
            f'"first":{self.first[fi]},"id":{cid},"inbox_id":{INBOXES[pick(3)]["id"]},'
            f'"last":{self.last[li]},"note":{self.notes(updated_us)},"op":"{op}",'
            f'"parent_id":{parent},"phone":"{phone}","rev":{rev},'
            f'"shared":{"true" if r() < 0.3 else "false"},"team_id":{self.team_id},'
            f'"type":"contact","updated":"{updated}","assigned_user_id":{assigned},'
            f'"tags":{self.tag_list()},"is_opted_out":{"true" if r() < 0.05 else "false"}}}'
        )

    def initial(self, cid: int, updated_us: int) -> str:
        """A contact the account held before the fake started, so with any ``op`` and ``rev``."""
        op = _OPS[self.pick(len(_OPS))]
        rev = 1 if op == "create" else 2 + self.pick(28)
        return self.contact(cid, updated_us, op, rev)

    def edit(self, record: dict[str, Any]) -> None:
        """What a user's edit changes in ``record``: rev+1, a new first name, tier and opt-out.

        The caller sets ``updated``; raw records of any shape are edited without failing.
        """
        rev = record.get("rev")
        record["rev"] = rev + 1 if is_int(rev) else 1
        record["op"] = "update"
        first = _FIRST[self.pick(len(_FIRST))]
        record["first"] = first
        record["display_name"] = f"{first} {record.get('last', '')}".strip()
        custom = record.get("custom")
        if isinstance(custom, dict):
            record["custom"] = {**custom, "12": _TIERS[self.pick(len(_TIERS))]}
        record["is_opted_out"] = self.random() < 0.05

    def advance(self, us: int) -> int:
        """Step to the next distinct ``updated``: sub-second to hours on, 0/3/6 fraction digits."""
        r, pick = self.random, self.pick
        roll = r()
        if roll < 0.1:
            return us + 1 + pick(999_999)
        if roll < 0.75:
            gap = 1 + pick(60)
        elif roll < 0.97:
            gap = 60 + pick(1140)
        else:
            gap = 3600 + pick(3 * 3600)
        roll = r()
        frac = 0 if roll < 0.4 else pick(1000) * 1000 if roll < 0.65 else pick(1_000_000)
        return (us // 1_000_000 + gap) * 1_000_000 + frac

    def timeline(self, n: int, start_us: int, tie_groups: int, tie_size: int) -> list[int]:
        """``n`` ascending ``updated`` values: small 2-5 ties now and then, and bulk-import ties."""
        r, pick = self.random, self.pick
        sizes = []
        remaining = n - tie_groups * tie_size
        while remaining > 0:
            size = min(remaining, 2 + pick(4) if r() < 0.04 else 1)
            sizes.append(size)
            remaining -= size
        for _ in range(tie_groups):
            sizes.insert(pick(len(sizes) + 1), tie_size)
        out: list[int] = []
        us = start_us
        for i, size in enumerate(sizes):
            if i:
                us = self.advance(us)
            out.extend([us] * size)
        return out

    def ids(self, n: int, first: int) -> list[int]:
        """Ascending ids with gaps (deleted contacts), shuffled within small windows."""
        r, pick = self.random, self.pick
        ids = []
        cid = first
        for _ in range(n):
            ids.append(cid)
            cid += 1 if r() < 0.9 else 2 + pick(5)
        for lo in range(0, n, 16):
            window = ids[lo : lo + 16]
            self.rng.shuffle(window)
            ids[lo : lo + 16] = window
        return ids


# ---- messages

_MESSAGE_TEXTS = (
    "Hi! Your appointment is confirmed for tomorrow at 3pm. Reply C to cancel.",
    "Thanks, see you then 👍",
    "Can you send the invoice again?",
    "STOP",
    "Yes",
    "¿Tienen disponibilidad el sábado?",
    "Merci beaucoup 🙏",
    "Your verification code is 482913",
    "<b>Spring sale</b>: 20% off & free shipping >> https://heym.kt/s4le",
    "Line one\nLine two\n\nLine four",
    'He said "ok" \\ then hung up',
    "李先生 您的订单已发货。",
    "Running 10 min late, sorry!\r\nTraffic.",
    "Customer mentioned they called in last week.",
    "Thank you for contacting Support ☎. We will get back to you shortly. " * 12,
)
_BROADCAST_TEXTS = (
    "Reminder: our store closes early on Friday. Reply STOP to opt out.",
    "🎉 New arrivals this week! Show this text for 10% off.",
    "Your monthly statement is ready: https://heym.kt/stmt",
)
#: A generated message's ``updated`` is at most this long after its ``date`` (a read receipt);
#: only edits made later (``change``) move it further.
UPDATE_LAG_US = 45 * 60 * 1_000_000
_OUTBOUND = ("sent", "delivered", "failed")
_INBOUND = ("received", "read")


def next_status(status: Any) -> str:
    """A later delivery status for an edited message (outbound stays outbound, inbound inbound)."""
    if status == "received":
        return "read"
    if status == "read":
        return "received"
    return {"sent": "delivered", "delivered": "failed", "failed": "sent"}.get(status, "delivered")


class MessageGenerator:
    """Messages (and the conversations they embed) as Go's JSON text, fragment by fragment.

    The conversations are a pool made once; each message embeds its conversation's stored text.
    Like :class:`ContactGenerator`, the text is byte-identical to ``go_json`` of its parse.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random
        self.texts = [go_json(text) for text in _MESSAGE_TEXTS]
        self.broadcast_texts = [go_json(text) for text in _BROADCAST_TEXTS]
        self.users = [(uid, go_json(name)) for uid, name in USERS]
        self.user_name = dict(USERS)
        self.user_json = {uid: (uid, go_json(name)) for uid, name in USERS}
        #: Per conversation: channel, target (JSON), phone, contact name (JSON), members.
        self.meta: list[tuple[str, str, str, str, list[tuple[int, str]]]] = []
        self.conversation_json: list[str] = []

    def pick(self, n: int) -> int:
        """Return a uniform index below ``n``."""
        return int(self.random() * n)

    def conversations(
        self, n: int, first_id: int, spans: list[tuple[int, int]], tie_size: int = 0
    ) -> None:
        """Make the pool: conversation ``i`` holds messages dated ``spans[i]`` (first, last).

        Each belongs to one inbox, and its members (and assignee, and creator) are that inbox's.
        Its ``read`` is when it was last read (Unix seconds): it is unread when ``last_inbound``
        is later. The first ``tie_size`` are closed conversations of the first inbox sharing one
        ``updated`` (their latest message's date), a tie larger than a page.
        """
        r, pick = self.random, self.pick
        tie_us = max((spans[i][1] for i in range(min(tie_size, n))), default=0)
        for i in range(n):
            first_us, last_us = spans[i]
            fi, li = pick(len(_FIRST)), pick(len(_LAST))
            name = f"{_FIRST[fi]} {_LAST[li]}".strip()
            if r() < 0.85:
                channel = "sms"
                phone = f"1{201 + pick(789)}{pick(10_000_000):07d}"
                target = phone
            else:
                channel = "email"
                phone = ""
                local = ".".join(p for p in (_ascii(_FIRST[fi]), _ascii(_LAST[li])) if p)
                target = f"{local or 'user'}@{_DOMAINS[pick(len(_DOMAINS))]}"
            inbox = INBOXES[0] if i < tie_size else INBOXES[pick(len(INBOXES))]
            pool = inbox["members"]
            chosen = self.rng.sample(pool, 1 + pick(len(pool)))
            members = [self.user_json[uid] for uid in chosen]
            group = channel == "sms" and r() < 0.05
            snooze = UNSET_TIME if r() < 0.9 else format_us(last_us + pick(7 * 86_400_000_000))
            created_us = first_us - pick(30 * 86_400_000_000)
            updated_us = tie_us if i < tie_size else max(last_us, created_us)
            last_inbound = 0 if r() < 0.2 else last_us // 1_000_000 - pick(86_400)
            roll = r()
            if roll < 0.7:  # read since its last inbound message
                read = last_inbound + pick(3600) if last_inbound else updated_us // 1_000_000
            else:  # unread, or never read
                read = 0 if roll < 0.8 or not last_inbound else last_inbound - 1 - pick(86_400)
            conversation = {
                "assigned": 0 if r() < 0.4 else chosen[0],
                "blocked": r() < 0.02,
                "channel": channel,
                "created": format_us(created_us),
                "creator": 0 if r() < 0.5 else chosen[-1],
                "email_noti": r() < 0.3,
                "id": first_id + i * 3 + pick(3),
                "inbox": inbox["id"],
                "last_inbound": last_inbound,
                "local_id": "" if r() < 0.8 else f"{self.rng.getrandbits(64):016x}",
                "members": [{"id": uid, "name": self.user_name[uid]} for uid in chosen],
                "muted": r() < 0.05,
                "name": name,
                "noreply": "" if r() < 0.95 else "no-reply@heymarket.com",
                "op": "create" if r() < 0.2 else "update",
                "read": read,
                "replied": r() < 0.7,
                "snooze_till": snooze,
                "status": "closed" if i < tie_size or r() >= 0.3 else "open",
                "super": 0,
                "support": r() < 0.1,
                "target": target if not group else f"{target},{phone[:-1]}9",
                "type": "group" if group else "individual",
                "updated": format_us(updated_us),
            }
            self.meta.append(
                (channel, go_json(conversation["target"]), phone, go_json(name), members)
            )
            self.conversation_json.append(go_json(conversation))

    def message(
        self, mid: int, date_us: int, conversation: int, broadcast_id: int = 0
    ) -> tuple[str, int]:
        """One message as JSON, and its ``updated`` in µs (a little after ``date``, or at it)."""
        r, pick = self.random, self.pick
        channel, target, phone, contact, members = self.meta[conversation]
        roll = r()
        if broadcast_id:
            kind = "sms"
        elif roll < 0.06:
            kind = "comment"
        elif channel == "email":
            kind = "email"
        else:
            kind = "mms" if roll < 0.18 else "sms"
        if kind != "comment" and not broadcast_id and r() < 0.35:
            user, author = 0, contact  # inbound: from the contact, no sender member
            status = _INBOUND[pick(2)]
            lag = 0 if status == "received" else 1 + pick(UPDATE_LAG_US)
        else:
            user, author = members[pick(len(members))]
            roll = r()
            if kind == "comment" or roll < 0.12:
                status, lag = "sent", 0
            elif roll < 0.92:
                status, lag = "delivered", 200_000 + pick(20_000_000)
            else:
                status, lag = "failed", 1_000_000 + pick(60_000_000)
        if broadcast_id:
            text = self.broadcast_texts[broadcast_id % len(self.broadcast_texts)]
        elif kind == "mms" and r() < 0.3:
            text = '""'
        else:
            text = self.texts[pick(len(self.texts))]
        media = f"https://media.heymarket.com/m/{mid}.jpg" if kind == "mms" else ""
        if r() < 0.9:
            custom = '{"data":[],"type":""}'
        else:
            data = ",".join(str(10 + pick(90)) for _ in range(1 + pick(4)))
            custom = f'{{"data":[{data}],"type":"{"survey" if r() < 0.5 else "template"}"}}'
        local_id = f"{self.rng.getrandbits(64):016x}" if user and r() < 0.3 else ""
        link = f"https://heym.kt/{self.rng.getrandbits(30):08x}" if r() < 0.05 else ""
        updated_us = date_us + lag
        text = (
            f'{{"author":{author},"broadcast_id":{broadcast_id},'
            f'"conversation":{self.conversation_json[conversation]},"custom":{custom},'
            f'"date":"{format_us(date_us)}","flagged":{"true" if r() < 0.02 else "false"},'
            f'"id":{mid},"link_url":"{link}","local_id":"{local_id}","media":"{media}",'
            f'"phone":"{phone}","status":"{status}","super":0,'
            f'"support":{"true" if r() < 0.03 else "false"},"target":{target},"text":{text},'
            f'"type":"{kind}","updated":"{format_us(updated_us)}","user":{user}}}'
        )
        return text, updated_us

    def timeline(
        self, n: int, start_us: int, end_us: int, broadcasts: int, size: int
    ) -> list[tuple[list[int], bool]]:
        """Groups of ascending ``date`` values from ``start_us`` to about ``end_us``.

        Each group is ``(dates, is_broadcast)``: mostly one message, now and then 2-4 sharing a
        µs or 2-8 sharing a second (fractions differ); ``broadcasts`` groups of ``size``, which
        share one µs, except every second one, sent over one second (fractions differ).
        """
        r, pick = self.random, self.pick
        plan: list[tuple[str, int]] = []
        remaining = n - broadcasts * size
        while remaining > 0:
            roll = r()
            if roll < 0.015:
                kind, count = "same", 2 + pick(3)
            elif roll < 0.035:
                kind, count = "second", 2 + pick(7)
            else:
                kind, count = "one", 1
            count = min(count, remaining)
            plan.append((kind, count))
            remaining -= count
        for b in range(broadcasts):
            plan.insert(pick(len(plan) + 1), ("broadcast-second" if b % 2 else "broadcast", size))
        # Random gaps scaled to end by end_us: a group in one second may start up to 1 s late.
        draws = [1 + pick(1_000_000) for _ in plan]
        spread = sum(1 for kind, _ in plan if kind in ("second", "broadcast-second"))
        scale = max(0, end_us - start_us - (spread + 1) * 1_000_000) / max(1, sum(draws[1:]))
        out: list[tuple[list[int], bool]] = []
        us = start_us
        floor = start_us  # the next group starts at or after this
        for i, (kind, count) in enumerate(plan):
            if i:
                us += int(draws[i] * scale)
                roll = r()
                if roll < 0.4:
                    us -= us % 1_000_000
                elif roll < 0.65:
                    us -= us % 1000
            us = max(us, floor)
            if kind in ("second", "broadcast-second"):
                second = -(-us // 1_000_000) * 1_000_000
                fractions = sorted(self.rng.sample(range(1, 1_000_000), count))
                dates = [second + f for f in fractions]
                floor = second + 1_000_000
            else:
                dates = [us] * count
                floor = us + 1
            us = dates[-1]
            out.append((dates, kind.startswith("broadcast")))
        return out
