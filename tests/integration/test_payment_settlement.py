"""Settlement over the real broker and database: channel notifications, made and signed exactly as
the channels make them (tests/unit/test_payment_channels_*.py), posted to payment in-process.

A WeChat Pay notification settles its bill once however often and however concurrently it
arrives, and PaymentSettled reaches payment.events in integer fen; an Alipay notification paying
the next bill for another person records payer and insured person apart; a bad signature is 401
and records nothing; a wrong amount is 422 and a reconciliation exception; a second payment of a
paid bill is an overpayment in the operators' refund list."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from kernel.auth import Principal, issue_token
from kernel.clock import SHANGHAI
from kernel.personal import new_data_key, seal
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from services.payment import domain
from services.payment.app import build
from services.payment.channels import sign
from services.payment.domain import Month
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from services.payment.settlement import payment_id_for
from tests.integration.test_payment_accounts import end_offsets, eventually, published_after
from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP, group_prefix, provision_schema, topic

APIV3_KEY = "k7Vq2mXz9LpR4tYw8NcB1dFgH3jS6uEa"
COUNTER_SECRET = "a-test-secret-of-more-than-32-bytes-for-bank-counter"
SECRET = PaymentSettings().jwt_secret.get_secret_value()


@dataclass(frozen=True)
class Keys:
    wechat: rsa.RSAPrivateKey
    serial: str
    certificate_pem: str
    alipay: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Our own WeChat Pay platform key and certificate, and our own key pair standing for Alipay's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test WeChat Pay platform")])
    serial = x509.random_serial_number()
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(serial).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    alipay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(key, f"{serial:X}", certificate.public_bytes(Encoding.PEM).decode(), alipay)


@dataclass
class Payment:
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    schema: str
    service: PaymentService

    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(Principal(uuid4(), 'operator'), SECRET, 600)}"}

    def person(self, user_id: UUID) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(Principal(user_id, 'applicant'), SECRET, 600)}"}

    async def count(self, sql: str, *args: Any) -> int:
        value = await self.runtime.pool.fetchval(sql.replace("{s}", f'"{self.schema}"'), *args)
        return int(value)

    async def events(self, event_type: str, **data: str) -> list[dict[str, Any]]:
        where = "".join(f" AND data->>'{k}' = '{v}'" for k, v in data.items())
        rows = await self.runtime.pool.fetch(
            f'SELECT stream_id, data FROM "{self.schema}".events WHERE event_type = $1{where} ORDER BY position',
            event_type,
        )
        return [{"stream_id": r["stream_id"], **r["data"]} for r in rows]


@pytest.fixture
async def payment(schema: str, keys: Keys) -> AsyncIterator[Payment]:
    settings = PaymentSettings(
        schema_name=schema,
        consumer_group_prefix=group_prefix("settle"),
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        payment_wechat_apiv3_key=SecretStr(APIV3_KEY),
        payment_wechat_platform_certificates={keys.serial: keys.certificate_pem},
        payment_alipay_public_key=keys.alipay.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        payment_bank_counter_secret=SecretStr(COUNTER_SECRET),
    )
    await provision_schema("payment", schema)
    app, runtime = build(settings)
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://payment") as http:
            yield Payment(runtime, http, schema, app.state.payment)
    finally:
        await runtime.stop()


async def billed_person(payment: Payment, months_back: int = 0) -> tuple[UUID, list[dict[str, Any]]]:
    """An approved person with bills from `months_back` months ago to this month, oldest first."""
    person, application = uuid4(), uuid4()
    now = datetime.now(UTC)

    def wrap(event: Event, version: int) -> Envelope:
        return Envelope.wrap(event, stream_id=f"application-{application}", stream_version=version,
                             producer="enrollment", correlation_id=f"corr-{application}")  # fmt: skip

    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    personal = seal(new_data_key(), person, {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"})
    submitted = EnrollmentSubmitted.model_validate(
        {**example, "application_id": str(application), "applicant_id": str(person), "attempt": 1,
         "pension_tier": 3, "medical_tier": 5, "personal": personal.model_dump(mode="json")}
    )  # fmt: skip
    approved = ApplicationApproved(application_id=application, applicant_id=person, attempt=1, case_id=uuid4(),
                                   decided_at=now - timedelta(days=31 * months_back))  # fmt: skip
    await payment.service.note_submission(submitted, wrap(submitted, 1))
    assert await payment.service.open_account(approved, wrap(approved, 2)) is not None
    await payment.service.bill_account(domain.account_id_for(person), Month.at(now))
    answer = await payment.http.get(f"/v1/insured/{person}/bills", headers=payment.person(person))
    assert answer.status_code == 200, answer.text
    bills: list[dict[str, Any]] = answer.json()["bills"]
    assert len(bills) >= months_back + 1
    return person, bills


# --- notifications, as each channel makes them -------------------------------------------------


def wechat(keys: Keys, bill_id: str, amount_fen: int, transaction_id: str) -> tuple[dict[str, str], bytes]:
    transaction = {
        "mchid": "1230000109", "appid": "wxd678efh567hg6787", "out_trade_no": UUID(bill_id).hex,
        "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
        "success_time": datetime.now(SHANGHAI).replace(microsecond=0).isoformat(),
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY", "payer_currency": "CNY"},
    }  # fmt: skip
    nonce = "fdasflkja484"
    sealed = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(transaction).encode(), b"transaction")
    body = json.dumps(
        {"id": f"EV-{transaction_id}", "create_time": transaction["success_time"], "resource_type": "encrypt-resource",
         "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
         "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                      "ciphertext": base64.b64encode(sealed).decode(), "associated_data": "transaction",
                      "nonce": nonce}},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    timestamp, signing_nonce = str(int(datetime.now(UTC).timestamp())), uuid4().hex
    message = f"{timestamp}\n{signing_nonce}\n".encode() + body + b"\n"
    signature = keys.wechat.sign(message, padding.PKCS1v15(), hashes.SHA256())
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": signing_nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": keys.serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def alipay(keys: Keys, bill_id: str, yuan: str, trade_no: str, buyer_id: str) -> tuple[dict[str, str], bytes]:
    local = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    fields = {
        "gmt_create": local, "charset": "utf-8", "subject": "灵活就业人员社会保险费", "buyer_id": buyer_id,
        "notify_id": uuid4().hex, "notify_type": "trade_status_sync", "trade_status": "TRADE_SUCCESS",
        "app_id": "2021000000000000", "seller_id": "2088101117955611", "gmt_payment": local, "notify_time": local,
        "version": "1.0", "out_trade_no": bill_id, "total_amount": yuan, "trade_no": trade_no,
        "buyer_logon_id": "159****5620",
    }  # fmt: skip
    content = "&".join(f"{name}={value}" for name, value in sorted(fields.items()))
    signature = keys.alipay.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    signed = {**fields, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}
    return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(signed).encode("ascii")


def bank_counter(bill_id: str, amount_fen: int, transaction_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {"transaction_id": transaction_id, "out_trade_no": bill_id, "amount_fen": amount_fen,
         "paid_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "bank_code": "ICBC"}
    ).encode()  # fmt: skip
    timestamp = str(int(datetime.now(UTC).timestamp()))
    headers = {"Content-Type": "application/json", "X-Flexenroll-Timestamp": timestamp,
               "X-Flexenroll-Signature": sign(COUNTER_SECRET, timestamp, body)}  # fmt: skip
    return headers, body


async def post(payment: Payment, channel: str, notification: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = notification
    return await payment.http.post(f"/v1/channels/{channel}/notifications", headers=headers, content=body)


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
