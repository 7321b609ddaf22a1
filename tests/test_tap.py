"""The tap as a whole: the SDK's standard tap tests, and a bad setting refused before any request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from singer_sdk.testing import TapTestRunner, get_tap_test_class

from tap_heymarket.tap import TapHeymarket
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import run_tap, tap_config

#: The SDK builds its test class, and lists the streams to test, when this module is imported:
#: it needs a config then, but no server. Nothing listens on port 9 of loopback (discard), so a
#: test that used this config instead of the fake's would fail rather than pass by accident.
_IMPORT_TIME_CONFIG = {
    "api_secret_id": "import-time-id",
    "api_secret_key": "import-time-key",
    "api_url": "http://127.0.0.1:9",
}
_SDKStandardSuite = get_tap_test_class(TapHeymarket, config=_IMPORT_TIME_CONFIG)


class TestSDKStandardSuite(_SDKStandardSuite):
    """The SDK's standard tap tests, run against a fake started for this class alone."""

    @pytest.fixture(scope="class")
    @classmethod
    def runner(cls) -> Iterator[TapTestRunner]:
        with FakeHeymarket(contacts=250, messages=250, seed=5) as fake:
            runner = TapTestRunner(TapHeymarket, config=tap_config(fake), parse_env_config=True)
            runner.sync_all()
            yield runner


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"api_secret_key": ""}, "api_secret_key"),
        ({"api_url": "ftp://api.heymarket.com"}, "api_url"),
        ({"api_url": "http://api.heymarket.com"}, "api_url"),
        ({"api_key": "also-a-key"}, "api_key"),
        ({"api_secret_id": None}, "api_secret_id"),
    ],
)
def test_bad_config_fails_before_any_request_naming_the_setting(fake, override, setting):
    config = {k: v for k, v in {**tap_config(fake), **override}.items() if v is not None}

    run = run_tap(config)

    assert run.returncode != 0
    assert fake.requests == []
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert errors and errors[0].split("| ")[-1].startswith(f"{setting}:"), run.stderr
    assert "Traceback" not in run.stderr
    assert "fake-secret-key" not in run.stderr
