"""Aliyun SMS (短信服务, API version 2017-05-25) through its official SDK,
`alibabacloud-dysmsapi20170525` (pyproject extra `aliyun`, imported only when selected).

SendSms carries PhoneNumbers, SignName, TemplateCode, TemplateParam (JSON) and OutId = the
message's sms_id; QuerySendDetails (by phone and day) finds a message again by its OutId after
an uncertain outcome. The SDK's own retries stay off: a blind retry could text twice.
"""

import json
from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from kernel.effects import SendResult
from services.notify.domain import national_number
from services.notify.settings import NotifySettings
from services.notify.templates import Templates

# Refusals after which trying again later can succeed (flow control, balance, provider trouble).
RETRYABLE_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isp.SYSTEM_ERROR",
        "isp.OUT_OF_SERVICE",
        "Throttling.User",
        "Throttling.Api",
        "Throttling",
        "ServiceUnavailable",
    }
)
# Refusals that no retry can fix: the number, or the configuration, is wrong.
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.DENY_IP_RANGE",
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
        "MissingPhoneNumbers",
    }
)
_PAGE_SIZE = 50
_PAGES_MAX = 20


class LookupFailed(RuntimeError):
    """The provider could not say whether a message was sent: ask again later, do not send."""


class AliyunClient(Protocol):
    """The two calls of `alibabacloud_dysmsapi20170525.client.Client` this adapter uses."""

    async def send_sms_with_options_async(self, request: Any, runtime: Any) -> Any: ...

    async def query_send_details_with_options_async(self, request: Any, runtime: Any) -> Any: ...


def classify(code: str) -> SendResult:
    """A refusal code as a result; an unknown code is retryable (the provider did refuse, so a
    retry cannot duplicate, and attempts are bounded)."""
    return SendResult.refused(code, retryable=code not in PERMANENT_CODES)


class AliyunSmsGateway:
    name = "aliyun"

    def __init__(
        self, client: AliyunClient, templates: Templates, sign_name: str, timeout_seconds: float = 10.0
    ) -> None:
        self.client = client
        self.templates = templates
        self.sign_name = sign_name
        self.timeout_ms = int(timeout_seconds * 1000)

    @classmethod
    def from_settings(cls, settings: NotifySettings, templates: Templates) -> "AliyunSmsGateway":
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.models import Config

        key_id, key_secret = settings.notify_aliyun_access_key_id, settings.notify_aliyun_access_key_secret
        assert key_id and key_secret  # the settings check this
        config = Config(
            access_key_id=key_id.get_secret_value(),
            access_key_secret=key_secret.get_secret_value(),
            endpoint=settings.notify_aliyun_endpoint,
        )
        missing = [t.name for t in templates.by_name.values() if not t.aliyun_code]
        if missing:
            raise ValueError(f"templates without aliyun_template_code: {', '.join(missing)}")
        return cls(Client(config), templates, settings.notify_sign_name, settings.notify_send_timeout_seconds)

    async def send(self, phone: str, template: str, params: Mapping[str, str], out_id: str) -> SendResult:
        request = self.send_request(phone, template, params, out_id)
        try:
            response = await self.client.send_sms_with_options_async(request, self._runtime())
        except Exception as exc:
            refused = _refusal(exc)
            if refused is None:
                raise  # no answer, or a server error: the outcome is unknown
            return refused
        body = response.body
        if body.code == "OK":
            return SendResult.accepted(body.biz_id)
        return classify(str(body.code))

    async def lookup(self, phone: str, out_id: str, sent_on: date) -> SendResult | None:
        for page in range(1, _PAGES_MAX + 1):
            body = await self._details_page(phone, sent_on, page)
            details = body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else None
            for detail in details or []:
                # Any record means the provider took the message, even if the carrier later
                # failed to deliver it: sending again would be a second message.
                if detail.out_id == out_id:
                    return SendResult.accepted(None)
            if not details or page * _PAGE_SIZE >= int(body.total_count or 0):
                return None
        raise LookupFailed("too many messages that day to search them all")

    def send_request(self, phone: str, template: str, params: Mapping[str, str], out_id: str) -> Any:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        code = self.templates.get(template).aliyun_code
        return SendSmsRequest(
            phone_numbers=national_number(phone),
            sign_name=self.sign_name,
            template_code=code,
            template_param=json.dumps(dict(params), ensure_ascii=False) if params else None,
            out_id=out_id,
        )

    async def _details_page(self, phone: str, sent_on: date, page: int) -> Any:
        from alibabacloud_dysmsapi20170525.models import QuerySendDetailsRequest

        request = QuerySendDetailsRequest(
            phone_number=national_number(phone),
            send_date=sent_on.strftime("%Y%m%d"),
            page_size=_PAGE_SIZE,
            current_page=page,
        )
        try:
            response = await self.client.query_send_details_with_options_async(request, self._runtime())
        except Exception as exc:
            raise LookupFailed(f"QuerySendDetails failed: {type(exc).__name__}") from exc
        if response.body.code != "OK":
            raise LookupFailed(f"QuerySendDetails refused: {response.body.code}")
        return response.body

    def _runtime(self) -> Any:
        from darabonba.runtime import RuntimeOptions

        return RuntimeOptions(autoretry=False, read_timeout=self.timeout_ms, connect_timeout=self.timeout_ms)


def _refusal(exc: Exception) -> SendResult | None:
    """An SDK error that is a definite "no" (HTTP 4xx with an error code), else None.

    The SDK raises ClientException / ThrottlingException for 4xx answers: the request was
    refused, nothing was sent. A 5xx or a network error may hide a sent message."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    if isinstance(status, int) and 400 <= status < 500 and code:
        return classify(str(code))
    return None
