"""A user's first commands: ``meltano config test tap-heymarket`` says whether the credentials
work (the failure in one line), and the catalog can be listed before any secret is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.meltano_cli import PLUGIN_ENV_PREFIXES, Meltano, MeltanoRun, describe

pytestmark = pytest.mark.e2e

SECRET_SETTINGS = ("TAP_HEYMARKET_API_SECRET_ID", "TAP_HEYMARKET_API_SECRET_KEY")


def with_env(meltano: Meltano, drop: tuple[str, ...] = (), **changes: str) -> Meltano:
    """The same Meltano project and settings, less ``drop`` and with ``changes``."""
    env = {key: value for key, value in meltano.env.items() if key not in drop}
    return Meltano({**env, **changes}, isolated=True)


def output(run: MeltanoRun) -> str:
    """What the user sees: stdout, then every log event as a line."""
    return "\n".join([run.stdout, *(describe(event) for event in run.events)])


def test_config_test_succeeds_with_good_credentials(meltano: Meltano, fake: FakeHeymarket):
    run = meltano("config", "test", "tap-heymarket", check=False)
    assert run.returncode == 0, output(run)
    assert "Plugin configuration is valid" in run.stdout
    # It signed in and read a page: the fake answered the tap with contacts.
    assert fake.status_counts[200] >= 1
    assert set(fake.status_counts) == {200}


def test_config_test_fails_in_one_line_naming_the_refused_credentials(
    meltano: Meltano, fake: FakeHeymarket
):
    bad = with_env(meltano, TAP_HEYMARKET_API_SECRET_KEY="not-the-secret-key")
    run = bad("config", "test", "tap-heymarket", check=False)
    assert run.returncode != 0
    assert fake.status_counts[401] >= 1
    seen = output(run)
    # Meltano shows the tap's last line between its own two: that line must say it all.
    [report] = [e["event"] for e in run.events if "Plugin configuration is invalid" in e["event"]]
    [head, detail, tail] = report.splitlines()
    assert head == "Plugin configuration is invalid"
    assert tail.startswith("Run 'meltano config list tap-heymarket'")
    assert "credentials were refused" in detail
    assert "401" in detail and "api_secret_key" in detail
    assert "Traceback" not in seen
    assert "not-the-secret-key" not in seen


def test_discover_needs_no_config_at_all(tmp_path: Path):
    empty = tmp_path / "config.json"
    empty.write_text("{}", encoding="utf-8")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(PLUGIN_ENV_PREFIXES)
    }
    for args in (["--config", str(empty)], []):
        done = subprocess.run(
            [sys.executable, "-m", "tap_heymarket", *args, "--discover"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        streams = {stream["tap_stream_id"] for stream in json.loads(done.stdout)["streams"]}
        assert "contacts" in streams, args


def test_select_list_works_before_any_secret_is_set(meltano: Meltano, fake: FakeHeymarket):
    no_secrets = with_env(meltano, drop=SECRET_SETTINGS)
    assert not {
        name: value
        for name, value in no_secrets.config("tap-heymarket").items()
        if name.startswith(("api_secret", "api_key")) and value
    }
    run = no_secrets("select", "tap-heymarket", "--list", "--refresh-catalog", check=False)
    assert run.returncode == 0, output(run)
    # The tap's --discover ran now, without secrets, rather than a cached catalog being read.
    assert any(event["event"] == "Running catalog discovery" for event in run.events)
    assert "contacts.id" in run.stdout
    assert "contacts.updated" in run.stdout
    # Discovery asked Heymarket nothing.
    assert not fake.requests
