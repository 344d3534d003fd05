"""notify's sender sweep for receipts (services/notify/service.py `release_receipts`): a settlement
and its bill handled at once in two transactions may each miss the other; the sweep, which first
asks whether any such pair exists at all, then records the receipt once."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.payment import PaymentSettled
from services.notify import projections
from services.notify.domain import sms_id_for
from tests.support.infra import topic
from tests.support.notify import Notify, eventually, handled, person, publish, state


def _settlement(insured: UUID, bill_id: UUID) -> Envelope:
    event = PaymentSettled(
        payment_id=uuid4(), bill_id=bill_id, account_id=uuid4(), insured_person_id=insured,
        payer_id=None, payer_name_masked=None, channel="wechat", channel_txn_id=f"txn-{uuid4().hex}",
        amount_fen=12345, bank=None, settled_at=datetime.now(UTC),
    )  # fmt: skip
    return Envelope.wrap(
        event, stream_id=f"payment-{event.payment_id}", stream_version=1, producer="payment", correlation_id="pay-1"
    )


async def test_the_sweep_records_a_receipt_whose_bill_both_sides_missed(
    notify: Notify, producer: AIOKafkaProducer
) -> None:
    user_id, _ = await person(notify.identity)
    bill_id = uuid4()
    payment = _settlement(user_id, bill_id)
    await publish(producer, topic(topics.PAYMENT_EVENTS), payment)

    async def payment_handled() -> bool:
        return await handled(notify.pool, payment)

    await eventually(payment_handled)
    sms_id = sms_id_for(payment.event_id)
    assert await state(notify.pool, sms_id) is None
    assert not await projections.receipts_with_bill_waiting(notify.pool)

    # The bill's handler committed without seeing the waiting settlement (the race).
    await notify.pool.execute("INSERT INTO bills (bill_id, period) VALUES ($1, '2025-03')", bill_id)
    assert await projections.receipts_with_bill_waiting(notify.pool)

    async def recorded() -> bool:  # by the running sender's sweep (every 0.1 s here)
        return await state(notify.pool, sms_id) is not None

    await eventually(recorded)
    assert await notify.pool.fetchval("SELECT count(*) FROM receipts_awaiting_bill") == 0
    assert await notify.pool.fetchval("SELECT count(*) FROM sms_messages WHERE sms_id = $1", sms_id) == 1
    assert not await projections.receipts_with_bill_waiting(notify.pool)
