"""Events of the notify service (topic `notify.events`, key = sms_id): text messages to people."""

from uuid import UUID

from pydantic import ConfigDict, Field

from contracts.events.base import Event, MaskedPhone, NonEmptyStr, UtcDatetime

_EXAMPLE_RECIPIENT = "0f8fad5b-d9cb-469f-a165-70867728950e"
_EXAMPLE_CAUSE = "3f333df6-90a4-4fda-8dd3-9485d27cee36"
_EXAMPLE_APPLICATION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_EXAMPLE_CASE = "9b2f1c1e-3c55-4c7e-8e57-2a0a4f2d5b61"

_SMS_ID = "The message; the stream key."
_RECIPIENT = "user_id of the person texted."
_PHONE_MASKED = "Recipient's number with the middle four digits hidden, e.g. +86138****8000."
_TEMPLATE = "Name of the message template, e.g. review_approved, review_rejected."
_PROVIDER = "SMS gateway adapter that handled the message, e.g. local_sink, aliyun."
_CAUSATION = "event_id of the event that caused the message (e.g. a ReviewDecided): one message per cause."
_APPLICATION = "The application the message is about, when it is about one (e.g. a review decision)."
_CASE = "The review case whose decision the message reports, when it reports one."


class SmsSent(Event):
    """An SMS was handed to the gateway.

    Guide, PART-8: "受理机构会在1-2个工作日内发送短信告知“审核通过”或“审核不通过”信息。"
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sms_id": "a8098c1a-f86e-4da8-b0d8-3c9f1e2e5a11",
                    "recipient_id": _EXAMPLE_RECIPIENT,
                    "phone_masked": "+86138****8000",
                    "template": "review_rejected",
                    "provider": "local_sink",
                    "provider_message_id": None,
                    "causation_event_id": _EXAMPLE_CAUSE,
                    "application_id": _EXAMPLE_APPLICATION,
                    "case_id": _EXAMPLE_CASE,
                    "sent_at": "2025-03-03T02:00:04Z",
                }
            ]
        }
    )

    sms_id: UUID = Field(description=_SMS_ID)
    recipient_id: UUID = Field(description=_RECIPIENT)
    phone_masked: MaskedPhone = Field(description=_PHONE_MASKED)
    template: NonEmptyStr = Field(description=_TEMPLATE)
    provider: NonEmptyStr = Field(description=_PROVIDER)
    provider_message_id: NonEmptyStr | None = Field(description="The gateway's id of the message, when it returns one.")
    causation_event_id: UUID = Field(description=_CAUSATION)
    application_id: UUID | None = Field(default=None, description=_APPLICATION)
    case_id: UUID | None = Field(default=None, description=_CASE)
    sent_at: UtcDatetime = Field(description="When the gateway accepted the message (UTC).")


class SmsFailed(Event):
    """The gateway refused an SMS (after the notify service's own bounded retries)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sms_id": "b1d4f7a2-5c3e-4e8f-9a6b-2d1c0e9f8a7b",
                    "recipient_id": _EXAMPLE_RECIPIENT,
                    "phone_masked": "+86138****8000",
                    "template": "review_approved",
                    "provider": "aliyun",
                    "error_code": "isv.MOBILE_NUMBER_ILLEGAL",
                    "causation_event_id": _EXAMPLE_CAUSE,
                    "application_id": _EXAMPLE_APPLICATION,
                    "case_id": _EXAMPLE_CASE,
                    "failed_at": "2025-03-03T02:00:04Z",
                }
            ]
        }
    )

    sms_id: UUID = Field(description=_SMS_ID)
    recipient_id: UUID = Field(description=_RECIPIENT)
    phone_masked: MaskedPhone = Field(description=_PHONE_MASKED)
    template: NonEmptyStr = Field(description=_TEMPLATE)
    provider: NonEmptyStr = Field(description=_PROVIDER)
    error_code: NonEmptyStr = Field(description="The gateway's error code.")
    causation_event_id: UUID = Field(description=_CAUSATION)
    application_id: UUID | None = Field(default=None, description=_APPLICATION)
    case_id: UUID | None = Field(default=None, description=_CASE)
    failed_at: UtcDatetime = Field(description="When the message was given up (UTC).")


EVENTS: tuple[type[Event], ...] = (SmsSent, SmsFailed)
