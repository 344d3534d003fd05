"""Our own signed JSON notification, for the channels without a public callback standard.

Guide, 二(四) 银联POS机刷卡 (UnionPay POS at the agencies' windows), 二(五) 银行柜面缴费 (cash at the
counters of eight banks) and 二(一) 银行卡签约缴费 (withholding by the card's bank): their
integrators post to us in the format documented for them in services/payment/channels/README.md:

- body: a UTF-8 JSON object (fields per channel, amounts in integer fen);
- `X-Flexenroll-Timestamp`: unix seconds when the notification was signed;
- `X-Flexenroll-Signature`: `sha256=` + lower-case hex HMAC-SHA256, keyed with the channel's
  secret, over `timestamp + "\\n" + body` (the raw body bytes as sent);
- a timestamp more than 5 minutes from our clock is refused, so a captured notification cannot
  be replayed later; the digest is compared in constant time.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from services.payment.channels.banks import Bank, bank_by_code
from services.payment.channels.common import (
    WITHHOLDING_FAILURE_REASONS,
    ChannelNotification,
    CollectionFailed,
    Verified,
    check_fresh,
    fen_field,
    header,
    invalid_notification,
    invalid_signature,
    load_json_object,
    optional_text,
    rfc3339,
    text_field,
    unix_timestamp,
    unknown_bank,
)

HmacChannel = Literal["unionpay_pos", "bank_counter", "bank_withholding"]
HMAC_CHANNELS: tuple[HmacChannel, ...] = get_args(HmacChannel)
SIGNATURE_HEADER = "X-Flexenroll-Signature"
TIMESTAMP_HEADER = "X-Flexenroll-Timestamp"
SIGNATURE_PREFIX = "sha256="

# Ids we and the integrators exchange: letters, digits, '-' and '_' (a UUID fits).
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def signed_message(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode("utf-8") + b"\n" + body


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Flexenroll-Signature` value for `body` signed at `timestamp` (unix seconds, text).

    What an integrator computes; here for local simulators and tests.
    """
    digest = hmac.new(secret.encode("utf-8"), signed_message(timestamp, body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


class HmacVerifier:
    """Verifies one HMAC channel's notifications with that channel's secret."""

    def __init__(self, channel: HmacChannel, secret: str) -> None:
        if channel not in HMAC_CHANNELS:
            raise ValueError(f"{channel} is not an HMAC channel")
        self.channel: HmacChannel = channel
        self._secret = secret.encode("utf-8")

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> Verified:
        """The verified payment (or, for bank_withholding, a failed collection), or a refusal."""
        self._check_signature(headers, body, now)
        data = load_json_object(body, "通知报文")
        if self.channel == "unionpay_pos":
            return _unionpay_pos(data)
        if self.channel == "bank_counter":
            return _bank_counter(data)
        return _bank_withholding(data)

    def _check_signature(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        timestamp = header(headers, TIMESTAMP_HEADER)
        given = header(headers, SIGNATURE_HEADER)
        signed_at = unix_timestamp(timestamp, TIMESTAMP_HEADER)
        hex_digest = given.removeprefix(SIGNATURE_PREFIX)
        if not given.startswith(SIGNATURE_PREFIX) or not _DIGEST.fullmatch(hex_digest):
            invalid_signature(f"{SIGNATURE_HEADER} 应为 sha256=<64 位十六进制>")
        expected = hmac.new(self._secret, signed_message(timestamp, body), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, bytes.fromhex(hex_digest)):
            invalid_signature("签名与报文不符")
        check_fresh(signed_at, now)


def _bank(data: Mapping[str, Any]) -> Bank:
    code = text_field(data, "bank_code", max_length=16)
    bank = bank_by_code(code)
    if bank is None:
        unknown_bank(code)
    return bank


def _card_last4(data: Mapping[str, Any]) -> str | None:
    last4 = optional_text(data, "card_last4", max_length=4)
    if last4 is not None and not re.fullmatch(r"[0-9]{4}", last4):
        invalid_notification("字段 card_last4 应为卡号末四位数字")
    return last4


def _paid(
    channel: HmacChannel, data: Mapping[str, Any], *, time_field: str = "paid_at", **extra: Any
) -> ChannelNotification:
    return ChannelNotification(
        channel=channel,
        transaction_id=text_field(data, "transaction_id", pattern=ID_PATTERN),
        out_trade_no=text_field(data, "out_trade_no", pattern=ID_PATTERN),
        amount_fen=fen_field(data.get("amount_fen"), "amount_fen"),
        paid_at=rfc3339(data.get(time_field), time_field),
        raw=dict(data),
        **extra,
    )


def _unionpay_pos(data: Mapping[str, Any]) -> ChannelNotification:
    return _paid("unionpay_pos", data, payer=_card_last4(data))


def _bank_counter(data: Mapping[str, Any]) -> ChannelNotification:
    return _paid("bank_counter", data, bank=_bank(data))


def _bank_withholding(data: Mapping[str, Any]) -> Verified:
    bank = _bank(data)
    request_id = text_field(data, "collection_request_id", pattern=ID_PATTERN)
    result = data.get("result")
    if result == "success":
        return _paid(
            "bank_withholding",
            data,
            time_field="completed_at",
            bank=bank,
            payer=_card_last4(data),
            collection_request_id=request_id,
        )
    if result != "failed":
        invalid_notification("字段 result 应为 success 或 failed")
    reason = data.get("failure_reason")
    known = next((code for code in WITHHOLDING_FAILURE_REASONS if code == reason), None)
    if known is None:
        invalid_notification(f"字段 failure_reason 应为 {'、'.join(WITHHOLDING_FAILURE_REASONS)} 之一")
    return CollectionFailed(
        transaction_id=text_field(data, "transaction_id", pattern=ID_PATTERN),
        out_trade_no=text_field(data, "out_trade_no", pattern=ID_PATTERN),
        collection_request_id=request_id,
        amount_fen=fen_field(data.get("amount_fen"), "amount_fen"),
        bank=bank,
        reason=known,
        failed_at=rfc3339(data.get("completed_at"), "completed_at"),
        bank_detail=optional_text(data, "failure_detail", max_length=200),
        raw=dict(data),
    )


# --- withholding agreements (services/payment/channels/README.md, "Withholding agreements") ------


@dataclass(frozen=True)
class AgreementNotice:
    """A bank's verified word that a person signed (or ended) a withholding agreement at its branch.

    The ID number and name are how the bank knows the person: payment asks identity who that is
    and keeps neither (docs/personal-data.md)."""

    status: Literal["signed", "terminated"]
    agreement_no: str
    bank: Bank
    card_ref: str
    card_last4: str | None
    id_number: str
    name: str
    at: datetime

    def __repr__(self) -> str:  # never the ID number or the name in a log or a traceback
        return f"AgreementNotice({self.status}, {self.bank.code}, {self.agreement_no})"


def verify_agreement(
    verifier: HmacVerifier, headers: Mapping[str, str], body: bytes, *, now: datetime
) -> AgreementNotice:
    """The bank_withholding channel's signed agreement notice, or a refusal (401/422, as notifications)."""
    if verifier.channel != "bank_withholding":
        raise ValueError("agreements come from the bank_withholding channel")
    verifier._check_signature(headers, body, now)
    data = load_json_object(body, "协议通知报文")
    status = data.get("status")
    if status not in ("signed", "terminated"):
        invalid_notification("字段 status 应为 signed 或 terminated")
    time_field = "signed_at" if status == "signed" else "terminated_at"
    return AgreementNotice(
        status=status,
        agreement_no=text_field(data, "agreement_no", pattern=ID_PATTERN),
        bank=_bank(data),
        card_ref=text_field(data, "card_ref", pattern=ID_PATTERN),
        card_last4=_card_last4(data),
        id_number=text_field(data, "id_number", max_length=18),
        name=text_field(data, "name", max_length=32),
        at=rfc3339(data.get(time_field), time_field),
    )
