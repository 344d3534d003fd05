"""The channels' secrets as the payment service's settings carry them: shipped values run in
development and are refused elsewhere; what to answer each channel once a notification is taken."""

import pytest
from pydantic import SecretStr, ValidationError

from kernel.settings import SHIPPED_SECRET_PREFIX, ServiceSettings
from services.payment.channels import ChannelSecrets, ChannelVerifiers, acknowledgement
from tests.support.payment import REAL, SECRET_FIELDS


class _PaymentLikeSettings(ServiceSettings, ChannelSecrets):
    """How the payment service's settings carry the channels' fields."""

    service: str = "payment"


def test_development_runs_on_shipped_secrets_that_verify_nothing_real() -> None:
    settings = _PaymentLikeSettings()
    for name in SECRET_FIELDS:
        value: SecretStr = getattr(settings, name)
        assert value.get_secret_value().startswith(SHIPPED_SECRET_PREFIX)
    assert settings.payment_wechat_platform_certificates == {} and settings.payment_alipay_public_key == ""
    ChannelVerifiers(settings)


def test_production_with_real_secrets_starts() -> None:
    settings = _PaymentLikeSettings(**REAL)
    assert settings.payment_bank_counter_secret.get_secret_value() == REAL["payment_bank_counter_secret"]


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_production_refuses_each_shipped_channel_secret(name: str) -> None:
    given = {key: value for key, value in REAL.items() if key != name}
    with pytest.raises(ValidationError, match=f"{name.upper()} is a shipped example secret"):
        _PaymentLikeSettings(**given)


def test_the_variables_carry_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_BANK_COUNTER_SECRET", "from-the-environment-of-32-bytes-or-more")
    monkeypatch.setenv("PAYMENT_ALIPAY_APP_ID", "2021000000000000")
    settings = _PaymentLikeSettings()
    assert settings.payment_bank_counter_secret.get_secret_value() == "from-the-environment-of-32-bytes-or-more"
    assert settings.payment_alipay_app_id == "2021000000000000"


@pytest.mark.parametrize("key", ["short", "x" * 33, "密" * 11])
def test_the_apiv3_key_must_be_32_bytes(key: str) -> None:
    with pytest.raises(ValidationError, match="exactly 32 bytes"):
        ChannelSecrets(payment_wechat_apiv3_key=SecretStr(key))


def test_the_secrets_never_show_in_a_representation() -> None:
    assert "not-a-secret" not in repr(ChannelSecrets())


def test_each_channel_is_answered_as_it_expects() -> None:
    wechat, alipay = acknowledgement("wechat"), acknowledgement("alipay")
    assert (wechat.status_code, wechat.body) == (204, b"")
    assert (alipay.status_code, alipay.media_type, alipay.body) == (200, "text/plain", b"success")
    for channel in ("unionpay_pos", "bank_counter", "bank_withholding"):
        assert acknowledgement(channel).status_code == 200
