"""The authenticators: a JWT signed with the secret id and key, or the legacy team API key."""

from __future__ import annotations

import subprocess
import sys
import warnings

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_heymarket.auth import TOKEN_LIFETIME_SECONDS, HeymarketJWTAuthenticator, hs256_jwt
from testbed.fake_heymarket import FakeHeymarket
from testbed.runs import run_tap, tap_config


def test_jwt_carries_the_documented_header_and_claims_and_verifies_with_id_and_key():
    auth = HeymarketJWTAuthenticator(
        "sid-0123456789abcdef", "s3cret-0123456789abcdef", clock=lambda: 1_700_000_000.7
    )
    token = auth.token()

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        token, "sid-0123456789abcdef||s3cret-0123456789abcdef", algorithms=["HS256"]
    )
    assert claims == {"iss": "sid-0123456789abcdef", "iat": 1_700_000_000}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "sid-0123456789abcdef||other-0123456789abcdef", algorithms=["HS256"])


@given(
    secret_id=st.text(min_size=1, max_size=40),
    secret_key=st.text(min_size=1, max_size=80),
    iat=st.integers(min_value=0, max_value=2**40),
)
def test_the_jwt_is_the_one_pyjwt_signs_byte_for_byte(secret_id, secret_key, iat):
    key = f"{secret_id}||{secret_key}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about short HMAC keys
        expected = jwt.encode(
            {"iss": secret_id, "iat": iat}, key, algorithm="HS256", headers={"typ": "JWT"}
        )

    assert hs256_jwt({"iss": secret_id, "iat": iat}, key) == expected


def test_the_tap_starts_without_importing_pyjwt():
    # PyJWT and the cryptography package it loads were 0.05 to 0.08 s of every run's start-up.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tap_heymarket.tap; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "'jwt'" not in loaded and "'cryptography'" not in loaded


def test_jwt_is_renewed_long_before_it_expires():
    now = [1_700_000_000.0]
    auth = HeymarketJWTAuthenticator(
        "sid-0123456789abcdef", "key-0123456789abcdef", clock=lambda: now[0]
    )
    first = auth.token()
    issued = []
    for _ in range(40):  # 40 x 10 s: well past a token's 5-minute life
        now[0] += 10
        claims = jwt.decode(
            auth.token(), "sid-0123456789abcdef||key-0123456789abcdef", algorithms=["HS256"]
        )
        issued.append(claims["iat"])
        assert now[0] - claims["iat"] < TOKEN_LIFETIME_SECONDS / 2
    assert auth.token() != first
    assert len(set(issued)) > 1


@pytest.mark.parametrize("args", [(), ("--test",)], ids=["sync", "connection-test"])
def test_wrong_secret_key_is_refused_and_the_tap_says_what_to_check(fake, args):
    run = run_tap(tap_config(fake, api_secret_key="not-the-key"), *args)

    assert run.returncode != 0
    assert fake.status_counts[401] == 1, "a refused credential must not be retried"
    assert "401" in run.stderr and "api_secret_id and api_secret_key" in run.stderr
    assert "X-Request-Id" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.records == []


def test_legacy_api_key_is_sent_as_the_bearer():
    with FakeHeymarket(contacts=30, seed=2, api_key="team-key-1") as fake:
        run = run_tap({"api_key": "team-key-1", "api_url": fake.url})
        assert run.returncode == 0, run.stderr
        assert len(run.records) == 30
        assert {r["auth"] for r in fake.requests} == {"api_key"}
