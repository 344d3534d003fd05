"""WeChat Pay v3 payment callbacks, made here exactly as WeChat Pay makes them: our own platform
key and self-signed certificate, the transaction sealed with AES-256-GCM under the APIv3 key, the
callback signed with RSA-SHA256 over "timestamp\\nnonce\\nbody\\n"."""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from kernel.problems import Problem
from services.payment.channels import ChannelNotification, ChannelSecrets, ChannelVerifiers, WechatVerifier
from services.payment.channels.wechat import PlatformKey, load_platform_keys

NOW = datetime(2025, 3, 3, 3, 10, tzinfo=UTC)
APIV3_KEY = b"k7Vq2mXz9LpR4tYw8NcB1dFgH3jS6uEa"
MCHID = "1230000109"
BILL = "16fd27068baf433b82eb8c7fada847da"


@dataclass(frozen=True)
class Platform:
    key: rsa.RSAPrivateKey
    serial: str
    certificate_pem: str


def _platform(not_before: datetime, not_after: datetime) -> Platform:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test WeChat Pay platform")])
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return Platform(key, f"{serial:X}", certificate.public_bytes(Encoding.PEM).decode())


@pytest.fixture(scope="module")
def platform() -> Platform:
    return _platform(NOW - timedelta(days=30), NOW + timedelta(days=5 * 365))


@pytest.fixture(scope="module")
def verifier(platform: Platform) -> WechatVerifier:
    keys = load_platform_keys({platform.serial: platform.certificate_pem}, {})
    return WechatVerifier(APIV3_KEY, keys, mchid=MCHID)


def transaction(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mchid": MCHID,
        "appid": "wxd678efh567hg6787",
        "out_trade_no": BILL,
        "transaction_id": "4200001234202503031234567890",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2025-03-03T11:09:58+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 170000, "payer_total": 170000, "currency": "CNY", "payer_currency": "CNY"},
    }
    body.update(changes)
    return body


def sealed_body(plain: dict[str, Any] | str, *, apiv3_key: bytes = APIV3_KEY, **changes: Any) -> bytes:
    """The callback body: the transaction sealed under the APIv3 key, as WeChat Pay sends it."""
    text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)
    nonce = "fdasflkja484"
    ciphertext = AESGCM(apiv3_key).encrypt(nonce.encode(), text.encode(), b"transaction")
    envelope: dict[str, Any] = {
        "id": "EV-2018022511223320873",
        "create_time": "2025-03-03T11:10:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    }
    envelope.update(changes)
    return json.dumps(envelope, ensure_ascii=False).encode()


def signed_headers(key: rsa.RSAPrivateKey, serial: str, body: bytes, *, at: datetime = NOW) -> dict[str, str]:
    timestamp, nonce = str(int(at.timestamp())), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def refused(call: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        call()
    return caught.value


def test_a_genuine_callback_yields_the_payment_in_integer_fen(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    paid = verifier.verify(signed_headers(platform.key, platform.serial, body), body, now=NOW)
    assert isinstance(paid, ChannelNotification)
    assert paid.amount_fen == 170000 and type(paid.amount_fen) is int
    assert (paid.channel, paid.out_trade_no) == ("wechat", BILL)
    assert paid.transaction_id == "4200001234202503031234567890"
    assert paid.payer == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" and paid.bank is None
    assert paid.paid_at == datetime(2025, 3, 3, 3, 9, 58, tzinfo=UTC)
    assert paid.raw["transaction"]["out_trade_no"] == BILL and paid.raw["id"] == "EV-2018022511223320873"
    assert "resource" not in paid.raw  # the ciphertext is not kept, only what it said


def test_header_names_are_case_insensitive_as_http_says(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    lower = {name.lower(): value for name, value in signed_headers(platform.key, platform.serial, body).items()}
    assert verifier.verify(lower, body, now=NOW).amount_fen == 170000


def test_the_verifiers_built_from_settings_take_it_too(platform: Platform) -> None:
    secrets = ChannelSecrets(
        payment_wechat_apiv3_key=SecretStr(APIV3_KEY.decode()),
        payment_wechat_platform_certificates={platform.serial: platform.certificate_pem},
    )
    body = sealed_body(transaction())
    paid = ChannelVerifiers(secrets).verify(
        "wechat", signed_headers(platform.key, platform.serial, body), body, now=NOW
    )
    assert isinstance(paid, ChannelNotification) and paid.amount_fen == 170000


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_any_changed_byte_is_an_invalid_signature(
    platform: Platform, verifier: WechatVerifier, data: st.DataObject
) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body)
    position = data.draw(st.integers(0, len(body) - 1))
    changed = bytearray(body)
    changed[position] ^= data.draw(st.integers(1, 255))
    problem = refused(lambda: verifier.verify(headers, bytes(changed), now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


def test_a_changed_amount_inside_the_resource_is_refused(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body)
    forged = sealed_body(transaction(amount={"total": 1, "payer_total": 1, "currency": "CNY"}))
    assert refused(lambda: verifier.verify(headers, forged, now=NOW)).code == "invalid_signature"


def test_a_callback_signed_with_another_key_is_refused(platform: Platform, verifier: WechatVerifier) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = sealed_body(transaction())
    problem = refused(lambda: verifier.verify(signed_headers(impostor, platform.serial, body), body, now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


def test_an_unknown_serial_is_refused_without_asking_anyone(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    problem = refused(lambda: verifier.verify(signed_headers(platform.key, "7F3A9C", body), body, now=NOW))
    assert problem.code == "invalid_signature" and "7F3A9C" in problem.detail


def test_a_resource_sealed_under_another_apiv3_key_is_refused(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction(), apiv3_key=b"another-apiv3-key-of-32-bytes!!!")
    problem = refused(lambda: verifier.verify(signed_headers(platform.key, platform.serial, body), body, now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature")


@pytest.mark.parametrize(
    "missing", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]
)
def test_a_missing_header_is_an_invalid_signature(platform: Platform, verifier: WechatVerifier, missing: str) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body)
    del headers[missing]
    problem = refused(lambda: verifier.verify(headers, body, now=NOW))
    assert (problem.status, problem.code) == (401, "invalid_signature") and missing in problem.detail


def test_another_signature_type_is_refused(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    headers = {**signed_headers(platform.key, platform.serial, body), "Wechatpay-Signature-Type": "WECHATPAY2-SM2"}
    assert refused(lambda: verifier.verify(headers, body, now=NOW)).code == "invalid_signature"


@pytest.mark.parametrize(
    "signed_at", [NOW - timedelta(minutes=5, seconds=1), NOW - timedelta(days=1), NOW + timedelta(minutes=5, seconds=1)]
)
def test_a_timestamp_more_than_five_minutes_away_is_stale(
    platform: Platform, verifier: WechatVerifier, signed_at: datetime
) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body, at=signed_at)
    problem = refused(lambda: verifier.verify(headers, body, now=NOW))
    assert (problem.status, problem.code) == (401, "stale_notification")


@pytest.mark.parametrize("signed_at", [NOW - timedelta(minutes=5), NOW + timedelta(minutes=5)])
def test_five_minutes_either_way_is_still_fresh(
    platform: Platform, verifier: WechatVerifier, signed_at: datetime
) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body, at=signed_at)
    assert verifier.verify(headers, body, now=NOW).amount_fen == 170000


def test_a_replayed_genuine_timestamp_cannot_be_moved(platform: Platform, verifier: WechatVerifier) -> None:
    body = sealed_body(transaction())
    headers = signed_headers(platform.key, platform.serial, body, at=NOW - timedelta(hours=1))
    headers["Wechatpay-Timestamp"] = str(int(NOW.timestamp()))
    assert refused(lambda: verifier.verify(headers, body, now=NOW)).code == "invalid_signature"


def test_an_expired_platform_certificate_is_refused() -> None:
    old = _platform(NOW - timedelta(days=400), NOW - timedelta(days=1))
    verifier = WechatVerifier(APIV3_KEY, load_platform_keys({old.serial: old.certificate_pem}, {}))
    body = sealed_body(transaction())
    problem = refused(lambda: verifier.verify(signed_headers(old.key, old.serial, body), body, now=NOW))
    assert problem.code == "invalid_signature" and "有效期" in problem.detail


def test_a_wechat_pay_public_key_verifies_by_its_id(platform: Platform) -> None:
    pem = platform.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    key_id = "PUB_KEY_ID_0114232134912410000000000000"
    verifier = WechatVerifier(APIV3_KEY, load_platform_keys({}, {key_id: pem}))
    body = sealed_body(transaction())
    assert verifier.verify(signed_headers(platform.key, key_id, body), body, now=NOW).amount_fen == 170000


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"trade_state": "NOTPAY"}, "SUCCESS"),
        ({"mchid": "1900000001"}, "商户号"),
        ({"amount": {"total": "170000", "currency": "CNY"}}, "amount.total"),
        ({"amount": {"total": True, "currency": "CNY"}}, "amount.total"),
        ({"amount": {"total": 0, "currency": "CNY"}}, "amount.total"),
        ({"amount": {"total": 170000, "currency": "USD"}}, "币种"),
        ({"success_time": "2025-03-03T11:09:58"}, "success_time"),
        ({"out_trade_no": ""}, "out_trade_no"),
    ],
)
def test_a_genuine_callback_we_cannot_take_is_unprocessable(
    platform: Platform, verifier: WechatVerifier, change: dict[str, Any], fragment: str
) -> None:
    body = sealed_body(transaction(**change))
    problem = refused(lambda: verifier.verify(signed_headers(platform.key, platform.serial, body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification") and fragment in problem.detail


def test_a_fractional_amount_never_becomes_a_float(platform: Platform, verifier: WechatVerifier) -> None:
    plain = json.dumps(transaction()).replace('"total": 170000', '"total": 1700.00')
    body = sealed_body(plain)
    problem = refused(lambda: verifier.verify(signed_headers(platform.key, platform.serial, body), body, now=NOW))
    assert problem.code == "invalid_notification" and "amount.total" in problem.detail


@pytest.mark.parametrize(
    "change",
    [{"event_type": "REFUND.SUCCESS"}, {"resource": "plain"}, {"resource": {"algorithm": "AEAD_AES_128_GCM"}}],
)
def test_a_genuine_envelope_of_another_kind_is_unprocessable(
    platform: Platform, verifier: WechatVerifier, change: dict[str, Any]
) -> None:
    body = sealed_body(transaction(), **change)
    problem = refused(lambda: verifier.verify(signed_headers(platform.key, platform.serial, body), body, now=NOW))
    assert (problem.status, problem.code) == (422, "invalid_notification")


def test_settings_refuse_a_certificate_filed_under_another_serial(platform: Platform) -> None:
    with pytest.raises(ValidationError, match="PAYMENT_WECHAT_PLATFORM"):
        ChannelSecrets(payment_wechat_platform_certificates={"ABCDEF": platform.certificate_pem})
    with pytest.raises(ValidationError, match="PAYMENT_WECHAT_PLATFORM"):
        ChannelSecrets(payment_wechat_platform_public_keys={"PUB_KEY_ID_1": "not a key"})


def test_the_loaded_key_is_the_certificate_s(platform: Platform) -> None:
    keys = load_platform_keys({platform.serial.lower(): platform.certificate_pem}, {})
    assert list(keys) == [platform.serial]
    assert isinstance(keys[platform.serial], PlatformKey) and keys[platform.serial].not_after is not None
