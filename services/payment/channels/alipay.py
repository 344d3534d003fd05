"""Alipay asynchronous notification (异步通知), verified with python-alipay-sdk.

Guide, 二(三) 支付宝缴费: the person pays in the "江苏税务社保缴纳" mini program; Alipay then posts
the notification to us (services/payment/channels/README.md, "alipay"):

- body `application/x-www-form-urlencoded`, `charset` utf-8 (the charset our payment orders
  are created with; Alipay notifies in the order's charset, and the SDK verifies UTF-8 text);
- `sign` is RSA2 (SHA256withRSA, PKCS#1 v1.5), base64, over every other parameter except
  `sign_type`, URL-decoded, sorted by name and joined as `k1=v1&k2=v2`, made with Alipay's
  private key: we verify with the Alipay public key configured for our application;
- `trade_status` TRADE_SUCCESS or TRADE_FINISHED means paid; `total_amount` is yuan text
  ("12.34"), read exactly into fen.

The signature check is python-alipay-sdk's (`AliPay.verify`, no network). Its constructor also
loads an application private key, which only signing requests needs; `_VerifyOnly` loads the
Alipay public key alone, so the payment service holds no signing key for this.

Alipay signs no per-delivery timestamp and retries an unanswered notification for about a day
(README), so `notify_time` is held to a wider window than the 5 minutes of the other channels:
a replay inside it can only repeat a payment that exactly-once settlement already counted.
"""

import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from alipay import AliPay
from Cryptodome.PublicKey import RSA
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from kernel.clock import SHANGHAI
from services.payment.channels.common import (
    ChannelNotification,
    check_fresh,
    invalid_notification,
    invalid_signature,
    optional_text,
    parse_yuan,
    text_field,
)

# Older than this, a notification is refused as stale (README, "alipay": beyond Alipay's retries).
ALIPAY_MAX_AGE = timedelta(hours=48)
PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
SIGN_TYPE = "RSA2"
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def load_alipay_public_key(text: str) -> str:
    """The Alipay public key as PEM, from PEM or from the bare base64 Alipay's console shows.

    Raises ValueError when it is not an RSA public key.
    """
    stripped = text.strip()
    if not stripped.startswith("-----BEGIN"):
        body = "\n".join(stripped[i : i + 64] for i in range(0, len(stripped), 64))
        stripped = f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----"
    try:
        key = load_pem_public_key(stripped.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not a PEM or base64 public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


class _VerifyOnly(AliPay):  # type: ignore[misc]  # python-alipay-sdk ships no type information
    """python-alipay-sdk's client holding only the Alipay public key (module docstring)."""

    def _load_key(self) -> None:
        self._alipay_public_key = RSA.import_key(self._alipay_public_key_string)


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict") if text else []
    except ValueError:  # UnicodeDecodeError included: the body or an escaped value is not UTF-8
        invalid_notification("报文不是 UTF-8 表单格式")
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            invalid_notification(f"参数 {key} 重复")
        params[key] = value
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        invalid_notification(f"不支持的字符集 {params['charset']}")
    return params


def _local_time(params: Mapping[str, str], name: str) -> datetime:
    """Alipay's times are "yyyy-MM-dd HH:mm:ss" in Beijing time."""
    value = params.get(name, "")
    if not _LOCAL_TIME.fullmatch(value):
        invalid_notification(f"时间 {name} 不是 yyyy-MM-dd HH:mm:ss")
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        invalid_notification(f"时间 {name} 不是有效时间")


class AlipayVerifier:
    """Verifies Alipay asynchronous notifications; built once from the settings."""

    def __init__(self, alipay_public_key: str, *, app_id: str = "") -> None:
        self._app_id = app_id
        self._sdk = (
            _VerifyOnly(
                appid=app_id, alipay_public_key_string=load_alipay_public_key(alipay_public_key), sign_type=SIGN_TYPE
            )
            if alipay_public_key
            else None
        )

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> ChannelNotification:
        """The verified payment, or a `kernel.problems` refusal (README: "Refusals").

        `headers` are not used: Alipay signs only the parameters.
        """
        params = _form(body)
        self._check_signature(params)
        check_fresh(_local_time(params, "notify_time"), now, max_age=ALIPAY_MAX_AGE)
        if self._app_id and params.get("app_id") != self._app_id:
            invalid_notification("通知不属于本应用（app_id 不符）")
        status = params.get("trade_status")
        if status not in PAID_STATUSES:
            invalid_notification(f"交易状态不是已支付：{status!r}")
        return ChannelNotification(
            channel="alipay",
            transaction_id=text_field(params, "trade_no"),
            out_trade_no=text_field(params, "out_trade_no"),
            amount_fen=parse_yuan(params.get("total_amount", ""), "total_amount"),
            paid_at=_local_time(params, "gmt_payment"),
            payer=optional_text(params, "buyer_id") or optional_text(params, "buyer_open_id"),
            # The signed parameters as received (sign included, it is no secret), so that an
            # auditor can check the signature again from the trail.
            raw=dict(params),
        )

    def _check_signature(self, params: Mapping[str, str]) -> None:
        if self._sdk is None:
            invalid_signature("未配置支付宝公钥")
        unsigned = dict(params)
        sign = unsigned.pop("sign", "")
        if not sign:
            invalid_signature("缺少参数 sign")
        sign_type = unsigned.pop("sign_type", SIGN_TYPE)
        if sign_type != SIGN_TYPE:
            invalid_signature(f"不支持的签名类型 {sign_type}")
        try:
            genuine = bool(self._sdk.verify(unsigned, sign))
        except (ValueError, TypeError, binascii.Error):
            genuine = False
        if not genuine:
            invalid_signature("签名与参数不符")
