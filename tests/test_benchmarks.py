"""The benchmark suite still runs end to end (at a tenth of its sizes); its figures are not judged here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_every_case_with_its_ratio_to_the_floor():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line
    ]
    cases = [row.split(" | ")[0] for row in rows[1:]]
    assert [case.split(":")[0] for case in cases] == [
        "| CPU-bound",
        "| CPU-bound",
        "| CPU-bound",
        "| CPU-bound",
        "| CPU-bound",
        "| CPU-bound",
        "| CPU-bound",
        "| Latency-bound",
        "| Latency-bound",
        "| Rate-bound",
        "| Rate-bound at 1000 ms a request",
        "| Memory",
        "| Messages, rate-bound",
        "| Messages, rate-bound at 1000 ms a request",
        "| Messages, memory",
    ]
    assert all(re.search(r"\*\*[-+]?[\d.]+(x|%)\*\*", row) for row in rows[1:]), rows
    varied = [row for row in rows if "varied data" in row]
    assert [row.split(" | ")[1] for row in varied] == ["floor", "tap-heymarket"] * 2, varied
    assert "a field the schema lacks" in varied[2]
    latency_floor, latency_tap = rows[8], rows[9]
    assert "at most 1 at once" in latency_floor
    in_flight = int(re.search(r"at most (\d+) at once", latency_tap)[1])
    assert in_flight > 1, "a latency-bound sync keeps several requests in flight"
    messages_rate, messages_memory = rows[-2], rows[-1]
    assert re.search(r"\*\*\d+\*\* x 429", messages_rate), messages_rate
    assert messages_memory.count(" MB at ") == 3, messages_memory


def test_cases_can_be_run_alone():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--cases", "messages-memory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| Messages")]
    assert len(rows) == 1 and "MB at" in rows[0]
