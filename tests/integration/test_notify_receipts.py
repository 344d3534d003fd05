"""notify's payment receipts over the real broker and database (issue 8, "Downstream": one receipt
SMS per settlement, with the same exactly-once rules as decisions): `PaymentSettled` and
`BillIssued` are published on the session's payment.events as payment would publish them
(producer "payment"), phones arrive sealed from identity (its real code, in-process)."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.payment import BillIssued, BillItem, Channel, PaymentSettled
from services.notify.domain import sms_id_for
from tests.support.infra import topic
from tests.support.notify import (
    Notify,
    end_offsets,
    erased,
    eventually,
    handled,
    notify_events,
    own_events,
    person,
    publish,
    registered,
    sink,
    state,
)

# notify's fixtures (`identity`, `start_notify`, `notify`: a notify started in-process on a fresh
# schema and consumer group that begins at the topics' current ends) come from
# tests/integration/conftest.py.

RECEIPT = (
    "【常州人社】您已成功缴纳2025年03月灵活就业社会保险费123.45元（缴费渠道：{channel}）。如有缴费疑问请致电96888732。"
)


def bill_issued(insured: UUID, period: str = "2025-03", amount_fen: int = 12345) -> Envelope:
    bill_id = uuid4()
    event = BillIssued(
        bill_id=bill_id, account_id=uuid4(), insured_person_id=insured, period=period,
        items=[BillItem(insurance="pension", tier=3, amount_fen=amount_fen)], amount_fen=amount_fen,
        due_on=date(2025, 4, 15), issued_at=datetime.now(UTC),
    )  # fmt: skip
    return Envelope.wrap(
        event, stream_id=f"bill-{bill_id}", stream_version=1, producer="payment", correlation_id="bill-1"
    )


def settled(
    bill: Envelope, channel: Channel = "wechat", settled_at: datetime | None = None, payer: bool = False
) -> Envelope:
    """The settlement of `bill`; `payer`: someone else paid (代人缴费). Published under its own key,
    as a stream other than the bill's would be."""
    event = PaymentSettled(
        payment_id=uuid4(), bill_id=UUID(bill.data["bill_id"]), account_id=UUID(bill.data["account_id"]),
        insured_person_id=UUID(bill.data["insured_person_id"]),
        payer_id="2088102146225135" if payer else None, payer_name_masked="王*" if payer else None,
        channel=channel, channel_txn_id=f"txn-{uuid4().hex}", amount_fen=bill.data["amount_fen"],
        bank="中国银行" if channel in ("bank_counter", "bank_withholding") else None,
        settled_at=settled_at or datetime.now(UTC),
    )  # fmt: skip
    return Envelope.wrap(
        event, stream_id=f"payment-{event.payment_id}", stream_version=1, producer="payment", correlation_id="pay-1"
    )


async def test_one_receipt_per_settlement_through_redelivery_and_republication(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    user_id, number = await person(notify.identity)
    bill = bill_issued(user_id)
    payment = settled(bill, "alipay", payer=True)
    sms_id = sms_id_for(payment.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.PAYMENT_EVENTS), bill)
    copy = payment.model_copy(update={"event_id": uuid4()})  # re-published under a new event_id
    for envelope in (payment, payment, payment, copy):
        await publish(producer, topic(topics.PAYMENT_EVENTS), envelope)

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    async def all_handled() -> bool:
        return await handled(notify.pool, bill, payment, copy)

    await eventually(sent)
    await eventually(all_handled)
    await asyncio.sleep(0.5)  # a few sender rounds, so that a second message would show
    [row] = await sink(notify.pool, sms_id)
    assert row["phone"] == number and row["template"] == "payment_receipt"
    assert row["text"] == RECEIPT.format(channel="支付宝")
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE recipient_id = $1", user_id) == 1
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_sink") == 1
    assert await notify.pool.fetchval("SELECT payment_id FROM sms_messages WHERE sms_id = $1", sms_id) == UUID(
        payment.data["payment_id"]
    )
    [published] = await notify_events(since, {sms_id}, notify.pool)
    assert published["event_type"] == "SmsSent" and published["correlation_id"] == "pay-1"
    assert published["causation_id"] == str(payment.event_id)
    assert published["data"]["template"] == "payment_receipt" and published["data"]["recipient_id"] == str(user_id)
    assert published["data"]["case_id"] is None and number not in str(published)

    # operators find the receipt by its settlement in the SMS log, the phone masked
    log = await notify.http.get(
        "/v1/sms", params={"payment_id": payment.data["payment_id"]}, headers=notify.token("operator")
    )
    assert log.status_code == 200, log.text
    [item] = log.json()["items"]
    assert item["sms_id"] == str(sms_id) and item["template"] == "payment_receipt" and item["case_id"] is None
    assert item["payment_id"] == payment.data["payment_id"] and number not in log.text
    other = await notify.http.get("/v1/sms", params={"payment_id": str(uuid4())}, headers=notify.token("operator"))
    assert other.json()["total"] == 0


async def test_a_settlement_before_its_bill_and_its_phone_waits_then_texts_once(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """The settlement arrives first (another key, so maybe another partition), then its bill, then
    the person's phone: one receipt, with the bill's month, once everything is known."""
    user_id, number = await person(notify.identity)
    bill = bill_issued(user_id)
    payment = settled(bill, "bank_withholding")
    sms_id = sms_id_for(payment.event_id)
    await publish(producer, topic(topics.PAYMENT_EVENTS), payment)

    async def payment_handled() -> bool:
        return await handled(notify.pool, payment)

    await eventually(payment_handled)
    assert await state(notify.pool, sms_id) is None
    waiting = await notify.pool.fetchval(
        "SELECT count(*) FROM receipts_awaiting_bill WHERE payment_id = $1", UUID(payment.data["payment_id"])
    )
    assert waiting == 1

    await publish(producer, topic(topics.PAYMENT_EVENTS), bill)

    async def awaiting_phone() -> bool:
        return await state(notify.pool, sms_id) == "awaiting_recipient"

    await eventually(awaiting_phone)
    assert await notify.pool.fetchval("SELECT count(*) FROM receipts_awaiting_bill") == 0
    assert await sink(notify.pool, sms_id) == []

    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    await eventually(sent)
    await asyncio.sleep(0.3)
    [row] = await sink(notify.pool, sms_id)
    assert row["phone"] == number and row["text"] == RECEIPT.format(channel="银行卡代扣")


async def test_a_stale_settlement_is_recorded_skipped_and_never_texted(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """As if notify were rebuilt from the topics: a settlement of ten days ago is recorded
    `skipped_stale` (replay guard), not texted, not even when delivered again."""
    user_id, _ = await person(notify.identity)
    bill = bill_issued(user_id)
    old = settled(bill, settled_at=datetime.now(UTC) - timedelta(days=10))
    sms_id = sms_id_for(old.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.PAYMENT_EVENTS), bill)
    await publish(producer, topic(topics.PAYMENT_EVENTS), old)

    async def skipped() -> bool:
        return await state(notify.pool, sms_id) == "skipped_stale"

    await eventually(skipped)
    await publish(producer, topic(topics.PAYMENT_EVENTS), old.model_copy(update={"event_id": uuid4()}))
    await publish(producer, topic(topics.PAYMENT_EVENTS), old)
    await asyncio.sleep(1.0)  # redelivery handled and a few sender rounds
    row = await notify.pool.fetchrow("SELECT state, attempts, last_error FROM sms_messages WHERE sms_id = $1", sms_id)
    assert row is not None and row["state"] == "skipped_stale" and row["attempts"] == 0
    assert (
        row["last_error"] == "stale_settlement: settlement older than 72 h when first seen: not texted (replay guard)"
    )
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE recipient_id = $1", user_id) == 1
    assert await sink(notify.pool, sms_id) == [] and await own_events(notify.pool, sms_id) == 0


async def test_a_settlement_of_an_erased_person_is_not_texted(notify: Notify, producer: AIOKafkaProducer) -> None:
    """PersonErased handling is the decisions': the receipt is recorded `failed`, never texted."""
    user_id, _ = await person(notify.identity)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.IDENTITY_EVENTS), await erased(notify.identity, user_id))
    bill = bill_issued(user_id)
    payment = settled(bill)
    sms_id = sms_id_for(payment.event_id)
    await publish(producer, topic(topics.PAYMENT_EVENTS), bill)
    await publish(producer, topic(topics.PAYMENT_EVENTS), payment)

    async def failed() -> bool:
        return await state(notify.pool, sms_id) == "failed"

    await eventually(failed)
    await asyncio.sleep(0.3)
    row = await notify.pool.fetchrow("SELECT phone, last_error FROM sms_messages WHERE sms_id = $1", sms_id)
    assert row is not None and row["phone"] is None and row["last_error"].startswith("recipient_erased:")
    assert await sink(notify.pool, sms_id) == [] and await own_events(notify.pool, sms_id) == 0
