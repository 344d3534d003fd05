"""Our HMAC-signed JSON format (unionpay_pos, bank_counter, bank_withholding), signed here as the
integrators are told to in services/payment/channels/README.md."""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from kernel.problems import Problem
from services.payment.channels import (
    BANKS,
    ChannelNotification,
    ChannelSecrets,
    ChannelVerifiers,
    CollectionFailed,
    HmacChannel,
    HmacVerifier,
    bank_by_code,
    sign,
)

NOW = datetime(2025, 3, 3, 3, 10, tzinfo=UTC)
SECRET = "a-test-secret-of-more-than-32-bytes-for-hmac"
BILL = "16fd2706-8baf-433b-82eb-8c7fada847da"
REQUEST = "c0a8f2e4-7b1d-4e3a-9f6c-2d5e8a1b3c4d"
GUIDE_BANKS = ["中国银行", "农业银行", "工商银行", "建设银行", "交通银行", "江苏银行", "江南银行", "邮储银行"]


def body_of(channel: HmacChannel, **changes: Any) -> dict[str, Any]:
    common: dict[str, Any] = {"transaction_id": "T20250303111000001", "out_trade_no": BILL, "amount_fen": 170000}
    if channel == "unionpay_pos":
        fields = {**common, "paid_at": "2025-03-03T11:09:58+08:00", "card_last4": "1234", "terminal_id": "32040001"}
    elif channel == "bank_counter":
        fields = {**common, "paid_at": "2025-03-03T11:09:58+08:00", "bank_code": "ICBC", "branch": "常州天宁支行"}
    else:
        fields = {
            **common,
            "collection_request_id": REQUEST,
            "bank_code": "JNRCB",
            "result": "success",
            "completed_at": "2025-03-03T11:09:58+08:00",
            "card_last4": "5678",
        }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")


def headers_for(body: bytes, *, secret: str = SECRET, at: datetime = NOW) -> dict[str, str]:
    """What an integrator sends: computed from the README's recipe, not through `sign`."""
    timestamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), f"{timestamp}\n".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Flexenroll-Timestamp": timestamp, "X-Flexenroll-Signature": f"sha256={digest}"}


def refused(call: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        call()
    return caught.value


CHANNELS: list[HmacChannel] = ["unionpay_pos", "bank_counter", "bank_withholding"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_genuine_notification_yields_the_payment_in_integer_fen(channel: HmacChannel) -> None:
    body = encode(body_of(channel))
    paid = HmacVerifier(channel, SECRET).verify(headers_for(body), body, now=NOW)
    assert isinstance(paid, ChannelNotification)
    assert paid.amount_fen == 170000 and type(paid.amount_fen) is int
    assert (paid.channel, paid.out_trade_no, paid.transaction_id) == (channel, BILL, "T20250303111000001")
    assert paid.paid_at == datetime(2025, 3, 3, 3, 9, 58, tzinfo=UTC)
    assert paid.raw == body_of(channel)


def test_each_channel_says_what_it_knows_of_payer_and_bank() -> None:
    verified = {}
    for channel in CHANNELS:
        body = encode(body_of(channel))
        verified[channel] = HmacVerifier(channel, SECRET).verify(headers_for(body), body, now=NOW)
    pos, counter, withholding = verified["unionpay_pos"], verified["bank_counter"], verified["bank_withholding"]
    assert isinstance(pos, ChannelNotification) and isinstance(counter, ChannelNotification)
    assert isinstance(withholding, ChannelNotification)
    assert (pos.payer, pos.bank) == ("1234", None)
    assert counter.bank == bank_by_code("ICBC") and counter.bank is not None and counter.bank.name == "工商银行"
    assert withholding.bank is not None and withholding.bank.name == "江南银行"
    assert (withholding.collection_request_id, withholding.payer) == (REQUEST, "5678")


def test_the_published_signing_helper_matches_the_recipe() -> None:
    body = encode(body_of("bank_counter"))
    timestamp = str(int(NOW.timestamp()))
    assert sign(SECRET, timestamp, body) == headers_for(body)["X-Flexenroll-Signature"]


@pytest.mark.parametrize("code", [bank.code for bank in BANKS])
def test_bank_counter_takes_each_of_the_guide_s_eight_banks(code: str) -> None:
    body = encode(body_of("bank_counter", bank_code=code))
    paid = HmacVerifier("bank_counter", SECRET).verify(headers_for(body), body, now=NOW)
    assert paid.bank is not None and paid.bank.name in GUIDE_BANKS


def test_the_eight_banks_are_the_guide_s_with_stable_codes() -> None:
    assert [bank.name for bank in BANKS] == GUIDE_BANKS
    assert [bank.code for bank in BANKS] == ["BOC", "ABC", "ICBC", "CCB", "BOCOM", "JSB", "JNRCB", "PSBC"]


@pytest.mark.parametrize("channel", ["bank_counter", "bank_withholding"])
@pytest.mark.parametrize("code", ["CMB", "icbc", "招商银行", "工商银行"])
def test_any_other_bank_is_refused(channel: HmacChannel, code: str) -> None:
    body = encode(body_of(channel, bank_code=code))
    problem = refused(lambda: HmacVerifier(channel, SECRET).verify(headers_for(body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "unknown_bank")


def test_a_failed_withholding_carries_its_request_and_reason() -> None:
    fields = body_of(
        "bank_withholding", result="failed", failure_reason="insufficient_funds", failure_detail="余额不足(51)"
    )
    body = encode(fields)
    failed = HmacVerifier("bank_withholding", SECRET).verify(headers_for(body), body, now=NOW)
    assert isinstance(failed, CollectionFailed)
    assert (failed.collection_request_id, failed.out_trade_no, failed.amount_fen) == (REQUEST, BILL, 170000)
    assert (failed.reason, failed.reason_text, failed.bank_detail) == (
        "insufficient_funds",
        "账户余额不足",
        "余额不足(51)",
    )
    assert failed.bank.name == "江南银行" and failed.failed_at == datetime(2025, 3, 3, 3, 9, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes",
    [
        {"result": "failed"},
        {"result": "failed", "failure_reason": "bank_says_no"},
        {"result": "pending"},
        {"result": None},
        {"collection_request_id": None},
    ],
)
def test_a_withholding_result_we_do_not_know_is_unprocessable(changes: dict[str, Any]) -> None:
    body = encode(body_of("bank_withholding", **changes))
    problem = refused(lambda: HmacVerifier("bank_withholding", SECRET).verify(headers_for(body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification")


@settings(max_examples=100, deadline=None)
@given(channel=st.sampled_from(CHANNELS), data=st.data())
def test_any_changed_byte_is_an_invalid_signature(channel: HmacChannel, data: st.DataObject) -> None:
    body = encode(body_of(channel))
    headers = headers_for(body)
    changed = bytearray(body)
    changed[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    problem = refused(lambda: HmacVerifier(channel, SECRET).verify(headers, bytes(changed), now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_notification_signed_with_another_secret_is_refused(channel: HmacChannel) -> None:
    body = encode(body_of(channel))
    headers = headers_for(body, secret="another-secret-of-more-than-32-bytes-long")
    problem = refused(lambda: HmacVerifier(channel, SECRET).verify(headers, body, now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


def test_one_channel_s_signature_does_not_open_another() -> None:
    secrets = ChannelSecrets(
        payment_unionpay_pos_secret=SecretStr("p" * 32),
        payment_bank_counter_secret=SecretStr("c" * 32),
        payment_bank_withholding_secret=SecretStr("w" * 32),
    )
    verifiers = ChannelVerifiers(secrets)
    body = encode(body_of("bank_counter"))
    assert verifiers.verify("bank_counter", headers_for(body, secret="c" * 32), body, now=NOW).amount_fen == 170000
    problem = refused(lambda: verifiers.verify("unionpay_pos", headers_for(body, secret="c" * 32), body, now=NOW))
    assert problem.code == "invalid_signature"


@pytest.mark.parametrize("missing", ["X-Flexenroll-Timestamp", "X-Flexenroll-Signature"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_missing_header_is_an_invalid_signature(channel: HmacChannel, missing: str) -> None:
    body = encode(body_of(channel))
    headers = headers_for(body)
    del headers[missing]
    problem = refused(lambda: HmacVerifier(channel, SECRET).verify(headers, body, now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature") and missing in problem.detail


@pytest.mark.parametrize(
    "value",
    ["", "sha1=00", "sha256=", "sha256=xyz", "SHA256=" + "0" * 64, "sha256=" + "0" * 63, "0" * 64],
)
def test_a_malformed_signature_header_is_refused(value: str) -> None:
    body = encode(body_of("unionpay_pos"))
    headers = {**headers_for(body), "X-Flexenroll-Signature": value}
    assert refused(lambda: HmacVerifier("unionpay_pos", SECRET).verify(headers, body, now=NOW)).status == 401


def test_upper_case_hex_and_lower_case_header_names_are_accepted() -> None:
    body = encode(body_of("unionpay_pos"))
    headers = headers_for(body)
    headers = {
        "x-flexenroll-timestamp": headers["X-Flexenroll-Timestamp"],
        "x-flexenroll-signature": "sha256=" + headers["X-Flexenroll-Signature"].removeprefix("sha256=").upper(),
    }
    assert HmacVerifier("unionpay_pos", SECRET).verify(headers, body, now=NOW).amount_fen == 170000


def test_the_timestamp_is_signed_so_it_cannot_be_refreshed() -> None:
    body = encode(body_of("bank_counter"))
    headers = headers_for(body, at=NOW - timedelta(hours=1))
    headers["X-Flexenroll-Timestamp"] = str(int(NOW.timestamp()))
    assert refused(lambda: HmacVerifier("bank_counter", SECRET).verify(headers, body, now=NOW)).code == (
        "invalid_signature"
    )


def test_a_signature_over_the_body_alone_is_refused() -> None:
    body = encode(body_of("bank_counter"))
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Flexenroll-Timestamp": str(int(NOW.timestamp())), "X-Flexenroll-Signature": f"sha256={digest}"}
    assert refused(lambda: HmacVerifier("bank_counter", SECRET).verify(headers, body, now=NOW)).code == (
        "invalid_signature"
    )


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "signed_at", [NOW - timedelta(minutes=5, seconds=1), NOW - timedelta(days=2), NOW + timedelta(minutes=5, seconds=1)]
)
def test_a_timestamp_more_than_five_minutes_away_is_stale(channel: HmacChannel, signed_at: datetime) -> None:
    body = encode(body_of(channel))
    problem = refused(lambda: HmacVerifier(channel, SECRET).verify(headers_for(body, at=signed_at), body, now=NOW))
    assert (problem.status, problem.code) == (401, "stale_notification")


@pytest.mark.parametrize("timestamp", ["1741000000.5", "-1", "１７４１０００６００", "99999999999999"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    body = encode(body_of("bank_counter"))
    headers = {"X-Flexenroll-Timestamp": timestamp, "X-Flexenroll-Signature": sign(SECRET, timestamp, body)}
    assert refused(lambda: HmacVerifier("bank_counter", SECRET).verify(headers, body, now=NOW)).code == (
        "invalid_signature"
    )


@pytest.mark.parametrize("bad", ["1700.00", "1.7e5", '"170000"', "true", "0", "-170000", "null", "170000.0"])
def test_amounts_other_than_positive_integer_fen_are_unprocessable(bad: str) -> None:
    body = json.dumps(body_of("unionpay_pos")).replace('"amount_fen": 170000', f'"amount_fen": {bad}').encode()
    problem = refused(lambda: HmacVerifier("unionpay_pos", SECRET).verify(headers_for(body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification") and "amount_fen" in problem.detail


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"amount_fen": NaN}',
        b'{"transaction_id": "a", "transaction_id": "b"}',
        "{}".encode("utf-16"),
    ],
)
def test_a_malformed_body_is_unprocessable(body: bytes) -> None:
    problem = refused(lambda: HmacVerifier("bank_counter", SECRET).verify(headers_for(body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification")


@pytest.mark.parametrize(
    "changes",
    [
        {"paid_at": "2025-03-03T11:09:58"},
        {"paid_at": "2025-03-03 11:09:58+08:00"},
        {"paid_at": "2025-02-30T11:09:58+08:00"},
        {"paid_at": None},
        {"transaction_id": "has space"},
        {"transaction_id": "x" * 65},
        {"out_trade_no": None},
        {"card_last4": "12345"},
        {"card_last4": "12ab"},
    ],
)
def test_fields_out_of_format_are_unprocessable(changes: dict[str, Any]) -> None:
    body = encode(body_of("unionpay_pos", **changes))
    problem = refused(lambda: HmacVerifier("unionpay_pos", SECRET).verify(headers_for(body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification")


def test_settings_refuse_a_short_hmac_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        ChannelSecrets(payment_bank_counter_secret=SecretStr("short"))
