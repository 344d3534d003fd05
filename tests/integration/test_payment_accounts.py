"""payment in-process over the real broker and database: submissions and an approval on
enrollment.events open exactly one contribution account (redelivery and a re-published approval
change nothing), ContributionAccountOpened reaches payment.events, and the bills API answers the
person and operators only, with problems for everyone else."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from kernel.auth import Principal
from kernel.clock import today_in_changzhou
from kernel.personal import new_data_key, seal
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from services.payment import domain
from services.payment.app import build
from services.payment.domain import Month
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP, group_prefix, provision_schema, topic
from tests.support.kafka import end_offsets, eventually, publish, published_after
from tests.support.tokens import bearer


@dataclass
class Payment:
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    schema: str
    service: PaymentService

    def auth(self, role: str, user_id: UUID | None = None) -> dict[str, str]:
        return bearer(Principal(user_id or uuid4(), role), 600)  # type: ignore[arg-type]

    async def events(self, event_type: str, **data: str) -> list[dict[str, Any]]:
        where = "".join(f" AND data->>'{k}' = '{v}'" for k, v in data.items())
        rows = await self.runtime.pool.fetch(
            f'SELECT stream_id, data FROM "{self.schema}".events WHERE event_type = $1{where} ORDER BY position',
            event_type,
        )
        return [{"stream_id": r["stream_id"], **r["data"]} for r in rows]

    async def handled(self, event_id: UUID) -> bool:
        sql = f'SELECT count(*) FROM "{self.schema}".processed_events WHERE event_id = $1'
        return bool(await self.runtime.pool.fetchval(sql, event_id))


@pytest.fixture
async def payment(schema: str) -> AsyncIterator[Payment]:
    settings = PaymentSettings(
        schema_name=schema,
        consumer_group_prefix=group_prefix("it"),
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
    )
    await provision_schema("payment", schema)
    app, runtime = build(settings)
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://payment") as http:
            yield Payment(runtime, http, schema, app.state.payment)
    finally:
        await runtime.stop()


@dataclass
class Application:
    """One applicant's application as enrollment publishes it."""

    person: UUID
    application_id: UUID

    def wrap(self, event: Event, version: int) -> Envelope:
        return Envelope.wrap(
            event, stream_id=f"application-{self.application_id}", stream_version=version, producer="enrollment",
            correlation_id=f"corr-{self.application_id}",
        )  # fmt: skip

    def submitted(self, attempt: int, pension: int | None, medical: int | None) -> Envelope:
        example = EnrollmentSubmitted.model_json_schema()["examples"][0]
        personal = seal(new_data_key(), self.person, {"name": "张三", "birth_date": "1990-03-07",
                                                        "phone": "+8613800138000"})  # fmt: skip
        event = EnrollmentSubmitted.model_validate(
            {**example, "application_id": str(self.application_id), "applicant_id": str(self.person),
             "attempt": attempt, "pension_tier": pension, "medical_tier": medical,
             "personal": personal.model_dump(mode="json")}
        )  # fmt: skip
        return self.wrap(event, 3 + attempt * 2)

    def approved(self, attempt: int, decided_at: datetime) -> Envelope:
        event = ApplicationApproved(
            application_id=self.application_id, applicant_id=self.person, attempt=attempt, case_id=uuid4(),
            decided_at=decided_at,
        )  # fmt: skip
        return self.wrap(event, 4 + attempt * 2)


def new_application() -> Application:
    return Application(uuid4(), uuid4())


async def test_an_approval_opens_one_account_whatever_the_redelivery(
    payment: Payment, producer: AIOKafkaProducer
) -> None:
    start = await end_offsets(topic(topics.PAYMENT_EVENTS))
    app = new_application()
    decided = datetime.now(UTC).replace(microsecond=0)
    history = [app.submitted(1, 1, None), app.submitted(2, 4, 5), app.approved(2, decided)]
    await publish(producer, history)
    account_id = str(domain.account_id_for(app.person))

    async def opened() -> list[dict[str, Any]]:
        return await payment.events("ContributionAccountOpened", account_id=account_id)

    await eventually(opened, "the account is opened")
    # The whole history again (redelivery, replay), then the approval re-published with a new
    # event id; it is the last on the application's partition, so once it is handled all were.
    republished = history[-1].model_copy(update={"event_id": uuid4()})
    await publish(producer, [*history, history[-1], republished])
    await eventually(lambda: payment.handled(republished.event_id), "the re-published approval is handled")

    [account] = await opened()
    assert account["stream_id"] == f"account-{account_id}"
    assert (account["pension_tier"], account["medical_tier"]) == (4, 5)  # the approved attempt's tiers
    assert account["insured_person_id"] == str(app.person) and account["application_id"] == str(app.application_id)
    assert datetime.fromisoformat(account["opened_at"]) == decided
    assert len(await payment.events("SubmissionNoted", application_id=str(app.application_id))) == 2
    row = await payment.service.account_row(app.person)
    assert (row["pension_tier"], row["medical_tier"], row["first_period"]) == (4, 5, str(Month.at(decided)))

    on_topic = await published_after(start, lambda v: v["data"].get("account_id") == account_id, wait=3)
    assert [v["event_type"] for v in on_topic] == ["ContributionAccountOpened"]
    assert on_topic[0]["producer"] == "payment" and on_topic[0]["correlation_id"] == f"corr-{app.application_id}"
    assert not await published_after(start, lambda v: v["event_type"] == "SubmissionNoted", wait=0.5)  # internal


async def test_an_approval_without_its_submission_opens_nothing_and_is_dead_lettered(
    payment: Payment, producer: AIOKafkaProducer
) -> None:
    dlq_start = await end_offsets(topic(topics.dlq_topic("payment")))
    app = new_application()
    orphan = app.approved(1, datetime.now(UTC))
    await publish(producer, [orphan])
    letters = await eventually(
        lambda: published_after(dlq_start, lambda v: v.get("event_id") == str(orphan.event_id), wait=1),
        "the approval reaches payment.dlq",
        seconds=45,
    )
    assert len(letters) == 1
    assert await payment.events("ContributionAccountOpened", insured_person_id=str(app.person)) == []


async def open_account(payment: Payment, decided_at: datetime, pension: int | None = 3) -> Application:
    """An approved applicant's account, through the handlers' service-layer calls on the pool."""
    app = new_application()
    submitted, approved = app.submitted(1, pension, 5), app.approved(1, decided_at)
    event = EnrollmentSubmitted.model_validate(submitted.data)
    assert await payment.service.note_submission(event, submitted) is not None
    assert await payment.service.open_account(ApplicationApproved.model_validate(approved.data), approved)
    return app


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and any("\u4e00" <= c <= "\u9fff" for c in body["detail"])
    return body


async def test_bills_are_shown_to_the_person_and_operators_only(payment: Payment) -> None:
    now = datetime.now(UTC)
    app = await open_account(payment, now - timedelta(days=70), pension=3)  # two or three months back
    other = await open_account(payment, now, pension=1)
    this_month = Month.at(now)
    report = await payment.service.issue_bills(this_month)
    assert report.bills_issued >= 2 + 1 and report.amount_fen > 0

    answer = await payment.http.get(f"/v1/insured/{app.person}/bills", headers=payment.auth("applicant", app.person))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    months = domain.months(Month.at(now - timedelta(days=70)), this_month)
    assert [b["period"] for b in body["bills"]] == [str(m) for m in months]
    today = today_in_changzhou()
    for bill in body["bills"]:
        due = datetime.fromisoformat(bill["due_on"]).date()
        assert bill["status"] == domain.bill_status(due, False, today)
        assert bill["due_on"] == str(domain.due_on(Month.parse(bill["period"]), 15))
        assert type(bill["amount_fen"]) is int and bill["amount_fen"] == sum(i["amount_fen"] for i in bill["items"])
    assert body["bills"][0]["status"] == "overdue"  # 70 days back: due on the 15th of a month gone by
    assert body["amount_due_fen"] == sum(b["amount_fen"] for b in body["bills"])
    assert body["account"]["account_id"] == str(domain.account_id_for(app.person))

    as_operator = await payment.http.get(f"/v1/insured/{app.person}/bills", headers=payment.auth("operator"))
    assert as_operator.status_code == 200 and as_operator.json()["bills"] == body["bills"]

    someone_else = payment.auth("applicant", other.person)
    problem(await payment.http.get(f"/v1/insured/{app.person}/bills", headers=someone_else), 403, "not_your_bills")
    reviewer = payment.auth("reviewer")
    # A reviewer's token does not name payment in its `aud` (kernel.auth.AUDIENCES): no token for payment at all.
    problem(await payment.http.get(f"/v1/insured/{app.person}/bills", headers=reviewer), 401, "invalid_token")
    problem(await payment.http.get(f"/v1/insured/{app.person}/bills"), 401, "authentication_required")
    unknown = uuid4()
    problem(await payment.http.get(f"/v1/insured/{unknown}/bills", headers=payment.auth("operator")), 404,
            "account_not_found")  # fmt: skip


async def test_a_tier_change_applies_from_the_next_unbilled_month(payment: Payment) -> None:
    now = datetime.now(UTC)
    app = await open_account(payment, now, pension=3)
    await payment.service.issue_bills(Month.at(now))
    url = f"/v1/insured/{app.person}/tiers"
    mine = payment.auth("applicant", app.person)

    problem(await payment.http.put(url, json={"pension_tier": 5, "medical_tier": None},
                                   headers=payment.auth("operator")), 403, "not_your_account")  # fmt: skip
    problem(await payment.http.put(url, json={"pension_tier": 5, "medical_tier": None},
                                   headers=payment.auth("applicant")), 403, "not_your_account")  # fmt: skip
    problem(await payment.http.put(url, json={"pension_tier": None, "medical_tier": None}, headers=mine), 422,
            "nothing_to_enrol")  # fmt: skip
    refused = await payment.http.put(url, json={"pension_tier": 6, "medical_tier": 5}, headers=mine)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)

    changed = await payment.http.put(url, json={"pension_tier": 5, "medical_tier": None}, headers=mine)
    assert changed.status_code == 200, changed.text
    next_month = Month.at(now).next()
    assert changed.json()["tiers_from"] == str(next_month)
    assert (changed.json()["pension_tier"], changed.json()["medical_tier"]) == (5, None)
    again = await payment.http.put(url, json={"pension_tier": 5, "medical_tier": None}, headers=mine)
    assert again.status_code == 200
    assert len(await payment.events("TiersChanged", account_id=str(domain.account_id_for(app.person)))) == 1

    [issued] = await payment.service.bill_account(domain.account_id_for(app.person), next_month)
    assert [(i.insurance, i.tier) for i in issued.items] == [("pension", 5)]
    bills = (await payment.http.get(f"/v1/insured/{app.person}/bills", headers=mine)).json()["bills"]
    assert [[i["tier"] for i in b["items"]] for b in bills] == [[3, 5], [5]]  # the billed month kept its tiers
