"""Bank withholding (services/payment/README.md, "Bank withholding") and overdue bills, payment
in-process with a real identity in-process, on the real database and broker:

- a bank's signed agreement notice is recorded once; the same card again is reused, never signed
  twice; a wrong name or a bad signature records nothing;
- a withholding run twice asks the bank once per bill; the bank's failure fails the request (a
  public WithholdingCollectionFailed) and the next run asks again; its success settles the bill;
- a request the bank refuses is a failed collection; a crash after the bank got a request does
  not send it twice (kernel.effects looks it up first);
- an unpaid bill past its due day is recorded overdue once."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import SecretStr

from kernel.auth import Principal, Role
from kernel.clock import local_date
from kernel.effects import Dispatcher, Policy
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from services.payment.bank import HttpBankGateway, LocalBankSink
from services.payment.service import PaymentService
from services.payment.withholding_service import COLLECTIONS
from tests.support.identity import RunningIdentity
from tests.support.payment import (
    WITHHOLDING_SECRET,
    agreement_notice,
    approve_and_bill,
    collection_result,
    payment_with_identity,
)
from tests.support.tokens import bearer

POLICY = Policy(poll_seconds=0.1, backoff_seconds=0.01, call_timeout_seconds=2, lease_seconds=6)


@dataclass
class Desk:
    identity: RunningIdentity
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    service: PaymentService
    schema: str

    def auth(self, role: Role = "applicant", user_id: UUID | None = None) -> dict[str, str]:
        return bearer(Principal(user_id or uuid4(), role), 600)

    async def post(self, path: str, notification: tuple[dict[str, str], bytes]) -> httpx.Response:
        headers, body = notification
        return await self.http.post(path, headers=headers, content=body)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.runtime.pool.fetch(sql.replace("{s}", f'"{self.schema}"'), *args))

    async def events(self, event_type: str, bill_id: UUID) -> list[dict[str, Any]]:
        rows = await self.fetch(
            "SELECT data FROM {s}.events WHERE event_type = $1 AND stream_id = $2 ORDER BY position",
            event_type,
            f"bill-{bill_id}",
        )
        return [dict(row["data"]) for row in rows]

    def dispatcher(self, gateway: LocalBankSink | HttpBankGateway | None = None) -> Dispatcher[Any]:
        return Dispatcher(self.runtime.pool, COLLECTIONS, gateway or LocalBankSink(self.runtime.pool), POLICY,
                          on_final=self.service.record_collection_final)  # fmt: skip

    async def sink(self, request_id: UUID) -> int:
        [row] = await self.fetch("SELECT count(*) AS n FROM {s}.bank_collection_sink WHERE collection_request_id = $1",
                                 request_id)  # fmt: skip
        return int(row["n"])


@pytest.fixture
async def desk(schema: str) -> AsyncIterator[Desk]:
    async with payment_with_identity(
        schema,
        "withhold",
        payment_bank_withholding_secret=SecretStr(WITHHOLDING_SECRET),
        # The tests drive the collector and the overdue check themselves.
        payment_collector_poll_seconds=3600,
        payment_overdue_check_seconds=3600,
    ) as running:
        yield Desk(running.identity, running.runtime, running.http, running.service, schema)


async def signed_person(desk: Desk, name: str, months_back: int = 0, card: str = "CARD-0001-6217") -> UUID:
    """A verified person with bills from `months_back` months ago and an agreement for `card`."""
    person = await desk.identity.person(name=name)
    assert person.id_number is not None
    await approve_and_bill(desk.service, person.user_id, months_back)
    notice = agreement_notice(person.id_number, name, card, f"AG{uuid4().hex[:12]}")
    answer = await desk.post("/v1/channels/bank_withholding/agreements", notice)
    assert answer.status_code == 200 and answer.json()["outcome"] == "signed", answer.text
    return person.user_id


async def open_requests(desk: Desk, person: UUID) -> list[Any]:
    return await desk.fetch(
        "SELECT * FROM {s}.collection_requests WHERE insured_person_id = $1 AND result IS NULL AND state <> 'failed' "
        "ORDER BY period",
        person,
    )


def problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert answer.json()["code"] == code and any("\u4e00" <= c <= "\u9fff" for c in answer.json()["detail"])


# --- agreements --------------------------------------------------------------------------------


async def test_an_agreement_is_recorded_once_and_the_same_card_is_never_signed_twice(desk: Desk) -> None:
    person = await desk.identity.person(name="钱多多")
    assert person.id_number is not None
    path = "/v1/channels/bank_withholding/agreements"
    first = agreement_notice(person.id_number, "钱多多", "CARD-A-6217000011112222", "AG0001")

    signed = [await desk.post(path, first) for _ in range(2)]  # the bank's retry answers the same
    assert [a.json()["outcome"] for a in signed] == ["signed", "signed"], signed[0].text
    agreement_id = signed[0].json()["agreement_id"]
    again = await desk.post(path, agreement_notice(person.id_number, "钱多多", "CARD-A-6217000011112222", "AG0002"))
    assert again.json() == {"status": "accepted", "outcome": "reused", "agreement_id": agreement_id}
    other = await desk.post(path, agreement_notice(person.id_number, "钱多多", "CARD-B-6217000033334444", "AG0003"))
    assert other.json()["outcome"] == "signed" and other.json()["agreement_id"] != agreement_id

    rows = await desk.fetch("SELECT * FROM {s}.events WHERE event_type = 'WithholdingAgreementSigned'")
    assert len(rows) == 2  # the reused card was not signed again
    listed = await desk.http.get(f"/v1/insured/{person.user_id}/withholding-agreements",
                                 headers=desk.auth(user_id=person.user_id))  # fmt: skip
    assert listed.status_code == 200, listed.text
    assert sorted(a["card_last4"] for a in listed.json()["agreements"]) == ["2222", "4444"]
    assert all(a["active"] and a["bank"] == "工商银行" for a in listed.json()["agreements"])
    assert "id_number" not in listed.text and person.id_number not in listed.text
    problem(await desk.http.get(f"/v1/insured/{person.user_id}/withholding-agreements", headers=desk.auth()),
            403, "not_your_agreements")  # fmt: skip

    ended = await desk.post(path, agreement_notice(person.id_number, "钱多多", "CARD-B-6217000033334444", "AG0003",
                                                   status="terminated"))  # fmt: skip
    assert ended.json()["outcome"] == "terminated"
    listed = await desk.http.get(f"/v1/insured/{person.user_id}/withholding-agreements", headers=desk.auth("operator"))
    assert sorted((a["card_last4"], a["active"]) for a in listed.json()["agreements"]) == [("2222", True),
                                                                                          ("4444", False)]  # fmt: skip


async def test_a_wrong_name_or_a_bad_signature_records_no_agreement(desk: Desk) -> None:
    person = await desk.identity.person(name="孙悟")
    assert person.id_number is not None
    path = "/v1/channels/bank_withholding/agreements"
    problem(await desk.post(path, agreement_notice(person.id_number, "孙悟空", "CARD-C-1234", "AG0101")),
            422, "person_not_found")  # fmt: skip
    headers, body = agreement_notice(person.id_number, "孙悟", "CARD-C-1234", "AG0102")
    forged = {**headers, "X-Flexenroll-Signature": "sha256=" + "0" * 64}
    problem(await desk.http.post(path, headers=forged, content=body), 401, "invalid_signature")
    assert await desk.fetch("SELECT 1 FROM {s}.events WHERE event_type LIKE 'WithholdingAgreement%'") == []
    assert await desk.fetch("SELECT 1 FROM {s}.withholding_agreements") == []


# --- the withholding run -----------------------------------------------------------------------


async def test_a_run_twice_asks_the_bank_once_and_a_failure_is_asked_again_next_run(desk: Desk) -> None:
    person = await signed_person(desk, "周扣款", months_back=1)
    first = await desk.service.withhold(uuid4())
    again = await desk.service.withhold(uuid4())
    assert (first.requested, again.requested, again.left_alone) == (2, 0, 2)
    assert await desk.dispatcher().run_once() == 2 and await desk.dispatcher().run_once() == 0
    older, newer = await open_requests(desk, person)
    assert [await desk.sink(older["collection_request_id"]), await desk.sink(newer["collection_request_id"])] == [1, 1]
    assert (older["state"], older["attempt"], type(older["amount_fen"])) == ("sent", 1, int)

    # The bank could not collect the older bill: the request fails, told on payment.events.
    failed = collection_result(older["bill_id"], older["collection_request_id"], older["amount_fen"],
                               reason="insufficient_funds")  # fmt: skip
    answer = await desk.post("/v1/channels/bank_withholding/notifications", failed)
    assert answer.status_code == 200, answer.text
    assert (await desk.post("/v1/channels/bank_withholding/notifications", failed)).status_code == 200
    [told] = await desk.events("WithholdingCollectionFailed", older["bill_id"])
    assert (told["reason"], told["amount_fen"], told["bank"]) == ("insufficient_funds", older["amount_fen"], "工商银行")
    assert told["collection_request_id"] == str(older["collection_request_id"])

    # The next run asks the older bill again (attempt 2) and leaves the newer one's open request alone.
    third = await desk.service.withhold(uuid4())
    assert third.requested == 1
    await desk.dispatcher().run_once()
    retry, still = await open_requests(desk, person)
    assert (retry["bill_id"], retry["attempt"], still["collection_request_id"]) == (
        older["bill_id"], 2, newer["collection_request_id"])  # fmt: skip

    # The bank collects both: each bill settles once, by bank withholding, and no run asks again.
    for request in (retry, still):
        done = collection_result(request["bill_id"], request["collection_request_id"], request["amount_fen"])
        assert (await desk.post("/v1/channels/bank_withholding/notifications", done)).status_code == 200
        [settled] = await desk.events("PaymentSettled", request["bill_id"])
        assert (settled["channel"], settled["bank"], settled["amount_fen"]) == (
            "bank_withholding", "工商银行", request["amount_fen"])  # fmt: skip
    assert (await desk.service.withhold(uuid4())).bills == 0
    assert await open_requests(desk, person) == []
    results = await desk.fetch("SELECT result FROM {s}.collection_requests WHERE insured_person_id = $1 "
                               "ORDER BY requested_at, attempt", person)  # fmt: skip
    assert sorted(r["result"] for r in results) == ["collected", "collected", "failed"]


async def test_a_request_the_bank_refuses_is_a_failed_collection(desk: Desk) -> None:
    person = await signed_person(desk, "吴拒绝")
    await desk.service.withhold(uuid4())
    [request] = await open_requests(desk, person)

    def bank(http: httpx.Request) -> httpx.Response:
        assert http.headers["X-Flexenroll-Signature"].startswith("sha256=")
        return httpx.Response(422, json={"code": "agreement_not_found"})

    gateway = HttpBankGateway("https://bank.test", "a-bank-gateway-secret", transport=httpx.MockTransport(bank))
    assert await desk.dispatcher(gateway).run_once() == 1
    [told] = await desk.events("WithholdingCollectionFailed", request["bill_id"])
    assert told["reason"] == "agreement_not_found"
    assert await open_requests(desk, person) == []
    assert (await desk.service.withhold(uuid4())).requested == 1  # asked again by the next run


async def test_a_crash_after_the_bank_got_the_request_does_not_send_it_twice(desk: Desk) -> None:
    person = await signed_person(desk, "郑崩溃")
    await desk.service.withhold(uuid4())
    [claim] = await COLLECTIONS.claim_due(desk.runtime.pool, 10, POLICY.lease_seconds)
    assert (await LocalBankSink(desk.runtime.pool).send(claim.effect)).status == "accepted"
    # ... and the process died before recording it: the lease runs out.
    await desk.fetch("UPDATE {s}.collection_requests SET sending_since = now() - interval '1 hour'")
    assert await desk.dispatcher().run_once() == 1
    [request] = await open_requests(desk, person)
    assert (request["state"], request["uncertain"]) == ("sent", False)
    assert await desk.sink(request["collection_request_id"]) == 1


# --- overdue bills -----------------------------------------------------------------------------


async def test_an_unpaid_bill_past_its_due_day_is_recorded_overdue_once(desk: Desk) -> None:
    person = uuid4()
    # Approved three months ago: the bills of months m-3 and m-2 are past their due day (the 15th
    # of the following month) whatever today is; those of m-1 and m are not.
    await approve_and_bill(desk.service, person, months_back=3)
    bills = await desk.fetch("SELECT * FROM {s}.bills WHERE insured_person_id = $1 ORDER BY period", person)
    today = local_date(datetime.now(UTC))
    past = [b for b in bills if b["due_on"] < today]
    assert len(past) >= 2, bills
    paid, late = past[0], past[1]
    done = collection_result(paid["bill_id"], uuid4(), paid["amount_fen"])  # collected without our request
    assert (await desk.post("/v1/channels/bank_withholding/notifications", done)).status_code == 200

    assert await desk.service.mark_overdue(today) == len(past) - 1
    assert await desk.service.mark_overdue(today) == 0
    for bill in bills:
        recorded = await desk.events("BillOverdue", bill["bill_id"])
        assert len(recorded) == (1 if bill in past[1:] else 0), (bill["period"], recorded)
    [overdue] = await desk.events("BillOverdue", late["bill_id"])
    assert (overdue["amount_fen"], overdue["due_on"], overdue["period"]) == (
        late["amount_fen"], late["due_on"].isoformat(), late["period"])  # fmt: skip
    [row] = await desk.fetch("SELECT overdue_at FROM {s}.bills WHERE bill_id = $1", late["bill_id"])
    assert row["overdue_at"] is not None

    # Paying an overdue bill still settles it, and it is never recorded overdue again.
    answer = await desk.post("/v1/channels/bank_withholding/notifications",
                             collection_result(late["bill_id"], uuid4(), late["amount_fen"]))  # fmt: skip
    assert answer.status_code == 200 and len(await desk.events("PaymentSettled", late["bill_id"])) == 1
    assert await desk.service.mark_overdue(today + timedelta(days=400)) == len(bills) - len(past)
    assert len(await desk.events("BillOverdue", late["bill_id"])) == 1
