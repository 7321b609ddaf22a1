"""Run one Meltano command under Dagster Pipes and report what it did back to Dagster.

Started by ``definitions.py`` through ``dagster.PipesSubprocessClient`` as
``python meltano_pipes.py MELTANO_EXECUTABLE ARGS...``, from the Meltano project's directory.
Meltano logs as JSON; each event is written to this process's stderr as one readable line (the
step's captured output in Dagster) and, but for the METRIC lines, to Dagster's run log too. On
success the records each plugin counted become the materialization's metadata; on failure the
error lines (the tap's ``Sync failed: ...``) go to the run log as errors and to the summary file
the asset reads to describe the failure.

The environment carries the secrets to Meltano and nothing here prints it; as a second guard,
every line is stripped of the values of variables named like secrets and of the passwords in
URLs before it is written anywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dagster_pipes import PipesContext, open_dagster_pipes

#: Variables whose values are secrets (TAP_HEYMARKET_API_SECRET_KEY, TAP_HEYMARKET_API_KEY,
#: TARGET_POSTGRES_PASSWORD...). The password in any URL (MELTANO_DATABASE_URI,
#: TARGET_POSTGRES_SQLALCHEMY_URL) is masked whatever the variable's name.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY")
#: Shorter values are not masked: they would blank out ordinary words in every line.
MIN_SECRET_LENGTH = 4
MASK = "********"
#: Meltano and plugin log levels that mean the run failed.
ERROR_LEVELS = frozenset(("error", "critical", "exception"))


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """The values to mask: secret-named variables and every password inside a URL, longest first."""
    found: set[str] = set()
    for name, value in env.items():
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.update((password, unquote(password)))
        if SECRET_NAME.search(name.upper()) and "://" not in value:
            found.add(value)
    return sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with each secret replaced by a mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def parse_event(line: str) -> dict[str, Any] | None:
    """A JSON log line as a dict; any other non-blank line as a bare event."""
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return {"event": line}
    return event if isinstance(event, dict) else {"event": line}


def describe(event: Mapping[str, Any], secrets: list[str]) -> str:
    """One event as ``[plugin] message``, masked; Meltano's own errors add their reason."""
    text = str(event.get("event", ""))
    if event.get("err") and event.get("err") != text:
        text = f"{text}: {event['err']}"
    return f"[{event.get('string_id') or 'meltano'}] {redact(text, secrets)}"


class MeltanoRun:
    """What one Meltano command said: its error lines and the records each plugin counted."""

    def __init__(self) -> None:
        self.plugin_errors: list[str] = []
        self.meltano_errors: list[str] = []
        self.records: dict[str, int] = {}
        self.state_ids: set[str] = set()

    def add(self, event: Mapping[str, Any], line: str) -> None:
        """Take note of one event (``line`` is its masked description)."""
        plugin = event.get("string_id")
        if event.get("job_name"):
            self.state_ids.add(str(event["job_name"]))
        metric = event.get("metric_info")
        if plugin and isinstance(metric, dict) and metric.get("metric") == "record_count":
            self.records[plugin] = self.records.get(plugin, 0) + int(metric.get("value", 0))
        if str(event.get("level", "")).lower() in ERROR_LEVELS:
            (self.plugin_errors if plugin else self.meltano_errors).append(line)

    @property
    def errors(self) -> list[str]:
        """The lines that say why the run failed: the plugins' own first, else Meltano's."""
        return self.plugin_errors or self.meltano_errors


def run(argv: list[str], pipes: PipesContext) -> int:
    """Run ``argv`` (Meltano and its arguments) and report to ``pipes``; return its exit code."""
    secrets = secrets_in(os.environ)
    command = [argv[0], "--log-format=json", *argv[1:]]
    outcome = MeltanoRun()
    started = time.monotonic()
    pipes.log.info(f"Running meltano {' '.join(argv[1:])} in {Path.cwd().name}")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None
    for raw in process.stdout:
        event = parse_event(raw)
        if event is None:
            continue
        line = describe(event, secrets)
        print(line, file=sys.stderr, flush=True)
        outcome.add(event, line)
        if event.get("event") != "METRIC":
            level = str(event.get("level", "info")).lower()
            (pipes.log.error if level in ERROR_LEVELS else pipes.log.info)(line)
    returncode = process.wait()
    summary: dict[str, Any] = {
        "returncode": returncode,
        "errors": outcome.errors,
        "records": outcome.records,
        "state_ids": sorted(outcome.state_ids),
        "seconds": round(time.monotonic() - started, 1),
    }
    summary_path = pipes.get_extra("summary_path") if "summary_path" in pipes.extras else None
    if summary_path:
        Path(summary_path).write_text(json.dumps(summary), encoding="utf-8")
    if returncode == 0 and pipes.is_asset_step:
        pipes.report_asset_materialization(
            metadata={
                **{f"records {plugin}": count for plugin, count in outcome.records.items()},
                "meltano state id": ", ".join(summary["state_ids"]) or "none",
                "seconds": summary["seconds"],
            }
        )
    return returncode


def main() -> None:
    """``python meltano_pipes.py MELTANO ARGS...``: exit with Meltano's exit code."""
    if len(sys.argv) < 2:
        sys.exit("usage: meltano_pipes.py MELTANO_EXECUTABLE [ARGS...]")
    with open_dagster_pipes() as pipes:
        returncode = run(sys.argv[1:], pipes)
    sys.exit(returncode)


if __name__ == "__main__":
    main()
