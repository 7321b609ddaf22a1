"""Secrets stay secret and credentials only travel over verified TLS (or to loopback)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import TapRun, run_tap, tap_config

SECRET_KEY = "sk-Sup3rS3cretSigningMaterial"
API_KEY = "ak-T3amKeyThatMustNeverLeak"


def assert_nothing_secret(run: TapRun, *secrets: str) -> None:
    output = run.stdout + run.stderr
    for secret in secrets:
        assert secret not in output
    assert "eyJ" not in output, "a bearer JWT (base64 of '{\"') was printed"


@pytest.fixture
def jwt_fake() -> Iterator[FakeHeymarket]:
    with FakeHeymarket(contacts=120, seed=31, secret_key=SECRET_KEY) as fake:
        yield fake


@pytest.mark.parametrize(
    ("faults", "args", "returncode"),
    [
        ((), (), 0),
        (("500", "cut", "html-200"), (), 0),
        (("503",) * 4, (), 1),
        (("401",), (), 1),
        ((), ("--about",), 0),
        ((), ("--about", "--format", "json"), 0),
        ((), ("--discover",), 0),
    ],
    ids=[
        "sync",
        "sync-with-retries",
        "retries-exhausted",
        "refused",
        "about",
        "about-json",
        "discover",
    ],
)
def test_the_secret_key_and_tokens_never_appear_in_any_output_at_debug_level(
    jwt_fake, faults, args, returncode
):
    jwt_fake.queue_faults(*faults)
    run = run_tap(tap_config(jwt_fake, max_retries=3), *args, log_level="DEBUG")

    assert run.returncode == returncode, run.stderr
    if "--about" not in args:  # --about prints and exits before any logging
        assert "DEBUG" in run.stderr, "the run must really log at DEBUG"
    signing_key = f"{jwt_fake.secret_id}||{SECRET_KEY}"
    assert_nothing_secret(run, SECRET_KEY, signing_key)


@pytest.mark.parametrize(
    "api_key",
    [API_KEY, f"{API_KEY}\n", f"{API_KEY}\u2019x", "wrong-key"],
    ids=["good", "trailing-newline", "non-ascii", "refused"],
)
def test_the_legacy_api_key_never_appears_even_when_it_cannot_be_sent(api_key):
    with FakeHeymarket(contacts=60, seed=32, api_key=API_KEY) as fake:
        run = run_tap(tap_config(fake, api_key=api_key), log_level="DEBUG")

    assert_nothing_secret(run, API_KEY, "wrong-key")
    assert "Traceback" not in run.stderr
    if api_key.strip() == API_KEY:
        assert run.returncode == 0, "surrounding whitespace from a copy-paste is not the key"
    else:
        assert run.returncode == 1 and "api_key" in run.stderr


def test_config_errors_name_the_setting_without_echoing_its_secret(jwt_fake):
    config = tap_config(jwt_fake)
    del config["api_secret_id"]
    run = run_tap(config, log_level="DEBUG")

    assert run.returncode != 0 and "api_secret_id" in run.stderr
    assert_nothing_secret(run, SECRET_KEY)


@pytest.fixture
def self_signed_https(tmp_path: Path, serve_empty_pages) -> tuple[str, list[str]]:
    """An HTTPS server on loopback with a certificate nobody trusts; yields (url, paths asked)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return serve_empty_pages(context)


def test_tls_verification_stays_on_whatever_the_environment_says(self_signed_https, monkeypatch):
    url, asked = self_signed_https
    for name in ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    config = {"api_secret_id": "id", "api_secret_key": SECRET_KEY, "api_url": url}
    run = run_tap({**config, "max_retries": 1, "backoff_factor": 0.01, "request_timeout": 2})

    assert run.returncode == 1
    assert asked == [], "a request (and its credentials) went to an unverified server"
    assert "SSLError" in run.stderr
