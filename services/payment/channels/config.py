"""The channels' keys and secrets, as fields the payment service's settings inherit.

`PaymentSettings(ServiceSettings, ChannelSecrets)` gets every field below under the service's
prefix (PAYMENT_WECHAT_APIV3_KEY, …; docs/service-anatomy.md). The secrets are top-level
`SecretStr` fields, so `kernel.settings.ServiceSettings` refuses their shipped `local-` values
outside development like every other secret; certificates and public keys are not secrets and
ship empty (a channel without its key refuses every notification as unsigned).

Every key is loaded once here, so a malformed certificate or key stops the service at start
instead of refusing payments later.
"""

from typing import Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from kernel.settings import local_secret
from services.payment.channels.alipay import load_alipay_public_key
from services.payment.channels.wechat import APIV3_KEY_BYTES, load_platform_keys

# The HMAC channels' shared secrets are at least this long (256 bits of key for HMAC-SHA256).
MIN_HMAC_SECRET_LENGTH = 32


class ChannelSecrets(BaseModel):
    """Keys that verify channel notifications (services/payment/channels/README.md)."""

    # WeChat Pay API v3: the merchant's APIv3 key (exactly 32 bytes) decrypts `resource`; the
    # platform certificates (serial → PEM certificate) or WeChat Pay public keys (key id → PEM
    # public key) verify `Wechatpay-Signature`, chosen by `Wechatpay-Serial`.
    payment_wechat_apiv3_key: SecretStr = SecretStr(local_secret("apiv3", "payment"))
    payment_wechat_platform_certificates: dict[str, str] = Field(default_factory=dict)
    payment_wechat_platform_public_keys: dict[str, str] = Field(default_factory=dict)
    # When set, a transaction of another merchant (mchid) is refused.
    payment_wechat_mchid: str = ""
    # Alipay: the Alipay public key of our application (PEM, or the bare base64 the console shows)
    # verifies `sign`; when set, a notification for another application (app_id) is refused.
    payment_alipay_public_key: str = ""
    payment_alipay_app_id: str = ""
    # Our HMAC format (unionpay_pos, bank_counter, bank_withholding): one secret per channel.
    payment_unionpay_pos_secret: SecretStr = SecretStr(local_secret("hmac", "unionpay_pos"))
    payment_bank_counter_secret: SecretStr = SecretStr(local_secret("hmac", "bank_counter"))
    payment_bank_withholding_secret: SecretStr = SecretStr(local_secret("hmac", "bank_withholding"))

    @field_validator("payment_wechat_apiv3_key")
    @classmethod
    def _apiv3_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode("utf-8")) != APIV3_KEY_BYTES:
            raise ValueError(f"PAYMENT_WECHAT_APIV3_KEY must be exactly {APIV3_KEY_BYTES} bytes")
        return value

    @field_validator("payment_unionpay_pos_secret", "payment_bank_counter_secret", "payment_bank_withholding_secret")
    @classmethod
    def _hmac_secret_is_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode("utf-8")) < MIN_HMAC_SECRET_LENGTH:
            raise ValueError(f"an HMAC channel secret must be at least {MIN_HMAC_SECRET_LENGTH} bytes")
        return value

    @model_validator(mode="after")
    def _keys_load(self) -> Self:
        try:
            load_platform_keys(self.payment_wechat_platform_certificates, self.payment_wechat_platform_public_keys)
        except ValueError as exc:
            raise ValueError(f"PAYMENT_WECHAT_PLATFORM_*: {exc}") from exc
        if self.payment_alipay_public_key:
            try:
                load_alipay_public_key(self.payment_alipay_public_key)
            except ValueError as exc:
                raise ValueError(f"PAYMENT_ALIPAY_PUBLIC_KEY: {exc}") from exc
        return self
