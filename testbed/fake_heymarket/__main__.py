"""``python -m testbed.fake_heymarket``: serve a fake account in the foreground until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

import testbed.fake_heymarket
from testbed.fake_heymarket.fake import FakeHeymarket
from testbed.fake_heymarket.generator import TEAM_ID
from testbed.fake_heymarket.knobs import Knobs


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m testbed.fake_heymarket",
        description=(testbed.fake_heymarket.__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2024-01-01T00:00:00Z")
    parser.add_argument("--tie-groups", type=int, default=0)
    parser.add_argument("--tie-size", type=int, default=0)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--broadcasts", type=int, default=0)
    parser.add_argument("--broadcast-size", type=int, default=0)
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--tags", type=int, default=40)
    parser.add_argument("--templates", type=int, default=35)
    parser.add_argument("--surveys", type=int, default=12)
    parser.add_argument("--custom-fields", type=int, default=6)
    parser.add_argument("--list-tie-size", type=int, default=0)
    parser.add_argument("--team-id", type=int, default=TEAM_ID)
    parser.add_argument("--secret-id", default="fake-secret-id")
    parser.add_argument("--secret-key", default="fake-secret-key")
    parser.add_argument("--api-key", default=None)
    Knobs.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        knobs = Knobs.from_arguments(args)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    fake = FakeHeymarket(
        secret_id=args.secret_id,
        secret_key=args.secret_key,
        api_key=args.api_key,
        contacts=args.contacts,
        seed=args.seed,
        start=args.start,
        tie_groups=args.tie_groups,
        tie_size=args.tie_size,
        messages=args.messages,
        broadcasts=args.broadcasts,
        broadcast_size=args.broadcast_size,
        conversations=args.conversations,
        tags=args.tags,
        templates=args.templates,
        surveys=args.surveys,
        custom_fields=args.custom_fields,
        list_tie_size=args.list_tie_size,
        team_id=args.team_id,
        port=args.port,
        knobs=knobs,
    )
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        credentials = f"secret_id={fake.secret_id} secret_key={fake.secret_key}"
        if fake.api_key:
            credentials += f" api_key={fake.api_key}"
        data = f"{args.contacts} contacts, {args.messages} messages"
        print(f"fake Heymarket at {fake.url} ({data}) {credentials}", flush=True)
        while not done.wait(0.5):
            pass


if __name__ == "__main__":
    main()
