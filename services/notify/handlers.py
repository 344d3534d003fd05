"""notify's Kafka subscribers: thin, on the consumer's transaction, never calling a provider.

The phone arrives sealed under its person's key (docs/personal-data.md): it is opened here, as
part of decoding, through `kernel.personal.PersonKeys`; an erased person's opens to nothing."""

from contracts.envelope import Envelope
from contracts.events.identity import PersonErased, PhoneChanged, RegisteredPersonal, UserRegistered
from contracts.events.payment import BillIssued, BillOverdue, PaymentSettled, WithholdingCollectionFailed
from contracts.events.review import ReviewDecided
from contracts.topics import IDENTITY_EVENTS, PAYMENT_EVENTS, REVIEW_EVENTS
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.logging import get_logger
from kernel.personal import PersonKeys
from kernel.runtime import Subscription
from services.notify.service import NotifyService

log = get_logger(__name__)


class NotifyHandlers:
    def __init__(self, service: NotifyService, keys: PersonKeys) -> None:
        self.service = service
        self.keys = keys

    async def on_user_registered(self, conn: Connection, envelope: Envelope) -> None:
        registered = decode(envelope)
        assert isinstance(registered, UserRegistered)
        # identity unreachable: the batch is retried; sealed for someone else: the message is poison
        opened = await self.keys.open(registered.personal, owner=registered.user_id)
        if opened is None:  # erased: the key is gone, there is no phone to keep
            log.info("recipient_erased_before_registration_read", recipient_id=str(registered.user_id))
            return
        phone = RegisteredPersonal.model_validate(opened).phone
        await self.service.remember_recipient(conn, registered.user_id, phone)

    async def on_phone_changed(self, conn: Connection, envelope: Envelope) -> None:
        """The person's new phone (after their UserRegistered: one person's events share a partition)."""
        changed = decode(envelope)
        assert isinstance(changed, PhoneChanged)
        opened = await self.keys.open(changed.personal, owner=changed.user_id)
        if opened is None:  # erased: no phone to keep
            return
        await self.service.change_recipient(conn, changed.user_id, RegisteredPersonal.model_validate(opened).phone)

    async def on_review_decided(self, conn: Connection, envelope: Envelope) -> None:
        """Record the SMS intent only; the sender texts after this transaction commits."""
        decided = decode(envelope)
        assert isinstance(decided, ReviewDecided)
        await self.service.text_decision(conn, envelope.event_id, decided, envelope.correlation_id)

    async def on_bill_issued(self, conn: Connection, envelope: Envelope) -> None:
        """A bill's month, which the receipt of its settlement names."""
        bill = decode(envelope)
        assert isinstance(bill, BillIssued)
        await self.service.remember_bill(conn, bill)

    async def on_payment_settled(self, conn: Connection, envelope: Envelope) -> None:
        """Record the receipt intent only; the sender texts after this transaction commits."""
        settled = decode(envelope)
        assert isinstance(settled, PaymentSettled)
        await self.service.text_settlement(conn, envelope.event_id, settled, envelope.correlation_id)

    async def on_bill_overdue(self, conn: Connection, envelope: Envelope) -> None:
        """Record the overdue bill's reminder intent only; the sender texts after this transaction commits."""
        overdue = decode(envelope)
        assert isinstance(overdue, BillOverdue)
        await self.service.text_overdue_bill(conn, envelope.event_id, overdue, envelope.correlation_id)

    async def on_withholding_collection_failed(self, conn: Connection, envelope: Envelope) -> None:
        """Record the failed collection's SMS intent only; the sender texts after this transaction commits."""
        failed = decode(envelope)
        assert isinstance(failed, WithholdingCollectionFailed)
        await self.service.text_failed_collection(conn, envelope.event_id, failed, envelope.correlation_id)

    async def on_person_erased(self, conn: Connection, envelope: Envelope) -> None:
        erased = decode(envelope)
        assert isinstance(erased, PersonErased)
        await self.service.forget_recipient(conn, erased.user_id)
        self.keys.forget(erased.user_id)

    def subscriptions(self) -> list[Subscription]:
        # One group for the three topics: recipients, decisions, bills, settlements, overdue bills
        # and failed collections arrive in whatever order. identity's events of one person share a
        # partition, so PersonErased comes after their UserRegistered.
        handlers: dict[str, Handler] = {
            UserRegistered.event_type: self.on_user_registered,
            PhoneChanged.event_type: self.on_phone_changed,
            ReviewDecided.event_type: self.on_review_decided,
            PersonErased.event_type: self.on_person_erased,
            BillIssued.event_type: self.on_bill_issued,
            PaymentSettled.event_type: self.on_payment_settled,
            BillOverdue.event_type: self.on_bill_overdue,
            WithholdingCollectionFailed.event_type: self.on_withholding_collection_failed,
        }
        return [Subscription("sms", [IDENTITY_EVENTS, REVIEW_EVENTS, PAYMENT_EVENTS], handlers)]
