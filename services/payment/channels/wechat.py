"""WeChat Pay API v3 payment notification (支付成功通知), verified and decrypted.

Guide, 二(二) 微信缴费: the person pays in the "江苏税务社保缴纳" mini program; WeChat Pay then
calls us back. The callback and its checks (services/payment/channels/README.md, "wechat"):

1. headers `Wechatpay-Timestamp`, `Wechatpay-Nonce`, `Wechatpay-Signature`, `Wechatpay-Serial`;
   the signature is RSA-SHA256 (PKCS#1 v1.5), base64, over "timestamp\\nnonce\\nbody\\n", made
   with the WeChat Pay platform key whose certificate serial (or public key id) is
   `Wechatpay-Serial`;
2. the timestamp is within 5 minutes of now;
3. the body's `resource` (AEAD_AES_256_GCM: base64 `ciphertext` with its tag, `nonce`,
   `associated_data`) is decrypted with the merchant's 32-byte APIv3 key;
4. the plaintext is the transaction: `trade_state` SUCCESS, `amount.total` in fen, …

Implemented with `cryptography` following that documented algorithm, not with the `wechatpayv3`
package: its `Core.callback` needs the merchant's private key, loads platform certificates over
the network (at construction, and again for any serial it does not know, i.e. whenever a
caller sends a made-up serial) and checks no timestamp, whereas verification here must be pure
with the clock passed in (docs/service-anatomy.md).
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.payment.channels.common import (
    ChannelNotification,
    check_fresh,
    fen_field,
    header,
    invalid_notification,
    invalid_signature,
    load_json_object,
    optional_header,
    optional_text,
    rfc3339,
    text_field,
    unix_timestamp,
)

APIV3_KEY_BYTES = 32
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
PAYMENT_EVENT_TYPE = "TRANSACTION.SUCCESS"


@dataclass(frozen=True)
class PlatformKey:
    """A WeChat Pay platform key; a certificate's key is valid only within its dates."""

    public_key: RSAPublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None


def _rsa(key: object, what: str) -> RSAPublicKey:
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{what} is not an RSA key")
    return key


def load_platform_keys(certificates: Mapping[str, str], public_keys: Mapping[str, str]) -> dict[str, PlatformKey]:
    """Platform keys by the serial WeChat Pay sends in `Wechatpay-Serial`.

    `certificates`: certificate serial (hex) → PEM X.509 certificate; the serial must be the
    certificate's own. `public_keys`: WeChat Pay public key id (PUB_KEY_ID_…) → PEM public key.
    Raises ValueError on anything that does not load.
    """
    keys: dict[str, PlatformKey] = {}
    for serial, pem in certificates.items():
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
            number = int(serial, 16)
        except ValueError as exc:
            raise ValueError(f"certificate {serial!r} is not a PEM X.509 certificate under a hex serial") from exc
        if certificate.serial_number != number:
            raise ValueError(f"certificate {serial!r} has serial {certificate.serial_number:X}")
        keys[serial.upper()] = PlatformKey(
            _rsa(certificate.public_key(), f"certificate {serial!r}"),
            certificate.not_valid_before_utc,
            certificate.not_valid_after_utc,
        )
    for key_id, pem in public_keys.items():
        try:
            loaded = load_pem_public_key(pem.encode("ascii"))
        except ValueError as exc:
            raise ValueError(f"public key {key_id!r} is not a PEM public key") from exc
        keys[key_id] = PlatformKey(_rsa(loaded, f"public key {key_id!r}"))
    return keys


class WechatVerifier:
    """Verifies WeChat Pay v3 payment callbacks; built once from the settings."""

    def __init__(self, apiv3_key: bytes, platform_keys: Mapping[str, PlatformKey], *, mchid: str = "") -> None:
        if len(apiv3_key) != APIV3_KEY_BYTES:
            raise ValueError(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes")
        self._aead = AESGCM(apiv3_key)
        self._keys = dict(platform_keys)
        self._mchid = mchid

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> ChannelNotification:
        """The verified payment, or a `kernel.problems` refusal (README: "Refusals")."""
        self._check_signature(headers, body, now)
        envelope = load_json_object(body, "通知报文")
        if envelope.get("event_type") != PAYMENT_EVENT_TYPE:
            invalid_notification(f"事件类型不是 {PAYMENT_EVENT_TYPE}")
        transaction = load_json_object(self._decrypt(envelope), "交易资源")
        return _payment(envelope, transaction, self._mchid)

    def _check_signature(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        timestamp = header(headers, "Wechatpay-Timestamp")
        nonce = header(headers, "Wechatpay-Nonce")
        signature = header(headers, "Wechatpay-Signature")
        serial = header(headers, "Wechatpay-Serial")
        signature_type = optional_header(headers, "Wechatpay-Signature-Type")
        if signature_type is not None and signature_type != SIGNATURE_TYPE:
            invalid_signature(f"不支持的签名类型 {signature_type[:64]}")
        signed_at = unix_timestamp(timestamp, "Wechatpay-Timestamp")
        key = self._keys.get(serial) or self._keys.get(serial.upper())
        if key is None:
            invalid_signature(f"未知的微信支付平台证书序列号 {serial[:64]}")
        if (key.not_before and now < key.not_before) or (key.not_after and now > key.not_after):
            invalid_signature(f"微信支付平台证书 {serial} 不在有效期内")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            invalid_signature("Wechatpay-Signature 不是 base64")
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        try:
            key.public_key.verify(raw_signature, message, PKCS1v15(), SHA256())
        except InvalidSignature:
            invalid_signature("签名与报文不符")
        check_fresh(signed_at, now)

    def _decrypt(self, envelope: Mapping[str, object]) -> bytes:
        resource = envelope.get("resource")
        if not isinstance(resource, dict):
            invalid_notification("缺少 resource")
        if resource.get("algorithm") != RESOURCE_ALGORITHM:
            invalid_notification(f"resource 的加密算法不是 {RESOURCE_ALGORITHM}")
        ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
        associated_data = resource.get("associated_data") or ""
        if not (isinstance(ciphertext, str) and isinstance(nonce, str) and isinstance(associated_data, str)):
            invalid_notification("resource 缺少 ciphertext、nonce 或 associated_data")
        try:
            sealed = base64.b64decode(ciphertext, validate=True)
            return self._aead.decrypt(nonce.encode("utf-8"), sealed, associated_data.encode("utf-8"))
        except (binascii.Error, ValueError):
            invalid_notification("resource 的密文或随机串格式不符")
        except InvalidTag:
            # The signature was genuine, so the sender is WeChat Pay: our APIv3 key is not the
            # one the merchant platform holds. 401 (not 2xx) lets WeChat Pay retry after the fix.
            invalid_signature("resource 无法用 APIv3 密钥解密")


def _payment(envelope: Mapping[str, object], transaction: Mapping[str, object], mchid: str) -> ChannelNotification:
    if mchid and transaction.get("mchid") != mchid:
        invalid_notification("交易不属于本商户号")
    if transaction.get("trade_state") != "SUCCESS":
        invalid_notification(f"交易状态不是 SUCCESS：{transaction.get('trade_state')!r}")
    amount = transaction.get("amount")
    if not isinstance(amount, dict):
        invalid_notification("缺少 amount")
    total = fen_field(amount.get("total"), "amount.total")
    if "payer_total" in amount and type(amount["payer_total"]) is not int:
        invalid_notification("金额 amount.payer_total 必须是以分为单位的整数")
    if amount.get("currency", "CNY") != "CNY":
        invalid_notification("币种不是人民币")
    payer = transaction.get("payer")
    openid = optional_text(payer, "openid") if isinstance(payer, dict) else None
    raw = {
        key: envelope[key] for key in ("id", "create_time", "event_type", "resource_type", "summary") if key in envelope
    }
    return ChannelNotification(
        channel="wechat",
        transaction_id=text_field(transaction, "transaction_id"),
        out_trade_no=text_field(transaction, "out_trade_no"),
        amount_fen=total,
        paid_at=rfc3339(transaction.get("success_time"), "success_time"),
        payer=openid,
        raw={**raw, "transaction": dict(transaction)},
    )
