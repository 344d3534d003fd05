"""Verification of the payment channels' notifications (issue 8, "Channels"; guide 二 缴费方式).

Pure: headers and raw body in, a verified `ChannelNotification` (or, from bank withholding, a
`CollectionFailed`) out, or a `kernel.problems` refusal; the clock is an argument. Formats and
refusals: services/payment/channels/README.md.

The payment service builds `ChannelVerifiers(settings)` once (its settings inherit
`ChannelSecrets`) and calls `verify(channel, request.headers, await request.body(),
now=datetime.now(UTC))` before anything is written: a refusal changes nothing.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from contracts.events.payment import Channel
from services.payment.channels.alipay import AlipayVerifier
from services.payment.channels.banks import BANKS, Bank, bank_by_code
from services.payment.channels.common import (
    MAX_CLOCK_SKEW,
    WITHHOLDING_FAILURE_REASONS,
    ChannelNotification,
    CollectionFailed,
    Verified,
    WithholdingFailure,
    fen_to_yuan,
    parse_yuan,
)
from services.payment.channels.config import ChannelSecrets
from services.payment.channels.hmac_json import HMAC_CHANNELS, HmacChannel, HmacVerifier, sign
from services.payment.channels.wechat import WechatVerifier, load_platform_keys

__all__ = [
    "BANKS",
    "HMAC_CHANNELS",
    "MAX_CLOCK_SKEW",
    "WITHHOLDING_FAILURE_REASONS",
    "Acknowledgement",
    "AlipayVerifier",
    "Bank",
    "ChannelNotification",
    "ChannelSecrets",
    "ChannelVerifiers",
    "CollectionFailed",
    "HmacChannel",
    "HmacVerifier",
    "Verified",
    "WechatVerifier",
    "WithholdingFailure",
    "acknowledgement",
    "bank_by_code",
    "fen_to_yuan",
    "parse_yuan",
    "sign",
]


class ChannelVerifiers:
    """One verifier per channel, with the keys loaded once from the settings."""

    def __init__(self, secrets: ChannelSecrets) -> None:
        self.wechat = WechatVerifier(
            secrets.payment_wechat_apiv3_key.get_secret_value().encode("utf-8"),
            load_platform_keys(
                secrets.payment_wechat_platform_certificates, secrets.payment_wechat_platform_public_keys
            ),
            mchid=secrets.payment_wechat_mchid,
        )
        self.alipay = AlipayVerifier(secrets.payment_alipay_public_key, app_id=secrets.payment_alipay_app_id)
        hmac_secrets: dict[HmacChannel, str] = {
            "unionpay_pos": secrets.payment_unionpay_pos_secret.get_secret_value(),
            "bank_counter": secrets.payment_bank_counter_secret.get_secret_value(),
            "bank_withholding": secrets.payment_bank_withholding_secret.get_secret_value(),
        }
        self.hmac = {channel: HmacVerifier(channel, secret) for channel, secret in hmac_secrets.items()}

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes, *, now: datetime) -> Verified:
        """Verify one notification as received: `headers` as sent (any case), `body` the raw bytes.

        Returns a `ChannelNotification` for a payment, a `CollectionFailed` for a failed bank
        withholding collection; raises `kernel.problems.Unauthorized` (401: invalid_signature,
        stale_notification) or `Refused` (422: invalid_notification, unknown_bank).
        """
        if channel == "wechat":
            return self.wechat.verify(headers, body, now=now)
        if channel == "alipay":
            return self.alipay.verify(headers, body, now=now)
        return self.hmac[channel].verify(headers, body, now=now)


@dataclass(frozen=True)
class Acknowledgement:
    """The answer that tells a channel a notification was taken, so it stops retrying."""

    status_code: int
    media_type: str | None
    body: bytes


def acknowledgement(channel: Channel) -> Acknowledgement:
    """What to answer once a notification is settled (or was already: the inbox's first answer).

    WeChat Pay wants 200 or 204 with no body; Alipay wants the text `success`, anything else is
    retried; our HMAC integrators take any 2xx (README, "Answering").
    """
    if channel == "wechat":
        return Acknowledgement(204, None, b"")
    if channel == "alipay":
        return Acknowledgement(200, "text/plain", b"success")
    return Acknowledgement(200, "application/json", b'{"status":"accepted"}')
