"""notify's reminder of an overdue bill and its message about a failed bank withholding collection
over the real broker and database (issue 8, "Downstream"; the same exactly-once rules as decisions
and receipts): `BillOverdue` and `WithholdingCollectionFailed` are published on the session's
payment.events as payment would publish them (producer "payment"), phones arrive sealed from
identity (its real code, in-process)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import Envelope
from kernel.server import exposition
from services.notify.domain import sms_id_for
from tests.support.infra import topic
from tests.support.notify import (
    Notify,
    bill_overdue,
    collection_failed,
    end_offsets,
    erased,
    eventually,
    from_payment,
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
# tests/integration/conftest.py; `producer` from tests/support/kafka.py.

REMINDER = (
    "【常州人社】您2025年03月灵活就业社会保险费1234.56元已超过缴费截止日2025年04月15日，尚未缴纳。"
    "请尽快通过微信或支付宝搜索“江苏税务社保缴纳”等方式缴费，如已缴纳请忽略。如有缴费疑问请致电96888732。"
)
FAILURE = (
    "【常州人社】您2025年03月灵活就业社会保险费1700.05元银行卡代扣未成功（{bank}：{reason}）。"
    "下次代扣时将再次尝试扣款，您也可以通过微信或支付宝搜索“江苏税务社保缴纳”缴费。如有缴费疑问请致电96888732。"
)


def republished(envelope: Envelope) -> Envelope:
    """The same event published again under a new event_id (payment's relay after a restore)."""
    return envelope.model_copy(update={"event_id": uuid4()})


async def messages_of(notify: Notify, user_id: UUID) -> int:
    return int(await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE recipient_id = $1", user_id))


async def test_one_reminder_per_overdue_bill_through_redelivery_and_republication(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    user_id, number = await person(notify.identity)
    overdue = from_payment(
        bill_overdue(user_id, amount_fen=123456, due_on=date(2025, 4, 15), overdue_at=datetime.now(UTC)),
        correlation_id="overdue-1",
    )
    copy = republished(overdue)
    sms_id = sms_id_for(overdue.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    for envelope in (overdue, overdue, copy, overdue):
        await publish(producer, topic(topics.PAYMENT_EVENTS), envelope)

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    async def all_handled() -> bool:
        return await handled(notify.pool, overdue, copy)

    await eventually(sent)
    await eventually(all_handled)
    await asyncio.sleep(0.5)  # a few sender rounds, so that a second message would show
    [row] = await sink(notify.pool, sms_id)
    assert row["phone"] == number and row["template"] == "bill_overdue"
    assert row["text"] == REMINDER  # 123456 fen: 1234.56 yuan
    assert await messages_of(notify, user_id) == 1
    assert await state(notify.pool, sms_id_for(copy.event_id)) is None
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_sink") == 1
    bill_id = overdue.data["bill_id"]
    stored = await notify.pool.fetchrow("SELECT subject, bill_id FROM sms_messages WHERE sms_id = $1", sms_id)
    assert stored is not None and stored["subject"] == f"overdue_bill:{bill_id}" and str(stored["bill_id"]) == bill_id
    [published] = await notify_events(since, {sms_id}, notify.pool)
    assert published["event_type"] == "SmsSent" and published["correlation_id"] == "overdue-1"
    assert published["causation_id"] == str(overdue.event_id)
    assert published["data"]["template"] == "bill_overdue" and published["data"]["recipient_id"] == str(user_id)
    assert published["data"]["case_id"] is None and number not in str(published)

    # operators find every message about the bill in the SMS log, the phone masked
    log = await notify.http.get("/v1/sms", params={"bill_id": bill_id}, headers=notify.token("operator"))
    assert log.status_code == 200, log.text
    [item] = log.json()["items"]
    assert item["sms_id"] == str(sms_id) and item["template"] == "bill_overdue" and item["bill_id"] == bill_id
    assert item["subject"] == f"overdue_bill:{bill_id}" and number not in log.text
    other = await notify.http.get("/v1/sms", params={"bill_id": str(uuid4())}, headers=notify.token("operator"))
    assert other.json()["total"] == 0


async def test_one_message_per_failed_collection_and_one_for_each_failed_request_of_a_bill(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """A failure delivered twice and re-published under a new event id is one message; a second
    collection request of the same bill that fails too is a second message."""
    user_id, number = await person(notify.identity)
    bill_id = uuid4()
    now = datetime.now(UTC)
    first = from_payment(
        collection_failed(user_id, 170005, "insufficient_funds", "工商银行", bill_id=bill_id, failed_at=now)
    )
    second = from_payment(
        collection_failed(user_id, 170005, "card_not_activated", "工商银行", bill_id=bill_id, failed_at=now)
    )
    copy = republished(first)
    first_id, second_id = sms_id_for(first.event_id), sms_id_for(second.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    for envelope in (first, first, copy, first, second, second):
        await publish(producer, topic(topics.PAYMENT_EVENTS), envelope)

    async def both_sent() -> bool:
        return await state(notify.pool, first_id) == "sent" and await state(notify.pool, second_id) == "sent"

    async def all_handled() -> bool:
        return await handled(notify.pool, first, copy, second)

    await eventually(both_sent)
    await eventually(all_handled)
    await asyncio.sleep(0.5)
    assert await messages_of(notify, user_id) == 2
    assert await state(notify.pool, sms_id_for(copy.event_id)) is None
    [one] = await sink(notify.pool, first_id)
    [two] = await sink(notify.pool, second_id)
    assert one["phone"] == two["phone"] == number
    assert one["template"] == two["template"] == "withholding_failed"
    assert one["text"] == FAILURE.format(bank="工商银行", reason="账户余额不足")  # 170005 fen: 1700.05 yuan
    assert two["text"] == FAILURE.format(bank="工商银行", reason="社保卡金融功能未激活")
    subjects = {
        r["subject"] for r in await notify.pool.fetch("SELECT subject FROM sms_messages WHERE bill_id = $1", bill_id)
    }
    assert subjects == {
        f"failed_collection:{first.data['collection_request_id']}",
        f"failed_collection:{second.data['collection_request_id']}",
    }


async def test_stale_reminders_and_failures_are_recorded_skipped_and_never_texted(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """As if notify were rebuilt from the topics: a bill overdue ten days ago and a collection that
    failed ten days ago are recorded `skipped_stale` (replay guard), not texted, not even when
    delivered again; the note says which cause was too old."""
    user_id, _ = await person(notify.identity)
    long_ago = datetime.now(UTC) - timedelta(days=10)
    old_reminder = from_payment(bill_overdue(user_id, overdue_at=long_ago))
    old_failure = from_payment(collection_failed(user_id, failed_at=long_ago))
    reminder_id, failure_id = sms_id_for(old_reminder.event_id), sms_id_for(old_failure.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.PAYMENT_EVENTS), old_reminder)
    await publish(producer, topic(topics.PAYMENT_EVENTS), old_failure)

    async def skipped() -> bool:
        return (
            await state(notify.pool, reminder_id) == "skipped_stale"
            and await state(notify.pool, failure_id) == "skipped_stale"
        )

    await eventually(skipped)
    for envelope in (republished(old_reminder), old_reminder, republished(old_failure), old_failure):
        await publish(producer, topic(topics.PAYMENT_EVENTS), envelope)
    await asyncio.sleep(1.0)  # redelivery handled and a few sender rounds
    rows = {
        r["sms_id"]: r
        for r in await notify.pool.fetch(
            "SELECT sms_id, state, attempts, last_error FROM sms_messages WHERE recipient_id = $1", user_id
        )
    }
    assert set(rows) == {reminder_id, failure_id}
    assert all(r["state"] == "skipped_stale" and r["attempts"] == 0 for r in rows.values())
    assert rows[reminder_id]["last_error"] == (
        "stale_overdue_bill: overdue bill older than 72 h when first seen: not texted (replay guard)"
    )
    assert rows[failure_id]["last_error"] == (
        "stale_failed_collection: failed collection older than 72 h when first seen: not texted (replay guard)"
    )
    for sms_id in (reminder_id, failure_id):
        assert await sink(notify.pool, sms_id) == [] and await own_events(notify.pool, sms_id) == 0
    metrics = exposition()
    assert 'flexenroll_sms_skipped_total{reason="stale_overdue_bill"}' in metrics
    assert 'flexenroll_sms_skipped_total{reason="stale_failed_collection"}' in metrics


async def test_a_reminder_waits_for_the_phone_and_is_not_texted_late(
    start_notify: Callable[..., Awaitable[Notify]], producer: AIOKafkaProducer
) -> None:
    """Both arrive before the person's phone: the failure is released when the phone comes, the
    reminder (now older than the limit: the clock moved 73 h past its overdue_at) is released as
    `skipped_stale` with its own note."""
    offset = timedelta(0)

    def clock() -> datetime:
        return datetime.now(UTC) + offset

    notify = await start_notify(clock)
    user_id, number = await person(notify.identity)
    reminder = from_payment(bill_overdue(user_id, overdue_at=datetime.now(UTC) - timedelta(hours=2)))
    failure = from_payment(collection_failed(user_id, 170005, failed_at=datetime.now(UTC) + timedelta(hours=72)))
    reminder_id, failure_id = sms_id_for(reminder.event_id), sms_id_for(failure.event_id)
    await publish(producer, topic(topics.PAYMENT_EVENTS), reminder)
    await publish(producer, topic(topics.PAYMENT_EVENTS), failure)

    async def waiting() -> bool:
        return (
            await state(notify.pool, reminder_id) == "awaiting_recipient"
            and await state(notify.pool, failure_id) == "awaiting_recipient"
        )

    await eventually(waiting)
    offset = timedelta(hours=73)  # the reminder is 75 h old now, the failure 1 h
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))

    async def released() -> bool:
        return (
            await state(notify.pool, reminder_id) == "skipped_stale" and await state(notify.pool, failure_id) == "sent"
        )

    await eventually(released)
    await asyncio.sleep(0.3)
    assert await sink(notify.pool, reminder_id) == [] and await own_events(notify.pool, reminder_id) == 0
    note = await notify.pool.fetchval("SELECT last_error FROM sms_messages WHERE sms_id = $1", reminder_id)
    assert note == "stale_overdue_bill: overdue bill older than 72 h when the phone became known: not texted late"
    [row] = await sink(notify.pool, failure_id)
    assert row["phone"] == number and row["text"] == FAILURE.format(bank="工商银行", reason="账户余额不足")


async def test_a_reminder_or_failure_for_an_erased_person_is_not_texted(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """PersonErased handling is the decisions': both are recorded `failed`, never texted."""
    user_id, _ = await person(notify.identity)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.IDENTITY_EVENTS), await erased(notify.identity, user_id))
    now = datetime.now(UTC)
    reminder = from_payment(bill_overdue(user_id, overdue_at=now))
    failure = from_payment(collection_failed(user_id, failed_at=now))
    ids = [sms_id_for(reminder.event_id), sms_id_for(failure.event_id)]
    await publish(producer, topic(topics.PAYMENT_EVENTS), reminder)
    await publish(producer, topic(topics.PAYMENT_EVENTS), failure)

    async def failed() -> bool:
        return all([await state(notify.pool, sms_id) == "failed" for sms_id in ids])

    await eventually(failed)
    await asyncio.sleep(0.3)
    for sms_id in ids:
        row = await notify.pool.fetchrow("SELECT phone, last_error FROM sms_messages WHERE sms_id = $1", sms_id)
        assert row is not None and row["phone"] is None and row["last_error"].startswith("recipient_erased:")
        assert await sink(notify.pool, sms_id) == [] and await own_events(notify.pool, sms_id) == 0
