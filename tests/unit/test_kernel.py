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

from kernel.auth import (
    AUDIENCES,
    SHIPPED_PUBLIC_KEYS_FILE,
    Principal,
    PublicKeys,
    issue_token,
    read_token,
    verify_token,
)
from kernel.logging import configure_logging, mask_personal_data, mask_text
from kernel.problems import Problem, Refused, Unauthorized
from tests.support.tokens import DEV_KEY, foreign_key

KEYS = PublicKeys.load(str(SHIPPED_PUBLIC_KEYS_FILE))


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
    token = issue_token(principal, DEV_KEY, 60, version=3)
    assert read_token(token, KEYS, "review") == principal
    assert verify_token(token, KEYS, "review").version == 3
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": DEV_KEY.kid, "typ": "JWT"}
    with pytest.raises(Unauthorized) as wrong:
        read_token(token, PublicKeys({}).with_key(foreign_key().public), "review")  # not the key that signed
    assert wrong.value.code == "invalid_token"
    old = issue_token(principal, DEV_KEY, 60, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized) as expired:
        read_token(old, KEYS, "review")
    assert expired.value.code == "token_expired"


def _claims(**changes: object) -> dict[str, object]:
    return {"sub": str(uuid4()), "role": "operator", "aud": list(AUDIENCES["operator"]), "ver": 0,
            "iss": "flexenroll-identity", "exp": datetime.now(UTC) + timedelta(minutes=1), **changes}  # fmt: skip


def test_forged_tokens_are_invalid() -> None:
    """The old shared HS256 secret, another Ed25519 key (with the real kid, or its own), `alg: none`,
    a kid-less token: all invalid_token, whatever their claims say."""
    old_secret = "local-jwt-flexenroll-not-a-secret"
    forger = foreign_key()
    forged = [
        jwt.encode(_claims(), old_secret, algorithm="HS256"),
        jwt.encode(_claims(), old_secret, algorithm="HS256", headers={"kid": DEV_KEY.kid}),
        jwt.encode(_claims(), forger.private, algorithm="EdDSA", headers={"kid": DEV_KEY.kid}),
        jwt.encode(_claims(), forger.private, algorithm="EdDSA", headers={"kid": forger.kid}),
        jwt.encode(_claims(), DEV_KEY.private, algorithm="EdDSA"),  # no kid: no key to check it with
        jwt.encode(_claims(), "", algorithm="none", headers={"kid": DEV_KEY.kid}),
    ]
    for token in forged:
        with pytest.raises(Unauthorized) as refused:
            read_token(token, KEYS, "review")
        assert refused.value.code == "invalid_token"
    assert read_token(jwt.encode(_claims(), DEV_KEY.private, algorithm="EdDSA", headers={"kid": DEV_KEY.kid}),
                      KEYS, "review").role == "operator"  # fmt: skip


def test_a_token_names_the_services_its_role_may_use() -> None:
    for role, audience in AUDIENCES.items():
        token = issue_token(Principal(uuid4(), role), DEV_KEY, 60)
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == list(audience)
        for service in ("identity", "enrollment", "review", "payment", "notify", "web"):
            if service in audience:
                assert read_token(token, KEYS, service).role == role
            else:
                with pytest.raises(Unauthorized, match="invalid_token"):
                    read_token(token, KEYS, service)
    # Every role uses the pages (services/web), which verify the token to know whom they greet.
    assert AUDIENCES["applicant"] == ("identity", "enrollment", "payment", "web")
    assert AUDIENCES["reviewer"] == ("identity", "enrollment", "review", "web")
    for missing in ("aud", "ver", "iss", "exp", "sub"):
        claims = _claims()
        del claims[missing]
        with pytest.raises(Unauthorized):
            read_token(jwt.encode(claims, DEV_KEY.private, algorithm="EdDSA", headers={"kid": DEV_KEY.kid}),
                       KEYS, "review")  # fmt: skip


def test_a_staff_token_carries_its_scope_and_tokens_without_one_stay_valid() -> None:
    bound = Principal(uuid4(), "reviewer", scope="320411")
    token = issue_token(bound, DEV_KEY, 60)
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == "320411"
    assert read_token(token, KEYS, "review") == bound
    for role in ("applicant", "reviewer", "operator"):
        plain = issue_token(Principal(uuid4(), role), DEV_KEY, 60)
        assert "scope" not in jwt.decode(plain, options={"verify_signature": False})
        assert read_token(plain, KEYS, "identity").scope is None


@pytest.mark.parametrize(("role", "scope"), [("applicant", "320411"), ("reviewer", ""), ("operator", "a b"),
                                             ("reviewer", 320411), ("reviewer", "x" * 65)])  # fmt: skip
def test_a_scope_on_an_applicant_or_a_malformed_one_is_an_invalid_token(role: str, scope: object) -> None:
    claims = _claims(role=role, scope=scope, aud=["identity"])
    with pytest.raises(Unauthorized) as refused:
        read_token(
            jwt.encode(claims, DEV_KEY.private, algorithm="EdDSA", headers={"kid": DEV_KEY.kid}), KEYS, "identity"
        )
    assert refused.value.code == "invalid_token"
    if isinstance(scope, str):
        with pytest.raises(ValueError):
            Principal(uuid4(), role, scope=scope)  # type: ignore[arg-type]
