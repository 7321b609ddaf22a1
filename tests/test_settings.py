"""Settings from the environment (``--config ENV``): numbers are read as numbers, bad ones named."""

from __future__ import annotations

import os
import re

import pytest

from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import run_tap

PREFIX = "TAP_HEYMARKET_"


def set_environment(monkeypatch: pytest.MonkeyPatch, fake: FakeHeymarket, **settings: str) -> None:
    """Only the fake's credentials and URL, then ``settings``, as TAP_HEYMARKET_* variables."""
    for name in list(os.environ):
        if name.startswith(PREFIX) and name != f"{PREFIX}LOGLEVEL":
            monkeypatch.delenv(name)
    base = {"api_secret_id": fake.secret_id, "api_secret_key": fake.secret_key, "api_url": fake.url}
    for name, value in {**base, **settings}.items():
        monkeypatch.setenv(PREFIX + name.upper(), value)


NUMBERS = {"page_size": "40", "max_requests_per_minute": "10000", "max_retries": "3"}


@pytest.mark.parametrize(
    ("timeout", "backoff", "expected"),
    [
        ("30", "1", {"request_timeout": 30, "backoff_factor": 1}),
        ("2.5", "0.5", {"request_timeout": 2.5, "backoff_factor": 0.5}),
    ],
)
def test_numeric_settings_from_the_environment_are_read_as_numbers(
    fake, monkeypatch, timeout, backoff, expected
):
    set_environment(monkeypatch, fake, **NUMBERS, request_timeout=timeout, backoff_factor=backoff)

    tap = TapHeymarket(config={}, parse_env_config=True, setup_mapper=False)

    assert {name: tap.config[name] for name in (*NUMBERS, *expected)} == {
        "page_size": 40,
        "max_requests_per_minute": 10_000,
        "max_retries": 3,
        **expected,
    }


@pytest.mark.parametrize(("timeout", "backoff"), [("30", "1"), ("2.5", "0.5")])
def test_a_sync_configured_only_by_environment_variables_uses_every_numeric_setting(
    fake, monkeypatch, timeout, backoff
):
    set_environment(monkeypatch, fake, **NUMBERS, request_timeout=timeout, backoff_factor=backoff)
    fake.queue_faults("503")

    run = run_tap({}, "--config", "ENV")

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 1000
    contacts = [r for r in fake.requests if r["path"] == "/v2/contacts/list"]
    messages = [r for r in fake.requests if r["path"] == "/v1/messages/all"]
    # Every page at page_size: the last contacts request (the probe of the list's end, as
    # long as the offsets allow) and a first sync's one-record ask for the oldest message aside.
    pages = contacts[:-1] + [
        r for r in messages if r["body"]["limit"] != 1 or r["body"]["ascending"] is not True
    ]
    assert {request["body"]["limit"] for request in pages} == {40}
    retry = re.search(r"retry 1 of 3 in ([\d.]+) s", run.stderr)
    assert retry, run.stderr
    assert float(backoff) / 2 - 0.05 <= float(retry[1]) <= float(backoff) + 0.05


@pytest.mark.parametrize("args", [(), ("--test",)], ids=["sync", "connection-test"])
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("page_size", "fifty"),
        ("page_size", "50.5"),
        ("page_size", ""),
        ("page_size", "500"),
        ("max_requests_per_minute", "lots"),
        ("max_retries", "three"),
        ("max_retries", "-1"),
        ("request_timeout", "soon"),
        ("request_timeout", "0"),
        ("request_timeout", "nan"),
        ("backoff_factor", "1s"),
        ("backoff_factor", "-1"),
        ("backoff_factor", "inf"),
    ],
)
def test_a_bad_numeric_setting_in_the_environment_fails_in_one_line_naming_it(
    fake, monkeypatch, setting, value, args
):
    set_environment(monkeypatch, fake, **{setting: value})

    run = run_tap({}, "--config", "ENV", *args)

    assert run.returncode == 1
    assert fake.requests == [], "a request was made before the settings were checked"
    assert "Traceback" not in run.stderr
    errors = [line.split("| ")[-1] for line in run.stderr.splitlines() if "| ERROR" in line]
    assert errors and errors[0].startswith(f"{setting}:"), run.stderr
    assert [e for e in errors if setting in e] == [errors[0]], "one line names the setting"
    assert fake.secret_key not in run.stderr
