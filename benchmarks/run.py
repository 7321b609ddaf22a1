"""Benchmark tap-heymarket against the floor and an SDK-defaults peer, side by side in one run.

    PYTHONPATH=. python -m benchmarks.run [--repeat 3] [--quick] [--cases messages-rate ...]

Every case starts the fake Heymarket API (same seed for every client) in its own process, runs
each client as a full process with stdout to /dev/null, and reports the median wall time of
``--repeat`` runs and its ratio to the floor measured in the same run. The two
``contacts-cpu-varied`` cases serve a second data set, unlike the fake's, from a plain HTTP
server instead (``benchmarks.varied``), the second with a field the schema lacks on every
contact. The tap runs with a
catalog that selects only the stream the case measures. The messages cases have no floor: their
figures are ratios to Heymarket's limit and to the smallest run's memory.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SEED = 20240101
SECRET_ID, SECRET_KEY = "fake-secret-id", "fake-secret-key"
#: Heymarket's documented limit, and the tap's default pacing under it.
API_LIMIT_PER_MINUTE, TAP_DEFAULT_PER_MINUTE = 500, 480
#: The rate-bound case keeps Heymarket's rate but shrinks its 60 s window (and the requests it
#: holds) by this factor, so a run of seconds, not minutes, spans several windows.
RATE_WINDOW_SCALE = 10
#: No rate limit on the fake: the tap's pacing is set out of the way and the table says so.
UNPACED = 1_000_000
#: The cases ``--cases`` may name, in the order they run.
CASES = (
    "contacts-cpu",
    "contacts-cpu-varied",
    "contacts-cpu-unknown-field",
    "contacts-latency",
    "contacts-rate",
    "contacts-rate-latency",
    "contacts-memory",
    "messages-rate",
    "messages-rate-latency",
    "messages-memory",
)
#: Answer latencies of the rate-bound cases at a realistic latency.
RATE_LATENCIES = (0.1, 0.3, 1.0)
#: Contacts a request brings at best, and what a million-contact first sync needs at that.
PAGE = 100
MILLION = 1_000_000
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    wall: float
    peak_rss_mb: float
    server: dict


class Fake:
    """The fake API in a child process, for one case.

    ``server``: the module that serves it, ``benchmarks.serve`` (the fake Heymarket) or
    ``benchmarks.varied`` (the second data set, on a plain server); a knob True or False is a
    flag, given or not.
    """

    def __init__(
        self, contacts: int = 0, server: str = "benchmarks.serve", **knobs: float | int | None
    ) -> None:
        args = [sys.executable, "-m", server, "--contacts", str(contacts)]
        args += ["--seed", str(SEED)]
        for name, value in knobs.items():
            if value is True:
                args.append(f"--{name.replace('_', '-')}")
            elif value is not None and value is not False:
                args += [f"--{name.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
        )
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake did not start: {line!r}")
        self.url = line.split()[1]

    def seen(self) -> dict:
        """What the fake saw since it was last asked."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def __enter__(self) -> Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stdin.close()
        self.process.wait()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")  # as Meltano runs plugins
    return env


def tap_command() -> list[str]:
    """The tap's command line, without its options."""
    tap = Path(sys.executable).parent / "tap-heymarket"  # the entry point users run
    return [str(tap)] if tap.exists() else [sys.executable, "-m", "tap_heymarket"]


@functools.cache
def discovered() -> str:
    """The tap's catalog, as ``--discover`` prints it (once per benchmark run)."""
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch, "config.json")
        config.write_text(json.dumps({"api_secret_id": SECRET_ID, "api_secret_key": SECRET_KEY}))
        done = subprocess.run(
            [*tap_command(), "--config", str(config), "--discover"],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            check=True,
        )
    return done.stdout


def catalog_of(stream: str) -> dict:
    """The discovered catalog with only ``stream`` selected, as ``meltano select`` would leave it."""
    catalog = json.loads(discovered())
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == stream
    return catalog


def command(client: str, url: str, per_minute: int, scratch: Path, stream: str) -> list[str]:
    """The client's command line; its config and catalog, if it takes any, go in ``scratch``."""
    if client == "floor":
        return [sys.executable, "-m", "benchmarks.floor", "--url", url]
    settings = {"api_url": url, "api_secret_id": SECRET_ID, "api_secret_key": SECRET_KEY}
    config = scratch / "config.json"
    if client == "peer":
        config.write_text(json.dumps(settings))
        return [sys.executable, "-m", "benchmarks.peer.tap", "--config", str(config)]
    config.write_text(json.dumps({**settings, "max_requests_per_minute": per_minute}))
    catalog = scratch / "catalog.json"
    catalog.write_text(json.dumps(catalog_of(stream)))
    return [*tap_command(), "--config", str(config), "--catalog", str(catalog)]


def run_once(client: str, fake: Fake, per_minute: int = UNPACED, stream: str = "contacts") -> Run:
    """One full process of ``client`` against ``fake``: wall time and peak RSS."""
    fake.seen()
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            open(os.devnull, "wb") as devnull,
            tempfile.TemporaryFile() as log,
        ):
            args = command(client, fake.url, per_minute, Path(scratch), stream)
            start = time.perf_counter()
            process = subprocess.Popen(args, stdout=devnull, stderr=log, env=_env(), cwd=ROOT)
            # wait4, not wait: the child's own peak RSS comes with its exit status.
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
    finally:
        server = fake.seen()
    if process.returncode != 0:
        raise RuntimeError(f"{client} exited {process.returncode}:\n{tail}")
    return Run(wall, usage.ru_maxrss / 1024, server)


@dataclass
class Turns:
    """Every client's runs, taken in turns: round ``i`` is each client's ``i``-th run."""

    runs: dict[str, list[Run]]

    def median(self, client: str) -> Run:
        """The client's median run by wall time."""
        its = sorted(self.runs[client], key=lambda run: run.wall)
        return its[len(its) // 2]

    def ratio_range(self, client: str) -> str:
        """Lowest and highest of the client's wall time over the floor's in the same round.

        Shows how much a shared machine's noise moved the figure during the run.
        """
        ratios = [
            run.wall / floor.wall
            for run, floor in zip(self.runs[client], self.runs["floor"], strict=True)
        ]
        return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def take_turns(clients: tuple[str, ...], repeat: int, fake: Fake) -> Turns:
    """``repeat`` rounds of one run per client, in turns so that drift hits all alike."""
    runs: dict[str, list[Run]] = {client: [] for client in clients}
    for _ in range(repeat):
        for client in clients:
            runs[client].append(run_once(client, fake))
    return Turns(runs)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per timed figure (median)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes: a smoke test")
    parser.add_argument(
        "--cases", nargs="+", choices=CASES, default=CASES, metavar="CASE",
        help=f"the cases to run (default: all): {', '.join(CASES)}",
    )  # fmt: skip
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    cpu_n, latency_n, rate_n = 50_000 // scale, 10_000 // scale, 15_000 // scale
    memory_small, memory_large = 5_000 // scale, 100_000 // scale
    messages_rate_n = 40_000 // scale
    rate_latency_n = 24_000 // scale
    # Quick: the slowest latency alone, the one that needs the most requests in flight.
    latencies = RATE_LATENCIES[-1:] if args.quick else RATE_LATENCIES
    messages_memory = (10_000 // scale, 50_000 // scale, 200_000 // scale)
    rows: list[tuple[str, str, str, str]] = []

    def say(case: str, client: str, figure: str, target: str = "") -> None:
        rows.append((case, client, figure, target))
        print(f"{case} | {client} | {figure}", file=sys.stderr, flush=True)

    # CPU-bound: no latency, no rate limit (and the tap's pacing set out of the way).
    if "contacts-cpu" in args.cases:
        case = f"CPU-bound: {cpu_n:,} contacts, no latency"
        with Fake(cpu_n) as fake:
            turns = take_turns(("floor", "peer", "tap"), args.repeat, fake)
        floor = turns.median("floor").wall
        for client, name in (
            ("floor", "floor"),
            ("peer", "SDK-defaults peer"),
            ("tap", "tap-heymarket"),
        ):
            wall = turns.median(client).wall
            spread = "" if client == "floor" else f" (rounds: {turns.ratio_range(client)})"
            say(
                case,
                name,
                f"{wall:.2f} s, {cpu_n / wall:,.0f} records/s, **{wall / floor:.2f}x** floor{spread}",
                "<= 1.3x" if client == "tap" else "",
            )

    # The same, on a second data set unlike the fake's (``benchmarks.varied``), served by a plain
    # threading HTTP server; then with a field the schema does not know on every contact.
    for name, unknown, label in (
        ("contacts-cpu-varied", False, "varied data"),
        ("contacts-cpu-unknown-field", True, "varied data, a field the schema lacks on each"),
    ):
        if name in args.cases:
            case = f"CPU-bound: {cpu_n:,} contacts, {label}, plain server, no latency"
            with Fake(cpu_n, server="benchmarks.varied", unknown_field=unknown) as fake:
                turns = take_turns(("floor", "tap"), args.repeat, fake)
            floor = turns.median("floor").wall
            for client, who in (("floor", "floor"), ("tap", "tap-heymarket")):
                wall = turns.median(client).wall
                spread = "" if client == "floor" else f" (rounds: {turns.ratio_range(client)})"
                say(
                    case,
                    who,
                    f"{wall:.2f} s, {cpu_n / wall:,.0f} records/s, **{wall / floor:.2f}x** floor"
                    f"{spread}",
                    "<= 1.3x" if client == "tap" else "",
                )

    if "contacts-latency" in args.cases:
        case = f"Latency-bound: {latency_n:,} contacts, 100 ms a request"
        with Fake(latency_n, latency=0.1) as fake:
            turns = take_turns(("floor", "tap"), args.repeat, fake)
        floor = turns.median("floor").wall
        for client, name in (("floor", "floor"), ("tap", "tap-heymarket")):
            run = turns.median(client)
            spread = "" if client == "floor" else f" (rounds: {turns.ratio_range(client)})"
            say(
                case,
                name,
                f"{run.wall:.2f} s, **{run.wall / floor:.3f}x** floor{spread}; "
                f"{run.server['requests']} requests over "
                f"{run.server['last'] - run.server['first']:.2f} s, first to last, "
                f"at most {run.server['max_in_flight']} at once",
                "<= 1.05x" if client == "tap" else "",
            )

    # Heymarket's 500 a minute, counted in a shorter window; the tap at its default pacing.
    window = 60 / RATE_WINDOW_SCALE
    limit = API_LIMIT_PER_MINUTE // RATE_WINDOW_SCALE
    if "contacts-rate" in args.cases:
        with Fake(rate_n, rate_limit=limit, rate_window=window) as fake:
            server = run_once("tap", fake, TAP_DEFAULT_PER_MINUTE).server
        say(
            f"Rate-bound: {rate_n:,} contacts, {API_LIMIT_PER_MINUTE}/min limit "
            f"(as {limit} per {window:g} s)",
            "tap-heymarket (default pacing)",
            _rate_figure(server, limit),
            ">= 95%, no 429",
        )

    # The same limit, at the latencies a real account answers with: requests in flight.
    if "contacts-rate-latency" in args.cases:
        for latency in latencies:
            with Fake(
                rate_latency_n, rate_limit=limit, rate_window=window, latency=latency
            ) as fake:
                run = run_once("tap", fake, TAP_DEFAULT_PER_MINUTE)
            server = run.server
            say(
                f"Rate-bound at {latency * 1000:.0f} ms a request: {rate_latency_n:,} contacts, "
                f"{API_LIMIT_PER_MINUTE}/min limit (as {limit} per {window:g} s)",
                "tap-heymarket (default pacing)",
                f"{_rate_figure(server, limit)}; {_million(server, rate_latency_n)}; "
                f"peak RSS {run.peak_rss_mb:.0f} MB",
                ">= 95%, no 429",
            )

    if "contacts-memory" in args.cases:
        peaks = {}
        for contacts in (memory_small, memory_large):
            with Fake(contacts) as fake:
                peaks[contacts] = run_once("tap", fake).peak_rss_mb
        say(
            "Memory: peak RSS, no latency",
            "tap-heymarket",
            f"{peaks[memory_small]:.0f} MB at {memory_small:,} contacts, "
            f"{peaks[memory_large]:.0f} MB at {memory_large:,}: "
            f"**{peaks[memory_large] / peaks[memory_small] - 1:+.1%}**",
            "within 15%",
        )

    # Messages: the same window scaling; broadcasts of 500 on one date, larger than a page,
    # so the walk raises its limit for each (one broadcast per 5,000 messages).
    if "messages-rate" in args.cases:
        broadcasts = _broadcasts(messages_rate_n, scale)
        with Fake(
            messages=messages_rate_n, rate_limit=limit, rate_window=window, **broadcasts
        ) as fake:
            server = run_once("tap", fake, TAP_DEFAULT_PER_MINUTE, stream="messages").server
        say(
            f"Messages, rate-bound: {messages_rate_n:,} messages "
            f"({broadcasts['broadcasts']} broadcasts of {broadcasts['broadcast_size']}), "
            f"{API_LIMIT_PER_MINUTE}/min limit (as {limit} per {window:g} s)",
            "tap-heymarket (default pacing)",
            _rate_figure(server, limit),
            ">= 95%, no 429",
        )

    if "messages-rate-latency" in args.cases:
        broadcasts = _broadcasts(messages_rate_n, scale)
        for latency in latencies:
            with Fake(
                messages=messages_rate_n,
                rate_limit=limit,
                rate_window=window,
                latency=latency,
                **broadcasts,
            ) as fake:
                server = run_once("tap", fake, TAP_DEFAULT_PER_MINUTE, stream="messages").server
            say(
                f"Messages, rate-bound at {latency * 1000:.0f} ms a request: "
                f"{messages_rate_n:,} messages, {API_LIMIT_PER_MINUTE}/min limit "
                f"(as {limit} per {window:g} s)",
                "tap-heymarket (default pacing)",
                _rate_figure(server, limit),
                ">= 95%, no 429",
            )

    if "messages-memory" in args.cases:
        runs = {}
        for messages in messages_memory:
            with Fake(messages=messages, **_broadcasts(messages, scale)) as fake:
                runs[messages] = run_once("tap", fake, stream="messages")
        small, large = messages_memory[0], messages_memory[-1]
        sizes = ", ".join(
            f"{runs[n].peak_rss_mb:.0f} MB at {n:,} ({n / runs[n].wall:,.0f} records/s)"
            for n in messages_memory
        )
        say(
            "Messages, memory: peak RSS, no latency",
            "tap-heymarket",
            f"{sizes}: {large:,} against {small:,} "
            f"**{runs[large].peak_rss_mb / runs[small].peak_rss_mb - 1:+.1%}**",
            "flat (within 15%)",
        )

    print(f"\nMachine: {machine()}")
    print(
        f"Median of {args.repeat} runs, clients taking turns; tap pacing "
        f"(max_requests_per_minute) {UNPACED:,} except in the rate-bound cases.\n"
    )
    print("| Case | Client | Measured | Target |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _broadcasts(messages: int, scale: int) -> dict[str, int]:
    """One broadcast per 5,000 messages (at least one), of 500 (a tenth of that if quick)."""
    return {"broadcasts": max(1, messages * scale // 5_000), "broadcast_size": 500 // scale}


def _million(server: dict, records: int) -> str:
    """How long a million-record first sync takes at the requests and rate measured."""
    per_minute = (server["requests"] - 1) / (server["last"] - server["first"]) * 60
    requests = server["requests"] / records * MILLION
    floor = MILLION / PAGE / API_LIMIT_PER_MINUTE
    return (
        f"{server['requests'] / (records / PAGE) - 1:+.1%} requests over one per {PAGE} records; "
        f"1M records in **{requests / per_minute:.0f} min** (floor {floor:.0f} min)"
    )


def _rate_figure(server: dict, limit: int) -> str:
    """Requests a minute, first to last, as a share of Heymarket's limit; 429s; the worst window."""
    achieved = (server["requests"] - 1) / (server["last"] - server["first"]) * 60
    return (
        f"{achieved:.0f} requests/min = **{achieved / API_LIMIT_PER_MINUTE:.1%}** of the limit, "
        f"**{server['status_counts'].get('429', 0)}** x 429 ({server['requests']} requests; "
        f"at most {server['max_in_window']} of {limit} in one window)"
    )


if __name__ == "__main__":
    main()
