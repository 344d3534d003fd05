"""notify in-process over the real broker and database: decisions from review.events and phones
from identity.events become exactly one SMS each (local sink) and one SmsSent on notify.events,
through redelivery, re-publication, out-of-order arrival and a sender that died mid-send. Phones
arrive sealed under the keys identity (its real code, in-process) holds; the tests publish
identity's events themselves (identity's relay is off), so that they choose when each arrives."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.review import ReviewDecided, ReviewReason
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore
from kernel.runtime import StoreOnly
from kernel.server import exposition
from services.notify.domain import sms_id_for
from services.notify.gateway import LocalSinkGateway
from services.notify.handlers import NotifyHandlers
from services.notify.service import NotifyService
from services.notify.templates import load_templates
from tests.support.identity import RunningIdentity
from tests.support.infra import (
    service_pool,
    topic,
)
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

REASON = "身份证反面照片模糊，请重新上传。"


# --- events ---------------------------------------------------------------------------------


def decided(
    applicant_id: UUID, decision: str = "approved", case_id: UUID | None = None, decided_at: datetime | None = None
) -> Envelope:
    event = ReviewDecided(
        case_id=case_id or uuid4(), application_id=uuid4(), applicant_id=applicant_id, attempt=1,
        decision=decision,
        reasons=[ReviewReason(code="documents_unreadable", text=REASON)] if decision == "rejected" else [],
        reviewer_id=uuid4(), decided_at=decided_at or datetime.now(UTC),
    )  # fmt: skip
    return Envelope.wrap(
        event, stream_id=str(event.case_id), stream_version=2, producer="review", correlation_id="flow-1"
    )


# --- tests ----------------------------------------------------------------------------------


async def test_one_sms_per_decision_through_redelivery_and_republication(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    user_id, number = await person(notify.identity)
    decision = decided(user_id)
    sms_id = sms_id_for(decision.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.REVIEW_EVENTS), decision)

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    await eventually(sent)
    [published] = await notify_events(since, {sms_id}, notify.pool)
    assert published["event_type"] == "SmsSent" and published["correlation_id"] == "flow-1"
    assert published["causation_id"] == str(decision.event_id)
    assert published["data"]["case_id"] == decision.data["case_id"]
    assert number not in json.dumps(published)

    # the same message again, and the same decision re-published under a new event_id
    copy = decision.model_copy(update={"event_id": uuid4()})
    await publish(producer, topic(topics.REVIEW_EVENTS), decision)
    await publish(producer, topic(topics.REVIEW_EVENTS), copy)

    async def both_handled() -> bool:
        handled = await notify.pool.fetchval(
            "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])", [decision.event_id, copy.event_id]
        )
        return bool(handled == 2)

    await eventually(both_handled)
    await asyncio.sleep(0.5)  # a few sender rounds
    rows = await sink(notify.pool, sms_id)
    assert len(rows) == 1 and rows[0]["phone"] == number
    assert rows[0]["text"].startswith("【常州人社】您的灵活就业人员参保登记申请已审核通过。")
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE recipient_id = $1", user_id) == 1
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_sink") == 1
    assert len(await notify_events(since, {sms_id}, notify.pool)) == 1


async def test_a_decision_before_the_phone_waits_then_texts_the_reasons(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    user_id, _ = await person(notify.identity)
    decision = decided(user_id, "rejected")
    sms_id = sms_id_for(decision.event_id)
    await publish(producer, topic(topics.REVIEW_EVENTS), decision)

    async def waiting() -> bool:
        return await state(notify.pool, sms_id) == "awaiting_recipient"

    await eventually(waiting)
    await asyncio.sleep(0.3)
    assert await sink(notify.pool, sms_id) == []

    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    await eventually(sent)
    [row] = await sink(notify.pool, sms_id)
    assert "审核不通过" in row["text"] and "身份证反面照片模糊" in row["text"] and "12333" in row["text"]
    [published] = await notify_events(since, {sms_id}, notify.pool)
    assert published["data"]["template"] == "review_rejected"


async def test_the_sms_log_is_for_operators_with_masked_phones(notify: Notify, producer: AIOKafkaProducer) -> None:
    user_id, number = await person(notify.identity)
    decision = decided(user_id, "rejected")
    sms_id = sms_id_for(decision.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))
    await publish(producer, topic(topics.REVIEW_EVENTS), decision)

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    await eventually(sent)
    assert (await notify.http.get("/v1/sms")).status_code == 401
    for role in ("applicant", "reviewer"):  # only an operator's token names notify in its `aud` (kernel.auth)
        refused = await notify.http.get("/v1/sms", headers=notify.token(role))
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"

    operator = notify.token("operator")
    page = await notify.http.get("/v1/sms", params={"recipient_id": str(user_id)}, headers=operator)
    assert page.status_code == 200, page.text
    [item] = page.json()["items"]
    assert item["sms_id"] == str(sms_id) and item["state"] == "sent" and item["attempts"] == 1
    assert item["phone_masked"] == f"{number[:6]}****{number[-4:]}" and REASON.rstrip("。") in item["text"]
    assert number not in page.text
    assert (await notify.http.get("/v1/sms", params={"state": "failed"}, headers=operator)).json()["total"] == 0
    assert (await notify.http.get("/v1/sms", params={"state": "bogus"}, headers=operator)).status_code == 422
    one = await notify.http.get(f"/v1/sms/{sms_id}", headers=operator)
    assert one.json()["template"] == "review_rejected"
    missing = await notify.http.get(f"/v1/sms/{uuid4()}", headers=operator)
    assert missing.status_code == 404 and missing.json()["code"] == "sms_not_found"
    sunk = await notify.http.get("/v1/sms/sink", params={"out_id": str(sms_id)}, headers=operator)
    [message] = sunk.json()["items"]
    assert message["phone_masked"].endswith(number[-4:]) and number not in sunk.text
    metrics = exposition()
    assert 'flexenroll_sms_sent_total{provider="local_sink"}' in metrics and "flexenroll_sms_pending" in metrics


@pytest.mark.parametrize("provider_got_it", [True, False], ids=["sent-before-crash", "not-sent-before-crash"])
async def test_a_sender_that_died_mid_send_is_resolved_by_lookup(
    schema: str, identity: RunningIdentity, start_notify: Callable[..., Awaitable[Notify]], provider_got_it: bool
) -> None:
    """The intent is left in `sending` as if the process died right after (or right before) the
    provider call; the restarted service asks the provider before it sends anything."""
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    templates = load_templates(None, "常州人社")
    user_id, number = await person(identity)
    decision = decided(user_id)
    sms_id = sms_id_for(decision.event_id)
    pool = await service_pool("notify", schema, 1, 2)
    try:
        await migrate(pool, schema, migrations_from("services.notify"))
        service = NotifyService(StoreOnly(EventStore("notify", schema)), templates)
        handlers = NotifyHandlers(service, identity.keys("notify"))
        async with pool.acquire() as conn, conn.transaction():
            await handlers.on_user_registered(conn, await registered(identity, user_id))
            await handlers.on_review_decided(conn, decision)
        await pool.execute(
            "UPDATE sms_messages SET state = 'sending', attempts = 1, sending_since = now() - interval '10 minutes', "
            "first_attempt_at = now(), last_attempt_at = now() WHERE sms_id = $1",
            sms_id,
        )
        if provider_got_it:
            await LocalSinkGateway(pool, templates).send(number, "review_approved", {}, str(sms_id))
    finally:
        await pool.close()

    notify = await start_notify()

    async def sent() -> bool:
        return await state(notify.pool, sms_id) == "sent"

    await eventually(sent)
    await asyncio.sleep(0.3)
    assert len(await sink(notify.pool, sms_id)) == 1
    attempts = await notify.pool.fetchval("SELECT attempts FROM sms_messages WHERE sms_id = $1", sms_id)
    assert attempts == 2
    [published] = await notify_events(since, {sms_id}, notify.pool)
    assert published["event_type"] == "SmsSent"


# --- replay guard -----------------------------------------------------------------------------


async def test_a_replayed_old_decision_is_recorded_skipped_and_never_texted(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """As if notify were rebuilt from the topics: a decision made 10 days ago arrives with its
    applicant's registration; another arrives before its applicant's phone. Neither is texted, not
    even after redelivery or when the phone arrives; a fresh decision still is, once."""
    since = await end_offsets([topic(topics.NOTIFY_EVENTS)])
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    old_user, old_number = await person(notify.identity)
    old = decided(old_user, "rejected", decided_at=ten_days_ago)
    unknown_user, _ = await person(notify.identity)
    old_unknown = decided(unknown_user, decided_at=ten_days_ago)
    fresh_user, _ = await person(notify.identity)
    fresh = decided(fresh_user)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, old_user))
    await publish(producer, topic(topics.REVIEW_EVENTS), old)
    await publish(producer, topic(topics.REVIEW_EVENTS), old_unknown)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, fresh_user))
    await publish(producer, topic(topics.REVIEW_EVENTS), fresh)
    old_id, unknown_id, fresh_id = (sms_id_for(e.event_id) for e in (old, old_unknown, fresh))

    async def settled() -> bool:
        states = [await state(notify.pool, i) for i in (old_id, unknown_id, fresh_id)]
        return states == ["skipped_stale", "skipped_stale", "sent"]

    await eventually(settled)
    # redelivery of the old decision, and the missing phone arriving late, change nothing
    late_phone = await registered(notify.identity, unknown_user)
    await publish(producer, topic(topics.REVIEW_EVENTS), old)
    await publish(producer, topic(topics.REVIEW_EVENTS), old.model_copy(update={"event_id": uuid4()}))
    await publish(producer, topic(topics.IDENTITY_EVENTS), late_phone)

    async def late_phone_handled() -> bool:
        return await handled(notify.pool, late_phone)

    await eventually(late_phone_handled)
    await asyncio.sleep(0.5)  # a few sender rounds
    assert [await state(notify.pool, i) for i in (old_id, unknown_id)] == ["skipped_stale", "skipped_stale"]
    assert await sink(notify.pool, old_id) == [] and await sink(notify.pool, unknown_id) == []
    assert await own_events(notify.pool, old_id) == 0 and await own_events(notify.pool, unknown_id) == 0
    assert len(await sink(notify.pool, fresh_id)) == 1
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_sink") == 1
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE recipient_id = $1", old_user) == 1
    [published] = await notify_events(since, {fresh_id}, notify.pool)
    assert published["event_type"] == "SmsSent"

    operator = notify.token("operator")
    page = await notify.http.get("/v1/sms", params={"state": "skipped_stale"}, headers=operator)
    assert page.status_code == 200, page.text
    items = {item["sms_id"]: item for item in page.json()["items"]}
    assert set(items) == {str(old_id), str(unknown_id)} and page.json()["total"] == 2
    item = items[str(old_id)]
    assert item["state"] == "skipped_stale" and item["attempts"] == 0 and item["sent_at"] is None
    assert item["last_error"].startswith("stale_decision:") and "72 h" in item["last_error"]
    assert item["phone_masked"] == f"{old_number[:6]}****{old_number[-4:]}" and old_number not in page.text
    assert items[str(unknown_id)]["phone_masked"] is None
    metrics = exposition()
    assert 'flexenroll_sms_skipped_total{reason="stale_decision"}' in metrics


async def test_a_message_that_waited_for_the_phone_past_the_limit_is_not_texted_late(
    start_notify: Callable[..., Awaitable[Notify]], producer: AIOKafkaProducer
) -> None:
    """The decision is fresh when it arrives, but the applicant's UserRegistered comes only when
    the decision is older than the limit (the clock moved 73 h): released as skipped_stale."""
    offset = timedelta(0)

    def clock() -> datetime:
        return datetime.now(UTC) + offset

    notify = await start_notify(clock)
    user_id, _ = await person(notify.identity)
    decision = decided(user_id)
    sms_id = sms_id_for(decision.event_id)
    await publish(producer, topic(topics.REVIEW_EVENTS), decision)

    async def waiting() -> bool:
        return await state(notify.pool, sms_id) == "awaiting_recipient"

    await eventually(waiting)
    offset = timedelta(hours=73)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, user_id))

    async def skipped() -> bool:
        return await state(notify.pool, sms_id) == "skipped_stale"

    await eventually(skipped)
    await asyncio.sleep(0.5)
    assert await sink(notify.pool, sms_id) == [] and await own_events(notify.pool, sms_id) == 0
    note = await notify.pool.fetchval("SELECT last_error FROM sms_messages WHERE sms_id = $1", sms_id)
    assert note.startswith("stale_decision:") and "phone became known" in note


# --- erasure ----------------------------------------------------------------------------------


async def test_an_erased_recipient_leaves_notify_and_an_unsent_message_fails(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    """docs/personal-data.md, "Erasure": the recipient goes, their messages keep no phone (a sent
    one stays sent; one not yet sent fails with `recipient_erased`), the sink keeps the number only
    masked, and neither a late registration nor a new decision brings it back."""
    texted, number = await person(notify.identity)
    waiting, _ = await person(notify.identity)
    sent_decision, waiting_decision = decided(texted), decided(waiting, "rejected")
    sent_id, waiting_id = sms_id_for(sent_decision.event_id), sms_id_for(waiting_decision.event_id)
    await publish(producer, topic(topics.IDENTITY_EVENTS), await registered(notify.identity, texted))
    await publish(producer, topic(topics.REVIEW_EVENTS), sent_decision)
    await publish(producer, topic(topics.REVIEW_EVENTS), waiting_decision)  # its phone never comes

    async def settled() -> bool:
        return [await state(notify.pool, sent_id), await state(notify.pool, waiting_id)] == [
            "sent",
            "awaiting_recipient",
        ]

    await eventually(settled)
    assert [r["phone"] for r in await sink(notify.pool, sent_id)] == [number]

    erasures = [await erased(notify.identity, texted), await erased(notify.identity, waiting)]
    for envelope in erasures:
        await publish(producer, topic(topics.IDENTITY_EVENTS), envelope)
    await eventually(lambda: handled(notify.pool, *erasures))

    assert await notify.pool.fetchval("SELECT count(*) FROM recipients WHERE user_id = ANY($1::uuid[])",
                                      [texted, waiting]) == 0  # fmt: skip
    rows = {
        r["sms_id"]: r
        for r in await notify.pool.fetch(
            "SELECT sms_id, state, phone, last_error, failed_at, recipient_erased_at FROM sms_messages "
            "WHERE sms_id = ANY($1::uuid[])",
            [sent_id, waiting_id],
        )
    }
    assert rows[sent_id]["state"] == "sent" and rows[sent_id]["phone"] is None  # what happened stays
    failed = rows[waiting_id]
    assert failed["state"] == "failed" and failed["phone"] is None and failed["failed_at"] is not None
    assert failed["last_error"].startswith("recipient_erased:")
    assert all(r["recipient_erased_at"] is not None for r in rows.values())
    [sunk] = await sink(notify.pool, sent_id)
    assert sunk["phone"] == f"{number[:6]}****{number[-4:]}"
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_sink WHERE phone = $1", number) == 0
    operator = notify.token("operator")
    log = await notify.http.get("/v1/sms", params={"recipient_id": str(waiting)}, headers=operator)
    [item] = log.json()["items"]
    assert item["state"] == "failed" and item["phone_masked"] is None and item["last_error"].startswith("recipient_")

    # late news: the registration again (its key is gone, and the person is remembered as erased),
    # and a new decision about the erased person, which is not texted
    again = (await registered(notify.identity, texted)).model_copy(update={"event_id": uuid4()})
    late_decision = decided(texted)
    await publish(producer, topic(topics.IDENTITY_EVENTS), again)
    await publish(producer, topic(topics.REVIEW_EVENTS), late_decision)
    await eventually(lambda: handled(notify.pool, again, late_decision))
    await asyncio.sleep(0.3)  # a few sender rounds
    assert await notify.pool.fetchval("SELECT count(*) FROM recipients WHERE user_id = $1", texted) == 0
    late_id = sms_id_for(late_decision.event_id)
    assert await state(notify.pool, late_id) == "failed" and await sink(notify.pool, late_id) == []
    assert await own_events(notify.pool, late_id) == 0 and len(await sink(notify.pool, sent_id)) == 1
