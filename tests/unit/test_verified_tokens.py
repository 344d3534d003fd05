"""kernel.auth remembers tokens it verified (issue 10, item 5: the signature is checked once per
token, not once per request) without ever accepting what a fresh check would refuse."""

import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from kernel import auth
from kernel.auth import Principal, PublicKeys, verify_token
from kernel.problems import Unauthorized
from tests.support.tokens import DEV_KEY, foreign_key, token


def dev_keys() -> PublicKeys:
    return PublicKeys({}).with_key(DEV_KEY.public)


def test_a_remembered_token_is_refused_once_expired() -> None:
    keys, principal = dev_keys(), Principal(uuid4(), "applicant")
    presented = token(principal, ttl_seconds=60, now=datetime.now(UTC) - timedelta(seconds=59))
    assert verify_token(presented, keys, "enrollment").principal == principal
    assert len(keys.verified) == 1
    [(_, expires)] = keys.verified.values()
    time.sleep(max(0.0, expires - time.time()) + 0.05)  # until it expired (about a second)
    with pytest.raises(Unauthorized) as refused:
        verify_token(presented, keys, "enrollment")
    assert refused.value.code == "token_expired"
    assert not keys.verified


def test_a_token_is_remembered_per_audience_and_refusals_never() -> None:
    keys = dev_keys()
    presented = token(Principal(uuid4(), "applicant"))  # aud: identity, enrollment, payment
    verify_token(presented, keys, "enrollment")
    for _ in range(2):
        with pytest.raises(Unauthorized) as refused:
            verify_token(presented, keys, "review")
        assert refused.value.code == "invalid_token"
    forged = auth.issue_token(Principal(uuid4(), "operator"), foreign_key(), 60)
    with pytest.raises(Unauthorized):
        verify_token(forged, keys, "review")
    assert list(keys.verified) == [(presented, "enrollment")]
    assert not dev_keys().verified, "each set of keys remembers only what it verified itself"


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_MAX", 3)
    keys = dev_keys()
    tokens = [token(Principal(uuid4(), "applicant")) for _ in range(5)]
    for presented in tokens:
        verify_token(presented, keys, "enrollment")
    assert [t for t, _ in keys.verified] == tokens[-3:]
