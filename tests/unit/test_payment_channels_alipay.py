"""Alipay asynchronous notifications, made here exactly as Alipay makes them: our own key pair
stands for Alipay's, `sign` is RSA2 over the sorted decoded parameters without sign and sign_type,
and the body is form-encoded."""

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from kernel.clock import SHANGHAI
from kernel.problems import Problem
from services.payment.channels import AlipayVerifier, ChannelNotification, ChannelSecrets, ChannelVerifiers

NOW = datetime(2025, 3, 3, 3, 10, tzinfo=UTC)
APP_ID = "2021000000000000"
BILL = "16fd2706-8baf-433b-82eb-8c7fada847da"


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def verifier(alipay_key: rsa.RSAPrivateKey) -> AlipayVerifier:
    return AlipayVerifier(public_pem(alipay_key), app_id=APP_ID)


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def params(**changes: str) -> dict[str, str]:
    base = {
        "gmt_create": "2025-03-03 11:09:50",
        "charset": "utf-8",
        "seller_email": "shebao@example.com",
        "subject": "灵活就业人员社会保险费 2025-03",
        "buyer_id": "2088102122524333",
        "invoice_amount": "1700.00",
        "notify_id": "2025030300222110957011111111111111",
        "fund_bill_list": '[{"amount":"1700.00","fundChannel":"ALIPAYACCOUNT"}]',
        "notify_type": "trade_status_sync",
        "trade_status": "TRADE_SUCCESS",
        "receipt_amount": "1700.00",
        "app_id": APP_ID,
        "buyer_pay_amount": "1700.00",
        "seller_id": "2088101117955611",
        "gmt_payment": "2025-03-03 11:09:58",
        "notify_time": local(NOW),
        "version": "1.0",
        "out_trade_no": BILL,
        "total_amount": "1700.00",
        "trade_no": "2025030322001424331000000001",
        "auth_app_id": APP_ID,
        "buyer_logon_id": "159****5620",
        "point_amount": "0.00",
    }
    base.update(changes)
    return base


def signed(key: rsa.RSAPrivateKey, fields: dict[str, str]) -> dict[str, str]:
    content = "&".join(f"{name}={value}" for name, value in sorted(fields.items()) if name not in ("sign", "sign_type"))
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return {**fields, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}


def form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode("ascii")


def refused(call: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        call()
    return caught.value


HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def test_a_genuine_notification_yields_the_payment_in_integer_fen(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier
) -> None:
    paid = verifier.verify(HEADERS, form(signed(alipay_key, params())), now=NOW)
    assert isinstance(paid, ChannelNotification)
    assert paid.amount_fen == 170000 and type(paid.amount_fen) is int
    assert (paid.channel, paid.out_trade_no, paid.transaction_id) == ("alipay", BILL, "2025030322001424331000000001")
    assert paid.payer == "2088102122524333" and paid.bank is None
    assert paid.paid_at == datetime(2025, 3, 3, 3, 9, 58, tzinfo=UTC)
    assert paid.raw["subject"] == "灵活就业人员社会保险费 2025-03" and "sign" in paid.raw


def test_trade_finished_and_the_open_id_payer_are_taken(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier
) -> None:
    fields = params(trade_status="TRADE_FINISHED", buyer_open_id="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5")
    del fields["buyer_id"]
    paid = verifier.verify(HEADERS, form(signed(alipay_key, fields)), now=NOW)
    assert paid.payer == "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"


def test_the_key_as_alipay_s_console_shows_it_verifies_too(alipay_key: rsa.RSAPrivateKey) -> None:
    bare = "".join(line for line in public_pem(alipay_key).splitlines() if not line.startswith("-----"))
    secrets = ChannelSecrets(payment_alipay_public_key=bare)
    paid = ChannelVerifiers(secrets).verify("alipay", HEADERS, form(signed(alipay_key, params())), now=NOW)
    assert isinstance(paid, ChannelNotification) and paid.amount_fen == 170000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("total_amount", "1700.01"),
        ("out_trade_no", "6fa459ea-ee8a-4ca4-894e-db77e160355e"),
        ("trade_no", "2025030322001424331000000002"),
        ("buyer_id", "2088102122524334"),
        ("notify_time", local(NOW + timedelta(seconds=1))),
        ("extra", "added after signing"),
    ],
)
def test_a_changed_or_added_parameter_is_an_invalid_signature(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier, name: str, value: str
) -> None:
    fields = signed(alipay_key, params())
    fields[name] = value
    problem = refused(lambda: verifier.verify(HEADERS, form(fields), now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


def test_a_changed_byte_of_the_body_is_refused(alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier) -> None:
    body = form(signed(alipay_key, params()))
    position = body.index(b"total_amount=1700.00") + len("total_amount=1700.0")
    changed = body[:position] + b"1" + body[position + 1 :]
    assert refused(lambda: verifier.verify(HEADERS, changed, now=NOW)).code == "invalid_signature"


def test_a_removed_parameter_is_an_invalid_signature(alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier) -> None:
    fields = signed(alipay_key, params())
    del fields["point_amount"]
    assert refused(lambda: verifier.verify(HEADERS, form(fields), now=NOW)).code == "invalid_signature"


def test_a_notification_signed_with_another_key_is_refused(verifier: AlipayVerifier) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    problem = refused(lambda: verifier.verify(HEADERS, form(signed(impostor, params())), now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [({"sign": None}, "sign"), ({"sign": ""}, "sign"), ({"sign_type": "RSA"}, "RSA"), ({"sign": "not*base64"}, "")],
)
def test_a_missing_or_malformed_sign_is_refused(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier, change: dict[str, str | None], fragment: str
) -> None:
    fields: dict[str, Any] = signed(alipay_key, params())
    for name, value in change.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    problem = refused(lambda: verifier.verify(HEADERS, form(fields), now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature") and fragment in problem.detail


def test_without_a_configured_public_key_nothing_verifies(alipay_key: rsa.RSAPrivateKey) -> None:
    unconfigured = ChannelVerifiers(ChannelSecrets())
    problem = refused(lambda: unconfigured.verify("alipay", HEADERS, form(signed(alipay_key, params())), now=NOW))
    assert problem.code == "invalid_signature"


@pytest.mark.parametrize(
    "notified_at", [NOW - timedelta(hours=48, seconds=1), NOW - timedelta(days=30), NOW + timedelta(minutes=6)]
)
def test_a_notify_time_outside_alipay_s_retry_window_is_stale(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier, notified_at: datetime
) -> None:
    body = form(signed(alipay_key, params(notify_time=local(notified_at))))
    problem = refused(lambda: verifier.verify(HEADERS, body, now=NOW))
    assert (problem.status, problem.code) == (401, "stale_notification")


def test_a_retry_a_day_later_is_still_taken(alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier) -> None:
    body = form(signed(alipay_key, params()))
    assert verifier.verify(HEADERS, body, now=NOW + timedelta(hours=25)).amount_fen == 170000


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"total_amount": "0.001"}, "total_amount"),
        ({"total_amount": "1700"}, ""),  # whole yuan is fine: checked below
        ({"total_amount": "1e3"}, "total_amount"),
        ({"total_amount": "-1700.00"}, "total_amount"),
        ({"total_amount": "0.00"}, "total_amount"),
        ({"trade_status": "WAIT_BUYER_PAY"}, "WAIT_BUYER_PAY"),
        ({"trade_status": "TRADE_CLOSED"}, "TRADE_CLOSED"),
        ({"app_id": "2021000000000001"}, "app_id"),
        ({"gmt_payment": "2025-03-03T11:09:58"}, "gmt_payment"),
        ({"trade_no": ""}, "trade_no"),
        ({"charset": "gbk"}, "gbk"),
    ],
)
def test_a_genuine_notification_we_cannot_take_is_unprocessable(
    alipay_key: rsa.RSAPrivateKey, verifier: AlipayVerifier, change: dict[str, str], fragment: str
) -> None:
    body = form(signed(alipay_key, params(**change)))
    if change == {"total_amount": "1700"}:
        assert verifier.verify(HEADERS, body, now=NOW).amount_fen == 170000
        return
    problem = refused(lambda: verifier.verify(HEADERS, body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification") and fragment in problem.detail


@pytest.mark.parametrize("body", [b"a=1&a=2", b"%zz=&&", "subject=\u4e2d".encode("gbk")])
def test_a_malformed_body_is_refused_before_any_signature_work(verifier: AlipayVerifier, body: bytes) -> None:
    problem = refused(lambda: verifier.verify(HEADERS, body, now=NOW))
    assert problem.status in (401, 422)
    assert problem.code in ("invalid_notification", "invalid_signature")


def test_settings_refuse_a_public_key_that_is_not_one() -> None:
    with pytest.raises(ValidationError, match="PAYMENT_ALIPAY_PUBLIC_KEY"):
        ChannelSecrets(payment_alipay_public_key="MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
