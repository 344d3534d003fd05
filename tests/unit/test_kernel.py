"""Pure kernel pieces: personal-data masking, problem details, tokens."""

import json
import logging
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from kernel.auth import Principal, issue_token, read_token
from kernel.logging import configure_logging, mask_personal_data, mask_text
from kernel.problems import Problem, Refused, Unauthorized

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("id 320402199001010017 ok", "id 3204**********0017 ok"),
        ("id 32040419900101001X", "id 3204**********001X"),
        ("phone +8613800138000", "phone +86138****8000"),
        ("phone 13800138000.", "phone 138****8000."),
        ("order 2026112612345678901234", "order 2026112612345678901234"),  # not an ID: too long
    ],
)
def test_mask_text(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


@given(st.from_regex(r"[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|1\d|2[0-8])\d{3}[\dX]", fullmatch=True))
def test_no_id_number_survives_masking(number: str) -> None:
    event = mask_personal_data(None, "info", {"event": f"user {number}", "nested": {"ids": [number]}})
    assert number not in json.dumps(event)


def test_masking_runs_in_the_configured_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("testsvc", "INFO", json=True)
    try:
        structlog.get_logger().info("verified", id_number="320402199001010017", phone="13800138000")
    finally:  # the configuration holds capsys's stream: do not leak it into later tests
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["id_number"] == "3204**********0017" and line["phone"] == "138****8000"
    assert line["service"] == "testsvc" and line["level"] == "info"


def test_problem_body_is_rfc9457_with_code_and_extensions() -> None:
    body = Refused("documents_missing", "请上传身份证反面。", missing=["id_card_back"]).body("/v1/x")
    assert body["status"] == 422 and body["title"] == "Unprocessable Content"
    assert body["code"] == "documents_missing" and body["missing"] == ["id_card_back"]
    assert body["type"].endswith("/documents_missing") and body["instance"] == "/v1/x"
    assert Problem("x", "y", 409).status == 409


def test_tokens_round_trip_and_refuse_tampering_and_expiry() -> None:
    principal = Principal(uuid4(), "reviewer")
    token = issue_token(principal, SECRET, 60)
    assert read_token(token, SECRET) == principal
    with pytest.raises(Unauthorized) as wrong:
        read_token(token, "another-secret-of-at-least-32-bytes!")
    assert wrong.value.code == "invalid_token"
    old = issue_token(principal, SECRET, 60, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized) as expired:
        read_token(old, SECRET)
    assert expired.value.code == "token_expired"


def test_a_staff_token_carries_its_scope_and_tokens_without_one_stay_valid() -> None:
    bound = Principal(uuid4(), "reviewer", scope="320411")
    token = issue_token(bound, SECRET, 60)
    assert jwt.decode(token, SECRET, algorithms=["HS256"], issuer="flexenroll-identity")["scope"] == "320411"
    assert read_token(token, SECRET) == bound
    for role in ("applicant", "reviewer", "operator"):
        plain = issue_token(Principal(uuid4(), role), SECRET, 60)
        assert "scope" not in jwt.decode(plain, SECRET, algorithms=["HS256"], issuer="flexenroll-identity")
        assert read_token(plain, SECRET).scope is None
    # A token with no `scope` key at all reads as an unlimited principal.
    legacy = jwt.encode(
        {
            "sub": str(bound.user_id),
            "role": "reviewer",
            "iss": "flexenroll-identity",
            "exp": datetime.now(UTC) + timedelta(minutes=1),
        },
        SECRET,
        algorithm="HS256",
    )
    assert read_token(legacy, SECRET) == Principal(bound.user_id, "reviewer")


@pytest.mark.parametrize(("role", "scope"), [("applicant", "320411"), ("reviewer", ""), ("operator", "a b"),
                                             ("reviewer", 320411), ("reviewer", "x" * 65)])  # fmt: skip
def test_a_scope_on_an_applicant_or_a_malformed_one_is_an_invalid_token(role: str, scope: object) -> None:
    claims = {"sub": str(uuid4()), "role": role, "scope": scope, "iss": "flexenroll-identity",
              "exp": datetime.now(UTC) + timedelta(minutes=1)}  # fmt: skip
    with pytest.raises(Unauthorized) as refused:
        read_token(jwt.encode(claims, SECRET, algorithm="HS256"), SECRET)
    assert refused.value.code == "invalid_token"
    if isinstance(scope, str):
        with pytest.raises(ValueError):
            Principal(uuid4(), role, scope=scope)  # type: ignore[arg-type]
