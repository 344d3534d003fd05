"""Settlement end to end, every service a real process over the real broker and database, the
channels' notifications made and signed with keys of the test's own that the payment service is
configured to trust:

- approve → account → bills for the approval month and the next → the first bill paid by WeChat
  Pay by the person, the next by Alipay by someone else (payer ≠ insured) → `PaymentSettled` twice
  on payment.events in integer fen → the application `active` with the payments in its timeline →
  one receipt SMS per settlement; the same WeChat notification three times settles once; a bad
  signature is 401 and settles nothing; a wrong amount is 422 and a reconciliation exception;
  the bills' total equals the settlements' total, and no JSON answer holds a float;
- payment killed with SIGKILL while a notification is inside its transaction (held there by a
  trigger), started again, the channel's retry of the same notification settles exactly once;
- bank withholding: the bank's agreement notice (the same card again is reused), `flexctl payment
  withhold` twice sends one collection request, the bank's failure is told by one SMS and asked
  again by the next run, its success settles the bill once with a receipt."""

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from contracts import topics
from services.payment.domain import Month
from services.payment.settlement import payment_id_for
from tests.support.applicant import (
    Person,
    decided_application,
    eventually,
    listed_bills,
    services,
    staff,
)
from tests.support.crash import crash, hold, restart, stored_events
from tests.support.infra import group_prefix, topic
from tests.support.kafka import end_offsets, published_after
from tests.support.payment import (
    Keys,
    agreement_notice,
    alipay,
    channel_env,
    collection_result,
    flexctl_payment,
    floats_in,
    issue_bills,
    make_keys,
    wechat,
)
from tests.support.processes import ServiceProcess

NAMES = ("identity", "enrollment", "review", "notify", "payment")
KEYS = make_keys()
BRISK_NOTIFY = {"NOTIFY_SENDER_POLL_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        **e2e_env,
        "CONSUMER_GROUP_PREFIX": group_prefix("e2e-settle"),
        "BATCH_WAIT_MS": "10",
        **BRISK_NOTIFY,
        **channel_env(KEYS),
    }
    system = services(env, log_dir, NAMES)
    try:
        for service in system.values():
            service.start()
        yield system
    finally:
        for service in system.values():
            service.stop()


@pytest.fixture(autouse=True)
def every_service_up(system: dict[str, ServiceProcess]) -> None:
    """Each test begins with the whole system running, even after a test that failed mid-crash."""
    for service in system.values():
        if service.process is None or service.process.poll() is not None:
            service.start()


# --- helpers ----------------------------------------------------------------------------------------


def approved(system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> tuple[Person, str]:
    """A verified person whose application (pension 3, medical 5) was approved."""
    return decided_application(system, name, birth, male, {"decision": "approved"})


def bills_of(system: dict[str, ServiceProcess], person: Person, count: int) -> dict[str, Any]:
    """The person's bills view once it holds `count` bills (the account opens through Kafka)."""
    view = listed_bills(system, person, count)
    assert floats_in(view) == [], view
    assert len(view["bills"]) == count, view
    return view


def post(system: dict[str, ServiceProcess], channel: str, notification: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = notification
    return httpx.post(
        f"{system['payment'].url}/v1/channels/{channel}/notifications", headers=headers, content=body, timeout=15
    )


def settled_on_topic(start: Any, bill_ids: set[str], expected: int) -> list[dict[str, Any]]:
    """The PaymentSettled records of `bill_ids` after `start`, once `expected` of them arrived, and
    nothing more during a further few seconds."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = asyncio.run(
            published_after(
                start,
                lambda v: v["event_type"] == "PaymentSettled" and v["data"]["bill_id"] in bill_ids,
                wait=2,
            )
        )
        assert len(found) <= expected, found
        return len(found) == expected

    eventually(arrived, f"{expected} PaymentSettled on payment.events")
    return found


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# --- the journeys -------------------------------------------------------------------------------------


def test_two_bills_paid_by_wechat_and_by_alipay_for_another_person(system: dict[str, ServiceProcess]) -> None:
    keys: Keys = KEYS
    person, application_id = approved(system, "孙丽华", date(1988, 6, 21), male=False)
    month = Month.at(datetime.now(UTC))
    issue_bills(system["payment"])
    issue_bills(system["payment"], str(month.next()))
    view = bills_of(system, person, 2)
    first, following = view["bills"]
    assert (first["period"], following["period"]) == (str(month), str(month.next()))
    assert first["status"] == following["status"] == "due"
    assert view["amount_due_fen"] == first["amount_fen"] + following["amount_fen"]
    start = asyncio.run(end_offsets(topic(topics.PAYMENT_EVENTS)))
    operator = staff(system, "operator")
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)

    # A bad signature: 401, nothing settles.
    txn = "4200001234" + uuid4().hex[:18]
    headers, body = wechat(keys, first["bill_id"], first["amount_fen"], txn)
    tampered = body.replace("支付成功".encode(), b"paid!")
    assert tampered != body
    refused = post(system, "wechat", (headers, tampered))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_signature", refused.text
    assert [b["status"] for b in bills_of(system, person, 2)["bills"]] == ["due", "due"]

    # A wrong amount: 422, and an exception the operators see.
    wrong_txn = "4200009999" + uuid4().hex[:18]
    wrong = post(system, "wechat", wechat(keys, following["bill_id"], following["amount_fen"] + 1, wrong_txn))
    assert wrong.status_code == 422 and wrong.json()["code"] == "amount_mismatch", wrong.text
    listed = payment.get("/v1/reconciliation/exceptions", params={"limit": 500}, headers=operator)
    assert listed.status_code == 200 and floats_in(listed.json()) == [], listed.text
    [exception] = [e for e in listed.json()["exceptions"] if e["channel_txn_id"] == wrong_txn]
    assert exception["code"] == "amount_mismatch" and exception["bill_id"] == following["bill_id"]
    assert exception["expected_fen"] == following["amount_fen"]
    assert exception["amount_fen"] == following["amount_fen"] + 1 and type(exception["amount_fen"]) is int
    assert [b["status"] for b in bills_of(system, person, 2)["bills"]] == ["due", "due"]

    # The first bill by WeChat Pay, the same notification three times: 204 each, one settlement.
    notification = wechat(keys, first["bill_id"], first["amount_fen"], txn)
    for _ in range(3):
        answer = post(system, "wechat", notification)
        assert answer.status_code == 204 and answer.content == b"", answer.text

    # The next bill by Alipay, paid by someone else.
    trade_no = "2026" + uuid4().hex[:24]
    paid = post(system, "alipay", alipay(keys, following["bill_id"], yuan(following["amount_fen"]), trade_no,
                                         "2088000000000077"))  # fmt: skip
    assert paid.status_code == 200 and paid.text == "success", paid.text

    view = bills_of(system, person, 2)
    assert [b["status"] for b in view["bills"]] == ["paid", "paid"] and view["amount_due_fen"] == 0

    records = settled_on_topic(start, {first["bill_id"], following["bill_id"]}, expected=2)
    by_bill = {r["data"]["bill_id"]: r["data"] for r in records}
    assert all(floats_in(r) == [] for r in records), records
    by_wechat, by_alipay = by_bill[first["bill_id"]], by_bill[following["bill_id"]]
    assert by_wechat["channel"] == "wechat" and by_wechat["channel_txn_id"] == txn
    assert by_wechat["payment_id"] == str(payment_id_for("wechat", txn))
    assert by_alipay["channel"] == "alipay" and by_alipay["channel_txn_id"] == trade_no
    assert by_wechat["insured_person_id"] == by_alipay["insured_person_id"] == person.user_id
    assert by_alipay["payer_id"] == "2088000000000077" and by_alipay["payer_id"] != person.user_id
    assert stored_events(system, "payment", "PaymentSettled", "bill_id", first["bill_id"]) == 1

    # Money adds up: the bills' total is the settlements' total, integer fen throughout.
    amounts = [r["data"]["amount_fen"] for r in records]
    assert all(type(a) is int for a in amounts) and all(type(b["amount_fen"]) is int for b in view["bills"])
    assert sum(amounts) == sum(b["amount_fen"] for b in view["bills"])
    assert by_wechat["amount_fen"] == first["amount_fen"] and by_alipay["amount_fen"] == following["amount_fen"]

    # The application is active, the payments in its timeline; one receipt per settlement.
    status = person.wait_for_status(application_id, "active")
    assert status["active_since"] is not None

    def both_in_timeline() -> list[Any] | None:
        entries = [e for e in person.status(application_id)["timeline"] if e["kind"] == "payment_settled"]
        assert len(entries) <= 2, entries
        return entries if len(entries) == 2 else None

    eventually(both_in_timeline, "both payments in the timeline")
    sent = sms_of(system, operator, person.user_id, "payment_receipt", 2)
    assert {m["payment_id"] for m in sent} == {by_wechat["payment_id"], by_alipay["payment_id"]}


def test_payment_killed_inside_a_settlement_settles_once_after_the_channels_retry(
    system: dict[str, ServiceProcess],
) -> None:
    person, application_id = approved(system, "钱志强", date(1983, 11, 2), male=True)
    issue_bills(system["payment"])
    [bill] = [b for b in bills_of(system, person, 1)["bills"] if b["period"] == str(Month.at(datetime.now(UTC)))]
    start = asyncio.run(end_offsets(topic(topics.PAYMENT_EVENTS)))
    operator = staff(system, "operator")
    txn = "4200005555" + uuid4().hex[:18]
    notification = wechat(KEYS, bill["bill_id"], bill["amount_fen"], txn)

    # The settlement's INSERT into the payments read model waits inside its transaction (PaymentSettled
    # appended, nothing committed yet) while the request is in flight: payment dies there.
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        hold(system, "payment.payments", "INSERT", "true", "bill_id", bill["bill_id"]) as waiting,
    ):
        in_flight = pool.submit(post, system, "wechat", notification)
        eventually(waiting, "the settlement to be inside its transaction")
        assert not in_flight.done()
        crash(system["payment"])
        with pytest.raises(httpx.HTTPError):  # the channel got no answer
            in_flight.result(timeout=15)
    assert stored_events(system, "payment", "PaymentSettled", "bill_id", bill["bill_id"]) == 0
    restart(system["payment"])

    for _ in range(2):  # the channel retries (twice: the second is a repeat)
        answer = post(system, "wechat", notification)
        assert answer.status_code == 204, answer.text

    [record] = settled_on_topic(start, {bill["bill_id"]}, expected=1)
    assert record["data"]["channel_txn_id"] == txn and record["data"]["amount_fen"] == bill["amount_fen"]
    assert type(record["data"]["amount_fen"]) is int
    assert stored_events(system, "payment", "PaymentSettled", "bill_id", bill["bill_id"]) == 1
    [shown] = [b for b in bills_of(system, person, 1)["bills"] if b["bill_id"] == bill["bill_id"]]
    assert shown["status"] == "paid"
    person.wait_for_status(application_id, "active")
    [receipt] = sms_of(system, operator, person.user_id, "payment_receipt", 1)
    assert UUID(receipt["payment_id"]) == payment_id_for("wechat", txn)


def sms_of(system: dict[str, ServiceProcess], operator: dict[str, str], user_id: str, template: str, count: int) -> Any:
    """The person's sent messages of `template` once there are `count`, checked to stay `count` for 3 s."""
    notify = httpx.Client(base_url=system["notify"].url, timeout=15)

    def sent() -> list[dict[str, Any]]:
        answer = notify.get("/v1/sms", params={"recipient_id": user_id}, headers=operator)
        assert answer.status_code == 200, answer.text
        items = [m for m in answer.json()["items"] if m["template"] == template]
        assert len(items) <= count, f"never more than {count} {template}: {items}"
        return [m for m in items if m["state"] == "sent"]

    found = eventually(lambda: items if len(items := sent()) == count else None, f"{count} {template}")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert len(sent()) == count
        time.sleep(0.5)
    return found


def test_bank_withholding_run_twice_collects_once_and_a_failed_collection_is_told_and_asked_again(
    system: dict[str, ServiceProcess],
) -> None:
    person, application_id = approved(system, "冯代扣", date(1979, 5, 14), male=True)
    issue_bills(system["payment"])
    [bill] = bills_of(system, person, 1)["bills"]
    operator = staff(system, "operator")
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)

    # The person signs at the bank; the bank says so (twice, and once more for the same card).
    for number in ("AG-E2E-1", "AG-E2E-1", "AG-E2E-2"):
        headers, body = agreement_notice(person.id_number, person.name, "CARD-E2E-6217009988", number)
        answer = payment.post("/v1/channels/bank_withholding/agreements", headers=headers, content=body)
        assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "reused"

    def requests() -> list[dict[str, Any]]:
        listed = payment.get("/v1/withholding/collections", params={"insured_person_id": person.user_id},
                             headers=operator)  # fmt: skip
        assert listed.status_code == 200 and floats_in(listed.json()) == [], listed.text
        found: list[dict[str, Any]] = listed.json()["collections"]
        return found

    # The monthly run, twice: one request, sent once to the bank.
    for _ in range(2):
        flexctl_payment(system["payment"], "withhold")
    [first] = requests()
    assert (first["bill_id"], first["attempt"], first["state"]) == (bill["bill_id"], 1, "sent")
    assert first["amount_fen"] == bill["amount_fen"] and first["provider_ref"].startswith("local-")

    # The bank could not collect: the person is told once, the next run asks again.
    failed = collection_result(bill["bill_id"], first["collection_request_id"], bill["amount_fen"],
                               reason="card_not_activated")  # fmt: skip
    for _ in range(2):
        answer = payment.post("/v1/channels/bank_withholding/notifications", headers=failed[0], content=failed[1])
        assert answer.status_code == 200, answer.text
    [told] = sms_of(system, operator, person.user_id, "withholding_failed", 1)
    assert "社保卡金融功能未激活" in told["text"] and yuan(bill["amount_fen"]) in told["text"]
    flexctl_payment(system["payment"], "withhold")
    second, earlier = requests()
    assert (second["attempt"], earlier["result"], second["result"]) == (2, "failed", None)

    # Collected: the bill is paid by withholding, the application active, one receipt.
    start = asyncio.run(end_offsets(topic(topics.PAYMENT_EVENTS)))
    done = collection_result(bill["bill_id"], second["collection_request_id"], bill["amount_fen"])
    answer = payment.post("/v1/channels/bank_withholding/notifications", headers=done[0], content=done[1])
    assert answer.status_code == 200, answer.text
    [record] = settled_on_topic(start, {bill["bill_id"]}, expected=1)
    assert (record["data"]["channel"], record["data"]["bank"]) == ("bank_withholding", "工商银行")
    assert record["data"]["amount_fen"] == bill["amount_fen"] and type(record["data"]["amount_fen"]) is int
    person.wait_for_status(application_id, "active")
    sms_of(system, operator, person.user_id, "payment_receipt", 1)
    flexctl_payment(system["payment"], "withhold")  # a paid bill is not asked again
    assert [r["result"] for r in requests()] == ["collected", "failed"]
