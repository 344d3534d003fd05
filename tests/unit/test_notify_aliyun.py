"""The Aliyun SMS adapter against a stub client: request mapping, answers, error classes.
No network: the stub stands where the SDK's Client would call Aliyun."""

import json
from datetime import date
from typing import Any

# The SDK is a dev dependency (extra "aliyun", installed by `make install`): a missing SDK is
# a failure here, not a skip, so the adapter's mapping is always checked.
import alibabacloud_dysmsapi20170525.models as sdk
import pytest

from services.notify.aliyun import AliyunSmsGateway, LookupFailed, classify
from services.notify.templates import load_templates

PHONE = "+8613800138000"
OUT_ID = "6f1d2c1e-0000-4000-8000-000000000001"


class SdkError(Exception):
    """Shaped like the SDK's ClientException / ServerException."""

    def __init__(self, status_code: int, code: str) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.code = code


class StubClient:
    def __init__(self, send: Any = None, pages: list[dict[str, Any]] | None = None) -> None:
        self.send_answer = send
        self.pages = pages or []
        self.requests: list[Any] = []
        self.runtimes: list[Any] = []

    async def send_sms_with_options_async(self, request: Any, runtime: Any) -> Any:
        self.requests.append(request)
        self.runtimes.append(runtime)
        if isinstance(self.send_answer, Exception):
            raise self.send_answer
        return sdk.SendSmsResponse().from_map({"statusCode": 200, "body": self.send_answer})

    async def query_send_details_with_options_async(self, request: Any, runtime: Any) -> Any:
        self.requests.append(request)
        answer = self.pages[request.current_page - 1]
        if isinstance(answer, Exception):
            raise answer
        return sdk.QuerySendDetailsResponse().from_map({"statusCode": 200, "body": answer})


def gateway(client: StubClient) -> AliyunSmsGateway:
    templates = load_templates(None, "常州人社", {"review_approved": "SMS_1", "review_rejected": "SMS_2"})
    return AliyunSmsGateway(client, templates, "常州人社", timeout_seconds=5)


def details(total: int, *out_ids: str) -> dict[str, Any]:
    dtos = [{"OutId": o, "PhoneNum": "13800138000", "SendStatus": 3, "TemplateCode": "SMS_2"} for o in out_ids]
    return {"Code": "OK", "TotalCount": total, "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}


async def test_send_maps_the_message_onto_send_sms() -> None:
    client = StubClient(send={"Code": "OK", "BizId": "900619746936498440^0", "RequestId": "r"})
    result = await gateway(client).send(PHONE, "review_rejected", {"reasons": "照片模糊"}, OUT_ID)
    assert result.status == "accepted" and result.reference == "900619746936498440^0"
    request = client.requests[0]
    assert isinstance(request, sdk.SendSmsRequest)
    assert request.phone_numbers == "13800138000"
    assert request.sign_name == "常州人社" and request.template_code == "SMS_2" and request.out_id == OUT_ID
    assert json.loads(request.template_param) == {"reasons": "照片模糊"}
    assert client.runtimes[0].autoretry is False and client.runtimes[0].read_timeout == 5000


async def test_a_template_without_parameters_sends_no_template_param() -> None:
    client = StubClient(send={"Code": "OK", "BizId": "b"})
    await gateway(client).send(PHONE, "review_approved", {}, OUT_ID)
    assert client.requests[0].template_code == "SMS_1" and client.requests[0].template_param is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", "retryable"),
        ("isv.DAY_LIMIT_CONTROL", "retryable"),
        ("isv.AMOUNT_NOT_ENOUGH", "retryable"),
        ("isp.SYSTEM_ERROR", "retryable"),
        ("isv.MOBILE_NUMBER_ILLEGAL", "permanent"),
        ("isv.SMS_TEMPLATE_ILLEGAL", "permanent"),
        ("isv.TEMPLATE_MISSING_PARAMETERS", "permanent"),
        ("isv.SOMETHING_NEW", "retryable"),
    ],
)
async def test_refusals_in_the_answer_are_classified(code: str, status: str) -> None:
    result = await gateway(StubClient(send={"Code": code, "Message": "no"})).send(PHONE, "review_approved", {}, OUT_ID)
    assert result.status == status and result.error_code == code
    assert classify(code).status == status


async def test_a_client_error_is_a_definite_refusal() -> None:
    client = StubClient(send=SdkError(400, "SignatureDoesNotMatch"))
    result = await gateway(client).send(PHONE, "review_approved", {}, OUT_ID)
    assert result.status == "permanent" and result.error_code == "SignatureDoesNotMatch"
    throttled = await gateway(StubClient(send=SdkError(429, "Throttling.User"))).send(
        PHONE, "review_approved", {}, OUT_ID
    )
    assert throttled.status == "retryable"


@pytest.mark.parametrize("error", [SdkError(503, "ServiceUnavailable"), TimeoutError(), OSError("reset")])
async def test_a_server_error_or_no_answer_leaves_the_outcome_unknown(error: Exception) -> None:
    with pytest.raises(type(error)):
        await gateway(StubClient(send=error)).send(PHONE, "review_approved", {}, OUT_ID)


async def test_lookup_finds_the_out_id_on_a_later_page() -> None:
    client = StubClient(pages=[details(51, *[f"other-{n}" for n in range(50)]), details(51, OUT_ID)])
    found = await gateway(client).lookup(PHONE, OUT_ID, date(2025, 3, 3))
    assert found is not None and found.status == "accepted"
    first = client.requests[0]
    assert isinstance(first, sdk.QuerySendDetailsRequest)
    assert first.phone_number == "13800138000" and first.send_date == "20250303" and first.page_size == 50
    assert [r.current_page for r in client.requests] == [1, 2]


async def test_lookup_says_not_sent_when_the_out_id_is_absent() -> None:
    client = StubClient(pages=[details(1, "other"), details(0)])
    assert await gateway(client).lookup(PHONE, OUT_ID, date(2025, 3, 3)) is None
    assert len(client.requests) == 1


@pytest.mark.parametrize("answer", [{"Code": "isv.BUSINESS_LIMIT_CONTROL"}, SdkError(503, "ServiceUnavailable")])
async def test_lookup_that_cannot_answer_raises(answer: Any) -> None:
    with pytest.raises(LookupFailed):
        await gateway(StubClient(pages=[answer])).lookup(PHONE, OUT_ID, date(2025, 3, 3))


def test_the_gateway_is_built_from_settings_with_the_real_sdk_client() -> None:
    from pydantic import SecretStr

    from services.notify.settings import NotifySettings

    settings = NotifySettings(
        notify_gateway="aliyun",
        notify_aliyun_access_key_id=SecretStr("LTAI-test"),
        notify_aliyun_access_key_secret=SecretStr("k3y-value-42"),
        notify_aliyun_template_codes={"review_approved": "SMS_9"},
    )
    templates = load_templates(None, settings.notify_sign_name, settings.notify_aliyun_template_codes)
    built = AliyunSmsGateway.from_settings(settings, templates)
    assert type(built.client).__module__.startswith("alibabacloud_dysmsapi20170525")
    assert built.templates.get("review_approved").aliyun_code == "SMS_9"
    assert "k3y-value-42" not in repr(settings)


def test_settings_refuse_aliyun_without_keys_and_a_lease_shorter_than_the_calls() -> None:
    from pydantic import ValidationError

    from services.notify.settings import NotifySettings

    with pytest.raises(ValidationError):
        NotifySettings(notify_gateway="aliyun")
    with pytest.raises(ValidationError):
        NotifySettings(notify_send_timeout_seconds=30, notify_sending_lease_seconds=60)
