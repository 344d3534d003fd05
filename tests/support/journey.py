"""An application's journey as events, across the five services, for tests of whatever reads
them (the status projection, its rebuild, `flexctl history`): each stream numbered as its producer
would, one correlation id per application. Personal fields are sealed (docs/personal-data.md)
under the journey's `key`: a fresh one, or the key identity holds for the applicant when a test's
services must open them."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from contracts.envelope import Envelope
from contracts.events.base import Event, mask_phone
from contracts.events.enrollment import (
    AgencyNoticeAccepted,
    ApplicationApproved,
    ApplicationDrafted,
    ApplicationRejected,
    ApplicationUnderReview,
    DocumentUploaded,
    EnrollmentSubmitted,
    NoticeAccepted,
)
from contracts.events.identity import UserRegistered, UserVerified
from contracts.events.notify import SmsSent
from contracts.events.payment import ContributionAccountOpened, PaymentSettled
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from kernel.personal import new_data_key, seal

START = datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
SHA = "b" * 64
DOCS = ("id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page")


@dataclass
class Journey:
    """One applicant's events across the five services, each stream numbered as its producer would."""

    application_id: UUID = field(default_factory=uuid4)
    applicant_id: UUID = field(default_factory=uuid4)
    key: bytes = field(default_factory=new_data_key, repr=False)  # the applicant's data key
    envelopes: list[Envelope] = field(default_factory=list)
    _clock: int = 0
    _versions: dict[str, int] = field(default_factory=dict)

    def at(self) -> datetime:
        self._clock += 1
        return START + timedelta(minutes=self._clock)

    def add(self, event: Event, stream: str, producer: str, causation: str | None = None) -> Envelope:
        version = self._versions[stream] = self._versions.get(stream, 0) + 1
        envelope = Envelope.wrap(
            event,
            stream_id=stream,
            stream_version=version,
            producer=producer,
            correlation_id=str(self.application_id),
            causation_id=causation,
            occurred_at=START + timedelta(minutes=self._clock),
        )
        self.envelopes.append(envelope)
        return envelope

    def app(self, event: Event, causation: str | None = None) -> Envelope:
        return self.add(event, f"application-{self.application_id}", "enrollment", causation)

    @property
    def ids(self) -> dict[str, Any]:
        return {"application_id": self.application_id, "applicant_id": self.applicant_id}

    def sealed(self, **fields: Any) -> dict[str, Any]:
        """`fields` sealed under the applicant's key, as the `personal` of an event."""
        return seal(self.key, self.applicant_id, fields).model_dump(mode="json")


NAME, BIRTH = "王五", date(1990, 1, 1)
SUBMITTED_PHONE = "+8613800138000"


def choices(pension: int) -> dict[str, Any]:
    return {
        "pension_tier": pension,
        "medical_tier": 5,
        "household_kind": "changzhou",
        "household_region_code": "320402",
        "residence_district_code": "320411",
    }


def submitted(j: Journey, attempt: int, pension: int) -> EnrollmentSubmitted:
    docs = [{"kind": k, "sha256": SHA, "blob_ref": f"sha256/{SHA}", "content_type": "image/png"} for k in DOCS]
    return EnrollmentSubmitted(
        **j.ids, attempt=attempt, id_number_masked="3204**********1234", gender="male",
        personal=j.sealed(name=NAME, birth_date=BIRTH.isoformat(), phone=SUBMITTED_PHONE), **choices(pension),
        documents=docs, notice_version="2020-12", submitted_at=j.at(),
    )  # fmt: skip


def reviewed(j: Journey, attempt: int, decision: str) -> None:
    """review opens a case and decides; enrollment copies both; notify texts the applicant."""
    case_id = uuid4()
    opened_at, due = j.at(), date(2025, 3, 5)
    c = j.add(
        ReviewCaseOpened(
            case_id=case_id, **j.ids, attempt=attempt, agency_code="320411", due_on=due, opened_at=opened_at
        ),
        f"case-{case_id}",
        "review",
    )
    j.app(
        ApplicationUnderReview(
            **j.ids, attempt=attempt, case_id=case_id, agency_code="320411", due_on=due, opened_at=opened_at
        ),
        str(c.event_id),
    )
    reasons = [{"code": "document_unreadable", "text": "照片不清晰。"}] if decision == "rejected" else []
    decided_at = j.at()
    d = j.add(
        ReviewDecided(
            case_id=case_id, **j.ids, attempt=attempt, decision=decision, reasons=reasons,
            reviewer_id=uuid4(), decided_at=decided_at,
        ),
        f"case-{case_id}",
        "review",
    )  # fmt: skip
    copy: Event = (
        ApplicationApproved(**j.ids, attempt=attempt, case_id=case_id, decided_at=decided_at)
        if decision == "approved"
        else ApplicationRejected(**j.ids, attempt=attempt, case_id=case_id, reasons=reasons, decided_at=decided_at)
    )
    j.app(copy, str(d.event_id))
    sms_id = uuid4()
    j.add(
        SmsSent(
            sms_id=sms_id, recipient_id=j.applicant_id, phone_masked="+86138****8000",
            template=f"review_{decision}", provider="local_sink", provider_message_id=None,
            causation_event_id=d.event_id, sent_at=j.at(),
            # newer notify names the application too; older SmsSent name only the person
            application_id=j.application_id if decision == "approved" else None,
        ),
        f"sms-{sms_id}",
        "notify",
    )  # fmt: skip


def verified_and_submitted(j: Journey) -> None:
    """verify → accept the notice → draft (tier 3) → upload every document → submit (attempt 1)."""
    j.add(
        UserVerified(
            user_id=j.applicant_id, id_number_masked="3204**********1234", gender="male", provider="local",
            personal=j.sealed(name=NAME, birth_date=BIRTH.isoformat()), verified_at=j.at(),
        ),
        f"user-{j.applicant_id}",
        "identity",
    )  # fmt: skip
    at = j.at()
    j.app(NoticeAccepted(**j.ids, notice_version="2020-12", accepted_at=at))
    j.app(ApplicationDrafted(**j.ids, **choices(3), drafted_at=at))
    for kind in DOCS:
        j.app(
            DocumentUploaded(
                application_id=j.application_id, kind=kind, sha256=SHA, content_type="image/png",
                size_bytes=100, blob_ref=f"sha256/{SHA}", uploaded_at=j.at(),
            )
        )  # fmt: skip
    j.app(submitted(j, 1, 3))


def journey() -> Journey:
    """verify → apply → upload → submit → rejected → correct → resubmit → approved → paid."""
    j = Journey()
    verified_and_submitted(j)
    reviewed(j, 1, "rejected")
    j.app(ApplicationDrafted(**j.ids, **choices(4), drafted_at=j.at()))
    j.app(submitted(j, 2, 4))
    reviewed(j, 2, "approved")
    j.app(AgencyNoticeAccepted(**j.ids, notice_version="2020-12", accepted_at=j.at()))
    account_id, bill_id = uuid4(), uuid4()
    j.add(
        ContributionAccountOpened(
            account_id=account_id, insured_person_id=j.applicant_id, application_id=j.application_id,
            pension_tier=4, medical_tier=5, opened_at=j.at(),
        ),
        f"account-{account_id}",
        "payment",
    )  # fmt: skip
    j.add(
        PaymentSettled(
            payment_id=uuid4(), bill_id=bill_id, account_id=account_id, insured_person_id=j.applicant_id,
            payer_id=None, payer_name_masked=None, channel="wechat", channel_txn_id="wx-1", amount_fen=100,
            bank=None, settled_at=j.at(),
        ),
        f"bill-{bill_id}",
        "payment",
    )  # fmt: skip
    return j


PHONE = "+8613912345678"  # UserRegistered seals the full number; EnrollmentSubmitted another one


def small_journey() -> Journey:
    """register → verify → notice → draft → upload → submit → case opened → approved → SMS."""
    j = Journey()
    user = f"user-{j.applicant_id}"
    registered = UserRegistered(
        user_id=j.applicant_id, role="applicant", phone_masked=mask_phone(PHONE), personal=j.sealed(phone=PHONE),
        registered_at=j.at(),
    )  # fmt: skip
    j.add(registered, user, "identity")
    verified_and_submitted(j)
    reviewed(j, 1, "approved")
    return j
