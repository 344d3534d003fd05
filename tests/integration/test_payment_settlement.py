"""Settlement over the real broker and database: channel notifications, made and signed exactly as
the channels make them (tests/unit/test_payment_channels_*.py), posted to payment in-process.

A WeChat Pay notification settles its bill once however often and however concurrently it
arrives, and PaymentSettled reaches payment.events in integer fen; an Alipay notification paying
the next bill for another person records payer and insured person apart; a bad signature is 401
and records nothing; a wrong amount is 422 and a reconciliation exception; a second payment of a
paid bill is an overpayment in the operators' refund list."""

import asyncio
from typing import Any
from uuid import UUID, uuid4

import httpx

from contracts import topics
from kernel.problems import PROBLEM_MEDIA_TYPE
from services.payment.settlement import payment_id_for
from tests.support.infra import topic
from tests.support.kafka import end_offsets, eventually, published_after
from tests.support.payment import (
    Keys,
    Payment,
    alipay,
    bank_counter,
    billed_person,
    post,
    wechat,
)


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and any("\u4e00" <= c <= "\u9fff" for c in body["detail"])
    return body


# --- the cases ---------------------------------------------------------------------------------


async def test_a_wechat_payment_settles_once_however_often_it_arrives(payment: Payment, keys: Keys) -> None:
    start = await end_offsets(topic(topics.PAYMENT_EVENTS))
    person, [bill] = await billed_person(payment)
    txn = "4200001234" + uuid4().hex[:18]
    notification = wechat(keys, bill["bill_id"], bill["amount_fen"], txn)

    twice = await asyncio.gather(*(post(payment, "wechat", notification) for _ in range(2)))
    for answer in [*twice, *[await post(payment, "wechat", notification) for _ in range(3)]]:
        assert answer.status_code == 204 and answer.content == b"", answer.text

    [settled] = await payment.events("PaymentSettled", bill_id=bill["bill_id"])
    assert settled["stream_id"] == f"bill-{bill['bill_id']}" and settled["channel_txn_id"] == txn
    assert settled["insured_person_id"] == str(person) and settled["payment_id"] == str(payment_id_for("wechat", txn))
    assert settled["amount_fen"] == bill["amount_fen"] and type(settled["amount_fen"]) is int
    assert await payment.count("SELECT count(*) FROM {s}.inbox WHERE source = 'wechat' AND external_id = $1", txn) == 1
    assert await payment.count("SELECT count(*) FROM {s}.payments WHERE bill_id = $1", UUID(bill["bill_id"])) == 1

    answer = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    [shown] = answer.json()["bills"]
    assert shown["status"] == "paid" and shown["paid_at"] is not None and answer.json()["amount_due_fen"] == 0

    on_topic = await eventually(
        lambda: published_after(start, lambda v: v["event_type"] == "PaymentSettled"
                                and v["data"]["bill_id"] == bill["bill_id"], wait=1),
        "PaymentSettled on payment.events",
    )  # fmt: skip
    assert len(on_topic) == 1 and on_topic[0]["producer"] == "payment"
    assert on_topic[0]["data"]["amount_fen"] == bill["amount_fen"] and type(on_topic[0]["data"]["amount_fen"]) is int


async def test_alipay_paying_the_next_bill_for_another_person_records_payer_and_insured(
    payment: Payment, keys: Keys
) -> None:
    person, bills = await billed_person(payment, months_back=1)
    first, following = bills[0], bills[1]
    assert await post(payment, "wechat", wechat(keys, first["bill_id"], first["amount_fen"], uuid4().hex))
    amount = following["amount_fen"]
    yuan = f"{amount // 100}.{amount % 100:02d}"
    answer = await post(payment, "alipay", alipay(keys, following["bill_id"], yuan, uuid4().hex, "2088000000000042"))
    assert answer.status_code == 200 and answer.text == "success"
    assert answer.headers["content-type"].startswith("text/plain")

    [settled] = await payment.events("PaymentSettled", bill_id=following["bill_id"])
    assert settled["insured_person_id"] == str(person) and settled["channel"] == "alipay"
    assert settled["payer_id"] == "2088000000000042" and settled["payer_name_masked"] == "159****5620"
    assert settled["amount_fen"] == amount
    shown = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    assert [b["status"] for b in shown.json()["bills"][:2]] == ["paid", "paid"]


async def test_a_bad_signature_is_401_and_records_nothing(payment: Payment, keys: Keys) -> None:
    person, [bill] = await billed_person(payment)
    txn = uuid4().hex
    headers, body = wechat(keys, bill["bill_id"], bill["amount_fen"], txn)
    tampered = body.replace(b"\xe6\x94\xaf\xe4\xbb\x98\xe6\x88\x90\xe5\x8a\x9f", b"paid!")  # the summary changed
    assert tampered != body
    problem(await post(payment, "wechat", (headers, tampered)), 401, "invalid_signature")
    unsigned = {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}
    problem(await post(payment, "wechat", (unsigned, body)), 401, "invalid_signature")
    counter_headers, counter_body = bank_counter(bill["bill_id"], bill["amount_fen"], "T" + uuid4().hex[:20])
    forged = {**counter_headers, "X-Flexenroll-Signature": "sha256=" + "0" * 64}
    problem(await post(payment, "bank_counter", (forged, counter_body)), 401, "invalid_signature")

    assert await payment.count("SELECT count(*) FROM {s}.inbox") == 0
    assert await payment.events("PaymentSettled", bill_id=bill["bill_id"]) == []
    assert await payment.count("SELECT count(*) FROM {s}.payments") == 0
    shown = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    assert shown.json()["bills"][0]["status"] != "paid"


async def test_a_wrong_amount_is_refused_and_kept_as_a_reconciliation_exception(payment: Payment, keys: Keys) -> None:
    person, [bill] = await billed_person(payment)
    txn = uuid4().hex
    notification = wechat(keys, bill["bill_id"], bill["amount_fen"] - 1, txn)
    first = problem(await post(payment, "wechat", notification), 422, "amount_mismatch")
    again = problem(await post(payment, "wechat", notification), 422, "amount_mismatch")  # the first answer
    assert again["detail"] == first["detail"]
    unknown = str(uuid4())
    problem(await post(payment, "bank_counter", bank_counter(unknown, 100, "T" + uuid4().hex[:20])), 422,
            "unknown_bill")  # fmt: skip

    assert await payment.events("PaymentSettled", bill_id=bill["bill_id"]) == []
    [recorded] = await payment.events("ReconciliationExceptionRecorded", channel_txn_id=txn)
    assert recorded["expected_fen"] == bill["amount_fen"] and recorded["amount_fen"] == bill["amount_fen"] - 1
    refused = await payment.http.get("/v1/reconciliation/exceptions", headers=payment.person(person))
    problem(refused, 403, "operators_only")
    listed = (await payment.http.get("/v1/reconciliation/exceptions", headers=payment.operator())).json()
    by_txn = {e["channel_txn_id"]: e for e in listed["exceptions"]}
    assert by_txn[txn]["code"] == "amount_mismatch" and by_txn[txn]["bill_id"] == bill["bill_id"]
    assert [e["code"] for e in listed["exceptions"] if e["out_trade_no"] == unknown] == ["unknown_bill"]
    assert len(listed["exceptions"]) == 2
    shown = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    assert shown.json()["bills"][0]["status"] != "paid"


async def test_a_second_payment_of_a_paid_bill_is_an_overpayment_to_refund(payment: Payment, keys: Keys) -> None:
    person, [bill] = await billed_person(payment)
    wechat_txn, counter_txn = uuid4().hex, "T" + uuid4().hex[:20]
    assert (await post(payment, "wechat", wechat(keys, bill["bill_id"], bill["amount_fen"], wechat_txn))).is_success
    counter = bank_counter(bill["bill_id"], bill["amount_fen"], counter_txn)
    for _ in range(2):
        answer = await post(payment, "bank_counter", counter)
        assert answer.status_code == 200 and answer.json() == {"status": "accepted"}

    assert len(await payment.events("PaymentSettled", bill_id=bill["bill_id"])) == 1
    [over] = await payment.events("OverpaymentRecorded", bill_id=bill["bill_id"])
    assert over["channel"] == "bank_counter" and over["bank"] == "工商银行"
    assert over["settling_payment_id"] == str(payment_id_for("wechat", wechat_txn))

    problem(await payment.http.get("/v1/refunds", headers=payment.person(person)), 403, "operators_only")
    listed = (await payment.http.get("/v1/refunds", headers=payment.operator())).json()
    [refund] = listed["refunds"]
    assert refund["channel_txn_id"] == counter_txn and refund["amount_fen"] == bill["amount_fen"]
    assert refund["insured_person_id"] == str(person) and listed["amount_fen"] == bill["amount_fen"]
