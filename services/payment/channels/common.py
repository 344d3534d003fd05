"""What every channel's verification shares: the verified result, the refusals, money and time.

Pure: no I/O, no clock of its own (`now` is an argument, docs/service-anatomy.md). Money is
integer fen from the wire to the result: decimal text is read with `Decimal`, JSON numbers with
a fraction are kept as text and refused, so no float ever holds an amount (issue 8, "Money is
integer fen everywhere").
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn

from contracts.events.payment import Channel
from kernel.problems import Refused, Unauthorized
from services.payment.channels.banks import Bank

# A notification signed longer ago than this (or stamped this far in the future) is refused:
# a captured notification cannot be replayed later (services/payment/channels/README.md).
MAX_CLOCK_SKEW = timedelta(minutes=5)

WithholdingFailure = Literal[
    "insufficient_funds",
    "agreement_not_found",
    "card_not_activated",
    "account_abnormal",
    "other",
]
# Why a bank could not collect, in the words shown to the insured person. The guide, 二(一):
# paying by bank card needs the social security card's financial function activated (金融功能激活)
# and a signed withholding agreement (扣缴协议), hence the two specific reasons.
WITHHOLDING_FAILURE_REASONS: Mapping[WithholdingFailure, str] = {
    "insufficient_funds": "账户余额不足",
    "agreement_not_found": "扣缴协议不存在或已解除",
    "card_not_activated": "社保卡金融功能未激活",
    "account_abnormal": "账户状态异常（冻结、挂失或销户）",
    "other": "其他原因",
}


@dataclass(frozen=True)
class ChannelNotification:
    """A channel's verified word that a bill (or payment order) was paid.

    `transaction_id` is the channel's own id (with `channel`, the key of exactly-once settlement);
    `out_trade_no` is the merchant order number we issued (our bill id or payment order id).
    `payer` is what the channel says about who paid (WeChat openid, Alipay buyer id, POS card's
    last four digits), if anything. `raw` keeps the notification's fields for the audit trail;
    it holds no secret (signatures and keys are not in it).
    """

    channel: Channel
    transaction_id: str
    out_trade_no: str
    amount_fen: int
    paid_at: datetime
    payer: str | None = None
    bank: Bank | None = None
    # bank_withholding only: the collection request the bank answers.
    collection_request_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # The last line of defence for the money rule: whatever a parser did, only an int passes.
        if type(self.amount_fen) is not int or self.amount_fen <= 0:
            raise TypeError("amount_fen must be a positive int")
        if self.paid_at.tzinfo is None:
            raise TypeError("paid_at must be an aware datetime")


@dataclass(frozen=True)
class CollectionFailed:
    """A bank's verified word that a withholding collection request was not collected.

    The bill stays due; the person is told why (`reason_text`) and the next run tries again
    (issue 8, "Bank withholding").
    """

    transaction_id: str
    out_trade_no: str
    collection_request_id: str
    amount_fen: int
    bank: Bank
    reason: WithholdingFailure
    failed_at: datetime
    # The bank's own words, for operators; not shown to the person.
    bank_detail: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)
    channel: Channel = "bank_withholding"

    @property
    def reason_text(self) -> str:
        return WITHHOLDING_FAILURE_REASONS[self.reason]


Verified = ChannelNotification | CollectionFailed


# Refusals. 401 when we cannot know who sent it (the channel retries after a fix), 422 when a
# genuine sender sent something we cannot take. Codes are stable; details are Chinese
# (kernel/problems.py).


def invalid_signature(detail: str) -> NoReturn:
    raise Unauthorized("invalid_signature", f"通知签名无效：{detail}")


def stale_notification(detail: str) -> NoReturn:
    raise Unauthorized("stale_notification", f"通知时间戳超出允许范围：{detail}")


def invalid_notification(detail: str) -> NoReturn:
    raise Refused("invalid_notification", f"通知内容无效：{detail}")


def unknown_bank(code: str) -> NoReturn:
    raise Refused("unknown_bank", f"不受理的银行：{code}", bank_code=code)


def optional_header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value.strip():
            return value.strip()
    return None


def header(headers: Mapping[str, str], name: str) -> str:
    """A header the signature depends on: missing or empty is a bad signature."""
    value = optional_header(headers, name)
    if value is None:
        invalid_signature(f"缺少请求头 {name}")
    return value


def unix_timestamp(text: str, name: str) -> datetime:
    """A signed unix-seconds header as an aware datetime (UTC)."""
    if not re.fullmatch(r"[0-9]{1,10}", text):
        invalid_signature(f"请求头 {name} 不是 Unix 秒数")
    return datetime.fromtimestamp(int(text), tz=UTC)


def check_fresh(signed_at: datetime, now: datetime, *, max_age: timedelta = MAX_CLOCK_SKEW) -> None:
    """Refuse a notification signed more than `max_age` ago or more than MAX_CLOCK_SKEW ahead."""
    if now.tzinfo is None:
        raise TypeError("now must be an aware datetime")
    if signed_at < now - max_age:
        stale_notification(f"签名时间 {signed_at.isoformat()} 早于允许的 {int(max_age.total_seconds())} 秒")
    if signed_at > now + MAX_CLOCK_SKEW:
        stale_notification(f"签名时间 {signed_at.isoformat()} 晚于当前时间")


_YUAN = re.compile(r"(0|[1-9][0-9]{0,13})(\.[0-9]{1,2})?")


def parse_yuan(text: str, name: str = "amount") -> int:
    """Yuan as decimal text ("123.45") → integer fen (12345), exactly.

    Only plain ASCII digits with at most two decimals: "0.001", "1e3", "-1", " 1", "1.", "NaN"
    and full-width "１" are refused, so nothing is rounded and nothing passes through a float.
    Zero is refused too: a notification of nothing paid settles nothing.
    """
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        invalid_notification(f"金额 {name}={text!r} 不是以元为单位、最多两位小数的金额")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        invalid_notification(f"金额 {name}={text!r} 无法解析")
    if fen != fen.to_integral_value() or fen <= 0:
        invalid_notification(f"金额 {name}={text!r} 必须是正的整分金额")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """Integer fen → yuan text with two decimals ("12345" fen → "123.45"), as channels write it."""
    if type(fen) is not int or fen < 0:
        raise TypeError("fen must be a non-negative int")
    return f"{fen // 100}.{fen % 100:02d}"


def fen_field(value: object, name: str) -> int:
    """A JSON amount in integer fen: an int, positive; never a bool, a fraction or text."""
    if type(value) is not int:
        invalid_notification(f"金额 {name} 必须是以分为单位的整数")
    if value <= 0:
        invalid_notification(f"金额 {name} 必须大于零")
    return value


def text_field(data: Mapping[str, Any], name: str, *, max_length: int = 64, pattern: str | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        invalid_notification(f"缺少字段 {name}")
    if len(value) > max_length:
        invalid_notification(f"字段 {name} 超过 {max_length} 个字符")
    if pattern is not None and not re.fullmatch(pattern, value):
        invalid_notification(f"字段 {name} 格式不符")
    return value


def optional_text(data: Mapping[str, Any], name: str, *, max_length: int = 128) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length:
        invalid_notification(f"字段 {name} 格式不符")
    return value


_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")


def rfc3339(value: object, name: str) -> datetime:
    """An RFC 3339 time with its offset ("2025-03-03T11:10:00+08:00"); a time without one is refused."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        invalid_notification(f"时间 {name} 不是带时区的 RFC 3339 时间")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        invalid_notification(f"时间 {name} 不是有效时间")
    return moment


def _refuse_constant(name: str) -> NoReturn:
    invalid_notification(f"JSON 中不允许 {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            invalid_notification(f"JSON 字段 {key} 重复")
        result[key] = value
    return result


def load_json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object, strictly: UTF-8, no duplicate keys, no NaN/Infinity, and numbers with a
    fraction or exponent kept as their text (so they can never become a float amount)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(
            text,
            parse_float=str,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        invalid_notification(f"{what} 不是有效的 UTF-8 JSON")
    if not isinstance(data, dict):
        invalid_notification(f"{what} 不是 JSON 对象")
    return data
